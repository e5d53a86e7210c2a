"""flock(2) semantics of emu/kernel/flock.py, without a CPU: locks belong to the open file
description, two opens of one inode conflict, a conversion drops the old lock first, the
last close unlocks, and a blocking request sleeps until the holder goes."""

from __future__ import annotations

import pytest

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.entry import Blocked
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import OpenFile, release
from shstk.emu.kernel.flock import LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN, FlockTable


class _File(OpenFile):
    def __init__(self, ino: int, flags: int = F.O_RDONLY) -> None:
        super().__init__(f"/f{ino}", flags)
        self.ino = ino
        self.refs = 1

    def stat(self):  # type: ignore[override]  # only dev and ino matter here
        return type("St", (), {"dev": 1, "ino": self.ino})()


def _errno(fn) -> int:
    with pytest.raises(KernelError) as exc:
        fn()
    return exc.value.errno


def test_two_opens_conflict_and_shared_locks_coexist() -> None:
    table, a, b = FlockTable(), _File(7), _File(7)
    assert table.flock(a, LOCK_EX) == 0
    assert _errno(lambda: table.flock(b, LOCK_SH | LOCK_NB)) == E.EAGAIN
    assert table.flock(a, LOCK_SH) == 0  # conversion
    assert table.flock(b, LOCK_SH | LOCK_NB) == 0
    assert _errno(lambda: table.flock(b, LOCK_EX | LOCK_NB)) == E.EAGAIN
    # the failed conversion dropped b's shared lock, as Linux does: a may now convert
    assert table.flock(a, LOCK_EX | LOCK_NB) == 0
    assert table.flock(_File(8), LOCK_EX | LOCK_NB) == 0  # another inode


def test_last_close_unlocks_and_a_sleeper_wakes() -> None:
    table, a, b = FlockTable(), _File(7), _File(7)
    table.flock(a, LOCK_EX)
    with pytest.raises(Blocked) as blocked:
        table.flock(b, LOCK_EX)
    assert not blocked.value.wait.ready()
    release(a)
    assert blocked.value.wait.ready()
    assert blocked.value.retry() == 0
    assert _errno(lambda: table.flock(_File(7), LOCK_EX | LOCK_NB)) == E.EAGAIN
    assert table.flock(b, LOCK_UN) == 0
    assert table.flock(_File(7), LOCK_EX | LOCK_NB) == 0


def test_bad_operations() -> None:
    table = FlockTable()
    assert _errno(lambda: table.flock(_File(7), 0)) == E.EINVAL
    assert _errno(lambda: table.flock(_File(7), LOCK_SH | LOCK_EX)) == E.EINVAL
    assert _errno(lambda: table.flock(_File(7, F.O_PATH), LOCK_SH)) == E.EBADF
