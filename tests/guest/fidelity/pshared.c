/* Process-shared mutex, condition variable, semaphore and barrier in MAP_SHARED anonymous
 * memory and in a shared file mapping, used across fork (issue 16): the futexes must be
 * keyed by the shared object, not by an address of one process. */
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

struct shared {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_barrier_t bar;
    sem_t sem;
    int ready, counter;
};

static void run(struct shared *s, const char *what) {
    pthread_mutexattr_t ma;
    pthread_condattr_t ca;
    pthread_barrierattr_t ba;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_condattr_init(&ca);
    pthread_condattr_setpshared(&ca, PTHREAD_PROCESS_SHARED);
    pthread_barrierattr_init(&ba);
    pthread_barrierattr_setpshared(&ba, PTHREAD_PROCESS_SHARED);
    pthread_mutex_init(&s->mu, &ma);
    pthread_cond_init(&s->cv, &ca);
    pthread_barrier_init(&s->bar, &ba, 3);
    sem_init(&s->sem, 1, 0);
    s->ready = s->counter = 0;
    for (int c = 0; c < 2; c++) {
        if (fork() == 0) {
            sem_wait(&s->sem);  /* the parent posts after a while: the child sleeps */
            for (int i = 0; i < 200; i++) {
                pthread_mutex_lock(&s->mu);
                s->counter++;
                pthread_mutex_unlock(&s->mu);
            }
            pthread_mutex_lock(&s->mu);
            while (!s->ready)
                pthread_cond_wait(&s->cv, &s->mu);
            pthread_mutex_unlock(&s->mu);
            pthread_barrier_wait(&s->bar);
            _exit(0);
        }
    }
    usleep(20000);
    sem_post(&s->sem);
    sem_post(&s->sem);
    usleep(20000);
    pthread_mutex_lock(&s->mu);
    s->ready = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_barrier_wait(&s->bar);
    int st, ok = 1;
    for (int c = 0; c < 2; c++)
        ok &= wait(&st) > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
    printf("%s: counter %d, children %s\n", what, s->counter, ok ? "ok" : "failed");
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IONBF, 0);
    struct shared *a = mmap(NULL, sizeof *a, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    run(a, "anonymous");
    int fd = open(argc > 1 ? argv[1] : "pshared.data", O_RDWR | O_CREAT | O_TRUNC, 0600);
    ftruncate(fd, 8192);
    struct shared *b = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    run((struct shared *)((char *)b + 4096), "file");
    return 0;
}
