"""BSD flock(2) locks (fs/locks.c flock_lock_inode): a lock belongs to the open file
description and lies on the object behind it (device and inode), so two opens of one file
conflict even in one process, while a dup or an inherited descriptor shares the lock. The
lock goes when the description unlocks or its last descriptor closes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.emu.kernel.entry import Blocked
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.task import Wait

if TYPE_CHECKING:
    from shstk.emu.kernel.files import OpenFile

LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN, LOCK_MAND = 1, 2, 4, 8, 32

Key = tuple[int, ...]


def _key(f: OpenFile) -> Key:
    try:
        st = f.stat()
    except KernelError:
        return (-1, id(f))  # an object without an inode: only its own descriptions
    return (st.dev, st.ino)


class FlockTable:
    def __init__(self) -> None:
        # object -> {description: exclusive?}
        self.held: dict[Key, dict[OpenFile, bool]] = {}

    def _conflict(self, key: Key, f: OpenFile, exclusive: bool) -> bool:
        return any(other is not f and (exclusive or excl)
                   for other, excl in self.held.get(key, {}).items())

    def unlock(self, f: OpenFile) -> None:
        for key, holders in list(self.held.items()):
            if holders.pop(f, None) is not None and not holders:
                del self.held[key]
        f.unlock_on_close = None

    def flock(self, f: OpenFile, op: int) -> int:
        nonblock = bool(op & LOCK_NB)
        cmd = op & ~LOCK_NB
        if cmd & LOCK_MAND:
            return 0  # LOCK_MAND is ignored since Linux 5.15 (with a warning)
        if cmd not in (LOCK_SH, LOCK_EX, LOCK_UN):
            raise KernelError(E.EINVAL)
        if cmd == LOCK_UN:
            self.unlock(f)
            return 0
        if not (f.readable or f.writable):
            raise KernelError(E.EBADF)
        key = _key(f)
        exclusive = cmd == LOCK_EX
        mine = self.held.get(key, {}).get(f)
        if mine is not None:
            if mine == exclusive:
                return 0
            self.unlock(f)  # a conversion drops the old lock first, as Linux does
        return self._take(f, key, exclusive, nonblock)

    def _take(self, f: OpenFile, key: Key, exclusive: bool, nonblock: bool) -> int:
        if self._conflict(key, f, exclusive):
            if nonblock:
                raise KernelError(E.EAGAIN)
            raise Blocked(Wait(lambda: not self._conflict(key, f, exclusive), "flock"),
                          lambda: self._take(f, key, exclusive, nonblock))
        self.held.setdefault(key, {})[f] = exclusive
        f.unlock_on_close = lambda: self.unlock(f)
        return 0
