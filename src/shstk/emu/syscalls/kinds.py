"""Argument kinds: how a 64-bit register becomes a handler's argument.

The table gives every argument a kind; dispatch decodes the register with the kind's C
type before the handler runs, as Linux's SYSCALL_DEFINE wrappers do (`int` and `unsigned
int` arguments see only the low 32 bits of the register). So a handler never sees a value
wider than its C type, and no host call gets a number it cannot hold.

  signed 32-bit (int, pid_t, clockid_t):    i32 fd dirfd pid sig clock how madv archprctl
  unsigned 32-bit (unsigned int, flags):    u32 x32 oflags mode atflags access whence rlimit
                                            fcntl futex ioctl grnd ssflags
  uid_t / gid_t (u32, (u32)-1 = unchanged): uid
  signed 64-bit (long, off_t, loff_t):      i loff
  unsigned 64-bit (size_t, unsigned long):  u x, and every pointer or struct kind
A negative loff_t or a size above SSIZE_MAX is the handler's to refuse, in the order
Linux checks it (a bad descriptor usually comes first).

`--strace` renders the raw registers with the same kinds (strace.fmt_arg).
"""

from __future__ import annotations

from collections.abc import Callable

MASK32 = 0xFFFFFFFF
MASK64 = (1 << 64) - 1
UID_UNCHANGED = MASK32  # (uid_t)-1: chown and setres*id leave that id as it is
SSIZE_MAX = (1 << 63) - 1


def s32(v: int) -> int:
    v &= MASK32
    return v - (1 << 32) if v & (1 << 31) else v


def u32(v: int) -> int:
    return v & MASK32


def s64(v: int) -> int:
    v &= MASK64
    return v - (1 << 64) if v & (1 << 63) else v


def u64(v: int) -> int:
    return v & MASK64


_S32 = ("i32", "fd", "dirfd", "pid", "sig", "clock", "how", "madv", "archprctl")
_U32 = ("u32", "x32", "uid", "oflags", "mode", "atflags", "access", "whence", "rlimit", "fcntl",
        "futex", "ioctl", "grnd", "ssflags")
_S64 = ("i", "loff")
# 64-bit values and pointers: what the register holds (strace decodes what they point to)
_U64 = ("u", "x", "p", "off", "path", "str", "buf", "obuf", "orandom", "prot", "mapflags",
        "clone", "argv", "sigaction", "osigaction", "orlimit",
        "rlimit_in", "ostat", "ostatus", "code", "clone_args")

DECODERS: dict[str, Callable[[int], int]] = {
    **dict.fromkeys(_S32, s32), **dict.fromkeys(_U32, u32), **dict.fromkeys(_S64, s64),
    **dict.fromkeys(_U64, u64)}


def decoder(kind: str) -> Callable[[int], int]:
    """The decoder of a kind (`buf:2` is `buf`); KeyError names an unknown kind."""
    return DECODERS[kind.partition(":")[0]]
