"""`shstk run --strace`: system calls in strace's format, decoded from the table's kinds.

Argument kinds (kinds.py says how each is decoded for the handler): i (signed), i32, pid,
loff, u (unsigned), u32, x32 (hex), uid (-1 for "unchanged"), x (hex), p (pointer), fd,
dirfd, path, str,
buf:N (input bytes, length in argument N), obuf:N (output bytes, length = result),
oflags, mode, prot, mapflags, clone, sig, how, archprctl, atflags, whence, rlimit, clock,
madv, fcntl, futex, access, mmapflags... Unknown kinds print as hex.
"""

from __future__ import annotations

import os
import struct
from typing import TYPE_CHECKING

from shstk.abi import clone as C
from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.abi import mman as M
from shstk.abi import resource as R
from shstk.abi import shstk as A
from shstk.abi import signals as S
from shstk.abi.syscalls import NAMES
from shstk.elf.symbols import Symbolizer
from shstk.emu.kernel.errors import KernelError

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task
    from shstk.emu.syscalls.spec import Syscall

STR_LIMIT = 32
MASK64 = (1 << 64) - 1


def _signed(v: int) -> int:
    return v - (1 << 64) if v & (1 << 63) else v


def _s32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & (1 << 31) else v


_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\v": "\\v", "\f": "\\f",
            '"': '\\"', "\\": "\\\\"}


def quote(data: bytes, limit: int = STR_LIMIT, *, hex_all: bool = False) -> str:
    """A string as strace prints it: C escapes, octal for the rest (three digits when a
    digit follows), or every byte in hex (`hex_all`, as strace does for random bytes)."""
    shown = data[:limit]
    if hex_all:
        body = "".join(f"\\x{b:02x}" for b in shown)
    else:
        out = []
        for i, b in enumerate(shown):
            c = chr(b)
            if c in _ESCAPES:
                out.append(_ESCAPES[c])
            elif 32 <= b < 127:
                out.append(c)
            else:
                nxt = shown[i + 1:i + 2]
                digit = bool(nxt) and 0x30 <= nxt[0] <= 0x37
                out.append(f"\\{b:03o}" if digit else f"\\{b:o}")
        body = "".join(out)
    return '"' + body + '"' + ("..." if len(data) > limit else "")


def _flags(value: int, table: list[tuple[int, str]], zero: str = "0") -> str:
    names = []
    rest = value
    for bit, name in table:
        if bit and value & bit == bit:
            names.append(name)
            rest &= ~bit
    if rest:
        names.append(hex(rest))
    return "|".join(names) if names else zero


_OFLAGS = [(F.O_CREAT, "O_CREAT"), (F.O_EXCL, "O_EXCL"), (F.O_NOCTTY, "O_NOCTTY"),
           (F.O_TRUNC, "O_TRUNC"), (F.O_APPEND, "O_APPEND"), (F.O_NONBLOCK, "O_NONBLOCK"),
           (F.O_DIRECTORY, "O_DIRECTORY"), (F.O_NOFOLLOW, "O_NOFOLLOW"),
           (F.O_CLOEXEC, "O_CLOEXEC"), (F.O_PATH, "O_PATH"), (F.O_LARGEFILE, "O_LARGEFILE"),
           (F.O_NOATIME, "O_NOATIME"), (F.O_DIRECT, "O_DIRECT"), (F.O_SYNC, "O_SYNC"),
           (F.O_DSYNC, "O_DSYNC")]
_PROT = [(M.PROT_READ, "PROT_READ"), (M.PROT_WRITE, "PROT_WRITE"), (M.PROT_EXEC, "PROT_EXEC"),
         (M.PROT_GROWSDOWN, "PROT_GROWSDOWN")]
_MAP = [(M.MAP_FIXED, "MAP_FIXED"), (M.MAP_ANONYMOUS, "MAP_ANONYMOUS"),
        (M.MAP_32BIT, "MAP_32BIT"), (M.MAP_ABOVE4G, "MAP_ABOVE4G"),
        (M.MAP_GROWSDOWN, "MAP_GROWSDOWN"), (M.MAP_DENYWRITE, "MAP_DENYWRITE"),
        (M.MAP_NORESERVE, "MAP_NORESERVE"), (M.MAP_POPULATE, "MAP_POPULATE"),
        (M.MAP_STACK, "MAP_STACK"), (M.MAP_FIXED_NOREPLACE, "MAP_FIXED_NOREPLACE")]
_CLONE = [(getattr(C, n), n) for n in dir(C) if n.startswith("CLONE_") and
          isinstance(getattr(C, n), int) and n not in ("CLONE_ARGS_SIZE_VER0",
                                                        "CLONE_ARGS_SIZE_VER1",
                                                        "CLONE_ARGS_SIZE_VER2",
                                                        "CLONE_ARGS_SIZE_VER3")]
_AT = [(F.AT_SYMLINK_NOFOLLOW, "AT_SYMLINK_NOFOLLOW"), (F.AT_REMOVEDIR, "AT_REMOVEDIR"),
       (F.AT_SYMLINK_FOLLOW, "AT_SYMLINK_FOLLOW"), (F.AT_NO_AUTOMOUNT, "AT_NO_AUTOMOUNT"),
       (F.AT_EMPTY_PATH, "AT_EMPTY_PATH")]
_ARCH_PRCTL = {A.ARCH_SET_GS: "ARCH_SET_GS", A.ARCH_SET_FS: "ARCH_SET_FS",
               A.ARCH_GET_FS: "ARCH_GET_FS", A.ARCH_GET_GS: "ARCH_GET_GS",
               A.ARCH_SHSTK_ENABLE: "ARCH_SHSTK_ENABLE", A.ARCH_SHSTK_DISABLE: "ARCH_SHSTK_DISABLE",
               A.ARCH_SHSTK_LOCK: "ARCH_SHSTK_LOCK", A.ARCH_SHSTK_UNLOCK: "ARCH_SHSTK_UNLOCK",
               A.ARCH_SHSTK_STATUS: "ARCH_SHSTK_STATUS", A.ARCH_GET_CPUID: "ARCH_GET_CPUID",
               A.ARCH_SET_CPUID: "ARCH_SET_CPUID"}
_RLIMIT = {getattr(R, n): n for n in dir(R) if n.startswith("RLIMIT_")}
_CLOCK = {getattr(R, n): n for n in dir(R) if n.startswith("CLOCK_")}
_MADV = {getattr(M, n): n for n in dir(M) if n.startswith("MADV_")}
_FCNTL = {getattr(F, n): n for n in dir(F) if n.startswith("F_") and n not in ("F_OK",)}
_HOW = {S.SIG_BLOCK: "SIG_BLOCK", S.SIG_UNBLOCK: "SIG_UNBLOCK", S.SIG_SETMASK: "SIG_SETMASK"}
_WHENCE = {0: "SEEK_SET", 1: "SEEK_CUR", 2: "SEEK_END", 3: "SEEK_DATA", 4: "SEEK_HOLE"}
_FUTEX = {C.FUTEX_WAIT: "FUTEX_WAIT", C.FUTEX_WAKE: "FUTEX_WAKE",
          C.FUTEX_REQUEUE: "FUTEX_REQUEUE", C.FUTEX_CMP_REQUEUE: "FUTEX_CMP_REQUEUE",
          C.FUTEX_WAKE_OP: "FUTEX_WAKE_OP", C.FUTEX_WAIT_BITSET: "FUTEX_WAIT_BITSET",
          C.FUTEX_WAKE_BITSET: "FUTEX_WAKE_BITSET"}
_ACCESS = [(F.R_OK, "R_OK"), (F.W_OK, "W_OK"), (F.X_OK, "X_OK")]


def _string(t: Task, addr: int, limit: int = STR_LIMIT) -> str:
    if addr == 0:
        return "NULL"
    try:
        raw = t.mm.read_cstring(addr, 4096)
    except KernelError:
        return hex(addr)
    return quote(raw, limit if limit else len(raw))


def _bytes(t: Task, addr: int, n: int, hex_all: bool = False) -> str:
    if addr == 0:
        return "NULL"
    n = max(0, min(n, 4096))
    try:
        return quote(t.mm.read(addr, min(n, STR_LIMIT + 1)), STR_LIMIT,
                     hex_all=hex_all) if n else '""'
    except KernelError:
        return hex(addr)


def fmt_arg(k: Kernel, t: Task, kind: str, v: int, args: list[int], result: int | None) -> str:
    base, _, param = kind.partition(":")
    if base == "i":
        return str(_signed(v))
    if base in ("i32", "pid"):
        return str(_s32(v))
    if base == "loff":
        return str(_signed(v))
    if base == "u":
        return str(v)
    if base == "u32":
        return str(v & 0xFFFFFFFF)
    if base == "x32":
        return hex(v & 0xFFFFFFFF)
    if base == "uid":
        return "-1" if v & 0xFFFFFFFF == 0xFFFFFFFF else str(v & 0xFFFFFFFF)
    if base == "p":
        return "NULL" if v == 0 else hex(v)
    if base == "fd":
        return str(_s32(v))
    if base == "dirfd":
        return "AT_FDCWD" if _s32(v) == F.AT_FDCWD else str(_s32(v))
    if base in ("path", "str"):
        return _string(t, v, 0 if base == "path" else STR_LIMIT)
    if base == "buf":
        return _bytes(t, v, args[int(param)])
    if base in ("obuf", "orandom"):
        if result is None or result < 0 or result > 1 << 40:
            return hex(v) if v else "NULL"
        return _bytes(t, v, result, hex_all=base == "orandom")
    if base == "off":
        return "0" if v == 0 else hex(v)
    if base == "ssflags":
        return _flags(v & 0xFFFFFFFF, _SSFLAGS, "0")
    if base == "oflags":
        acc = {0: "O_RDONLY", 1: "O_WRONLY", 2: "O_RDWR"}.get(v & 3, str(v & 3))
        rest = _flags(v & ~3 & 0xFFFFFFFF, _OFLAGS, "")
        return acc + ("|" + rest if rest else "")
    if base == "mode":
        return f"0{v & 0o7777:o}" if v else "0"
    if base == "prot":
        return _flags(v, _PROT, "PROT_NONE")
    if base == "mapflags":
        kind_ = {1: "MAP_SHARED", 2: "MAP_PRIVATE", 3: "MAP_SHARED_VALIDATE"}.get(v & 0xF,
                                                                                   hex(v & 0xF))
        rest = _flags(v & ~0xF, _MAP, "")
        return kind_ + ("|" + rest if rest else "")
    if base == "clone":
        sig = v & C.CSIGNAL
        rest = _flags(v & ~C.CSIGNAL, _CLONE, "")
        names = [rest] if rest else []
        if sig:
            names.append(S.NAMES.get(sig, str(sig)))
        return "|".join(names) or "0"
    if base == "sig":
        return S.NAMES.get(_s32(v), str(_s32(v)))
    if base == "how":
        return _HOW.get(v, str(v))
    if base == "archprctl":
        return _ARCH_PRCTL.get(v, hex(v))
    if base == "atflags":
        return _flags(v, _AT, "0")
    if base == "whence":
        return _WHENCE.get(v, str(v))
    if base == "rlimit":
        return _RLIMIT.get(v, str(v))
    if base == "clock":
        return _CLOCK.get(v, str(v))
    if base == "madv":
        return _MADV.get(v, str(v))
    if base == "fcntl":
        return _FCNTL.get(v, str(v))
    if base == "futex":
        op = v & C.FUTEX_CMD_MASK & 0xFFFFFFFF
        name = _FUTEX.get(op, str(op))
        if v & C.FUTEX_PRIVATE_FLAG:
            name += "_PRIVATE"
        return name
    if base == "access":
        return _flags(v, _ACCESS, "F_OK")
    if base == "argv":
        return _argv(t, v)
    if base == "sigaction":
        return _sigaction(t, v)
    if base == "osigaction":
        return _sigaction(t, v) if result == 0 else (hex(v) if v else "NULL")
    if base == "orlimit":
        return _rlimit(t, v) if result == 0 else (hex(v) if v else "NULL")
    if base == "rlimit_in":
        return _rlimit(t, v)
    if base == "ostat":
        return _stat(t, v) if result == 0 else hex(v)
    if base == "grnd":
        return _flags(v, _GRND, "0")
    if base == "ioctl":
        return _IOCTL.get(v & 0xFFFFFFFF, hex(v))
    if base == "code":
        return code_address(t, v)
    if base == "clone_args":
        return _clone_args(t, v, args[1] if len(args) > 1 else 0)
    if base == "ostatus":
        return _wait_status(t, v) if result is not None and result > 0 else hex(v) if v else "NULL"
    return hex(v)


_SSFLAGS = [(A.SHADOW_STACK_SET_TOKEN, "SHADOW_STACK_SET_TOKEN"),
            (A.SHADOW_STACK_SET_MARKER, "SHADOW_STACK_SET_MARKER")]
_GRND = [(R.GRND_NONBLOCK, "GRND_NONBLOCK"), (R.GRND_RANDOM, "GRND_RANDOM"),
          (R.GRND_INSECURE, "GRND_INSECURE")]
_IOCTL = {F.TCGETS: "TCGETS", F.TCSETS: "TCSETS", F.TCSETSW: "TCSETSW", F.TCSETSF: "TCSETSF",
          F.TIOCGWINSZ: "TIOCGWINSZ", F.TIOCSWINSZ: "TIOCSWINSZ", F.TIOCGPGRP: "TIOCGPGRP",
          F.TIOCSPGRP: "TIOCSPGRP", F.FIONREAD: "FIONREAD", F.FIONBIO: "FIONBIO",
          F.FIOCLEX: "FIOCLEX", F.FIONCLEX: "FIONCLEX"}
_SA = [(S.SA_RESTORER, "SA_RESTORER"), (S.SA_ONSTACK, "SA_ONSTACK"),
       (S.SA_RESTART, "SA_RESTART"), (S.SA_NODEFER, "SA_NODEFER"),
       (S.SA_RESETHAND, "SA_RESETHAND"), (S.SA_SIGINFO, "SA_SIGINFO"),
       (S.SA_NOCLDSTOP, "SA_NOCLDSTOP"), (S.SA_NOCLDWAIT, "SA_NOCLDWAIT")]
RLIM_INF = (1 << 64) - 1


def code_address(t: Task, addr: int) -> str:
    """A code address with the library and symbol it falls in."""
    where = Symbolizer(t.mm.file_mappings()).describe(addr)
    return hex(addr) if where == "?" else f"{addr:#x} <{where}>"


def _sigset(mask: int) -> str:
    names = [S.NAMES.get(i + 1, str(i + 1)).removeprefix("SIG") for i in range(64)
             if mask >> i & 1]
    return "[" + " ".join(names) + "]"


def _sigaction(t: Task, addr: int) -> str:
    if addr == 0:
        return "NULL"
    try:
        handler, flags, restorer, mask = struct.unpack("<QQQQ", t.mm.read(addr, 32))
    except KernelError:
        return hex(addr)
    h = {S.SIG_DFL: "SIG_DFL", S.SIG_IGN: "SIG_IGN"}.get(handler) or code_address(t, handler)
    out = f"{{sa_handler={h}, sa_mask={_sigset(mask)}, sa_flags={_flags(flags, _SA, '0')}"
    if flags & S.SA_RESTORER:
        out += f", sa_restorer={code_address(t, restorer)}"
    return out + "}"


def _rlim(v: int) -> str:
    if v == RLIM_INF:
        return "RLIM64_INFINITY"
    return f"{v // 1024}*1024" if v and v % 1024 == 0 else str(v)


def _rlimit(t: Task, addr: int) -> str:
    if addr == 0:
        return "NULL"
    try:
        cur, maxv = struct.unpack("<QQ", t.mm.read(addr, 16))
    except KernelError:
        return hex(addr)
    return f"{{rlim_cur={_rlim(cur)}, rlim_max={_rlim(maxv)}}}"


_FTYPES = {0o140000: "S_IFSOCK", 0o120000: "S_IFLNK", 0o100000: "S_IFREG",
           0o060000: "S_IFBLK", 0o040000: "S_IFDIR", 0o020000: "S_IFCHR", 0o010000: "S_IFIFO"}


def _stat(t: Task, addr: int) -> str:
    try:
        raw = t.mm.read(addr, F.STAT_SIZE)
    except KernelError:
        return hex(addr)
    mode = struct.unpack_from("<I", raw, 24)[0]
    rdev, size = struct.unpack_from("<Qq", raw, 40)
    kind = _FTYPES.get(mode & 0o170000, "0")
    if mode & 0o170000 in (0o020000, 0o060000):
        return (f"{{st_mode={kind}|{mode & 0o7777:04o}, "
                f"st_rdev=makedev({os.major(rdev):#x}, {os.minor(rdev):#x}), ...}}")
    return f"{{st_mode={kind}|{mode & 0o7777:04o}, st_size={size}, ...}}"


def _wait_status(t: Task, addr: int) -> str:
    try:
        st = t.mm.read_u32(addr)
    except KernelError:
        return hex(addr)
    if st & 0x7F == 0:
        return f"[{{WIFEXITED(s) && WEXITSTATUS(s) == {(st >> 8) & 0xFF}}}]"
    if st & 0xFF == 0x7F:
        return f"[{{WIFSTOPPED(s) && WSTOPSIG(s) == {S.NAMES.get((st >> 8) & 0xFF)}}}]"
    return f"[{{WIFSIGNALED(s) && WTERMSIG(s) == {S.NAMES.get(st & 0x7F)}}}]"


def _clone_args(t: Task, addr: int, size: int) -> str:
    names = ("flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack",
             "stack_size", "tls", "set_tid", "set_tid_size", "cgroup", "shadow_stack")
    try:
        raw = t.mm.read(addr, min(size, 96) & ~7)
    except KernelError:
        return hex(addr)
    values = struct.unpack(f"<{len(raw) // 8}Q", raw)
    parts = []
    for name, v in zip(names, values, strict=False):
        if name == "flags":
            parts.append(f"flags={_flags(v, _CLONE, '0')}")
        elif name == "exit_signal":
            parts.append(f"exit_signal={S.NAMES.get(v, str(v)) if v else 0}")
        elif v or name in ("stack", "stack_size"):
            parts.append(f"{name}={v:#x}")
    return "{" + ", ".join(parts) + "}"


def _argv(t: Task, addr: int) -> str:
    if addr == 0:
        return "NULL"
    items = []
    try:
        for i in range(64):
            p = t.mm.read_u64(addr + 8 * i)
            if p == 0:
                break
            items.append(_string(t, p))
        else:
            items.append("...")
    except KernelError:
        return hex(addr)
    return "[" + ", ".join(items) + "]"


def fmt_result(entry: Syscall | None, result: int | None) -> str:
    if result is None:
        return "?"
    r = _signed(result & MASK64)
    if -4096 < r < 0:
        name = E.NAMES.get(-r, str(-r))
        return f"-1 {name} ({os.strerror(-r)})"
    if entry is not None and entry.ret == "hex":
        return hex(result & MASK64)
    return str(r)


def _prefix(k: Kernel, t: Task) -> str:
    return f"[pid {t.tid:>5}] " if len(k.tasks) > 1 else ""


def _emit(k: Kernel, text: str) -> None:
    assert k.strace is not None
    k.strace.write(text + "\n")
    k.strace.flush()


def before(k: Kernel, t: Task, entry: Syscall, args: list[int]) -> list[str]:
    """Render the input arguments now (output buffers wait for the result)."""
    out = []
    for kind, v in zip(entry.args, args, strict=False):
        out.append("" if _is_output(kind) else fmt_arg(k, t, kind, v, args, None))
    return out


def _is_output(kind: str) -> bool:
    """Output parameters are shown after the call, with what the kernel wrote."""
    return kind.startswith("o") and kind not in ("oflags",)


def after(k: Kernel, t: Task, entry: Syscall, args: list[int], pre: list[str] | None,
          result: int | None) -> None:
    parts = list(pre or [])
    for i, (kind, v) in enumerate(zip(entry.args, args, strict=False)):
        if _is_output(kind):
            parts[i] = fmt_arg(k, t, kind, v, args, result)
    call = f"{_prefix(k, t)}{entry.name}({', '.join(_shown_args(entry, args, parts))})"
    _emit(k, f"{call:<39} = {fmt_result(entry, result)}")


def _shown_args(entry: Syscall, args: list[int], parts: list[str]) -> list[str]:
    """strace leaves out open's mode unless O_CREAT or O_TMPFILE asks for one."""
    out = []
    for i, (kind, part) in enumerate(zip(entry.args, parts, strict=False)):
        if kind == "mode" and i > 0 and entry.args[i - 1] == "oflags" and \
                not args[i - 1] & (F.O_CREAT | (F.O_TMPFILE & ~F.O_DIRECTORY)):
            continue
        out.append(part)
    return out


def trace(k: Kernel, t: Task, entry: Syscall | None, nr: int, args: list[int],
          result: int) -> None:
    name = entry.name if entry else NAMES.get(nr, f"syscall_{nr:#x}")
    shown = ", ".join(hex(a) for a in args[:6])
    call = f"{_prefix(k, t)}{name}({shown})"
    _emit(k, f"{call:<39} = {fmt_result(entry, result)}")


_RESTART_TEXT = {
    "sys": "? ERESTARTSYS (To be restarted if SA_RESTART is set)",
    "nohand": "? ERESTARTNOHAND (To be restarted if no handler)",
    "block": "? ERESTART_RESTARTBLOCK (Interrupted by signal)",
}


def resumed(k: Kernel, t: Task, result: int | None, *, interrupted: bool = False) -> None:
    pending = getattr(t, "strace_pending", None)
    if pending is None:
        return
    t.strace_pending = None
    entry, args, pre = pending
    policy = "block" if entry.name in ("nanosleep", "clock_nanosleep") else entry.restart
    if interrupted and policy in _RESTART_TEXT:
        parts = list(pre or [])
        call = f"{_prefix(k, t)}{entry.name}({', '.join(parts)})"
        _emit(k, f"{call:<39} = {_RESTART_TEXT[policy]}")
        return
    after(k, t, entry, args, pre, result)


def exit_line(k: Kernel, t: Task, text: str) -> None:
    _emit(k, f"{_prefix(k, t)}+++ {text} +++")


_SI_CODES = {S.SI_USER: "SI_USER", S.SI_KERNEL: "SI_KERNEL", S.SI_TKILL: "SI_TKILL",
             S.SI_QUEUE: "SI_QUEUE"}


def signal_line(k: Kernel, t: Task, info: object, rip: int | None) -> None:
    """`--- SIGSEGV {si_signo=..., si_code=..., si_addr=...} ---`, and where it hit."""
    sig = info.signo  # type: ignore[attr-defined]
    code = info.code  # type: ignore[attr-defined]
    name = S.NAMES.get(sig, str(sig))
    if code == S.SI_KERNEL:
        code_name = "SI_KERNEL"
    elif sig == S.SIGSEGV and code > 0:
        code_name = S.SEGV_CODE_NAMES.get(code, str(code))
    elif sig == S.SIGCHLD and code > 0:
        code_name = {1: "CLD_EXITED", 2: "CLD_KILLED", 3: "CLD_DUMPED", 4: "CLD_TRAPPED",
                     5: "CLD_STOPPED", 6: "CLD_CONTINUED"}.get(code, str(code))
    else:
        code_name = _SI_CODES.get(code, str(code))
    fields = f"si_signo={name}, si_code={code_name}"
    addr = info.addr  # type: ignore[attr-defined]
    if addr is not None and code > 0 and sig in (S.SIGSEGV, S.SIGBUS, S.SIGILL, S.SIGFPE):
        fields += f", si_addr={'NULL' if addr == 0 else hex(addr)}"
    elif sig == S.SIGCHLD and info.status is not None:  # type: ignore[attr-defined]
        fields += f", si_pid={info.pid}, si_status={info.status}"  # type: ignore[attr-defined]
    elif code != S.SI_KERNEL:
        fields += f", si_pid={info.pid}"  # type: ignore[attr-defined]
    at = f" at {code_address(t, rip)}" if rip is not None and info.fault is not None else ""  # type: ignore[attr-defined]
    _emit(k, f"{_prefix(k, t)}--- {name} {{{fields}}} ---{at}")


def execve_line(k: Kernel, path: str, argv: list[bytes], envp: list[bytes]) -> None:
    shown = ", ".join(quote(a) for a in argv[:32])
    _emit(k, f"execve({quote(path.encode(), 4096)}, "
          f"[{shown}], /* {len(envp)} vars */) = 0")
