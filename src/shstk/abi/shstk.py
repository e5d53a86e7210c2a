"""Shadow-stack ABI: arch_prctl codes, feature bits, map_shadow_stack flags, #CP codes."""

# uapi asm/prctl.h (Linux 6.6+)
ARCH_SET_GS = 0x1001
ARCH_SET_FS = 0x1002
ARCH_GET_FS = 0x1003
ARCH_GET_GS = 0x1004
ARCH_GET_CPUID = 0x1011
ARCH_SET_CPUID = 0x1012
ARCH_GET_XCOMP_SUPP = 0x1021
ARCH_GET_XCOMP_PERM = 0x1022
ARCH_REQ_XCOMP_PERM = 0x1023
ARCH_SHSTK_ENABLE = 0x5001
ARCH_SHSTK_DISABLE = 0x5002
ARCH_SHSTK_LOCK = 0x5003
ARCH_SHSTK_UNLOCK = 0x5004
ARCH_SHSTK_STATUS = 0x5005

ARCH_SHSTK_SHSTK = 1 << 0
ARCH_SHSTK_WRSS = 1 << 1

# The 0x3001-era codes of the out-of-tree CET patches; mainline rejects them (EINVAL).
ARCH_X86_CET_STATUS = 0x3001
ARCH_X86_CET_DISABLE = 0x3002
ARCH_X86_CET_LOCK = 0x3003

# map_shadow_stack(2) flags (uapi asm-generic/mman.h)
SHADOW_STACK_SET_TOKEN = 1 << 0
SHADOW_STACK_SET_MARKER = 1 << 1

# Sizes and bits (arch/x86/kernel/shstk.c)
SS_FRAME_SIZE = 8
SHSTK_DATA_BIT = 1 << 63
SHADOW_STACK_SIZE_MIN = 8  # clone3 size-only proposal (v4)

# U_CET MSR bits
CET_SHSTK_EN = 1 << 0
CET_WRSS_EN = 1 << 1
CET_ENDBR_EN = 1 << 2

# #CP error codes (arch/x86/kernel/cet.c)
CP_NEAR_RET = 1
CP_FAR_RET_IRET = 2
CP_ENDBRANCH = 3
CP_RSTORSSP = 4
CP_SETSSBSY = 5
CP_NAMES = {
    CP_NEAR_RET: "near ret",
    CP_FAR_RET_IRET: "far/iret",
    CP_ENDBRANCH: "endbranch",
    CP_RSTORSSP: "rstorssp",
    CP_SETSSBSY: "setssbsy",
}
X86_TRAP_CP = 21
X86_TRAP_PF = 14
X86_TRAP_GP = 13
X86_TRAP_UD = 6
X86_TRAP_BP = 3
X86_TRAP_DE = 0

# Page-fault error code bits (asm/trap_pf.h)
X86_PF_PROT = 1 << 0
X86_PF_WRITE = 1 << 1
X86_PF_USER = 1 << 2
X86_PF_INSTR = 1 << 4
X86_PF_SHSTK = 1 << 6

# ptrace regset
NT_X86_SHSTK = 0x204
NT_PRSTATUS = 1
NT_PRFPREG = 2
NT_X86_XSTATE = 0x202
