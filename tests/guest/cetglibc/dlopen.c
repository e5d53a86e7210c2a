/* dlopen of an object without the SHSTK property while shadow stacks are on. */
#include <dlfcn.h>
#include "common.h"

int main(int argc, char **argv) {
    printf("before: status %lu\n", cet_status());
    void *h = dlopen(argv[1], RTLD_NOW);
    if (!h) {
        printf("dlopen failed: %s\n", dlerror());
        return 1;
    }
    int (*answer)(void) = (int (*)(void))dlsym(h, "answer");
    printf("dlopen ok: answer %d, status %lu\n", answer ? answer() : -1, cet_status());
    return 0;
}
