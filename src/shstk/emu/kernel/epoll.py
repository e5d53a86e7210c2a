"""epoll: an interest list over open files, level- or edge-triggered.

Readiness comes from each file's `poll()`; there are no wakeup callbacks, so an
edge-triggered item reports when its ready mask gains a bit or its file's state changed
(`seq`, or a pipe's byte count) since the last report. The interest list belongs to the
open file description: fork shares it, as in Linux, and an item goes away when its file
is closed everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.eventfiles import AnonFile, file_deadline
from shstk.emu.kernel.files import OpenFile

EPOLLIN, EPOLLPRI, EPOLLOUT, EPOLLERR, EPOLLHUP = 0x1, 0x2, 0x4, 0x8, 0x10
EPOLLRDNORM, EPOLLRDBAND, EPOLLWRNORM, EPOLLWRBAND, EPOLLMSG = 0x40, 0x80, 0x100, 0x200, 0x400
EPOLLRDHUP = 0x2000
EPOLLEXCLUSIVE = 1 << 28
EPOLLWAKEUP = 1 << 29
EPOLLONESHOT = 1 << 30
EPOLLET = 1 << 31
EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLL_CTL_MOD = 1, 2, 3
_ALWAYS = EPOLLERR | EPOLLHUP
_MAX_NEST = 4


@dataclass
class Item:
    """One descriptor registered with an epoll instance: the events it waits for and its
    user data."""

    fd: int
    file: OpenFile
    events: int
    data: int
    disabled: bool = False  # EPOLLONESHOT fired
    last: object = None  # the state last reported (edge-triggered)


def _state(f: OpenFile, ready: int) -> object:
    pipe = getattr(f, "pipe", None)
    count = len(pipe.buf) if pipe is not None else None
    rx = getattr(f, "rx_total", None)
    return (ready, getattr(f, "seq", None), count, rx)


class Epoll(AnonFile):
    kind = "eventpoll"
    name = "eventpoll"

    def __init__(self, flags: int) -> None:
        super().__init__(flags)
        self.items: dict[tuple[int, int], Item] = {}

    def fdinfo(self) -> str:
        """ep_show_fdinfo(): one line per watched file."""
        out = []
        for it in self.items.values():
            ino = getattr(it.file, "ino", 0) or 0
            events = it.events | F.POLLERR | F.POLLHUP  # ep_insert() always adds them
            out.append(f"tfd: {it.fd:8d} events: {events:8x} data: {it.data:16x}  "
                       f"pos:{getattr(it.file, 'pos', 0) or 0} ino:{ino:x} sdev:0\n")
        return "".join(out)

    def ctl(self, op: int, fd: int, target: OpenFile, events: int, data: int) -> None:
        if target is self:
            raise KernelError(E.EINVAL)
        if isinstance(target, Epoll) and self._depth_from(target) >= _MAX_NEST:
            raise KernelError(E.ELOOP)
        if isinstance(target, Epoll) and target._reaches(self):
            raise KernelError(E.ELOOP)
        key = (fd, id(target))
        item = self.items.get(key)
        if op == EPOLL_CTL_ADD:
            if item is not None:
                raise KernelError(E.EEXIST)
            if events & EPOLLEXCLUSIVE and events & ~(EPOLLEXCLUSIVE | EPOLLIN | EPOLLOUT |
                                                      EPOLLERR | EPOLLHUP | EPOLLET |
                                                      EPOLLWAKEUP | EPOLLRDNORM |
                                                      EPOLLWRNORM):
                raise KernelError(E.EINVAL)
            self.items[key] = Item(fd, target, events, data)
        elif op == EPOLL_CTL_DEL:
            if item is None:
                raise KernelError(E.ENOENT)
            del self.items[key]
        elif op == EPOLL_CTL_MOD:
            if item is None:
                raise KernelError(E.ENOENT)
            if events & EPOLLEXCLUSIVE or item.events & EPOLLEXCLUSIVE:
                raise KernelError(E.EINVAL)
            item.events, item.data, item.disabled, item.last = events, data, False, None
        else:
            raise KernelError(E.EINVAL)
        self.seq += 1

    def _depth_from(self, other: Epoll, depth: int = 1) -> int:
        inner = [i.file for i in other.items.values() if isinstance(i.file, Epoll)]
        return max([depth] + [self._depth_from(e, depth + 1) for e in inner])

    def _reaches(self, target: Epoll, seen: set[int] | None = None) -> bool:
        seen = seen if seen is not None else set()
        if id(self) in seen:
            return False
        seen.add(id(self))
        for i in self.items.values():
            if i.file is target or (isinstance(i.file, Epoll) and i.file._reaches(target, seen)):
                return True
        return False

    def _live(self) -> list[Item]:
        for key, item in list(self.items.items()):
            if item.file.refs <= 0:
                del self.items[key]
        return list(self.items.values())

    def _ready_of(self, item: Item) -> int:
        if item.disabled:
            return 0
        try:
            ev = item.file.poll()
        except KernelError:
            ev = F.POLLERR
        if ev & F.POLLIN:
            ev |= EPOLLRDNORM
        if ev & F.POLLOUT:
            ev |= EPOLLWRNORM
        ev &= item.events | _ALWAYS
        if item.events & EPOLLET:
            if not ev:
                item.last = None  # drained: the next arrival is a new edge
            elif _state(item.file, ev) == item.last:
                return 0
        return ev

    def any_ready(self) -> bool:
        return any(self._ready_of(i) for i in self._live())

    def collect(self, maxevents: int) -> list[tuple[int, int]]:
        """Ready (events, data) pairs, consuming edge-triggered and one-shot state."""
        out: list[tuple[int, int]] = []
        items = self._live()
        for item in items:
            if len(out) >= maxevents:
                break
            ev = self._ready_of(item)
            if not ev:
                continue
            out.append((ev, item.data))
            if item.events & EPOLLET:
                item.last = _state(item.file, ev)
            if item.events & EPOLLONESHOT:
                item.disabled = True
            # round robin, as the kernel's ready list: a reported item goes to the back
            key = (item.fd, id(item.file))
            self.items[key] = self.items.pop(key)
        return out

    def next_deadline(self) -> int | None:
        deadlines = [d for i in self._live() if (d := file_deadline(i.file)) is not None]
        return min(deadlines) if deadlines else None

    def host_fd_hint(self) -> int:
        for i in self._live():
            h = i.file.host_fd()
            if h >= 0 and i.events & EPOLLIN:
                return h
        return -1

    def poll(self) -> int:
        return F.POLLIN if self.any_ready() else 0
