/*
 * Reading /proc from guest test programs (plain libc calls: they return normally, so
 * they are safe with shadow stacks on).
 */
#ifndef PROC_READ_H
#define PROC_READ_H

#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char proc_buf[1 << 17];

/* The whole file, NUL-terminated, in a static buffer (empty if it cannot be opened). */
static __attribute__((unused)) const char *proc_read_file(const char *path) {
    int fd = open(path, O_RDONLY);
    size_t n = 0;
    ssize_t r;
    proc_buf[0] = 0;
    if (fd < 0)
        return proc_buf;
    while (n < sizeof proc_buf - 1 && (r = read(fd, proc_buf + n, sizeof proc_buf - 1 - n)) > 0)
        n += (size_t)r;
    proc_buf[n] = 0;
    close(fd);
    return proc_buf;
}

/* The /proc/self/maps mapping containing addr: 1 and [start, end), or 0. */
static __attribute__((unused)) int proc_mapping_of(uint64_t addr, uint64_t *start,
                                                   uint64_t *end) {
    const char *p = proc_read_file("/proc/self/maps");
    while (*p) {
        char *q;
        unsigned long s = strtoul(p, &q, 16);
        unsigned long e = strtoul(q + 1, NULL, 16);
        const char *eol = strchr(p, '\n');
        if (addr >= s && addr < e) {
            *start = s;
            *end = e;
            return 1;
        }
        if (!eol)
            break;
        p = eol + 1;
    }
    return 0;
}

#endif
