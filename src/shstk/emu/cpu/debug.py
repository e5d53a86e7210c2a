"""What a debugger needs of the CPU: breakpoints, single step and a stop request.

`Cpu` owns one `DebugPort`. While no `DebugHook` is attached (the usual case) it costs
nothing: `Cpu.run` takes its ordinary path. With a hook, `Cpu.run` stops before the
instruction at a breakpoint, after one instruction when stepping, or when another thread
calls `interrupt`, and calls `hook.cpu_stopped(cpu, why)` outside Unicorn, with the
stopped thread's registers loaded; the hook returns to resume.

A stop must leave the shadow-stack engine exact: the engine arms a block's CALL/RET at
the block's entry and settles it at the next block's entry, so a stop inside a block
(breakpoint, step) forgets what that block armed (`Cpu._run_debugged`), and an interrupt
stops through the engine's block budget, at a block entry after the previous block's
CALL/RET is settled and before the next one is armed.
"""

from __future__ import annotations

from typing import Any

from shstk.emu.cpu.ucbind import UcError
from shstk.emu.cpu.ucconst import UC_HOOK_CODE

BREAK = "break"
STEP = "step"
INTERRUPT = "interrupt"


class DebugPort:
    def __init__(self, uc: Any, engine: Any) -> None:
        self.uc = uc
        self.engine = engine  # engine.SsEngine
        self.hook: Any = None  # interface.DebugHook, or None
        self.breakpoints: dict[int, int] = {}  # address -> Unicorn hook handle
        self.stepping = False
        self.step_origin = -1
        self.why: str | None = None  # set inside emu_start by a hook or another thread
        self._skip = -1  # the instruction a resume starts at: its breakpoint is passed
        # set by the debugger's thread, read and cleared by the emulator's: a flag the
        # GIL keeps consistent (nothing waits on it, so no threading.Event)
        self._interrupt = False

    # --- the debugger's requests --------------------------------------------------
    def add_breakpoint(self, addr: int) -> None:
        if addr in self.breakpoints:
            return
        self.breakpoints[addr] = self.uc.hook_add(UC_HOOK_CODE, self._on_break, None,
                                                  addr, addr)
        self._retranslate(addr)

    def remove_breakpoint(self, addr: int) -> None:
        handle = self.breakpoints.pop(addr, None)
        if handle is not None:
            self.uc.hook_del(handle)
            self._retranslate(addr)

    def _retranslate(self, addr: int) -> None:
        try:
            self.uc.ctl_remove_cache(addr, addr + 1)
        except UcError:
            pass

    def step(self, rip: int, on: bool) -> None:
        self.stepping = on
        self.step_origin = rip if on else -1

    def interrupt(self) -> None:
        """From any thread: stop the guest at the next block entry. Not with emu_stop:
        Unicorn observes it either before a block's hook ran (the previous block's
        CALL/RET still to settle) or after it (this block's CALL/RET armed), which the
        CPU cannot tell apart. The engine's budget stop is always the first kind, with
        the previous CALL/RET settled. `Cpu._run_debugged` restores the budget."""
        self._interrupt = True
        self.engine.budget = 1

    def interrupted(self) -> bool:
        return self._interrupt

    # --- used by Cpu.run -------------------------------------------------------------
    def pending(self, rip: int) -> str | None:
        """A stop due before running: an interrupt, or a step the kernel finished
        (a system call that slept, a signal frame)."""
        if self._interrupt:
            self._interrupt = False
            return INTERRUPT
        if self.stepping and rip != self.step_origin:
            return STEP
        return None

    def arm(self, rip: int) -> None:
        self.why = None
        self._skip = rip

    def after_run(self, clean: bool) -> str | None:
        """Why emu_start returned for the debugger (None: not for it). `clean`: no
        fault, event or kernel stop."""
        why, self.why = self.why, None
        if self._interrupt and clean:
            self._interrupt = False
            return INTERRUPT
        if why is None and self.stepping and clean:
            return STEP
        return why if clean else None

    def _on_break(self, uc: Any, addr: int, size: int, _ud: object) -> None:
        if addr == self._skip:
            self._skip = -1
            return
        self._skip = -1
        self.why = BREAK
        uc.emu_stop()

    def report(self, cpu: Any, why: str) -> None:
        self.stepping = False
        self.step_origin = -1
        self.hook.cpu_stopped(cpu, why)
