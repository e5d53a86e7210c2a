/*
 * A toy JIT: it writes a small function into an RWX page and calls it. The generated
 * code overwrites its own return address with the address of landed() before RET
 *     movabs rax, landed ; mov [rsp], rax ; ret
 * as trampolines and hand-written stack switches do. Natively (no CET) the RET goes to
 * landed(); with shadow stacks on it is a #CP at that RET, whose report must show the
 * anonymous JIT page, landed() as the address on the stack and main as the one the
 * shadow stack expected.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

__attribute__((noinline, noreturn)) void landed(void)
{
    printf("landed() reached through the rewritten return address\n");
    fflush(stdout);
    _exit(0);
}

int main(void)
{
    unsigned char *code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
                               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (code == MAP_FAILED)
        return 2;
    uint64_t target = (uint64_t)(uintptr_t)landed;
    unsigned char *p = code;
    *p++ = 0xf3; *p++ = 0x0f; *p++ = 0x1e; *p++ = 0xfa; /* endbr64 */
    *p++ = 0x48; *p++ = 0xb8;                          /* movabs rax, imm64 */
    memcpy(p, &target, 8);
    p += 8;
    *p++ = 0x48; *p++ = 0x89; *p++ = 0x04; *p++ = 0x24; /* mov [rsp], rax */
    *p++ = 0xc3;                                        /* ret */
    printf("jit: %d bytes of code, ret at +%d\n", (int)(p - code), (int)(p - code - 1));
    fflush(stdout);
    fprintf(stderr, "jit: code at %p\n", (void *)code);
    void (*volatile fn)(void) = (void (*)(void))code;
    fn();
    printf("returned normally (not expected)\n");
    return 1;
}
