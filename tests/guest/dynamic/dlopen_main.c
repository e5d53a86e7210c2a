/*
 * dlopen each library named on the command line, call its plugin_value(), and print the
 * shadow-stack status (ARCH_SHSTK_STATUS, read with an inline system call) before and
 * after each one. With "--thread" first, a second thread is alive during the dlopens
 * (glibc's permissive mode only disables shadow stacks when single-threaded); with
 * "--joined" first, a thread was created and joined before them (glibc never becomes
 * single-threaded again: SINGLE_THREAD_P stays false once a thread was created).
 *
 * A name starting with '+' is only opened, plugin_value() is not looked up: a failing
 * dlsym() unwinds with longjmp, which Debian's glibc does not do shadow-stack aware.
 *
 * Built against Debian's glibc (which never checks) and against the CET-enabled glibc of
 * ../shared/glibc-cet (which checks as SPEC.md §15.1 says when its SHSTK feature is
 * active). Only names without directories are printed, so the output does not depend on
 * where the libraries are.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static long shstk_status(void)
{
    unsigned long features = 0;
    long ret;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(158L), "D"(0x5005L), "S"(&features)
                     : "rcx", "r11", "memory");
    return ret < 0 ? ret : (long)features;
}

static int gate[2];

static void *waiter(void *arg)
{
    char c;
    (void)arg;
    while (read(gate[0], &c, 1) < 0)
        ;
    return NULL;
}

static const char *base(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

int main(int argc, char **argv)
{
    pthread_t thread;
    int threaded = argc > 1 && strcmp(argv[1], "--thread") == 0;
    int joined = argc > 1 && strcmp(argv[1], "--joined") == 0;
    int failures = 0;

    if (threaded || joined) {
        if (pipe(gate) != 0 || pthread_create(&thread, NULL, waiter, NULL) != 0) {
            perror("thread");
            return 2;
        }
    }
    if (joined) {
        if (write(gate[1], "x", 1) != 1 || pthread_join(thread, NULL) != 0)
            return 2;
    }
    printf("status at start: %ld\n", shstk_status());
    for (int i = 1 + threaded + joined; i < argc; i++) {
        int open_only = argv[i][0] == '+';
        const char *name = argv[i] + open_only;
        void *handle = dlopen(name, RTLD_NOW);
        if (handle == NULL) {
            const char *err = dlerror();
            const char *colon = err ? strstr(err, ": ") : NULL;
            printf("dlopen %s: failed:%s\n", base(name), colon ? colon + 1 : " ?");
            failures++;
        } else if (open_only) {
            printf("dlopen %s: loaded\n", base(name));
        } else {
            int (*value)(void) = (int (*)(void))dlsym(handle, "plugin_value");
            printf("dlopen %s: plugin_value() = %d\n", base(name), value ? value() : -1);
        }
        printf("status after %s: %ld\n", base(name), shstk_status());
    }
    if (threaded) {
        if (write(gate[1], "x", 1) != 1 || pthread_join(thread, NULL) != 0)
            return 2;
    }
    printf("done\n");
    fflush(stdout);
    return failures;
}
