/*
 * A stack smash: vuln() overflows a local buffer up to and over its own return address,
 * which it replaces with the address of win(). Without shadow stacks (natively on a
 * machine without CET, or `shstk run --shstk off`) vuln's RET goes to win(), which exits
 * 42. With shadow stacks on (the program is marked; `shstk run` enables them under the
 * default policy) the RET raises #CP: SIGSEGV, and the violation report names vuln (the
 * faulting RET), win (the return address on the stack) and main (what the shadow stack
 * expected).
 *
 * Build: -O0 -fno-stack-protector -fcf-protection=full -Wl,-z,shstk -Wl,-z,ibt -static
 */
#include <string.h>
#include <unistd.h>

/* entered by a RET, not a CALL: realign the stack for anything it calls */
__attribute__((noipa, force_align_arg_pointer)) void win(void) {
    static const char msg[] = "win: control flow hijacked\n";
    write(1, msg, sizeof msg - 1);
    _exit(42);
}

__attribute__((noipa)) void vuln(void) {
    char buf[16];
    char payload[128];
    /* how far the return address is from buf: the slot above the saved frame pointer */
    size_t off = (size_t)((char *)__builtin_frame_address(0) + 8 - buf);
    void *target = (void *)win;
    char *volatile dst = buf;

    memset(payload, 'A', sizeof payload);
    memcpy(payload + off, &target, sizeof target);
    memcpy(dst, payload, off + sizeof target); /* the overflow */
}

int main(void) {
    static const char before[] = "main: calling vuln\n";
    static const char after[] = "main: vuln returned\n";
    write(1, before, sizeof before - 1);
    vuln();
    write(1, after, sizeof after - 1);
    return 0;
}
