/* Leaves a POSIX shared-memory object named argv[1] behind and writes 256 KiB to stdout:
 * after `shstk run` exits, the run's private /dev/shm must be gone and every byte out. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int fd = shm_open(argv[1], O_CREAT | O_RDWR, 0600);
    if (fd < 0 || ftruncate(fd, 4096) != 0) return 1;
    char line[64];
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    for (int i = 0; i < 4096; i++) fwrite(line, 1, sizeof line, stdout);
    return 0;
}
