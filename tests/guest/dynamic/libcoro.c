/*
 * A tiny coroutine library built on glibc's getcontext/makecontext/swapcontext, the way
 * many real ones are. It is linked with the SHSTK marking, as if it were ready for
 * shadow stacks. With Debian's glibc (built without CET) swapcontext switches the stack
 * but not the shadow stack, so the first switch ends in #CP under `shstk run --shstk on`;
 * linked against a CET-enabled glibc whose SHSTK feature is active, the same code works.
 */
#include <stdlib.h>
#include <ucontext.h>

#include "coro.h"

struct coro {
    ucontext_t ctx;
    ucontext_t caller;
    void (*fn)(struct coro *, void *);
    void *arg;
    int done;
};

static void trampoline(unsigned int hi, unsigned int lo)
{
    struct coro *c = (struct coro *)(((unsigned long)hi << 32) | lo);
    c->fn(c, c->arg);
    c->done = 1;
}

struct coro *coro_new(void (*fn)(struct coro *, void *), void *arg)
{
    struct coro *c = calloc(1, sizeof *c);
    unsigned long p = (unsigned long)c;
    if (c == NULL || getcontext(&c->ctx) != 0)
        abort();
    c->ctx.uc_stack.ss_size = 256 * 1024;
    c->ctx.uc_stack.ss_sp = malloc(c->ctx.uc_stack.ss_size);
    c->ctx.uc_link = &c->caller;
    c->fn = fn;
    c->arg = arg;
    if (c->ctx.uc_stack.ss_sp == NULL)
        abort();
    makecontext(&c->ctx, (void (*)(void))trampoline, 2, (unsigned int)(p >> 32),
                (unsigned int)p);
    return c;
}

int coro_resume(struct coro *c)
{
    if (!c->done)
        swapcontext(&c->caller, &c->ctx);
    return !c->done;
}

void coro_yield(struct coro *c)
{
    swapcontext(&c->ctx, &c->caller);
}

void coro_free(struct coro *c)
{
    free(c->ctx.uc_stack.ss_sp);
    free(c);
}
