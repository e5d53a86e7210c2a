/*
 * Runs inside a root made by the sysroot tests. Prints which libsr.so it got (found
 * only through the root's /etc/ld.so.cache), what /proc/self/exe and AT_EXECFN say, the
 * paths of the shared objects in /proc/self/maps, and a file that exists only in the
 * root.
 */
#include <stdio.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

const char *sr_where(void);

int main(int argc, char **argv)
{
    char exe[4096], line[1024], seen[16][256];
    int nseen = 0;
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    (void)argc;
    printf("libsr.so: %s\n", sr_where());
    printf("argv[0]: %s\n", argv[0]);
    printf("/proc/self/exe: %s\n", exe);
    FILE *f = fopen("/proc/self/maps", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *path = strchr(line, '/');
        if (path == NULL || strstr(path, ".so") == NULL)
            continue;
        path[strcspn(path, "\n")] = 0;
        int dup = 0;
        for (int i = 0; i < nseen; i++)
            dup |= strcmp(seen[i], path) == 0;
        if (!dup && nseen < 16) {
            snprintf(seen[nseen++], sizeof seen[0], "%s", path);
            printf("mapped: %s\n", path);
        }
    }
    if (f)
        fclose(f);
    f = fopen("/etc/sr-marker", "r");
    if (f && fgets(line, sizeof line, f))
        printf("/etc/sr-marker: %s", line);
    else
        printf("/etc/sr-marker: missing\n");
    if (f)
        fclose(f);
    return 0;
}
