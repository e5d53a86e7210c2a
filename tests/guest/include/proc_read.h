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

/* The VmFlags line of the /proc/self/smaps entry that starts at `start` (to `out`). */
static __attribute__((unused)) int proc_smaps_vmflags(uint64_t start, char *out, size_t outsz) {
    const char *p = proc_read_file("/proc/self/smaps");
    int in_entry = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        char *q;
        unsigned long s = strtoul(p, &q, 16);
        if (q != p && *q == '-')
            in_entry = s == start;
        else if (in_entry && strncmp(p, "VmFlags:", 8) == 0) {
            if (len >= outsz)
                len = outsz - 1;
            memcpy(out, p, len);
            out[len] = 0;
            return 1;
        }
        p += len + (eol ? 1 : 0);
    }
    return 0;
}

/* Does a space-separated VmFlags line contain the two-letter word `w`? */
static __attribute__((unused)) int proc_has_word(const char *line, const char *w) {
    size_t n = strlen(w);
    const char *p = line;
    while ((p = strstr(p, w)) != NULL) {
        if ((p == line || p[-1] == ' ' || p[-1] == ':' || p[-1] == '\t') &&
            (p[n] == 0 || p[n] == ' ' || p[n] == '\n'))
            return 1;
        p += n;
    }
    return 0;
}

#endif
