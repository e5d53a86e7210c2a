/* setjmp/longjmp (plain glibc ones; shadow stacks are off for this unmarked program):
 * jumping out of nested calls, the value 0 turned into 1, volatile locals kept,
 * sigsetjmp/siglongjmp restoring the signal mask. */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>

static jmp_buf env;
static sigjmp_buf senv;
static int depth_reached;

static void dive(int depth) {
    depth_reached = depth;
    if (depth == 50)
        longjmp(env, depth);
    dive(depth + 1);
    printf("never printed\n");
}

static void zero(void) { longjmp(env, 0); }

int main(void) {
    volatile int count = 0;
    int r = setjmp(env);
    count++;
    printf("setjmp returned %d (count %d)\n", r, count);
    if (r == 0)
        dive(1);
    printf("after dive: depth=%d\n", depth_reached);

    r = setjmp(env);
    if (r == 0)
        zero();
    printf("longjmp(env, 0) gives %d\n", r);

    volatile int loops = 0;
    r = setjmp(env);
    if (++loops < 5)
        longjmp(env, loops);
    printf("loops=%d last r=%d\n", loops, r);

    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    if (sigsetjmp(senv, 1) == 0) {
        sigprocmask(SIG_BLOCK, &set, NULL);
        sigprocmask(SIG_BLOCK, NULL, &old);
        printf("inside: USR1 blocked=%d\n", sigismember(&old, SIGUSR1));
        siglongjmp(senv, 7);
    }
    sigprocmask(SIG_BLOCK, NULL, &old);
    printf("after siglongjmp: USR1 blocked=%d\n", sigismember(&old, SIGUSR1));
    return 0;
}
