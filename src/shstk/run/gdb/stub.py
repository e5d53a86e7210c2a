"""The stub: gdb's commands against the emulated machine (`shstk run --gdb`).

Everything runs on the emulator's own thread, synchronously: the CPU calls
`cpu_stopped` (breakpoint, step, Ctrl-C) and the kernel calls `fault` (a fault signal
before its delivery, as a native debugger sees it); each serves gdb's packets until gdb
resumes. Only the Ctrl-C watcher runs on another thread while the guest runs. gdb
debugs the first process; its children run on untraced (gdb follows the parent).
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from shstk.emu.cpu.interface import DebugControl, Engine
from shstk.emu.kernel import shstk
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.kernel import Kernel
from shstk.emu.kernel.ptrace import _regs_of as regs_of  # a thread's, on the CPU or saved
from shstk.emu.kernel.ptrace import _set_regs as set_regs
from shstk.emu.kernel.signal import SigInfo
from shstk.emu.kernel.task import Process, State, Task
from shstk.errors import UsageError
from shstk.run.gdb import target, xfer
from shstk.run.gdb.protocol import Connection, Disconnected, escape, unescape

# Linux signal number -> gdb's (include/gdb/signals.def), where they differ
GDB_SIGNALS = {7: 10, 10: 30, 12: 31, 17: 20, 23: 16, 29: 23}
LINUX_SIGNALS = {v: k for k, v in GDB_SIGNALS.items()}
SIGTRAP = 5
SIGINT = 2


def parse_address(spec: str) -> tuple[str, int]:
    """`[HOST:]PORT` -> (host, port); 127.0.0.1 by default."""
    host, _, port = spec.rpartition(":")
    try:
        number = int(port)
    except ValueError:
        raise UsageError(f"--gdb needs [HOST:]PORT, got {spec!r}") from None
    if not 0 <= number <= 65535:
        raise UsageError(f"--gdb: port {number} out of range")
    return host.strip("[]") or "127.0.0.1", number


class GdbStub:
    def __init__(self, kernel: Kernel, address: str) -> None:
        self.kernel = kernel
        host, port = parse_address(address)
        try:
            self.listener = socket.create_server((host, port))
        except OSError as exc:
            raise UsageError(f"--gdb {address}: {exc.strerror or exc}") from None
        bound = self.listener.getsockname()
        self.port = bound[1]
        print(f"shstk: gdb: waiting for gdb on {host}:{self.port} "
              f"(target remote {host}:{self.port})", file=sys.stderr, flush=True)
        self.conn: Connection | None = None
        self.proc: Process | None = None
        self.cpu: Any = None
        self.stop_reply = "S05"
        self.resume_signal = 0
        self.thread = 0  # Hg: the thread whose registers g/p/G/P read and write; 0: any
        self.step_task: Task | None = None  # the thread a step is for
        self.step_rip = 0
        self.step_foreign = False  # other threads ran during the step
        self.siginfo: SigInfo | None = None  # the stop's, for qXfer:siginfo
        self.exec_pending = False  # an exec to report at the next stop

    # --- lifetime ------------------------------------------------------------------------
    def attach(self, proc: Process) -> None:
        """Wait for gdb; the program is stopped before its first instruction."""
        sock, _ = self.listener.accept()
        self.listener.close()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.conn = Connection(sock)
        self.proc = proc
        self.kernel.debugger = self
        self._attach_cpu(proc.cpu)
        task = proc.threads[0]
        self.stop_reply = self._stop(SIGTRAP, task)
        self._serve(task)

    def _attach_cpu(self, cpu: Engine) -> None:
        port: DebugControl | None = getattr(cpu, "debug", None)
        if port is None:
            return
        if self.cpu is not None and self.cpu is not cpu:
            self.cpu.debug.hook = None
        self.cpu = cpu
        port.hook = self

    def detach(self) -> None:
        if self.cpu is not None:
            port = self.cpu.debug
            for addr in list(port.breakpoints):
                port.remove_breakpoint(addr)
            port.step(0, False)
            port.hook = None
        self.kernel.debugger = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def exited(self, status: int) -> None:
        """The run is over: W (exit status) or X (signal)."""
        if self.conn is None:
            return
        try:
            self.conn.stop_watching()
            if status & 0x7F:
                self.conn.send(f"X{self._gdb_sig(status & 0x7F):02x}")
            else:
                self.conn.send(f"W{(status >> 8) & 0xFF:02x}")
        except Disconnected:
            pass
        self.detach()

    # --- stops -------------------------------------------------------------------------
    def cpu_stopped(self, engine: Engine, why: str) -> None:
        task = engine.current
        if self.conn is None or task is None:
            return
        step = self.step_task
        if why == "step" and step is not None and task is not step:
            # another thread ran while one was stepped: go on, instruction by instruction,
            # until the stepped one has executed its instruction
            self.step_foreign = True
            self.cpu.debug.step(engine.rip, True)
            return
        if why == "step" and self.step_foreign and task.cpu.rip == self.step_rip:
            # the stepped thread is back on the CPU, its instruction still to run
            self.step_foreign = False
            self.cpu.debug.step(self.step_rip, True)
            return
        if self.exec_pending and self.proc is not None:
            self.exec_pending = False
            path = self._host_path(self.proc.exe)
            self.siginfo = SigInfo(SIGTRAP, 0)
            self.stop_reply = (f"T{SIGTRAP:02x}exec:{path.encode().hex()};"
                               f"thread:{task.tid:x};")
            self._report_and_serve(task)
            return
        sig = SIGINT if why == "interrupt" else SIGTRAP
        # what a native tracee's siginfo says: SI_KERNEL for INT3, TRAP_TRACE for a step
        code = {"break": 0x80, "step": 2}.get(why, 0)
        self.siginfo = SigInfo(sig, code)
        self.stop_reply = self._stop(sig, task, swbreak=why == "break")
        self._report_and_serve(task)

    def new_engine(self, proc: Process) -> None:
        """The kernel made a new CPU for `proc` (an exec): keep it under the debugger and
        stop at the new image's first instruction with an `exec` stop reason."""
        if self.conn is None or proc is not self.proc:
            return
        self._attach_cpu(proc.cpu)
        self.exec_pending = True
        self.step_task = None
        port: DebugControl | None = getattr(proc.cpu, "debug", None)
        if port is not None:
            port.interrupt()  # stops before the first instruction

    def fault(self, t: Task, info: SigInfo) -> bool:
        """A fault signal is about to be forced on `t`: stop before delivery. False:
        gdb resumed without it (discard)."""
        if self.conn is None or t.proc is not self.proc:
            return True
        if t.proc.cpu is not self.cpu:
            self._attach_cpu(t.proc.cpu)
        self.stop_reply = self._stop(self._gdb_sig(info.signo), t)
        self.siginfo = info
        self.resume_signal = 0
        self._report_and_serve(t)
        return self.resume_signal != 0

    def _stop(self, sig: int, task: Task, *, swbreak: bool = False) -> str:
        reason = "swbreak:;" if swbreak else ""
        return f"T{sig:02x}thread:{task.tid:x};{reason}"

    @staticmethod
    def _gdb_sig(signo: int) -> int:
        return GDB_SIGNALS.get(signo, signo)

    def _report_and_serve(self, task: Task) -> None:
        assert self.conn is not None
        self.conn.stop_watching()
        try:
            self.conn.send(self.stop_reply)
        except Disconnected:
            self.detach()
            return
        self._serve(task)

    def _serve(self, task: Task) -> None:
        """Answer gdb until it resumes the program."""
        conn = self.conn
        assert conn is not None
        try:
            while True:
                packet = conn.read_packet()
                if packet == b"QStartNoAckMode":
                    conn.send("OK")
                    conn.ack = False
                    continue
                if packet.startswith(b"D"):
                    conn.send("OK")
                    self.detach()
                    return
                reply = self._command(task, packet)
                if reply is None:  # resumed
                    port = self.cpu.debug if self.cpu is not None else None
                    if port is not None:
                        conn.watch(port.interrupt)
                    return
                conn.send(reply)
        except Disconnected:
            self.detach()

    # --- commands ----------------------------------------------------------------------
    def _command(self, task: Task, packet: bytes) -> bytes | str | None:
        text = packet.decode("latin-1")
        head = text[:1]
        try:
            if text.startswith(("qXfer:", "qSupported", "qAttached", "qC", "qfThread",
                                "qsThread", "qOffsets", "qSymbol", "qThreadExtra")):
                return self._query(task, text)
            if head in "?gGpPmMXHT" and head:
                return self._data(task, text, packet)
            if head in "zZ" and head:
                return self._breakpoint(text)
            if text.startswith("vCont") or (head in "cCsS" and head):
                return self._resume(task, text)
            if head == "k":
                self.detach()
                sys.stdout.flush()
                os._exit(128 + 9)
        except (KernelError, ValueError, IndexError):
            return "E01"
        return ""

    def _query(self, task: Task, text: str) -> str | bytes:
        proc = self.proc
        assert proc is not None
        if text.startswith("qSupported"):
            return ("PacketSize=4000;qXfer:features:read+;qXfer:auxv:read+;"
                    "qXfer:exec-file:read+;qXfer:libraries-svr4:read+;"
                    "qXfer:siginfo:read+;QStartNoAckMode+;vContSupported+;swbreak+;"
                    "exec-events+")
        if text.startswith("qAttached"):
            return "1"
        if text == "qC":
            return f"QC{task.tid:x}"
        if text.startswith("qfThreadInfo"):
            live = [t.tid for t in proc.threads if t.state not in (State.ZOMBIE, State.DEAD)]
            return "m" + ",".join(f"{tid:x}" for tid in live)
        if text.startswith("qsThreadInfo"):
            return "l"
        if text.startswith("qXfer:"):
            return self._xfer(task, text)
        if text.startswith("qSymbol"):
            return "OK"
        return ""

    def _xfer(self, task: Task, text: str) -> bytes | str:
        proc = self.proc
        assert proc is not None
        _, obj, op, rest = text.split(":", 3)
        annex, _, span = rest.rpartition(":")
        offset, length = (int(x, 16) for x in span.split(","))
        if op != "read":
            return ""
        if obj == "features" and annex == "target.xml":
            data = target.target_xml()
        elif obj == "auxv":
            data = proc.auxv
        elif obj == "exec-file":
            data = self._host_path(proc.exe).encode()
        elif obj == "libraries-svr4":
            data = xfer.libraries_svr4(task, proc.auxv, self._host_path)
        elif obj == "siginfo":
            if self.siginfo is None:
                return "E01"
            data = self.siginfo.pack()
        else:
            return ""
        chunk = data[offset:offset + length]
        return (b"m" if offset + length < len(data) else b"l") + escape(chunk)

    def _host_path(self, guest: str) -> str:
        root = os.path.realpath(self.kernel.opts.sysroot)
        return guest if root == "/" else root + guest

    def _live(self, tid: int) -> Task | None:
        for t in self.proc.threads if self.proc else []:
            if t.tid == tid and t.state not in (State.ZOMBIE, State.DEAD):
                return t
        return None

    @staticmethod
    def _tid(spec: str) -> int:
        """A thread-id: `-1` all, `0` any, hex tid, or `pPID.TID`."""
        return int(spec.rpartition(".")[2].lstrip("p"), 16)

    def _reg_task(self, task: Task) -> Task:
        """The thread g/p/G/P are about: gdb's Hg, else the stopped thread."""
        chosen = self._live(self.thread) if self.thread > 0 else None
        return chosen or task

    def _write_reg(self, t: Task, index: int, raw: bytes, dump: dict[str, object]) -> bool:
        if target.REGS[index].name == "pl3_ssp":
            shstk.set_ssp(t, int.from_bytes(raw, "little"))
            return True
        change = target.update(dump, index, raw)
        if change:
            dump.update(change)
            set_regs(t, change)
        return change is not None

    def _data(self, task: Task, text: str, packet: bytes) -> bytes | str:
        head = text[0]
        if head == "?":
            return self.stop_reply
        if head == "H":
            if text[1:2] == "g":
                tid = self._tid(text[2:])
                if tid > 0 and self._live(tid) is None:
                    return "E01"
                self.thread = tid
            return "OK"
        if head == "T":
            return "OK" if self._live(self._tid(text[1:])) else "E01"
        t = self._reg_task(task)
        if head in "gp":
            regs = target.read_all(regs_of(t), shstk.get_ssp(t))
            if head == "g":
                return b"".join(regs).hex()
            return regs[int(text[1:], 16)].hex()
        if head == "P":
            num, _, val = text[1:].partition("=")
            ok = self._write_reg(t, int(num, 16), bytes.fromhex(val), regs_of(t))
            return "OK" if ok else "E01"
        if head == "G":
            raw = bytes.fromhex(text[1:])
            dump = regs_of(t)
            pos = 0
            for i, r in enumerate(target.REGS):
                n = r.bits // 8
                if pos + n > len(raw):
                    break
                self._write_reg(t, i, raw[pos:pos + n], dump)
                pos += n
            return "OK"
        cpu = task.cpu
        addr_s, _, rest = text[1:].partition(",")
        addr = int(addr_s, 16)
        if head == "m":
            n = int(rest, 16)
            return self._read_memory(task, addr, n).hex() or "E14"
        _length, _, data_s = rest.partition(":")
        if head == "M":
            data = bytes.fromhex(data_s)
        else:  # X: binary
            data = unescape(packet[packet.index(b":") + 1:])
        if data:
            task.mm.write(addr, data, force=True)
            cpu.invalidate_code(addr, addr + len(data))
        return "OK"

    @staticmethod
    def _read_memory(task: Task, addr: int, n: int) -> bytes:
        try:
            return task.mm.read(addr, n, force=True)
        except KernelError:
            pass
        out = bytearray()  # up to the first unreadable page
        pos, end = addr, addr + n
        while pos < end:
            stop = min(end, (pos & ~0xFFF) + 0x1000)
            try:
                out += task.mm.read(pos, stop - pos, force=True)
            except KernelError:
                break
            pos = stop
        return bytes(out)

    def _breakpoint(self, text: str) -> str:
        kind, addr_s, _ = text[1:].split(",", 2)
        if kind not in ("0", "1") or self.cpu is None:
            return ""  # watchpoints: not supported
        addr = int(addr_s, 16)
        if text[0] == "Z":
            self.cpu.debug.add_breakpoint(addr)
        else:
            self.cpu.debug.remove_breakpoint(addr)
        return "OK"

    def _resume(self, task: Task, text: str) -> str | None:
        if text == "vCont?":
            return "vCont;c;C;s;S"
        step: Task | None = None
        sig = 0
        if text.startswith("vCont;"):
            # a step for one thread (gdb steps one, continues the rest); a signal for
            # the stopped thread
            for action in text[6:].split(";"):
                verb, _, spec = action.partition(":")
                tid = self._tid(spec) if spec else -1
                applies = tid in (-1, 0, task.tid)
                if verb[0] in "sS" and step is None:
                    step = self._live(tid) if tid > 0 else task
                if verb[0] in "CS" and applies and not sig:
                    sig = int(verb[1:3], 16)
        else:
            if text[0] in "sS":
                step = task
            if text[0] in "CS":
                sig = int(text[1:3], 16)
        self.resume_signal = LINUX_SIGNALS.get(sig, sig)
        self.step_task = step
        if self.cpu is not None:
            if step is None:
                self.cpu.debug.step(0, False)
            else:
                # the stepped thread's rip: on the CPU, or in its saved context
                self.step_rip = int(regs_of(step)["rip"])
                self.step_foreign = False
                self.cpu.debug.step(self.cpu.rip, True)
        return None
