"""Processes (thread groups) and tasks (threads): the state Linux keeps per task_struct.

A `Process` owns what CLONE_* flags can share (address space, files, fs info, signal
handlers); a `Task` owns registers, the signal mask, pending signals, and the per-thread
shadow-stack state (SPEC.md §2).
"""

from __future__ import annotations

import enum
import resource
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shstk.abi import resource as R
from shstk.abi import signals as S

if TYPE_CHECKING:
    from shstk.emu.cpu.faults import CpuFault
    from shstk.emu.cpu.interface import Engine, RegDump
    from shstk.emu.kernel.files import FdTable
    from shstk.emu.kernel.loader import ExecImage
    from shstk.emu.kernel.mm import AddressSpace
    from shstk.emu.kernel.signal import SigInfo


@dataclass
class WaitResult:
    """A child that wait() can report (kernel/exit.c wait_task_*)."""

    pid: int
    status: int  # wait status word
    code: int  # CLD_*
    uid: int
    child: Process


class State(enum.Enum):
    RUNNABLE = "R"
    BLOCKED = "S"
    STOPPED = "T"
    TRACED = "t"
    ZOMBIE = "Z"
    DEAD = "X"


@dataclass
class ShstkThread:
    """Per-thread shadow-stack bookkeeping of arch/x86/kernel/shstk.c (SPEC.md §2)."""

    features: int = 0  # ARCH_SHSTK_SHSTK | ARCH_SHSTK_WRSS
    locked: int = 0  # features_locked (any bits)
    base: int = 0  # kernel-allocated shadow stack (0 when none to free)
    size: int = 0


@dataclass
class SigAction:
    """One signal's disposition, as rt_sigaction sets it."""

    handler: int = S.SIG_DFL
    flags: int = 0
    restorer: int = 0
    mask: int = 0


class SigHand:
    """struct sighand_struct: the signal actions (shared with CLONE_SIGHAND)."""

    def __init__(self) -> None:
        self.actions: dict[int, SigAction] = {}

    def get(self, sig: int) -> SigAction:
        act = self.actions.get(sig)
        if act is None:
            act = self.actions[sig] = SigAction()
        return act

    def copy(self) -> SigHand:
        h = SigHand()
        h.actions = {k: SigAction(v.handler, v.flags, v.restorer, v.mask)
                     for k, v in self.actions.items()}
        return h


class FsInfo:
    """struct fs_struct: cwd and umask (shared with CLONE_FS)."""

    def __init__(self, cwd: str, umask: int = 0o022) -> None:
        self.cwd = cwd
        self.umask = umask

    def copy(self) -> FsInfo:
        return FsInfo(self.cwd, self.umask)


def host_rlimits() -> dict[int, list[int]]:
    """The limits of the shstk process itself: the first guest process inherits them."""
    limits = default_rlimits(8 << 20)
    for r in limits:
        try:
            soft, hard = resource.getrlimit(r)
        except (ValueError, OSError):
            continue
        inf = R.RLIM_INFINITY
        limits[r] = [inf if soft == resource.RLIM_INFINITY else soft,
                     inf if hard == resource.RLIM_INFINITY else hard]
    return limits


def default_rlimits(stack: int) -> dict[int, list[int]]:
    inf = R.RLIM_INFINITY
    return {
        R.RLIMIT_CPU: [inf, inf], R.RLIMIT_FSIZE: [inf, inf], R.RLIMIT_DATA: [inf, inf],
        R.RLIMIT_STACK: [stack, inf], R.RLIMIT_CORE: [0, inf], R.RLIMIT_RSS: [inf, inf],
        R.RLIMIT_NPROC: [63434, 63434], R.RLIMIT_NOFILE: [1024, 1048576],
        R.RLIMIT_MEMLOCK: [8 << 20, 8 << 20], R.RLIMIT_AS: [inf, inf],
        R.RLIMIT_LOCKS: [inf, inf], R.RLIMIT_SIGPENDING: [63434, 63434],
        R.RLIMIT_MSGQUEUE: [819200, 819200], R.RLIMIT_NICE: [0, 0],
        R.RLIMIT_RTPRIO: [0, 0], R.RLIMIT_RTTIME: [inf, inf],
    }


@dataclass
class Wait:
    """Why a task sleeps: `ready()` says when to wake; `deadline` (virtual ns) bounds it."""

    ready: Callable[[], bool]
    what: str = ""
    deadline: int | None = None
    interruptible: bool = True
    host_fd: int = -1
    host_write: bool = False
    # False: nothing but a kick (a futex wake, a signal: SleepSet.kick) or the deadline
    # ends the sleep, so the scheduler does not look at `ready` on every pick
    polled: bool = True


class TaskList:
    """A thread group's tasks in creation order, the leader first. Removal is O(1): a list
    made 30,000 exiting threads quadratic (issue 18's live-threads curve)."""

    __slots__ = ("_tasks",)

    def __init__(self, tasks: Iterable[Task] = ()) -> None:
        self._tasks: dict[Task, None] = dict.fromkeys(tasks)

    def append(self, t: Task) -> None:
        self._tasks[t] = None

    def remove(self, t: Task) -> None:
        try:
            del self._tasks[t]
        except KeyError:
            raise ValueError("task not in the thread group") from None

    def __contains__(self, t: object) -> bool:
        return t in self._tasks

    def __iter__(self) -> Iterator[Task]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __getitem__(self, i: int) -> Task:
        """By position; [0], the leader, is what callers use (it stays while others go,
        so finding it never walks over removed entries)."""
        if i < 0:
            i += len(self._tasks)
        for n, t in enumerate(self._tasks):
            if n == i:
                return t
        raise IndexError(i)


class Process:
    _next_ino = 1

    def __init__(self, pid: int, cpu: Engine, mm: AddressSpace, files: FdTable, fs: FsInfo,
                 sighand: SigHand, rlimits: dict[int, list[int]]) -> None:
        self.pid = pid
        self.cpu = cpu
        self.mm = mm
        self.files = files
        self.fs = fs
        self.sighand = sighand
        self.rlimits = rlimits
        self.parent: Process | None = None
        self.children: list[Process] = []
        self.threads = TaskList()
        self.pgid = pid
        self.sid = pid
        self.uid = self.euid = self.suid = 0
        self.gid = self.egid = self.sgid = 0
        self.exe = ""  # guest path of the executable
        self.exe_host = ""
        self.argv: list[bytes] = []
        self.auxv: bytes = b""
        self.comm = ""
        self.exit_status: int | None = None  # wait status once a zombie
        self.exit_signal = S.SIGCHLD
        self.shared_pending: list[SigInfo] = []
        self.alarm_deadline: int | None = None
        self.alarm_interval = 0  # ITIMER_REAL's interval, ns
        self.zombie = False
        self.reaped = False
        self.vfork_done: Callable[[], None] | None = None
        self.start_time = 0
        self.stop_status: int | None = None  # waitable stop (WUNTRACED)
        self.continued = False
        self.child_cpu_ns = 0
        self.dead_cpu_ns = 0  # of threads that exited and were released
        self.no_new_privs = False
        self.dumpable = 1
        self.personality = 0
        self.group_exit_code: int | None = None
        # the emulated CET loader (policy.py): what it enabled and what it loaded
        self.loader_enabled = False
        self.initial_objects: set[str] = set()
        self.image: ExecImage | None = None  # the program execve loaded
        self.interp_image: ExecImage | None = None  # its PT_INTERP
        self.libc_manages_shstk = False  # the program's ld.so issued ARCH_SHSTK_*
        self.ever_threaded = False  # glibc's SINGLE_THREAD_P never comes back

    @property
    def leader(self) -> Task:
        return self.threads[0]

    def live_threads(self) -> list[Task]:
        return [t for t in self.threads if t.state not in (State.ZOMBIE, State.DEAD)]

    def cpu_ns(self) -> int:
        """CPU time of the whole thread group, the threads that are gone included."""
        return self.dead_cpu_ns + sum(t.cpu_ns for t in self.threads)


class Task:
    def __init__(self, tid: int, proc: Process) -> None:
        self.tid = tid
        self.proc = proc
        self.state = State.RUNNABLE
        self.ctx: object | None = None  # saved Unicorn context while not on the CPU
        self.cet_state: tuple[int, int, int, int, int, int] = (0, 0, 0, 0, 0, 0)
        self.shstk = ShstkThread()
        self.blocked = 0  # signal mask
        self.pending: list[SigInfo] = []
        self.saved_mask: int | None = None  # restored after rt_sigsuspend's handler
        self.altstack = (0, S.SS_DISABLE, 0)  # ss_sp, ss_flags, ss_size
        self.clear_child_tid = 0
        self.robust_list = (0, 0)
        self.wait: Wait | None = None
        self.wake_result: Callable[[], int] | None = None
        self.yielded = False  # sched_yield(): to the back of the run queue
        self.sigwake = False  # a signal woke the sleep: EINTR unless the wait is over too
        self.restart: tuple[int, str] | None = None  # (syscall nr, the row's restart policy)
        self.exit_code = 0
        self.comm = proc.comm
        self.cpu_ns = 0
        self.released = False  # exited and gone from its group's thread list
        self.ptracer: Process | None = None
        self.ptrace_options = 0
        self.ptrace_stop_sig = 0
        self.ptrace_siginfo: SigInfo | None = None
        self.ptrace_reported = True
        self.in_syscall = False
        self.vfork_parent: Task | None = None
        self.fs_base = 0
        # the way back to user mode (applied between two CPU runs)
        self.resume_rip: int | None = None
        self.resume_rax: int | None = None
        self.interrupted: tuple[int, str] | None = None  # syscall a signal broke into
        self.last_fault: CpuFault | None = None  # the CpuFault behind a fatal signal
        # a #CP that the program's own SIGSEGV handler caught (V8, the JVM): kept so that
        # the handler's re-raise still gets the violation report (crash.CrashSnapshot)
        self.caught_cp: object | None = None
        self.ptrace_inject: SigInfo | None = None  # a signal the tracer let through
        self.orig_rax = (1 << 64) - 1  # the system call being made (-1: none)
        # a new thread's registers until it first runs (clone, fork)
        self.initial_regs: RegDump | None = None
        self.strace_pending: tuple[object, list[int], list[str]] | None = None
        # nanosleep: where to write the time left, and how to compute it if interrupted
        self.sleep_rem: tuple[int, Callable[[], int]] | None = None
        self.rseq: int | None = None  # the registered struct rseq
        self.nice = 0  # -20..19 (setpriority); inherited by clone

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def cpu(self) -> Engine:
        return self.proc.cpu

    @property
    def mm(self) -> AddressSpace:
        return self.proc.mm

    def __repr__(self) -> str:
        return f"<Task {self.tid} of {self.proc.pid} {self.state.name}>"


@dataclass
class Credentials:
    """A process's user and group IDs and supplementary groups."""

    uid: int = 0
    gid: int = 0
    groups: list[int] = field(default_factory=list)
