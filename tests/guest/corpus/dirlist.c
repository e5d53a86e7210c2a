/* Directory listing: opendir/readdir of argv[1] (the test fills it), sorted, with d_type
 * and stat sizes; scandir with alphasort; then a missing directory. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    if (argc < 2)
        return 2;
    DIR *d = opendir(argv[1]);
    if (!d) {
        perror("opendir");
        return 1;
    }
    char *names[256];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < 256) {
        char line[512];
        snprintf(line, sizeof line, "%s %s", e->d_name,
                 e->d_type == DT_DIR ? "dir" : e->d_type == DT_REG ? "file" :
                 e->d_type == DT_LNK ? "link" : "other");
        names[n++] = strdup(line);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp);
    for (int i = 0; i < n; i++) {
        char path[1024], name[512];
        sscanf(names[i], "%511s", name);
        snprintf(path, sizeof path, "%s/%s", argv[1], name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
            printf("%s size=%lld\n", names[i], (long long)st.st_size);
        else
            printf("%s\n", names[i]);
        free(names[i]);
    }
    struct dirent **list;
    int m = scandir(argv[1], &list, NULL, alphasort);
    printf("scandir: %d entries, first=%s last=%s\n", m, list[0]->d_name, list[m - 1]->d_name);
    for (int i = 0; i < m; i++)
        free(list[i]);
    free(list);
    errno = 0;
    d = opendir("/nonexistent-dir");
    printf("opendir missing: %s errno=%d\n", d ? "opened" : "NULL", errno);
    return 0;
}
