"""Signal generation and delivery (kernel/signal.c: send_signal, force_sig, get_signal).

Delivery happens only on the way back to user mode (between two `Cpu.run` calls), where
register writes are exact; a handler frame is built by `SignalFrames`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import signals as S
from shstk.emu.kernel import ptrace, signal_ia32
from shstk.emu.kernel.crash import CrashSnapshot, capture
from shstk.emu.kernel.entry import Death
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.signal import SigInfo, next_signal, sigbit
from shstk.emu.kernel.task import State

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Process, Task

RT_SIG = S.SIGRTMIN


class SignalOps:
    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel

    # --- generation ----------------------------------------------------------------------
    def ignored(self, proc: Process, sig: int) -> bool:
        act = proc.sighand.actions.get(sig)
        handler = act.handler if act else S.SIG_DFL
        if handler == S.SIG_IGN:
            return True
        return handler == S.SIG_DFL and sig in S.DEFAULT_IGNORE

    def send_process(self, proc: Process, info: SigInfo) -> None:
        """kill(2): a process-directed signal."""
        if proc.zombie or not proc.live_threads():
            return
        sig = info.signo
        if self._prepare(proc, sig):
            return
        if sig < RT_SIG and any(i.signo == sig for i in proc.shared_pending):
            return  # standard signals do not queue
        proc.shared_pending.append(info)
        self._wake_one(proc, sig)

    def send_thread(self, t: Task, info: SigInfo) -> None:
        """tgkill(2) and faults: a thread-directed signal."""
        proc = t.proc
        if t.state in (State.ZOMBIE, State.DEAD):
            return
        sig = info.signo
        if self._prepare(proc, sig):
            return
        if sig < RT_SIG and any(i.signo == sig for i in t.pending):
            return
        t.pending.append(info)
        self._wake(t, sig)

    def force(self, t: Task, info: SigInfo) -> None:
        """force_sig_info(): a blocked or ignored fault signal is unblocked and reset."""
        act = t.proc.sighand.get(info.signo)
        blocked = bool(t.blocked & sigbit(info.signo))
        if act.handler == S.SIG_IGN or blocked:
            if blocked:
                t.blocked &= ~sigbit(info.signo)
            if act.handler == S.SIG_IGN or blocked:
                act.handler = S.SIG_DFL
        t.pending.append(info)
        self._wake(t, info.signo)

    def _prepare(self, proc: Process, sig: int) -> bool:
        """prepare_signal(): stop/continue side effects; True when the signal is dropped."""
        if sig == S.SIGKILL:
            self.k.exit_group(proc, S.SIGKILL)
            self._killed(proc, S.SIGKILL)
            return True
        if sig in S.DEFAULT_STOP or sig == S.SIGSTOP:
            for info_list in [proc.shared_pending, *(t.pending for t in proc.threads)]:
                info_list[:] = [i for i in info_list if i.signo != S.SIGCONT]
        if sig == S.SIGCONT:
            for info_list in [proc.shared_pending, *(t.pending for t in proc.threads)]:
                info_list[:] = [i for i in info_list
                                if i.signo not in S.DEFAULT_STOP and i.signo != S.SIGSTOP]
            self._continue(proc)
        if any(t.ptracer for t in proc.threads):
            return False
        return self.ignored(proc, sig)

    def _killed(self, proc: Process, sig: int) -> None:
        if proc is self.k.init and self.k.death is None:
            self.k.death = Death(sig, signal=sig)

    def _wake_one(self, proc: Process, sig: int) -> None:
        for t in proc.live_threads():
            if not t.blocked & sigbit(sig) or sig in S.UNBLOCKABLE:
                self._wake(t, sig)
                return

    def _wake(self, t: Task, sig: int) -> None:
        """signal_wake_up(): make the signal seen soon."""
        if t.blocked & sigbit(sig) and sig not in S.UNBLOCKABLE:
            return
        if t.state is State.BLOCKED and t.wait is not None and t.wait.interruptible:
            # Like a wait loop in Linux, the sleeper looks at its condition before at
            # signal_pending() when it next runs: a child that exited and was reaped in
            # the same breath makes wait() say ECHILD, not EINTR.
            t.sigwake = True
            self.k.sleepers.kick(t)
        elif t.state is State.RUNNABLE and t.cpu.current is t:
            t.cpu.request_stop()

    def interrupt(self, t: Task) -> None:
        """A sleeping system call is interrupted: -EINTR unless it is restarted later."""
        t.sigwake = False
        t.wait = None
        t.wake_result = None
        t.resume_rax = -E.EINTR
        t.interrupted = t.restart
        if self.k.strace is not None:
            self.k.syscalls.trace_resumed(self.k, t, -E.EINTR, interrupted=True)
        self.k.make_runnable(t)

    def _continue(self, proc: Process) -> None:
        was_stopped = False
        for t in proc.threads:
            if t.state is State.STOPPED:
                self.k.make_runnable(t)
                was_stopped = True
        if not was_stopped:
            return
        proc.continued = True
        proc.stop_status = None
        # do_notify_parent_cldstop(CLD_CONTINUED), unless the parent asked SA_NOCLDSTOP
        self._notify_parent_cldstop(proc, S.CLD_CONTINUED, S.SIGCONT)

    def _notify_parent_cldstop(self, proc: Process, code: int, status: int) -> None:
        parent = proc.parent
        if parent is None:
            return
        act = parent.sighand.actions.get(S.SIGCHLD)
        if not (act and act.flags & S.SA_NOCLDSTOP):
            self.send_process(parent, SigInfo(S.SIGCHLD, code, pid=proc.pid, uid=proc.uid,
                                              status=status))

    def recalc(self, t: Task) -> None:
        """After a mask change: a now-deliverable signal stops the run to be delivered."""
        if self.has_deliverable(t) and t.cpu.current is t:
            t.cpu.request_stop()

    def has_deliverable(self, t: Task) -> bool:
        return next_signal(t.pending, t.blocked) is not None or \
            next_signal(t.proc.shared_pending, t.blocked) is not None

    # --- delivery ------------------------------------------------------------------------
    def _dequeue(self, t: Task) -> SigInfo | None:
        info = next_signal(t.pending, t.blocked)
        source = t.pending
        shared = next_signal(t.proc.shared_pending, t.blocked)
        if shared is not None and (info is None or shared.signo < info.signo):
            info, source = shared, t.proc.shared_pending
        if info is not None:
            source.remove(info)
        return info

    def return_to_user(self, t: Task) -> bool:
        """exit_to_user_mode(): finish the system call, deliver signals. False: don't run."""
        cpu = t.cpu
        rip = getattr(t, "resume_rip", None)
        if rip is not None:
            cpu.rip = rip
            t.resume_rip = None
        rax = getattr(t, "resume_rax", None)
        if rax is not None:
            cpu.set_reg("rax", rax)
            t.resume_rax = None
        while t.state is State.RUNNABLE:
            info = self._dequeue(t)
            if info is None:
                break
            self._deliver(t, info)
        if t.saved_mask is not None and t.state is State.RUNNABLE:
            # restore_saved_sigmask(): a pselect/ppoll/epoll_pwait mask no handler took
            t.blocked, t.saved_mask = t.saved_mask, None
        self._finish_restart(t, handler_ran=False)
        return t.state is State.RUNNABLE

    def _finish_restart(self, t: Task, *, handler_ran: bool, act_flags: int = 0) -> None:
        interrupted = t.interrupted
        if interrupted is None:
            return
        t.interrupted = None
        nr, policy = interrupted
        restart = (policy == "sys" and (not handler_ran or act_flags & S.SA_RESTART)) or \
            (policy == "nohand" and not handler_ran)
        if restart:
            t.cpu.set_reg("rax", nr)
            t.cpu.rip = t.cpu.rip - 2

    def _deliver(self, t: Task, info: SigInfo) -> None:
        sig = info.signo
        if self.k.strace is not None:
            self.k.syscalls.trace_signal(self.k, t, info, t.cpu.rip if t.cpu.current is t else None)
        if t.ptracer is not None and sig != S.SIGKILL and ptrace.signal_stop(self.k, t, info):
            return
        act = t.proc.sighand.get(sig)
        if act.handler == S.SIG_IGN:
            return
        if act.handler == S.SIG_DFL:
            self._default_action(t, info)
            return
        if info.fault is not None and info.code == S.SEGV_CPERR and sig == S.SIGSEGV:
            t.caught_cp = capture(t, info)  # the registers and stacks of the violation
        self._finish_restart(t, handler_ran=True, act_flags=act.flags)
        oldmask = t.saved_mask if t.saved_mask is not None else t.blocked
        t.saved_mask = None
        try:
            if act.flags & signal_ia32.SA_IA32_ABI:  # installed by the ia32 sigaction
                signal_ia32.setup_frame(self.k, t, info, act, oldmask)
            else:
                self.k.frames.setup(t, info, act, oldmask)
        except KernelError:
            # signal_setup_done() failure: force SIGSEGV (fatal when it is SIGSEGV itself)
            if sig == S.SIGSEGV:
                t.proc.sighand.get(S.SIGSEGV).handler = S.SIG_DFL
            # the fault that could not be handled stays attached, for the report
            self.force(t, SigInfo(S.SIGSEGV, S.SI_KERNEL, addr=0, fault=info.fault))
            return
        t.blocked |= act.mask
        if not act.flags & S.SA_NODEFER:
            t.blocked |= sigbit(sig)
        t.blocked &= ~(sigbit(S.SIGKILL) | sigbit(S.SIGSTOP))
        if act.flags & S.SA_RESETHAND:
            act.handler = S.SIG_DFL  # signal_delivered(): only the handler, flags stay

    def _default_action(self, t: Task, info: SigInfo) -> None:
        sig = info.signo
        if sig in S.DEFAULT_IGNORE:
            return
        proc = t.proc
        if sig in S.DEFAULT_STOP:
            self.stop_process(proc, sig)
            return
        # terminate (and for the core set, dump core: RLIMIT_CORE is 0, so no 0x80 bit)
        self._record_death(t, info)
        self.k.exit_group(proc, sig)

    def _record_death(self, t: Task, info: SigInfo) -> None:
        k = self.k
        # A fault gets a report, in whichever process; a signal sent by someone (abort,
        # kill) is an ordinary death, as on Linux, and prints nothing.
        fault = t.last_fault if info.fault is not None else None
        snapshot = capture(t, info) if fault is not None else None
        caught = t.caught_cp
        if snapshot is None and isinstance(caught, CrashSnapshot) and info.signo == S.SIGSEGV \
                and info.pid == t.proc.pid:
            # the program's handler caught a #CP and re-raised it (V8's trap handler, most
            # crash reporters): the report is the violation's, as a CET machine's dmesg line
            snapshot, fault = caught, caught.fault
        if snapshot is not None:
            snapshot.first = t.proc is k.init
            k.crashes.append(snapshot)
        if t.proc is k.init and k.death is None:
            regs = t.cpu.gprs() if t.cpu.current is t else {}
            k.death = Death(info.signo, signal=info.signo, info=info, task=t, fault=fault,
                            regs=regs, snapshot=snapshot)

    def stop_process(self, proc: Process, sig: int) -> None:
        for th in proc.live_threads():
            if th.state in (State.RUNNABLE, State.BLOCKED):
                if th.state is State.BLOCKED and th.wait is not None:
                    self.interrupt(th)
                th.state = State.STOPPED
                if th in self.k.runq:
                    self.k.runq.remove(th)
                if th.cpu.current is th:
                    th.cpu.request_stop()
        proc.stop_status = (sig << 8) | 0x7F
        self._notify_parent_cldstop(proc, S.CLD_STOPPED, sig)
