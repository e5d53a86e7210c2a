/* setuid/setgid: root sets real, effective and saved ids; a process that is no longer
 * root may only switch among its own (EPERM otherwise). Works as root or not. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void show(const char *what) {
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    printf("%-22s uid %u/%u/%u gid %u/%u/%u\n", what, r, e, s, gr, ge, gs);
}

static void try(const char *what, int rc) {
    printf("%-22s -> %d %s\n", what, rc, rc ? strerror(errno) : "");
}

int main(void) {
    show("start");
    if (getuid() == 0) {
        try("setgid(1234)", setgid(1234));
        show("after setgid");
        try("setuid(4321)", setuid(4321));
        show("after setuid");
        try("setuid(0)", setuid(0));
        try("setgid(0)", setgid(0));
        try("setuid(4321) again", setuid(4321));
    } else {
        try("setuid(0)", setuid(0));
        try("setuid(own uid)", setuid(getuid()));
        try("setgid(own gid)", setgid(getgid()));
    }
    show("end");
    return 0;
}
