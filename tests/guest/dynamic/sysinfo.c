/* sysinfo(2), the way coreutils' sort sizes its buffer (physmem_total/available): prints
 * facts that hold on every Linux machine, not the values themselves. */
#include <stdio.h>
#include <sys/sysinfo.h>

#define YESNO(c) ((c) ? "yes" : "no")

int main(void)
{
    struct sysinfo si;
    if (sysinfo(&si) != 0)
        return 1;
    unsigned long long unit = si.mem_unit;
    printf("mem_unit: %llu\n", unit);
    printf("totalram > 64 MiB: %s\n", YESNO(si.totalram * unit > (64ULL << 20)));
    printf("0 < freeram <= totalram: %s\n", YESNO(si.freeram > 0 && si.freeram <= si.totalram));
    printf("bufferram <= totalram: %s\n", YESNO(si.bufferram <= si.totalram));
    printf("freeswap <= totalswap: %s\n", YESNO(si.freeswap <= si.totalswap));
    printf("totalswap < 1 PiB: %s\n", YESNO(si.totalswap * unit < (1ULL << 50)));
    printf("1 <= procs < 65536: %s\n", YESNO(si.procs >= 1));
    printf("uptime >= 0: %s\n", YESNO(si.uptime >= 0));
    return 0;
}
