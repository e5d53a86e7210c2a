/* setjmp/longjmp across many frames and out of signal handlers, with shadow stacks:
 * glibc's __longjmp finds the target SSP and pops the skipped frames with INCSSP. */
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include "common.h"

static jmp_buf env;
static sigjmp_buf senv;
static volatile int hops;

__attribute__((noinline)) static void deep(int n) {
    if (n == 0) longjmp(env, 7);
    deep(n - 1);
    hops++; /* not a tail call */
}

static void on_usr1(int sig) { longjmp(env, sig); }

static void on_segv(int sig) { siglongjmp(senv, 1); }

__attribute__((noinline)) static void deep_fault(int n) {
    if (n == 0) *(volatile int *)8 = 1;
    deep_fault(n - 1);
    hops++;
}

int main(void) {
    uint64_t base = ss_get_ssp();
    int ok = 1;
    for (int i = 0; i < 50; i++) {
        int r = setjmp(env);
        if (r == 0) deep(200 + i);
        if (r != 7) ok = 0;
    }
    printf("longjmp across 200+ frames x50: %s\n", ok ? "ok" : "wrong value");
    signal(SIGUSR1, on_usr1);
    int r = setjmp(env);
    if (r == 0) raise(SIGUSR1);
    printf("longjmp out of a handler: %d\n", r);
    signal(SIGSEGV, on_segv);
    int faults = 0;
    for (int i = 0; i < 20; i++) {
        if (sigsetjmp(senv, 1) == 0) deep_fault(100);
        else faults++;
    }
    printf("sigsetjmp with a SIGSEGV handler: %d faults recovered\n", faults);
    printf("ssp back where it was: %s\n", ss_get_ssp() == base ? "yes" : "no");
    printf("status %lu\n", cet_status());
    return 0;
}
