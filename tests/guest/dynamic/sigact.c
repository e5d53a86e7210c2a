/* Installs a SIGUSR1 handler with sigaction (so glibc supplies sa_restorer) and raises
 * it: `shstk run --strace` must name both addresses by symbol and library. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

static volatile sig_atomic_t got;

void dyn_usr1_handler(int sig)
{
    got = sig;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = dyn_usr1_handler;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGUSR1, &sa, NULL) != 0)
        return 2;
    raise(SIGUSR1);
    printf("handler saw signal %d\n", (int)got);
    return got == SIGUSR1 ? 0 : 1;
}
