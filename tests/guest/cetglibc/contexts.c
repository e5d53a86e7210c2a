/* makecontext/swapcontext/setcontext ping-pong between several contexts, each with its
 * own shadow stack from map_shadow_stack (glibc switches with RSTORSSP/SAVEPREVSSP). */
#include <stdlib.h>
#include <ucontext.h>
#include "common.h"

#define N 3
#define ROUNDS 4
static ucontext_t main_ctx, ctx[N], done_ctx;
static int trace[N * ROUNDS + 8], ntrace;

static void worker(int id) {
    for (int r = 0; r < ROUNDS; r++) {
        trace[ntrace++] = id;
        swapcontext(&ctx[id], &ctx[(id + 1) % N]);
    }
    setcontext(&main_ctx);
}

int main(void) {
    int before = count_shadow_stacks();
    for (int i = 0; i < N; i++) {
        getcontext(&ctx[i]);
        ctx[i].uc_stack.ss_sp = malloc(256 * 1024);
        ctx[i].uc_stack.ss_size = 256 * 1024;
        ctx[i].uc_link = &done_ctx;
        makecontext(&ctx[i], (void (*)(void))worker, 1, i);
    }
    printf("shadow stacks before %d after makecontext %d\n", before, count_shadow_stacks());
    swapcontext(&main_ctx, &ctx[0]);
    printf("order:");
    for (int i = 0; i < ntrace; i++) printf(" %d", trace[i]);
    printf("\nback in main, status %lu\n", cet_status());
    return 0;
}
