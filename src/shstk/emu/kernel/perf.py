"""perf events, as far as this kernel has them: the uprobe PMU (kernel/events/core.c,
kernel/trace/trace_uprobe.c, kernel/events/uprobes.c, arch/x86/kernel/uprobes.c).

`perf_event_open` with `attr.type` = the uprobe PMU (sysfs.py shows its number and the
retprobe bit) probes (path, offset): every mapping of that file in the opener's address
space that covers the offset executably gets a probe at the matching address. A uprobe
counts each time its instruction is about to run; a uretprobe counts each return of the
probed function. The hit count is what read() gives (read_format 0: one u64).

The return hijack (SPEC.md §8.3): on entry the return address at [RSP] becomes the
trampoline in the `[uprobes]` page, and with shadow stacks on, so does the shadow-stack
slot at SSP (shstk_update_last_frame), so the RET into the trampoline is no violation.
The trampoline saves RAX, RCX, R11 and makes the `uretprobe` system call (335, 6.11+),
which restores them, counts the return and resumes at the original return address.

Every other PMU (hardware, software, tracepoint, cache, raw, breakpoint) is absent:
ENOENT, as on a kernel without it.
"""

from __future__ import annotations

import os
import stat as st
import struct
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import shstk as A
from shstk.abi import signals as S
from shstk.emu.kernel import shstk
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import OpenFile, StatResult
from shstk.emu.kernel.signal import SigInfo
from shstk.emu.kernel.sysfs import UPROBE_PMU_TYPE, UPROBE_RETPROBE_BIT
from shstk.emu.kernel.vma import PAGE, VM_DONTCOPY, VM_EXEC

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.mm import AddressSpace
    from shstk.emu.kernel.task import Task

PERF_ATTR_SIZE_VER0 = 64
PERF_FLAG_FD_NO_GROUP = 1
PERF_FLAG_FD_OUTPUT = 2
PERF_FLAG_PID_CGROUP = 4
PERF_FLAG_FD_CLOEXEC = 8
PERF_EVENT_IOC_ENABLE = 0x2400
PERF_EVENT_IOC_DISABLE = 0x2401
PERF_EVENT_IOC_RESET = 0x2403
ATTR_DISABLED = 1  # the first bit of the flags word
NR_URETPROBE = 335
# push %rax; push %rcx; push %r11; mov $335, %rax; syscall; ud2
TRAMPOLINE = bytes([0x50, 0x51, 0x41, 0x53, 0x48, 0xC7, 0xC0, 0x4F, 0x01, 0x00, 0x00,
                    0x0F, 0x05, 0x0F, 0x0B])
TRAMPOLINE_SYSCALL = 11  # offset of the SYSCALL instruction


@dataclass(eq=False)
class _Return:
    """A return address a uretprobe replaced, to be restored when the function returns."""

    orig: int  # the hijacked return address
    sp: int  # RSP at the hijack (the return address slot)
    events: list[PerfEvent]


@dataclass
class _State:
    """One machine's probes: address space -> address -> events; pending returns."""

    probes: dict[tuple[int, int], list[PerfEvent]] = field(default_factory=dict)
    returns: dict[int, list[_Return]] = field(default_factory=dict)  # tid -> stack
    xol: weakref.WeakKeyDictionary[AddressSpace, int] = field(
        default_factory=weakref.WeakKeyDictionary)


_states: weakref.WeakKeyDictionary[Kernel, _State] = weakref.WeakKeyDictionary()


def _state(k: Kernel) -> _State:
    s = _states.get(k)
    if s is None:
        s = _states[k] = _State()
    return s


class PerfEvent(OpenFile):
    """The `[perf_event]` anonymous file of one uprobe or uretprobe event."""

    kind = "anon_inode"

    def __init__(self, k: Kernel, t: Task, retprobe: bool, addrs: list[int],
                 enabled: bool) -> None:
        super().__init__("anon_inode:[perf_event]", os.O_RDWR)
        self.k = k
        self.cpu = t.cpu
        self.mm = t.mm
        self.tid = t.tid
        self.retprobe = retprobe
        self.addrs = addrs
        self.enabled = enabled
        self.count = 0
        state = _state(k)
        cpu = t.cpu

        def hit(addr: int) -> None:
            probe_hit(k, cpu.current, addr)

        for addr in addrs:
            state.probes.setdefault((id(self.mm), addr), []).append(self)
            cpu.set_probe(addr, hit)

    def read(self, n: int) -> bytes:
        if n < 8:
            raise KernelError(E.ENOSPC)
        return struct.pack("<Q", self.count)

    def write(self, data: bytes) -> int:
        raise KernelError(E.EINVAL)

    def poll(self) -> int:
        return 0

    def ioctl(self, request: int, arg: int) -> tuple[int, bytes | None]:
        if request == PERF_EVENT_IOC_ENABLE:
            self.enabled = True
        elif request == PERF_EVENT_IOC_DISABLE:
            self.enabled = False
        elif request == PERF_EVENT_IOC_RESET:
            self.count = 0
        else:
            raise KernelError(E.ENOTTY)
        return 0, None

    def stat(self) -> StatResult:
        return StatResult(0xD, 0, st.S_IFREG | 0o600, 1, 0, 0, 0, 0, 4096, 0, 0, 0, 0)

    def on_last_close(self) -> None:
        state = _state(self.k)
        for addr in self.addrs:
            key = (id(self.mm), addr)
            events = [e for e in state.probes.get(key, []) if e is not self]
            if events:
                state.probes[key] = events
            else:
                state.probes.pop(key, None)
                if not any(a == addr for _m, a in state.probes):
                    self.cpu.clear_probe(addr)


def open_uprobe(k: Kernel, t: Task, attr: bytes, pid: int, cpu: int, group_fd: int,
                flags: int) -> PerfEvent:
    """perf_event_open(): the checks, then the uprobe event (perf_uprobe_init)."""
    if flags & ~(PERF_FLAG_FD_NO_GROUP | PERF_FLAG_FD_OUTPUT | PERF_FLAG_PID_CGROUP
                 | PERF_FLAG_FD_CLOEXEC):
        raise KernelError(E.EINVAL)
    ptype, _size, config = struct.unpack_from("<IIQ", attr, 0)
    (bits,) = struct.unpack_from("<Q", attr, 40)
    config1, config2 = struct.unpack_from("<QQ", attr, 56)
    if pid == -1 and cpu == -1:
        raise KernelError(E.EINVAL)
    if ptype != UPROBE_PMU_TYPE:
        raise KernelError(E.ENOENT)  # no such PMU in this kernel
    if group_fd != -1 or flags & (PERF_FLAG_FD_OUTPUT | PERF_FLAG_PID_CGROUP):
        raise KernelError(E.EINVAL)  # groups and cgroups are not emulated
    if pid not in (0, -1) and pid not in (t.pid, t.tid):
        target = k.tasks.get(pid)
        if target is None:
            raise KernelError(E.ESRCH)
        t = target
    if config & ~((1 << UPROBE_RETPROBE_BIT) | (0xFFFFFFFF << 32)):
        raise KernelError(E.EINVAL)
    retprobe = bool(config & (1 << UPROBE_RETPROBE_BIT))
    path = t.mm.read_cstring(config1).decode(errors="surrogateescape")
    node = k.vfs.resolve(t.proc.fs.cwd, path, task=t)
    if node.host is None:
        raise KernelError(E.EINVAL)
    try:
        s = os.stat(node.host)
    except OSError:
        raise KernelError(E.ENOENT) from None
    if not st.S_ISREG(s.st_mode) or config2 >= s.st_size:
        raise KernelError(E.EINVAL)
    addrs = []
    for v in t.mm.vmas:
        f = v.file
        if f is None or (f.dev, f.ino) != (s.st_dev, s.st_ino) or not v.flags & VM_EXEC:
            continue
        start = v.pgoff * PAGE
        if start <= config2 < start + v.size:
            addrs.append(v.start + config2 - start)
    return PerfEvent(k, t, retprobe, addrs, not bits & ATTR_DISABLED)


def probe_hit(k: Kernel, t: Task | None, addr: int) -> None:
    """The breakpoint at a probed address (handle_swbp): count, or hijack the return."""
    if t is None:
        return
    state = _state(k)
    events = [e for e in state.probes.get((id(t.mm), addr), [])
              if e.enabled and e.tid == t.tid]
    rets = [e for e in events if e.retprobe]
    for e in events:
        if not e.retprobe:
            e.count += 1
    if rets:
        _hijack(k, t, state, rets)


def _hijack(k: Kernel, t: Task, state: _State, events: list[PerfEvent]) -> None:
    """arch_uretprobe_hijack_return_addr() + shstk_update_last_frame()."""
    mm = t.mm
    tramp = _xol_area(k, t, state)
    sp = t.cpu.reg("rsp")
    orig = mm.read_u64(sp)
    stack = state.returns.setdefault(t.tid, [])
    # frames a longjmp skipped are gone (cleanup_return_instances)
    while stack and stack[-1].sp < sp:
        stack.pop()
    if shstk.enabled(t, A.ARCH_SHSTK_SHSTK):
        ssp = shstk.get_ssp(t)
        mm.write(ssp, struct.pack("<Q", tramp), force=True)
    mm.write_u64(sp, tramp)
    stack.append(_Return(orig, sp, events))


def _xol_area(k: Kernel, t: Task, state: _State) -> int:
    """The `[uprobes]` page with the return trampoline (xol_add_vma)."""
    addr = state.xol.get(t.mm)
    if addr is not None and t.mm.find(addr) is not None:
        return addr
    addr = k.do_mmap(t, 0, PAGE, 0x5, 0x22)  # PROT_READ|PROT_EXEC, MAP_PRIVATE|ANONYMOUS
    v = t.mm.find(addr)
    if v is not None:
        v.name = "[uprobes]"
    t.mm.set_flags(addr, addr + PAGE, VM_DONTCOPY)
    t.mm.write(addr, TRAMPOLINE, force=True)
    state.xol[t.mm] = addr
    return addr


def sys_uretprobe(k: Kernel, t: Task) -> int | None:
    """The `uretprobe` system call, made only by the trampoline: restore RAX, RCX, R11
    and RSP, count the return, resume at the original return address. None: registers
    set. Called from anywhere else it is SIGILL."""
    state = _state(k)
    tramp = state.xol.get(t.mm)
    cpu = t.cpu
    stack = state.returns.get(t.tid)
    if tramp is None or cpu.rip != tramp + TRAMPOLINE_SYSCALL or not stack:
        k.signals.force(t, SigInfo(S.SIGILL, S.SI_KERNEL, addr=0))
        return -1
    sp = cpu.reg("rsp")
    try:
        r11, rcx, rax = struct.unpack("<QQQ", t.mm.read(sp, 24))
    except KernelError:
        k.signals.force(t, SigInfo(S.SIGILL, S.SI_KERNEL, addr=0))
        return -1
    ret = stack.pop()
    for e in ret.events:
        e.count += 1
    cpu.set_reg("r11", r11)
    cpu.set_reg("rcx", rcx)
    cpu.set_reg("rax", rax)
    cpu.set_reg("rsp", sp + 24)
    k.set_user_rip(t, ret.orig)
    return None


def sys_uprobe(k: Kernel, t: Task) -> int:
    """The `uprobe` system call (6.16+) belongs to the optimized-uprobe trampoline, which
    this kernel never installs: from anywhere else it is SIGILL, as in Linux."""
    k.signals.force(t, SigInfo(S.SIGILL, S.SI_KERNEL, addr=0))
    return -1


__all__ = ["NR_URETPROBE", "PerfEvent", "open_uprobe", "probe_hit", "sys_uprobe",
           "sys_uretprobe"]
