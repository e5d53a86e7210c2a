/* The synthetic /proc: prints facts (not addresses) about /proc/self/{maps,exe,cmdline,
 * status,smaps,auxv} and /proc/cpuinfo. */
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

static char *slurp(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    ssize_t r;
    while ((r = read(fd, buf + n, cap - n)) > 0) {
        n += (size_t)r;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    close(fd);
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

int main(int argc, char **argv) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char real[PATH_MAX];
    realpath(argv[0], real);
    printf("exe matches argv[0]: %d\n", strcmp(exe, real) == 0);

    char *maps = slurp("/proc/self/maps", NULL);
    int prog_lines = 0, prog_x = 0, stack = 0, heap = 0, vsyscall_like = 0;
    for (char *line = strtok(maps, "\n"); line; line = strtok(NULL, "\n")) {
        char perms[8] = "";
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || lo >= hi) {
            printf("bad maps line: %s\n", line);
            continue;
        }
        if (strstr(line, exe)) {
            prog_lines++;
            prog_x += perms[2] == 'x';
        }
        stack += strstr(line, "[stack]") != NULL;
        heap += strstr(line, "[heap]") != NULL;
        vsyscall_like += strstr(line, "[vdso]") != NULL;
        if (lo <= (unsigned long)&n && (unsigned long)&n < hi && !strstr(line, "[stack]"))
            printf("local variable not in [stack]: %s\n", line);
    }
    printf("maps: program mappings>=2: %d, one executable: %d, [stack]: %d, [heap]: %d\n",
           prog_lines >= 2, prog_x == 1, stack, heap >= 1);

    size_t clen;
    char *cmd = slurp("/proc/self/cmdline", &clen);
    printf("cmdline args:");
    for (size_t off = strlen(cmd) + 1; off < clen; off += strlen(cmd + off) + 1)
        printf(" [%s]", cmd + off);
    printf("\n");

    char *status = slurp("/proc/self/status", NULL);
    char name[64] = "";
    int pid = -1, threads = -1;
    long rss = -1;
    for (char *line = strtok(status, "\n"); line; line = strtok(NULL, "\n")) {
        sscanf(line, "Name:\t%63s", name);
        sscanf(line, "Pid:\t%d", &pid);
        sscanf(line, "Threads:\t%d", &threads);
        sscanf(line, "VmRSS:\t%ld", &rss);
    }
    printf("status: Name=%s Pid==getpid: %d Threads=%d VmRSS>0: %d\n", name, pid == getpid(),
           threads, rss > 0);

    char *smaps = slurp("/proc/self/smaps", NULL);
    printf("smaps: has Rss: %d has Size: %d\n", strstr(smaps, "\nRss:") != NULL,
           strstr(smaps, "\nSize:") != NULL);

    size_t alen;
    Elf64_auxv_t *av = (Elf64_auxv_t *)slurp("/proc/self/auxv", &alen);
    int match = 0, count = 0, ended = 0;
    for (size_t i = 0; i < alen / sizeof *av; i++) {
        if (av[i].a_type == AT_NULL) {
            ended = 1;
            break;
        }
        /* glibc's getauxval answers AT_HWCAP/AT_HWCAP2 from its own cpu features */
        if (av[i].a_type == AT_HWCAP || av[i].a_type == AT_HWCAP2)
            continue;
        count++;
        match += getauxval(av[i].a_type) == av[i].a_un.a_val;
    }
    printf("auxv: ends with AT_NULL: %d, all entries match getauxval: %d\n", ended,
           match == count && count > 10);

    char *cpu = slurp("/proc/cpuinfo", NULL);
    printf("cpuinfo: processor line: %d, vendor_id: %d, flags: %d\n",
           strstr(cpu, "processor\t:") != NULL, strstr(cpu, "vendor_id") != NULL,
           strstr(cpu, "\nflags\t\t:") != NULL);
    return 0;
}
