"""Register sets: what a thread's user-mode state is, for fork, signal frames and ptrace."""

from __future__ import annotations

from shstk.emu.cpu import ucconst as X

GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")

REG: dict[str, int] = {
    "rax": X.UC_X86_REG_RAX, "rbx": X.UC_X86_REG_RBX, "rcx": X.UC_X86_REG_RCX,
    "rdx": X.UC_X86_REG_RDX, "rsi": X.UC_X86_REG_RSI, "rdi": X.UC_X86_REG_RDI,
    "rbp": X.UC_X86_REG_RBP, "rsp": X.UC_X86_REG_RSP, "r8": X.UC_X86_REG_R8,
    "r9": X.UC_X86_REG_R9, "r10": X.UC_X86_REG_R10, "r11": X.UC_X86_REG_R11,
    "r12": X.UC_X86_REG_R12, "r13": X.UC_X86_REG_R13, "r14": X.UC_X86_REG_R14,
    "r15": X.UC_X86_REG_R15, "rip": X.UC_X86_REG_RIP, "eflags": X.UC_X86_REG_EFLAGS,
    "fs_base": X.UC_X86_REG_FS_BASE, "gs_base": X.UC_X86_REG_GS_BASE,
    "mxcsr": X.UC_X86_REG_MXCSR, "fpcw": X.UC_X86_REG_FPCW, "fpsw": X.UC_X86_REG_FPSW,
    "fptag": X.UC_X86_REG_FPTAG,
}
XMM = tuple(X.UC_X86_REG_XMM0 + i for i in range(16))
FP = tuple(X.UC_X86_REG_FP0 + i for i in range(8))

RIP = REG["rip"]
RSP = REG["rsp"]
RAX = REG["rax"]
RCX = REG["rcx"]
R11 = REG["r11"]
EFLAGS = REG["eflags"]

# syscall ABI: number in rax, arguments in rdi, rsi, rdx, r10, r8, r9
SYSCALL_REGS = (X.UC_X86_REG_RAX, X.UC_X86_REG_RDI, X.UC_X86_REG_RSI, X.UC_X86_REG_RDX,
                X.UC_X86_REG_R10, X.UC_X86_REG_R8, X.UC_X86_REG_R9)

# struct user_regs_struct order (sys/user.h), for ptrace GETREGS and core-like dumps
USER_REGS = ("r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax",
             "rcx", "rdx", "rsi", "rdi", "orig_rax", "rip", "cs", "eflags", "rsp", "ss",
             "fs_base", "gs_base", "ds", "es", "fs", "gs")

# EFLAGS bits user space may change through sigreturn (FIX_EFLAGS in signal.c)
FIX_EFLAGS = 0x00000001 | 0x00000004 | 0x00000010 | 0x00000040 | 0x00000080 | \
    0x00000100 | 0x00000400 | 0x00000800 | 0x00040000 | 0x00010000
EFLAGS_CF = 0x1
EFLAGS_ZF = 0x40
EFLAGS_OSZAPC = 0x8D5
EFLAGS_DEFAULT = 0x202
