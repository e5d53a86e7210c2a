"""inotify: watches on inodes and the event queue a guest reads.

Events come from the changes the guest makes through this kernel: the system-call layer
reports each change (`emit`) after it succeeded. Changes made on the host behind the
guest's back (another host process writing into a --rw directory) are not seen, as no
host notification is consulted.

A watch is on an inode, identified by the host's (st_dev, st_ino). An event on a child is
reported to a watch on its directory (with the child's name) before the watch on the
child itself (without a name), as fsnotify_handle_event does.
"""

from __future__ import annotations

import struct
import weakref
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.eventfiles import AnonFile

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel

IN_ACCESS, IN_MODIFY, IN_ATTRIB = 0x1, 0x2, 0x4
IN_CLOSE_WRITE, IN_CLOSE_NOWRITE, IN_OPEN = 0x8, 0x10, 0x20
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_DELETE_SELF, IN_MOVE_SELF = 0x400, 0x800
IN_UNMOUNT, IN_Q_OVERFLOW, IN_IGNORED = 0x2000, 0x4000, 0x8000
IN_ONLYDIR, IN_DONT_FOLLOW, IN_EXCL_UNLINK = 0x01000000, 0x02000000, 0x04000000
IN_MASK_CREATE, IN_MASK_ADD, IN_ISDIR, IN_ONESHOT = 0x10000000, 0x20000000, 0x40000000, 0x80000000
IN_ALL_EVENTS = 0xFFF
VALID_MASK = (IN_ALL_EVENTS | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK | IN_MASK_CREATE
              | IN_MASK_ADD | IN_ONESHOT)
# events a directory watch sees for its children with their names
CHILD_EVENTS = IN_ACCESS | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_OPEN
MAX_QUEUED = 16384  # /proc/sys/fs/inotify/max_queued_events
MAX_WATCHES = 8192
EVENT_HEADER = 16

Key = tuple[int, int]


@dataclass
class Watch:
    """One inotify watch: descriptor, watched object and event mask."""

    wd: int
    key: Key
    mask: int


class Inotify(AnonFile):
    kind = "inotify"
    name = "inotify"

    def __init__(self, k: Kernel, flags: int) -> None:
        super().__init__(flags)
        self.flags &= ~F.O_ACCMODE  # inotify_init1(): anon_inode_getfd(..., O_RDONLY | flags)
        self.k = k
        self.watches: dict[int, Watch] = {}
        self.by_key: dict[Key, Watch] = {}
        self.queue: deque[bytes] = deque()
        self.last: tuple[int, int, int, str] | None = None
        self.next_wd = 1
        _registry(k).add(self)

    # --- watches ---------------------------------------------------------------------
    def add_watch(self, key: Key, mask: int) -> int:
        old = self.by_key.get(key)
        if old is not None:
            if mask & IN_MASK_CREATE:
                raise KernelError(E.EEXIST)
            events = mask & (IN_ALL_EVENTS | IN_EXCL_UNLINK | IN_ONESHOT)
            old.mask = (old.mask | events) if mask & IN_MASK_ADD else events
            return old.wd
        if len(self.watches) >= MAX_WATCHES:
            raise KernelError(E.ENOSPC)
        w = Watch(self.next_wd, key, mask & (IN_ALL_EVENTS | IN_EXCL_UNLINK | IN_ONESHOT))
        self.next_wd += 1
        self.watches[w.wd] = w
        self.by_key[key] = w
        return w.wd

    def rm_watch(self, wd: int) -> None:
        w = self.watches.get(wd)
        if w is None:
            raise KernelError(E.EINVAL)
        self._drop(w)

    def _drop(self, w: Watch) -> None:
        self.watches.pop(w.wd, None)
        if self.by_key.get(w.key) is w:
            del self.by_key[w.key]
        self._queue(w.wd, IN_IGNORED, 0, "")

    # --- events ----------------------------------------------------------------------
    def _queue(self, wd: int, mask: int, cookie: int, name: str) -> None:
        ident = (wd, mask, cookie, name)
        if self.queue and self.last == ident:
            return  # inotify_merge: the same event as the last queued one
        if len(self.queue) >= MAX_QUEUED:
            if self.last != (-1, IN_Q_OVERFLOW, 0, ""):
                self.queue.append(struct.pack("<iIII", -1, IN_Q_OVERFLOW, 0, 0))
                self.last = (-1, IN_Q_OVERFLOW, 0, "")
            return
        raw = name.encode("utf-8", "surrogateescape")
        size = 0 if not raw else (len(raw) + 1 + EVENT_HEADER - 1) // EVENT_HEADER * EVENT_HEADER
        self.queue.append(struct.pack("<iIII", wd, mask, cookie, size) + raw.ljust(size, b"\0"))
        self.last = ident
        self.seq += 1

    def deliver(self, key: Key, mask: int, cookie: int, name: str) -> None:
        w = self.by_key.get(key)
        if w is None or not (w.mask & mask & IN_ALL_EVENTS):
            return
        self._queue(w.wd, mask, cookie, name)
        if w.mask & IN_ONESHOT:
            self._drop(w)

    def inode_gone(self, key: Key) -> None:
        w = self.by_key.get(key)
        if w is not None:
            self._drop(w)

    # --- the file --------------------------------------------------------------------
    def read(self, n: int) -> bytes:
        if not self.queue:
            self._block(lambda: bool(self.queue))
        if len(self.queue[0]) > n:
            raise KernelError(E.EINVAL)
        out = bytearray()
        while self.queue and len(out) + len(self.queue[0]) <= n:
            out += self.queue.popleft()
        if not self.queue:
            self.last = None
        self.seq += 1
        return bytes(out)

    def write(self, data: bytes) -> int:
        raise KernelError(E.EINVAL)

    def poll(self) -> int:
        return F.POLLIN if self.queue else 0

    def ioctl(self, request: int, arg: int) -> tuple[int, bytes | None]:
        if request == F.FIONREAD:
            return 0, sum(len(e) for e in self.queue).to_bytes(4, "little")
        return super().ioctl(request, arg)

    def on_last_close(self) -> None:
        _registry(self.k).discard(self)

    def fdinfo(self) -> str:
        return "".join(f"inotify wd:{w.wd:x} ino:{w.key[1]:x} sdev:{w.key[0]:x} "
                       f"mask:{w.mask:x} ignored_mask:0\n" for w in self.watches.values())


_REGISTRIES: weakref.WeakKeyDictionary[Kernel, set[Inotify]] = weakref.WeakKeyDictionary()


def _registry(k: Kernel) -> set[Inotify]:
    reg = _REGISTRIES.get(k)
    if reg is None:
        reg = _REGISTRIES[k] = set()
    return reg


def watching(k: Kernel) -> bool:
    """Some inotify instance of this kernel has a watch (the cheap test before a change is
    described)."""
    reg = _REGISTRIES.get(k)
    return bool(reg) and any(i.watches for i in reg)  # type: ignore[union-attr]  # bool(None)


def emit(k: Kernel, key: Key | None, parent: Key | None, name: str, mask: int,
         cookie: int = 0) -> None:
    """An event on the inode `key` whose entry `name` is in directory `parent`: reported
    to the parent's watches (with the name, for the events a directory sees on its
    children) and then to the inode's own (without)."""
    for ino in list(_REGISTRIES.get(k, ())):
        if parent is not None and (mask & CHILD_EVENTS):
            ino.deliver(parent, mask, cookie, name)
        if key is not None:
            ino.deliver(key, mask, cookie, "")


def emit_dir(k: Kernel, parent: Key, name: str, mask: int, cookie: int = 0) -> None:
    """A directory-entry event (create, delete, moved_from/to) on directory `parent`."""
    for ino in list(_REGISTRIES.get(k, ())):
        ino.deliver(parent, mask, cookie, name)


def emit_self(k: Kernel, key: Key, mask: int) -> None:
    """An event only the inode's own watch sees (attrib on link count, delete_self,
    move_self); delete_self also ends the watch (IN_IGNORED)."""
    for ino in list(_REGISTRIES.get(k, ())):
        ino.deliver(key, mask, 0, "")
        if mask & IN_DELETE_SELF:
            ino.inode_gone(key)


_cookie = [0]


def next_cookie() -> int:
    _cookie[0] = (_cookie[0] + 1) & 0xFFFFFFFF or 1
    return _cookie[0]
