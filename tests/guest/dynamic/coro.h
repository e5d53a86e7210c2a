/* libcoro.so: coroutines on getcontext/makecontext/swapcontext. */
#ifndef DYN_CORO_H
#define DYN_CORO_H
struct coro;
struct coro *coro_new(void (*fn)(struct coro *, void *), void *arg);
int coro_resume(struct coro *c); /* 1 while the coroutine has more to do */
void coro_yield(struct coro *c);
void coro_free(struct coro *c);
#endif
