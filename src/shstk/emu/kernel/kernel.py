"""The kernel model: processes, the scheduler, system-call entry, signals and faults.

All guest processes and threads live in this one object, in one host process: wait,
signals between processes, ptrace and fork are modelled, not borrowed from the host, and
a run is reproducible. The scheduler is deterministic: a task runs until it blocks in a
system call or has executed a quantum of translation blocks.
"""

from __future__ import annotations

import os
import resource
import select
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import resource as R
from shstk.emu.cpu.cpu import Cpu
from shstk.emu.cpu.faults import CpuFault
from shstk.emu.cpu.interface import FAULTED, RAN_OUT, Engine
from shstk.emu.kernel import deadline, futex, loader, mmap, policy, shstk, timers, traps
from shstk.emu.kernel.crash import CrashSnapshot
from shstk.emu.kernel.entry import NO_RESULT, Blocked, Death, Debugger, RunLimit, SyscallLayer
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import FdTable, HostFile
from shstk.emu.kernel.mm import (
    AddressSpace,
)
from shstk.emu.kernel.process import exit_process
from shstk.emu.kernel.procfs import ProcFs
from shstk.emu.kernel.profile import Profile, get_profile
from shstk.emu.kernel.runq import RunQueue, SleepSet
from shstk.emu.kernel.signal import SignalFrames
from shstk.emu.kernel.signalops import SignalOps
from shstk.emu.kernel.sysfs import SysFs
from shstk.emu.kernel.task import (
    FsInfo,
    Process,
    SigHand,
    State,
    Task,
    host_rlimits,
)
from shstk.emu.kernel.vfs import Vfs
from shstk.options import RunOptions

if TYPE_CHECKING:
    from random import Random

NS_PER_INSN = 1  # virtual time: one nanosecond per guest instruction
VIRTUAL_EPOCH_NS = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z


class Kernel:
    def __init__(self, opts: RunOptions, syscalls: SyscallLayer,
                 engine_factory: Callable[[Kernel], Engine] | None = None) -> None:
        self.opts = opts
        self.syscalls = syscalls
        # how a new address space gets its CPU: Unicorn, or a fake in kernel unit tests
        self._engine_factory = engine_factory
        self.profile: Profile = get_profile(opts.kernel)
        self.procfs = ProcFs(self)
        self.vfs = Vfs(opts.sysroot, tuple(opts.rw), proc_lookup=self.procfs.lookup,
                       sys_lookup=SysFs(self).lookup)
        self.processes: dict[int, Process] = {}
        self.tasks: dict[int, Task] = {}
        self._next_pid = 1000
        self.ncpus = opts.ncpus
        self.rng = _seeded_rng(opts.seed) if opts.seed is not None else None
        self.strace = opts.trace_stream
        self.frames = SignalFrames(self)
        self.signals = SignalOps(self)
        self.runq: RunQueue[Task] = RunQueue()  # O(1) `in`/remove (runq.py)
        self.sleepers: SleepSet[Task] = SleepSet()
        self.init: Process | None = None
        self.death: Death | None = None  # how the first process ended
        self.crashes: list[CrashSnapshot] = []  # every process a fault killed, in order
        self.events: list[str] = []  # loader-policy decisions etc., for the run summary
        self.dlopen_events: list[str] = []  # what a CET-enabled glibc would do on dlopen
        self.loader_policy = policy.from_options(opts.shstk, opts.glibc_tunables)
        self._said: set[str] = set()
        self.total_insns = 0
        self._run_start_insns = 0
        self._running_cpu: Engine | None = None
        self._time_offset_ns = 0  # virtual time skipped while every task slept
        self._t0 = time.monotonic_ns()
        self._real0 = time.time_ns()
        self._deadline = time.monotonic() + opts.timeout if opts.timeout else None
        self._over = False  # a --timeout or --max-insns limit ended the run
        self.pipe_ino = 0x4000
        # work that must wait until no CPU is inside emu_start (freeing a machine)
        self.deferred: list[Callable[[], None]] = []
        self.debugger: Debugger | None = None  # `run --gdb` (traps.handle_fault asks it)

    # --- identity and time ------------------------------------------------------------
    def alloc_pid(self) -> int:
        pid = self._next_pid
        self._next_pid += 1
        return pid

    def insns_now(self) -> int:
        cpu = self._running_cpu
        live = cpu.insns - self._run_start_insns if cpu is not None else 0
        return self.total_insns + live

    def monotonic_ns(self) -> int:
        if self.opts.virtual_time:
            return 10**9 + self.insns_now() * NS_PER_INSN + self._time_offset_ns
        return time.monotonic_ns() - self._t0 + 10**9 + self._time_offset_ns

    def realtime_ns(self) -> int:
        if self.opts.virtual_time:
            return VIRTUAL_EPOCH_NS + self.monotonic_ns()
        return time.time_ns()

    def random_bytes(self, n: int) -> bytes:
        if self.rng is not None:
            return self.rng.randbytes(n)
        return os.urandom(n)

    def say_once(self, key: str, message: str) -> None:
        """One diagnostic line on the emulator's stderr, at most once per key."""
        if key in self._said:
            return
        self._said.add(key)
        print(f"shstk: {message}", file=self.opts.diagnostics, flush=True)

    def event(self, message: str, *, dlopen: bool = False) -> None:
        """A loader decision: shown with --verbose; dlopen events in the run's summary."""
        self.events.append(message)
        if dlopen:
            self.dlopen_events.append(message)  # the summary prints these
        elif self.opts.verbose:
            print(f"shstk: {message}", file=self.opts.diagnostics, flush=True)

    # --- processes ---------------------------------------------------------------------
    def new_cpu(self) -> Engine:
        if self._engine_factory is not None:
            return self._engine_factory(self)
        return Cpu(self, engine=self.opts.engine, cr4_cet=self.profile.user_shstk)

    def new_process(self, *, cpu: Engine, mm: AddressSpace, files: FdTable, fs: FsInfo,
                    sighand: SigHand, rlimits: dict[int, list[int]],
                    parent: Process | None) -> tuple[Process, Task]:
        pid = self.alloc_pid()
        proc = Process(pid, cpu, mm, files, fs, sighand, rlimits)
        proc.parent = parent
        proc.start_time = self.monotonic_ns() // 10_000_000
        if parent is not None:
            parent.children.append(proc)
            proc.pgid, proc.sid = parent.pgid, parent.sid
            proc.uid, proc.gid = parent.uid, parent.gid
            proc.euid, proc.egid = parent.euid, parent.egid
        task = Task(pid, proc)
        proc.threads.append(task)
        self.processes[pid] = proc
        self.tasks[pid] = task
        return proc, task

    def spawn(self, path: str, argv: list[bytes], envp: list[bytes], cwd: str) -> Process:
        """Create the initial process and exec `path` in it."""
        cpu = self.new_cpu()
        stack_limit = _host_stack_limit()
        mm = AddressSpace(cpu, stack_rlimit=stack_limit)
        files = FdTable()
        for fd in (0, 1, 2):
            try:
                host = os.dup(fd)
            except OSError:
                continue
            flags = os.O_RDONLY if fd == 0 else os.O_WRONLY
            stdio = HostFile(_host_fd_name(fd), flags, host)
            stdio.inherited = True
            files.install(stdio, at=fd)
        rlimits = host_rlimits()
        files.limit = min(rlimits[R.RLIMIT_NOFILE][0], 1 << 20)
        proc, task = self.new_process(cpu=cpu, mm=mm, files=files, fs=FsInfo(cwd),
                                      sighand=SigHand(), rlimits=rlimits, parent=None)
        proc.uid = proc.euid = proc.suid = os.getuid()
        proc.gid = proc.egid = proc.sgid = os.getgid()
        proc.pgid = proc.sid = proc.pid
        self.init = proc
        cpu.current = task
        try:
            with deadline.alarm(self._deadline, self.opts.timeout):
                loader.execve(self, task, path, argv, envp, initial=True)
        except RunLimit as limit:  # a loader kept busy by the file: the run is over
            self._end_by_limit(limit)
            return proc
        if self.strace is not None:
            self.syscalls.trace_execve(self, path, argv, envp)
        self.runq.append(task)
        return proc

    # --- the scheduler -------------------------------------------------------------------
    def run(self) -> Death:
        """Run until the last guest process has exited (as `strace -f` waits for it);
        the run ends as the first process did."""
        try:
            with deadline.alarm(self._deadline, self.opts.timeout):
                while self._guest_alive() and not self._over:
                    task = self._pick()
                    if task is None:
                        if not self._idle():
                            break
                        continue
                    self._run_task(task)
        except RunLimit as limit:
            self._end_by_limit(limit)
        if self.death is None:
            self.death = Death(0)
        return self.death

    def _guest_alive(self) -> bool:
        if self.death is None:
            return True
        return any(not p.zombie for p in self.processes.values())

    def _stuck(self, key: str, message: str) -> None:
        """Nothing can ever run again: stop, as the first process's status if it ended."""
        if self.death is None:
            self.say_once(key, message + "; stopping")
            self.death = Death(124 << 8)
        else:
            self.say_once(key, message + " after the first process exited; stopping")

    def _pick(self) -> Task | None:
        timers.fire_alarms(self)
        self._wake_sleepers()
        while self.runq:
            t = self.runq.popleft()
            if t.state is State.RUNNABLE:
                return t
        return None

    def make_runnable(self, t: Task) -> None:
        if t.state in (State.ZOMBIE, State.DEAD):
            return
        t.state = State.RUNNABLE
        if t in self.sleepers:
            self.sleepers.remove(t)
        if t not in self.runq:
            self.runq.append(t)

    def _wake_sleepers(self) -> None:
        for t in self.sleepers.due(self.monotonic_ns()):
            w = t.wait
            if w is None:
                self.sleepers.remove(t)
                continue
            if w.ready() or (w.deadline is not None and self.monotonic_ns() >= w.deadline):
                self._complete_wait(t)
            elif t.sigwake:
                self.signals.interrupt(t)

    def _complete_wait(self, t: Task) -> None:
        retry = t.wake_result
        try:
            result = retry() if retry is not None else 0
        except Blocked as b:
            t.wait = b.wait
            t.wake_result = b.retry
            self.sleepers.rearm(t, polled=b.wait.polled, deadline=b.wait.deadline)
            return
        except KernelError as exc:
            result = -exc.errno
        except CpuFault:
            result = -E.EFAULT
        self._finish_syscall(t, result)

    def _finish_syscall(self, t: Task, result: int | object) -> None:
        t.sigwake = False
        t.wait = None
        t.wake_result = None
        if isinstance(result, int):  # not NO_RESULT: the handler set the registers
            t.resume_rax = result
        if t.state is State.BLOCKED:
            self.make_runnable(t)
        if self.strace is not None:
            self.syscalls.trace_resumed(self, t, result if isinstance(result, int) else None)

    def _idle(self) -> bool:
        """Nobody can run: let time pass until a sleeper's deadline or host input."""
        if not any(t.state is State.BLOCKED for t in self.sleepers):
            # every task is stopped or gone
            return self._all_stopped()
        deadlines = [d for d in (self.sleepers.next_deadline(), timers.next_alarm(self))
                     if d is not None]
        host_fds = [t.wait for t in self.sleepers.polled()
                    if t.state is State.BLOCKED and t.wait and t.wait.host_fd >= 0]
        if not deadlines and not host_fds:
            self._stuck("deadlock", "every guest thread is blocked and nothing can wake "
                        "them (deadlock)")
            return False
        now = self.monotonic_ns()
        nearest = min(deadlines) if deadlines else None
        if self.opts.virtual_time and nearest is not None and not host_fds:
            self._time_offset_ns += max(0, nearest - now)
            return True
        wait_s = max(0.0, (nearest - now) / 1e9) if nearest is not None else 1.0
        if self._deadline is not None:
            deadline.check(self.opts, self.total_insns, self._deadline)
            wait_s = min(wait_s, max(0.0, self._deadline - time.monotonic()))
        if host_fds:
            rd = [w.host_fd for w in host_fds if not w.host_write]
            wr = [w.host_fd for w in host_fds if w.host_write]
            try:
                select.select(rd, wr, [], wait_s)
            except (OSError, ValueError):
                time.sleep(min(wait_s, 0.01))
        else:
            time.sleep(wait_s)
        if self.opts.virtual_time and nearest is not None:
            self._time_offset_ns += max(0, nearest - self.monotonic_ns())
        return True

    def _all_stopped(self) -> bool:
        stopped = [t for t in self.tasks.values() if t.state in (State.STOPPED, State.TRACED)]
        if stopped:
            self._stuck("stopped", "every guest thread is stopped and nothing can "
                        "continue them")
        return False

    def switch_to(self, t: Task) -> None:
        cpu = t.cpu
        cur = cpu.current
        if cur is t:
            return
        if cur is not None and cur.state not in (State.DEAD,) and cur.proc.cpu is cpu:
            cur.ctx = cpu.save_context()
            cur.cet_state = cpu.save_thread()
        if t.ctx is not None:
            cpu.restore_context(t.ctx)
            t.ctx = None
        elif t.initial_regs is not None:
            cpu.load_regs(t.initial_regs)
            t.initial_regs = None
        cpu.load_thread(t.cet_state)
        cpu.current = t

    def _run_task(self, t: Task) -> None:
        self.switch_to(t)
        if not self.signals.return_to_user(t):
            return
        if t.state is not State.RUNNABLE:
            return
        cpu = t.cpu
        self._running_cpu = cpu
        self._run_start_insns = cpu.insns
        quantum = self.opts.quantum if (self.runq or self.sleepers) else self.opts.quantum * 8
        try:
            result = cpu.run(quantum)
        finally:
            ran = cpu.insns - self._run_start_insns
            self.total_insns += ran
            t.cpu_ns += ran * NS_PER_INSN
            if t.released:  # it exited in this slice: the group keeps its time
                t.proc.dead_cpu_ns += ran * NS_PER_INSN
            self._running_cpu = None
            self.run_deferred()
        if result.why == FAULTED and result.fault is not None:
            traps.handle_fault(self, t, result.fault)
        yielded, t.yielded = t.yielded, False
        if t.state is State.RUNNABLE and t not in self.runq:
            if result.why == RAN_OUT or yielded:
                self.runq.append(t)
            else:
                self.runq.appendleft(t)
        deadline.check(self.opts, self.total_insns, self._deadline)

    def run_deferred(self) -> None:
        while self.deferred:
            self.deferred.pop(0)()

    def _end_by_limit(self, limit: RunLimit) -> None:
        self.death, self._over = Death(124 << 8), True
        self.say_once("limit", limit.what)

    def stop_requested(self) -> bool:  # --timeout passed: long system calls end early
        return deadline.passed(self._deadline)

    # --- system calls --------------------------------------------------------------------
    def syscall(self, cpu: Engine) -> None:
        t = cpu.current
        assert t is not None
        self.syscalls.dispatch(self, t)
        if deadline.passed(self._deadline):
            cpu.request_stop()  # back to the run loop, which ends the run

    def block(self, t: Task, b: Blocked) -> None:
        t.state = State.BLOCKED
        t.wait = b.wait
        t.wake_result = b.retry
        self.sleepers.append(t, polled=b.wait.polled, deadline=b.wait.deadline)
        t.cpu.request_stop()
        # A signal that is pending and deliverable now (sigsuspend just unblocked it,
        # or it arrived before the sleep) interrupts the sleep at once.
        if b.wait.interruptible and self.signals.has_deliverable(t):
            self.signals.interrupt(t)

    def set_user_rip(self, t: Task, rip: int) -> None:
        """Resume `t` at `rip` (applied outside Unicorn, which adds 2 after a syscall)."""
        t.resume_rip = rip
        if t.cpu.current is t:
            t.cpu.request_stop()

    def unmapped_access(self, cpu: Engine, addr: int, write: bool) -> bool:
        t = cpu.current
        return t is not None and t.mm.grow_stack(addr)

    # --- exit ---------------------------------------------------------------------------------
    def exit_thread(self, t: Task, code: int) -> None:
        """do_exit() for one thread."""
        if t.state in (State.ZOMBIE, State.DEAD):
            return
        proc = t.proc
        # deactivate_mm(): the thread's kernel-allocated shadow stack goes away
        shstk.shstk_free(self, t, t)
        # exit_mm_release(): robust futexes first, then CLONE_CHILD_CLEARTID
        futex.exit_robust_list(self, t)
        if t.clear_child_tid:
            try:
                t.mm.write_u32(t.clear_child_tid, 0)
                self.futex_wake(proc, t.clear_child_tid, 1)
            except KernelError:
                pass
        self.release_vfork(t)
        t.exit_code = code
        t.state = State.DEAD
        if t in self.sleepers:
            self.sleepers.remove(t)
        if t.cpu.current is t:
            t.cpu.current = None
            t.cpu.request_stop()
        self.tasks.pop(t.tid, None)
        if proc.threads and t is not proc.threads[0]:
            # release_task(): a thread other than the leader leaves the group at once
            proc.threads.remove(t)
            proc.dead_cpu_ns += t.cpu_ns
            t.released = True
        if not any(th.state not in (State.ZOMBIE, State.DEAD) for th in proc.threads):
            # (live_threads() without building the list: the leader usually answers)
            status = proc.group_exit_code if proc.group_exit_code is not None \
                else (code & 0xFF) << 8
            self.exit_process(proc, status)

    def exit_group(self, proc: Process, status: int) -> None:
        """All threads exit with `status` (a wait status)."""
        proc.group_exit_code = status
        for t in list(proc.threads):
            self.exit_thread(t, (status >> 8) & 0xFF)

    def exit_process(self, proc: Process, status: int) -> None:
        exit_process(self, proc, status)

    def release_vfork(self, t: Task) -> None:
        done = t.proc.vfork_done
        if done is not None:
            t.proc.vfork_done = None
            done()

    def futex_wake(self, proc: Process, addr: int, n: int) -> int:
        return futex.wake(self, proc, addr, n)

    # --- memory -----------------------------------------------------------------------------
    def do_mmap(self, t: Task, addr: int, length: int, prot: int, flags: int, fd: int = -1,
                offset: int = 0, *, extra_vm: int = 0, start_gap: int = 0) -> int:
        return mmap.do_mmap(self, t, addr, length, prot, flags, fd, offset,
                            extra_vm=extra_vm, start_gap=start_gap)

    # --- misc used by several families --------------------------------------------------------
    def rlimit_stack(self, t: Task) -> int:
        return t.proc.rlimits[R.RLIMIT_STACK][0]


def _seeded_rng(seed: int) -> Random:
    """--seed's generator for the guest's random bytes (random is imported only then: it
    was a millisecond of every start-up)."""
    from random import Random

    return Random(seed)


def _host_stack_limit() -> int:
    soft, _hard = resource.getrlimit(resource.RLIMIT_STACK)
    return R.RLIM_INFINITY if soft == resource.RLIM_INFINITY else soft


def _host_fd_name(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"/dev/fd/{fd}"


__all__ = ["NO_RESULT", "Blocked", "Death", "Kernel", "RunLimit"]
