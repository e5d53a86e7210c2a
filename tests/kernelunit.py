"""A kernel in-process, on a fake CPU: system calls called directly, in milliseconds.

The way gVisor tests its system-call layer: no guest program, no Unicorn. `machine()`
builds a Kernel whose address spaces get a `FakeEngine` (tests/fakeengine.py); the
task has a stack and a page of scratch memory, and `call(name, *args)` runs the row of
the system-call table for `name` exactly as dispatch does after decoding (errno as a
negative number, like the SYSCALL instruction's RAX).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fakeengine import FakeEngine

from shstk.abi import mman as M
from shstk.abi import resource as R
from shstk.abi.syscalls import NR
from shstk.emu.kernel.entry import NO_RESULT, Blocked, NoSyscalls
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import FdTable
from shstk.emu.kernel.kernel import Kernel
from shstk.emu.kernel.mm import AddressSpace
from shstk.emu.kernel.task import FsInfo, SigHand, Task, default_rlimits
from shstk.emu.syscalls.table import TABLE
from shstk.options import RunOptions

SCRATCH = 0x10000000  # one read-write page the tests use for user memory
STACK_TOP = 0x7FFFFFFFF000


@dataclass
class Machine:
    kernel: Kernel
    task: Task
    engines: list[FakeEngine] = field(default_factory=list)

    @property
    def cpu(self) -> FakeEngine:
        cpu = self.task.cpu
        assert isinstance(cpu, FakeEngine)
        return cpu

    def call(self, name: str, *args: int) -> int:
        """The handler of `name`'s row, with decoded arguments; -errno on failure."""
        entry = TABLE[NR[name]]
        if entry.handler is None:
            return -entry.errno
        decoded = [d(v) for d, v in zip(entry.decoders, args, strict=True)]
        try:
            result = entry.handler.resolve()(self.kernel, self.task, *decoded)
        except KernelError as exc:
            return -exc.errno
        except Blocked:
            raise AssertionError(f"{name} would sleep") from None
        assert result is not NO_RESULT and isinstance(result, int)
        return result

    def u64(self, addr: int) -> int:
        return self.task.mm.read_u64(addr)


def machine(kernel: str = "mainline", *, stack_rlimit: int = 8 << 20) -> Machine:
    engines: list[FakeEngine] = []

    def new_engine(_k: Kernel) -> FakeEngine:
        engines.append(FakeEngine())
        return engines[-1]

    k = Kernel(RunOptions(kernel=kernel), NoSyscalls(), engine_factory=new_engine)
    cpu = k.new_cpu()
    mm = AddressSpace(cpu, stack_rlimit=stack_rlimit)
    rlimits = default_rlimits(stack_rlimit)
    rlimits[R.RLIMIT_STACK][0] = stack_rlimit
    proc, task = k.new_process(cpu=cpu, mm=mm, files=FdTable(), fs=FsInfo("/"),
                               sighand=SigHand(), rlimits=rlimits, parent=None)
    k.init = proc
    cpu.current = task
    mm.map_anonymous(SCRATCH, M.PAGE_SIZE, M.PROT_READ | M.PROT_WRITE)
    mm.map_anonymous(STACK_TOP - 16 * M.PAGE_SIZE, 16 * M.PAGE_SIZE,
                     M.PROT_READ | M.PROT_WRITE)
    cpu.set_reg("rsp", STACK_TOP - 0x100)
    return Machine(k, task, engines)
