/*
 * A coroutine ping-pong on glibc's makecontext/swapcontext, linked with the SHSTK
 * marking as if it were ready for shadow stacks.
 *
 * With Debian's glibc (no CET support), swapcontext switches stacks without switching the
 * shadow stack, so the first switch ends in #CP under `shstk run --shstk on`: this is the
 * check that a program marked "ready" really is. Linked against a glibc built with
 * --enable-cet (see the README), the same source runs with shadow stacks locked on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

static ucontext_t main_ctx, ping_ctx, pong_ctx;

static void ping(void) {
    for (int i = 0; i < 3; i++) {
        printf("ping %d\n", i);
        swapcontext(&ping_ctx, &pong_ctx);
    }
}

static void pong(void) {
    for (int i = 0; i < 3; i++) {
        printf("pong %d\n", i);
        swapcontext(&pong_ctx, &ping_ctx);
    }
}

static void setup(ucontext_t *ctx, void (*fn)(void)) {
    getcontext(ctx);
    ctx->uc_stack.ss_sp = malloc(65536);
    ctx->uc_stack.ss_size = 65536;
    ctx->uc_link = &main_ctx;
    makecontext(ctx, fn, 0);
}

int main(void) {
    setup(&ping_ctx, ping);
    setup(&pong_ctx, pong);
    swapcontext(&main_ctx, &ping_ctx);
    printf("back in main\n");
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "x86_Thread_features", 19)) fputs(line, stdout);
    return 0;
}
