"""The guest's /proc: what Linux prints, for the emulated machine and processes (SPEC §10).

maps and smaps list the real VMAs of the address-space model; status carries the
x86_Thread_features lines; cpuinfo describes the emulated CPU, with `user_shstk` only when
the kernel profile supports user shadow stacks. Host /proc entries that describe the
machine rather than a process (meminfo, sys/...) are passed through.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.abi import signals as S
from shstk.emu.cpu.cpu import cpu_identity
from shstk.emu.kernel import hostmem, shstk
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import SyntheticFile
from shstk.emu.kernel.mm import (
    PAGE,
    VM_EXEC,
    VM_GROWSDOWN,
    VM_READ,
    VM_SHADOW_STACK,
    VM_SHARED,
    VM_WRITE,
    VMFLAG_MNEMONICS,
    Vma,
)
from shstk.emu.kernel.profile import NODENAME, UTS_VERSION
from shstk.emu.kernel.task import State
from shstk.emu.kernel.vfs import ProcEntry

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Process, Task

# Top-level entries taken from the host (machine-wide information, read-only).
HOST_PASSTHROUGH = frozenset({
    "meminfo", "stat", "uptime", "loadavg", "version", "filesystems", "sys", "mounts",
    "swaps", "zoneinfo", "vmstat", "interrupts", "devices", "partitions", "crypto",
    "cmdline", "kallsyms", "modules", "diskstats", "buddyinfo", "pressure",
})
PID_FILES = ("auxv", "cmdline", "comm", "cwd", "environ", "exe", "fd", "fdinfo", "limits",
             "maps",
             "mem", "mounts", "root", "smaps", "stat", "statm", "status", "task")

_STATE_WORDS = {State.RUNNABLE: "R (running)", State.BLOCKED: "S (sleeping)",
                State.STOPPED: "T (stopped)", State.TRACED: "t (tracing stop)",
                State.ZOMBIE: "Z (zombie)", State.DEAD: "X (dead)"}


def _ino(*parts: object) -> int:
    h = 0xCBF29CE484222325
    for p in parts:
        for b in str(p).encode():
            h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFF
    return h | 1


class ProcFs:
    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel

    # --- lookup ------------------------------------------------------------------------
    def lookup(self, comps: list[str], task: object) -> ProcEntry | None:
        t: Task | None = task  # type: ignore[assignment]
        if not comps:
            return ProcEntry("dir", entries=self._root_entries, ino=1)
        head = comps[0]
        if head == "self":
            if len(comps) == 1:
                return ProcEntry("link", target=f"/proc/{t.pid if t else 0}")
            return self.lookup([str(t.pid if t else 0), *comps[1:]], task)
        if head == "thread-self":
            target = f"/proc/{t.pid}/task/{t.tid}" if t else "/proc"
            if len(comps) == 1:
                return ProcEntry("link", target=target)
            return self.lookup([str(t.pid), "task", str(t.tid), *comps[1:]], task) if t \
                else None
        if head == "cpuinfo" and len(comps) == 1:
            return ProcEntry("file", content=self.cpuinfo, ino=_ino("cpuinfo"))
        if head.isdigit():
            proc = self.k.processes.get(int(head))
            if proc is None:
                # a thread id is reachable as /proc/TID too (hidden from the listing)
                th = self.k.tasks.get(int(head))
                if th is None:
                    return None
                return self._pid_entry(th.proc, th, comps[1:], task)
            return self._pid_entry(proc, proc.leader, comps[1:], task)
        uts = self._uts("/".join(comps))
        if uts is not None:
            return ProcEntry("file", content=lambda: uts, ino=_ino(*comps))
        if head in HOST_PASSTHROUGH:
            return ProcEntry("host", target="/proc/" + "/".join(comps))
        return None

    def _uts(self, path: str) -> bytes | None:
        """The files Linux makes from utsname: they say what uname(2) says (the profile's
        release), not what the host's kernel is."""
        release = self.k.profile.uname_release
        text = {"version": f"Linux version {release} (shstk@shstk) (emulated) {UTS_VERSION}",
                "sys/kernel/osrelease": release, "sys/kernel/version": UTS_VERSION,
                "sys/kernel/ostype": "Linux", "sys/kernel/hostname": NODENAME}.get(path)
        return None if text is None else (text + "\n").encode()

    def _root_entries(self) -> list[tuple[int, int, str]]:
        out = [(1, F.DT_DIR, "."), (1, F.DT_DIR, ".."), (_ino("cpuinfo"), F.DT_REG, "cpuinfo"),
               (_ino("self"), F.DT_LNK, "self"), (_ino("thread-self"), F.DT_LNK, "thread-self")]
        for name in sorted(HOST_PASSTHROUGH):
            if os.path.exists(f"/proc/{name}"):
                out.append((_ino(name), F.DT_DIR if name in ("sys", "pressure") else F.DT_REG,
                            name))
        for pid in sorted(self.k.processes):
            if not self.k.processes[pid].reaped:
                out.append((_ino("pid", pid), F.DT_DIR, str(pid)))
        return out

    def _pid_entry(self, proc: Process, thread: Task, rest: list[str],
                   caller: object) -> ProcEntry | None:
        if not rest:
            return ProcEntry("dir", ino=_ino("pid", proc.pid),
                             entries=lambda: [(_ino(proc.pid, n), F.DT_REG, n)
                                              for n in (".", "..", *PID_FILES)])
        name = rest[0]
        if name == "task":
            if len(rest) == 1:
                return ProcEntry("dir", ino=_ino(proc.pid, "task"), entries=lambda: [
                    (_ino("tid", t.tid), F.DT_DIR, str(t.tid)) for t in proc.live_threads()])
            th = next((t for t in proc.threads if str(t.tid) == rest[1]), None)
            if th is None:
                return None
            return self._pid_entry(proc, th, rest[2:], caller)
        if name == "fdinfo":
            return self._fdinfo_entry(proc, rest[1:])
        if len(rest) > 1 and name != "fd":
            return None
        if name == "exe":
            return ProcEntry("link", target=proc.exe or "/")
        if name == "cwd":
            return ProcEntry("link", target=proc.fs.cwd)
        if name == "root":
            return ProcEntry("link", target="/")
        if name == "fd":
            return self._fd_entry(proc, rest[1:])
        makers = {
            "maps": lambda: self.maps(proc).encode(),
            "smaps": lambda: self.smaps(proc).encode(),
            "status": lambda: self.status(thread).encode(),
            "auxv": lambda: proc.auxv,
            "cmdline": lambda: b"".join(a + b"\0" for a in proc.argv),
            "environ": lambda: self._environ(proc),
            "comm": lambda: (thread.comm[:15] + "\n").encode(),
            "stat": lambda: self.stat(thread).encode(),
            "statm": lambda: self.statm(proc).encode(),
            "limits": lambda: self.limits(proc).encode(),
            "mounts": lambda: _read_host("/proc/self/mounts"),
        }
        if name == "mem":
            return ProcEntry("file", ino=_ino(proc.pid, "mem"), writable=True,
                             opener=lambda flags: open_proc_mem(proc, flags))
        maker = makers.get(name)
        if maker is None:
            return None
        return ProcEntry("file", content=maker, ino=_ino(proc.pid, name),
                         writable=name == "comm")

    def _fd_entry(self, proc: Process, rest: list[str]) -> ProcEntry | None:
        if not rest:
            return ProcEntry("dir", ino=_ino(proc.pid, "fd"), entries=lambda: [
                (_ino(proc.pid, "fd", fd), F.DT_LNK, str(fd)) for fd in sorted(proc.files.fds)])
        if len(rest) != 1 or not rest[0].isdigit():
            return None
        entry = proc.files.fds.get(int(rest[0]))
        if entry is None:
            return None
        return ProcEntry("link", target=entry.file.path, obj=entry.file)

    def _fdinfo_entry(self, proc: Process, rest: list[str]) -> ProcEntry | None:
        """/proc/PID/fdinfo/N: seq_show() then the file kind's show_fdinfo lines."""
        if not rest:
            return ProcEntry("dir", ino=_ino(proc.pid, "fdinfo"), entries=lambda: [
                (_ino(proc.pid, "fdinfo", fd), F.DT_REG, str(fd))
                for fd in sorted(proc.files.fds)])
        if len(rest) != 1 or not rest[0].isdigit():
            return None
        fd = int(rest[0])
        if fd not in proc.files.fds:
            return None

        def content() -> bytes:
            entry = proc.files.fds.get(fd)
            if entry is None:
                return b""
            f = entry.file
            flags = f.flags | (F.O_CLOEXEC if entry.cloexec else 0)
            pos = getattr(f, "pos", 0) or 0
            extra = getattr(f, "fdinfo", None)
            text = (f"pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t15\n"
                    f"ino:\t{getattr(f, 'ino', 0) or 0}\n")
            return (text + (extra() if callable(extra) else "")).encode()
        return ProcEntry("file", content=content, ino=_ino(proc.pid, "fdinfo", fd))

    def _environ(self, proc: Process) -> bytes:
        mm = proc.mm
        try:
            return mm.read(mm.env_start, mm.env_end - mm.env_start)
        except KernelError:
            return b""

    # --- content -------------------------------------------------------------------------
    def cpuinfo(self) -> bytes:
        ident = cpu_identity()
        flags = _cpu_flags(ident, self.k.profile.user_shstk)
        ncpu = self.k.ncpus
        out = []
        for i in range(ncpu):
            out.append(
                f"processor\t: {i}\nvendor_id\t: {ident['vendor']}\n"
                f"cpu family\t: {ident['family']}\nmodel\t\t: {ident['model']}\n"
                f"model name\t: {ident['brand']}\nstepping\t: {ident['stepping']}\n"
                f"microcode\t: 0x1\ncpu MHz\t\t: 2400.000\ncache size\t: 16384 KB\n"
                f"physical id\t: 0\nsiblings\t: {ncpu}\ncore id\t\t: {i}\n"
                f"cpu cores\t: {ncpu}\napicid\t\t: {i}\ninitial apicid\t: {i}\n"
                f"fpu\t\t: yes\nfpu_exception\t: yes\ncpuid level\t: 13\nwp\t\t: yes\n"
                f"flags\t\t: {' '.join(flags)}\nbugs\t\t:\nbogomips\t: 4800.00\n"
                f"clflush size\t: 64\ncache_alignment\t: 64\n"
                f"address sizes\t: 46 bits physical, 48 bits virtual\npower management:\n\n")
        return "".join(out).encode()

    def maps(self, proc: Process) -> str:
        return "".join(_maps_line(proc, v) + "\n" for v in _display_vmas(proc))

    def smaps(self, proc: Process) -> str:
        out = []
        for v, parts in _display_vmas_with_parts(proc):
            size_kb = v.size // 1024
            rss = sum(n for p in parts for _off, n in hostmem.resident_pages(p.host, p.size))
            rss_kb = rss // 1024
            anon = 0 if v.file else rss_kb
            flags = "".join(f"{word} " for bit, word in VMFLAG_MNEMONICS if v.flags & bit)
            shared = bool(v.flags & VM_SHARED)
            out.append(
                _maps_line(proc, v) + "\n"
                f"Size:           {size_kb:8} kB\nKernelPageSize:        4 kB\n"
                f"MMUPageSize:           4 kB\nRss:            {rss_kb:8} kB\n"
                f"Pss:            {rss_kb:8} kB\nPss_Dirty:      {anon:8} kB\n"
                f"Shared_Clean:          0 kB\n"
                f"Shared_Dirty:   {rss_kb if shared else 0:8} kB\n"
                f"Private_Clean:  {rss_kb - anon if not shared else 0:8} kB\n"
                f"Private_Dirty:  {anon if not shared else 0:8} kB\n"
                f"Referenced:     {rss_kb:8} kB\nAnonymous:      {anon:8} kB\n"
                f"KSM:                   0 kB\nLazyFree:              0 kB\n"
                f"AnonHugePages:         0 kB\nShmemPmdMapped:        0 kB\n"
                f"FilePmdMapped:         0 kB\nShared_Hugetlb:        0 kB\n"
                f"Private_Hugetlb:       0 kB\nSwap:                  0 kB\n"
                f"SwapPss:               0 kB\nLocked:                0 kB\n"
                f"THPeligible:           0\nVmFlags: {flags}\n")
        return "".join(out)

    def _vm_kb(self, proc: Process) -> dict[str, int]:
        size = stk = exe = data = lib = 0
        for v in proc.mm.vmas:
            kb = v.size // 1024
            size += kb
            if v.flags & (VM_GROWSDOWN | VM_SHADOW_STACK):
                stk += kb  # shadow stacks count as stack (is_stack_mapping)
            elif v.flags & VM_EXEC and v.file is not None:
                if v.file.path == proc.exe:
                    exe += kb
                else:
                    lib += kb
            elif v.flags & VM_WRITE and not v.flags & VM_SHARED:
                data += kb
        rss = sum(n for v in proc.mm.vmas for _o, n in hostmem.resident_pages(v.host, v.size))
        return {"size": size, "stk": stk, "exe": exe, "data": data, "lib": lib,
                "rss": rss // 1024}

    def status(self, t: Task) -> str:
        proc = t.proc
        kb = self._vm_kb(proc)
        ppid = proc.parent.pid if proc.parent else 0
        ign = cgt = 0
        for sig, act in proc.sighand.actions.items():
            if act.handler == S.SIG_IGN:
                ign |= 1 << (sig - 1)
            elif act.handler != S.SIG_DFL:
                cgt |= 1 << (sig - 1)
        pnd = 0
        for info in t.pending:
            pnd |= 1 << (info.signo - 1)
        shd = 0
        for info in proc.shared_pending:
            shd |= 1 << (info.signo - 1)
        tracer = t.ptracer.pid if t.ptracer else 0
        ncpu = self.k.ncpus
        uid, gid = proc.uid, proc.gid
        return (
            f"Name:\t{t.comm[:15]}\nUmask:\t{proc.fs.umask:04o}\n"
            f"State:\t{_STATE_WORDS.get(t.state, 'R (running)')}\n"
            f"Tgid:\t{proc.pid}\nNgid:\t0\nPid:\t{t.tid}\nPPid:\t{ppid}\n"
            f"TracerPid:\t{tracer}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"
            f"Gid:\t{gid}\t{gid}\t{gid}\t{gid}\nFDSize:\t64\nGroups:\t\n"
            f"NStgid:\t{proc.pid}\nNSpid:\t{t.tid}\nNSpgid:\t{proc.pgid}\n"
            f"NSsid:\t{proc.sid}\nKthread:\t0\n"
            f"VmPeak:\t{kb['size']:8} kB\nVmSize:\t{kb['size']:8} kB\n"
            f"VmLck:\t       0 kB\nVmPin:\t       0 kB\nVmHWM:\t{kb['rss']:8} kB\n"
            f"VmRSS:\t{kb['rss']:8} kB\nRssAnon:\t{kb['rss']:8} kB\n"
            f"RssFile:\t       0 kB\nRssShmem:\t       0 kB\n"
            f"VmData:\t{kb['data']:8} kB\nVmStk:\t{kb['stk']:8} kB\n"
            f"VmExe:\t{kb['exe']:8} kB\nVmLib:\t{kb['lib']:8} kB\n"
            f"VmPTE:\t       4 kB\nVmSwap:\t       0 kB\nHugetlbPages:\t       0 kB\n"
            f"CoreDumping:\t0\nTHP_enabled:\t1\nuntag_mask:\t0xffffffffffffffff\n"
            f"Threads:\t{len(proc.live_threads())}\nSigQ:\t0/63434\n"
            f"SigPnd:\t{pnd:016x}\nShdPnd:\t{shd:016x}\nSigBlk:\t{t.blocked:016x}\n"
            f"SigIgn:\t{ign:016x}\nSigCgt:\t{cgt:016x}\n"
            f"CapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\n"
            f"CapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\n"
            f"CapAmb:\t0000000000000000\nNoNewPrivs:\t{int(proc.no_new_privs)}\n"
            f"Seccomp:\t0\nSeccomp_filters:\t0\n"
            f"Speculation_Store_Bypass:\tthread vulnerable\n"
            f"SpeculationIndirectBranch:\tconditional enabled\n"
            f"Cpus_allowed:\t{(1 << ncpu) - 1:x}\n"
            f"Cpus_allowed_list:\t{'0' if ncpu == 1 else f'0-{ncpu - 1}'}\n"
            f"Mems_allowed:\t00000000,00000001\nMems_allowed_list:\t0\n"
            f"voluntary_ctxt_switches:\t0\nnonvoluntary_ctxt_switches:\t0\n"
            + shstk.proc_status_lines(self.k, t))

    def stat(self, t: Task) -> str:
        proc = t.proc
        ppid = proc.parent.pid if proc.parent else 0
        state = _STATE_WORDS.get(t.state, "R")[0]
        size = sum(v.size for v in proc.mm.vmas)
        fields = [t.tid, f"({t.comm[:15]})", state, ppid, proc.pgid, proc.sid, 0, -1, 0x400000,
                  0, 0, 0, 0, t.cpu_ns // 10_000_000, 0, 0, 0, 20 + t.nice, t.nice,
                  len(proc.live_threads()), 0, proc.start_time, size, 0, (1 << 64) - 1,
                  0, 0, proc.mm.start_stack, 0, 0, 0, 0, 0, 0, 0, 0, 0, S.SIGCHLD, 0, 0, 0,
                  0, 0, 0, 0, 0, proc.mm.arg_start, proc.mm.arg_end, proc.mm.env_start,
                  proc.mm.env_end, 0]
        return " ".join(str(f) for f in fields) + "\n"

    def statm(self, proc: Process) -> str:
        pages = sum(v.size for v in proc.mm.vmas) // PAGE
        return f"{pages} 0 0 0 0 0 0\n"

    def limits(self, proc: Process) -> str:
        names = ["Max cpu time", "Max file size", "Max data size", "Max stack size",
                 "Max core file size", "Max resident set", "Max processes",
                 "Max open files", "Max locked memory", "Max address space",
                 "Max file locks", "Max pending signals", "Max msgqueue size",
                 "Max nice priority", "Max realtime priority", "Max realtime timeout"]
        units = ["seconds", "bytes", "bytes", "bytes", "bytes", "bytes", "processes", "files",
                 "bytes", "bytes", "locks", "signals", "bytes", "", "", "us"]
        out = [f"{'Limit':<26}{'Soft Limit':<21}{'Hard Limit':<21}{'Units':<10}\n"]
        for i, (name, unit) in enumerate(zip(names, units, strict=True)):
            soft, hard = proc.rlimits[i]

            def fmt(v: int) -> str:
                return "unlimited" if v == (1 << 64) - 1 else str(v)

            out.append(f"{name:<26}{fmt(soft):<21}{fmt(hard):<21}{unit:<10}\n")
        return "".join(out)


def _read_host(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _display_vmas_with_parts(proc: Process) -> list[tuple[Vma, list[Vma]]]:
    """VMAs as Linux would show them: adjacent compatible ones merged."""
    out: list[tuple[Vma, list[Vma]]] = []
    for v in proc.mm.vmas:
        if out and out[-1][0].same_kind(v):
            head, parts = out[-1]
            merged = Vma(head.start, v.end, head.flags, head.block, head.offset, head.file,
                         head.pgoff, head.name, head.anon_name)
            out[-1] = (merged, [*parts, v])
        else:
            out.append((v, [v]))
    return out


def _display_vmas(proc: Process) -> list[Vma]:
    return [v for v, _parts in _display_vmas_with_parts(proc)]


def _maps_line(proc: Process, v: Vma) -> str:
    f = v.flags
    perms = ("r" if f & VM_READ else "-") + ("w" if f & VM_WRITE else "-") + \
        ("x" if f & VM_EXEC else "-") + ("s" if f & VM_SHARED else "p")
    if v.file is not None:
        dev = f"{os.major(v.file.dev):02x}:{os.minor(v.file.dev):02x}"
        ino = v.file.ino
        off = v.pgoff * PAGE
    else:
        dev, ino, off = "00:00", 0, 0
    head = f"{v.start:08x}-{v.end:08x} {perms} {off:08x} {dev} {ino} "
    name = v.file.path if v.file is not None else v.name
    if v.anon_name and v.file is None:
        name = f"[anon:{v.anon_name}]"
    if name:
        return head.ljust(73) + name
    return head


_CPUID1_EDX = ["fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "",
               "sep", "mtrr", "pge", "mca", "cmov", "pat", "pse36", "pn", "clflush", "",
               "dts", "acpi", "mmx", "fxsr", "sse", "sse2", "ss", "ht", "tm", "ia64", "pbe"]
_CPUID1_ECX = ["pni", "pclmulqdq", "dtes64", "monitor", "ds_cpl", "vmx", "smx", "est", "tm2",
               "ssse3", "cid", "sdbg", "fma", "cx16", "xtpr", "pdcm", "", "pcid", "dca",
               "sse4_1", "sse4_2", "x2apic", "movbe", "popcnt", "tsc_deadline_timer", "aes",
               "xsave", "", "avx", "f16c", "rdrand", "hypervisor"]
_CPUID7_EBX = ["fsgsbase", "tsc_adjust", "sgx", "bmi1", "hle", "avx2", "", "smep", "bmi2",
               "erms", "invpcid", "rtm", "cqm", "", "mpx", "rdt_a", "avx512f", "avx512dq",
               "rdseed", "adx", "smap", "avx512ifma", "", "clflushopt", "clwb", "intel_pt",
               "avx512pf", "avx512er", "avx512cd", "sha_ni", "avx512bw", "avx512vl"]


def _cpu_flags(ident: dict[str, object], user_shstk: bool) -> list[str]:
    flags: list[str] = []
    for table, key in ((_CPUID1_EDX, "edx1"), (_CPUID1_ECX, "ecx1"), (_CPUID7_EBX, "ebx7")):
        value = int(ident[key])  # type: ignore[call-overload]
        flags += [name for bit, name in enumerate(table) if name and value >> bit & 1]
    flags += ["syscall", "nx", "lm", "constant_tsc", "rep_good", "nopl", "xtopology",
              "cpuid", "tsc_known_freq"]
    if user_shstk:
        flags.append("user_shstk")
    return flags


def open_proc_mem(proc: Process, flags: int) -> SyntheticFile:
    """/proc/PID/mem: reads and writes with FOLL_FORCE (SPEC.md §11.4)."""
    mm = proc.mm

    def reader(n: int, offset: int) -> bytes:
        try:
            return mm.read(offset, n, force=True)
        except KernelError:
            raise KernelError(E.EIO) from None

    def writer(data: bytes, offset: int) -> int:
        v = mm.find(offset)
        if v is None or (v.block.shared and not v.flags & 0x20):
            raise KernelError(E.EIO)
        try:
            mm.write(offset, data, force=True)
        except KernelError:
            raise KernelError(E.EIO) from None
        return len(data)

    return SyntheticFile(f"/proc/{proc.pid}/mem", flags, b"", reader=reader, writer=writer,
                         mode=0o100600)
