/* elf_driver LOG MODE FILE...: for each FILE, in a child process, execve() it (MODE
 * exec) or dlopen() it (MODE dlopen). Appends "INDEX FILE" to LOG before each, so when
 * shstk itself fails the last line names the file. A child that runs 5 s is killed.
 * Prints how the children ended: "enoexec N", "other-errno N", "ran N", "killed N". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int log = open(argv[1], O_WRONLY | O_CREAT | O_APPEND, 0644);
    int dl = !strcmp(argv[2], "dlopen");
    int enoexec = 0, other = 0, ran = 0, killed = 0, dlfail = 0;
    for (int i = 3; i < argc; i++) {
        char line[4200];
        int n = snprintf(line, sizeof line, "%d %s\n", i - 3, argv[i]);
        write(log, line, n);
        pid_t c = fork();
        if (c == 0) {
            int null = open("/dev/null", O_RDWR);
            dup2(null, 1);
            dup2(null, 2);
            if (dl) {
                void *h = dlopen(argv[i], RTLD_NOW | RTLD_LOCAL);
                _exit(h ? 0 : 3);
            }
            char *args[] = {argv[i], 0};
            char *env[] = {"LANG=C", 0};
            execve(argv[i], args, env);
            _exit(errno == ENOEXEC ? 4 : 5);
        }
        int status = 0;
        for (int waited = 0;; waited += 5) {
            pid_t w = waitpid(c, &status, WNOHANG);
            if (w == c) break;
            if (waited >= 5000) {
                kill(c, SIGKILL);
                waitpid(c, &status, 0);
                killed++;
                status = -1;
                break;
            }
            struct timespec ts = {0, 5000000};
            nanosleep(&ts, 0);
        }
        if (status == -1) continue;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 4) enoexec++;
        else if (WIFEXITED(status) && WEXITSTATUS(status) == 5) other++;
        else if (WIFEXITED(status) && WEXITSTATUS(status) == 3) dlfail++;
        else ran++;
    }
    printf("enoexec %d\nother-errno %d\ndlopen-failed %d\nran %d\nkilled %d\n",
           enoexec, other, dlfail, ran, killed);
    return 0;
}
