"""Files that carry events instead of data: eventfd, timerfd and signalfd.

Each answers `poll()` like any file, so poll/select/epoll see them; a timerfd also has
`next_deadline()` (monotonic ns), which a sleeper adds to its Wait so the scheduler (and
--virtual-time's clock) wakes it when the timer expires.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import OpenFile, StatResult, WouldBlock
from shstk.emu.kernel.signal import SigInfo, sigbit

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

EFD_SEMAPHORE = 1
COUNTER_MAX = 0xFFFFFFFFFFFFFFFE
CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME = 0, 1, 7
CLOCK_REALTIME_ALARM, CLOCK_BOOTTIME_ALARM = 8, 9
TFD_TIMER_ABSTIME = 1
ANON_DEV = 0xE


class TimedWouldBlock(WouldBlock):
    """WouldBlock with a deadline: the sleeper must wake by then (a timer expires)."""

    def __init__(self, ready: object, deadline: int | None) -> None:
        super().__init__(ready)  # type: ignore[arg-type]  # a Callable[[], bool]
        self.deadline = deadline


def file_deadline(f: OpenFile) -> int | None:
    """When a file may become ready by itself (a timer), in monotonic ns."""
    fn = getattr(f, "next_deadline", None)
    return fn() if fn is not None else None


class AnonFile(OpenFile):
    """An anon_inode file: [eventfd], [timerfd], [signalfd], [eventpoll]."""

    name = "anon"
    _next_ino = 1000

    def __init__(self, flags: int) -> None:
        super().__init__(f"anon_inode:[{self.name}]", F.O_RDWR | flags)
        AnonFile._next_ino += 1
        self.ino = AnonFile._next_ino
        self.seq = 0  # bumped on every state change (edge-triggered epoll)

    def stat(self) -> StatResult:
        return StatResult(ANON_DEV, self.ino, 0o600, 1, 0, 0, 0, 0, 4096, 0, 0, 0, 0)

    def _block(self, ready: object, deadline: int | None = None) -> None:
        if self.flags & F.O_NONBLOCK:
            raise KernelError(E.EAGAIN)
        raise TimedWouldBlock(ready, deadline)

    def ioctl(self, request: int, arg: int) -> tuple[int, bytes | None]:
        if request in (F.FIONBIO, F.FIOCLEX, F.FIONCLEX):
            return 0, None
        raise KernelError(E.ENOTTY)


class EventFd(AnonFile):
    kind = "eventfd"
    name = "eventfd"

    def __init__(self, initval: int, flags: int, semaphore: bool) -> None:
        super().__init__(flags)
        self.count = initval
        self.semaphore = semaphore

    def read(self, n: int) -> bytes:
        if n < 8:
            raise KernelError(E.EINVAL)
        if self.count == 0:
            self._block(lambda: self.count > 0)
        value = 1 if self.semaphore else self.count
        self.count -= value
        self.seq += 1
        return value.to_bytes(8, "little")

    def write(self, data: bytes) -> int:
        if len(data) < 8:
            raise KernelError(E.EINVAL)
        value = int.from_bytes(data[:8], "little")
        if value == 0xFFFFFFFFFFFFFFFF:
            raise KernelError(E.EINVAL)
        if self.count + value > COUNTER_MAX:
            self._block(lambda: self.count + value <= COUNTER_MAX)
        self.count += value
        self.seq += 1
        return 8

    def poll(self) -> int:
        ev = F.POLLIN if self.count else 0
        if self.count < COUNTER_MAX:
            ev |= F.POLLOUT
        return ev

    def fdinfo(self) -> str:
        # eventfd_show_fdinfo(); the id is an ida number (here the anon inode's)
        return (f"eventfd-count: {self.count:16x}\neventfd-id: {self.ino}\n"
                f"eventfd-semaphore: {int(self.semaphore)}\n")


class TimerFd(AnonFile):
    kind = "timerfd"
    name = "timerfd"

    def __init__(self, k: Kernel, clock: int, flags: int) -> None:
        super().__init__(flags)
        self.k = k
        self.clock = clock
        self.deadline: int | None = None  # monotonic ns of the next expiry
        self.interval = 0
        self.ticks = 0

    def _offset(self) -> int:
        """clock time minus monotonic time."""
        if self.clock in (CLOCK_REALTIME, CLOCK_REALTIME_ALARM):
            return self.k.realtime_ns() - self.k.monotonic_ns()
        return 0

    def _update(self) -> None:
        if self.deadline is None:
            return
        now = self.k.monotonic_ns()
        if now < self.deadline:
            return
        if self.interval:
            n = (now - self.deadline) // self.interval + 1
            self.ticks += n
            self.deadline += n * self.interval
        else:
            self.ticks += 1
            self.deadline = None
        self.seq += 1

    def next_deadline(self) -> int | None:
        return self.deadline

    def settime(self, flags: int, value_ns: int, interval_ns: int) -> tuple[int, int]:
        old = self.gettime()
        self._update()
        self.ticks = 0
        self.interval = interval_ns
        if value_ns == 0:
            self.deadline = None
        elif flags & TFD_TIMER_ABSTIME:
            self.deadline = value_ns - self._offset()
        else:
            self.deadline = self.k.monotonic_ns() + value_ns
        self.seq += 1
        return old

    def gettime(self) -> tuple[int, int]:
        self._update()
        left = 0
        if self.deadline is not None:
            left = max(1, self.deadline - self.k.monotonic_ns())
        return left, self.interval

    def _ready(self) -> bool:
        self._update()
        return self.ticks > 0

    def read(self, n: int) -> bytes:
        if n < 8:
            raise KernelError(E.EINVAL)
        if not self._ready():
            self._block(self._ready, self.deadline)
        ticks, self.ticks = self.ticks, 0
        return ticks.to_bytes(8, "little")

    def poll(self) -> int:
        return F.POLLIN if self._ready() else 0


    def fdinfo(self) -> str:
        """timerfd_show(): the clock, ticks not yet read, and the setting."""
        self._update()
        left = 0 if self.deadline is None else max(0, self.deadline - self.k.monotonic_ns())
        return (f"clockid: {self.clock}\nticks: {self.ticks}\nsettime flags: 00\n"
                f"it_value: ({left // 10**9}, {left % 10**9})\n"
                f"it_interval: ({self.interval // 10**9}, {self.interval % 10**9})\n")


class SignalFd(AnonFile):
    kind = "signalfd"
    name = "signalfd"

    def __init__(self, owner: Task, mask: int, flags: int) -> None:
        super().__init__(flags)
        self.owner = owner
        self.mask = mask

    def fdinfo(self) -> str:
        return f"sigmask:\t{self.mask:016x}\n"  # signalfd_show_fdinfo()

    def _queues(self, t: Task) -> list[list[SigInfo]]:
        return [t.pending, t.proc.shared_pending]

    def _find(self, t: Task) -> SigInfo | None:
        for q in self._queues(t):
            for info in sorted(q, key=lambda i: i.signo):
                if self.mask & sigbit(info.signo):
                    return info
        return None

    def read_for(self, t: Task, n: int) -> bytes:
        if n < 128:
            raise KernelError(E.EINVAL)
        out = b""
        while len(out) + 128 <= n:
            info = self._find(t)
            if info is None:
                break
            for q in self._queues(t):
                if info in q:
                    q.remove(info)
            out += pack_ssi(info)
        if not out:
            self._block(lambda: self._find(t) is not None)
        return out

    def read(self, n: int) -> bytes:
        return self.read_for(self.owner, n)

    def poll(self) -> int:
        return F.POLLIN if self._find(self.owner) is not None else 0


def pack_ssi(info: SigInfo) -> bytes:
    """struct signalfd_siginfo (128 bytes)."""
    buf = bytearray(128)
    struct.pack_into("<IiiIIiIIIIii", buf, 0, info.signo, info.errno, info.code,
                     info.pid & 0xFFFFFFFF, info.uid & 0xFFFFFFFF, 0, info.pid & 0xFFFFFFFF,
                     0, info.uid & 0xFFFFFFFF, info.trapno, info.status or 0,
                     info.value & 0x7FFFFFFF)
    struct.pack_into("<QQQQ", buf, 48, info.value & 0xFFFFFFFFFFFFFFFF, info.utime,
                     info.stime, (info.addr or 0) & 0xFFFFFFFFFFFFFFFF)
    return bytes(buf)
