"""System V IPC objects of one emulated machine: shared memory, semaphores, message queues.

Every kernel has its own IPC namespace (ids, keys), reached through `namespace(k)`; a
guest never sees the host's objects. Identifiers are `index + seq * 32768` as ipc/util.c
makes them. A shared-memory segment is a host memfd mapped MAP_SHARED into each process
that attaches it (so it stays shared across fork, like shared anonymous memory); its
attach count is counted from the processes' mappings, so exit and exec detach without a
hook. SEM_UNDO adjustments of a process are applied the next time the set is used after
that process has exited (nothing in the machine can observe the set in between).
"""

from __future__ import annotations

import os
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.emu.kernel.errors import KernelError

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Process, Task

IPC_PRIVATE = 0
IPC_CREAT, IPC_EXCL, IPC_NOWAIT = 0o1000, 0o2000, 0o4000
IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO = 0, 1, 2, 3
SEQ_MULTIPLIER = 32768
IPCMNI = 32000
SHMMIN, SHMMAX, SHMMNI = 1, (1 << 63) - (1 << 24), 4096
SHMALL = (1 << 63) - (1 << 24)
SEMMSL, SEMMNS, SEMOPM, SEMMNI, SEMVMX, SEMAEM = 32000, 1024000000, 500, 32000, 32767, 32767
MSGMAX, MSGMNB, MSGMNI = 8192, 16384, 32000
SHM_DEST = 0o1000
SHM_LOCKED = 0o2000


@dataclass
class Perm:
    """struct ipc_perm of a System V IPC object."""

    key: int
    uid: int
    gid: int
    mode: int
    seq: int
    cuid: int = 0
    cgid: int = 0

    def pack_fields(self) -> tuple[int, ...]:
        return (self.key, self.uid, self.gid, self.cuid, self.cgid, self.mode, self.seq)


class IpcObject:
    def __init__(self, perm: Perm, ctime: int) -> None:
        self.perm = perm
        self.ctime = ctime
        self.id = -1
        self.removed = False


@dataclass
class IpcIds:
    """One kind's ids and keys (struct ipc_ids)."""

    limit: int
    objs: dict[int, IpcObject] = field(default_factory=dict)  # index -> object
    keys: dict[int, int] = field(default_factory=dict)  # key -> index
    seq: int = 0

    def add(self, obj: IpcObject) -> int:
        if len(self.objs) >= self.limit:
            raise KernelError(E.ENOSPC)
        idx = next(i for i in range(len(self.objs) + 1) if i not in self.objs)
        self.objs[idx] = obj
        obj.perm.seq = self.seq
        obj.id = idx + self.seq * SEQ_MULTIPLIER
        self.seq = (self.seq + 1) % (0x7FFFFFFF // SEQ_MULTIPLIER)
        if obj.perm.key != IPC_PRIVATE:
            self.keys[obj.perm.key] = idx
        return obj.id

    def get(self, ident: int) -> IpcObject:
        if ident < 0:
            raise KernelError(E.EINVAL)
        obj = self.objs.get(ident % SEQ_MULTIPLIER)
        if obj is None or obj.id != ident:
            raise KernelError(E.EINVAL)
        return obj

    def by_key(self, key: int) -> IpcObject | None:
        idx = self.keys.get(key)
        return None if idx is None else self.objs[idx]

    def remove(self, obj: IpcObject) -> None:
        idx = obj.id % SEQ_MULTIPLIER
        if self.objs.get(idx) is obj:
            del self.objs[idx]
        if obj.perm.key != IPC_PRIVATE and self.keys.get(obj.perm.key) == idx:
            del self.keys[obj.perm.key]
        obj.removed = True


# --- shared memory --------------------------------------------------------------------
class ShmSegment(IpcObject):
    def __init__(self, perm: Perm, size: int, ctime: int, cpid: int) -> None:
        super().__init__(perm, ctime)
        self.size = size
        self.fd = os.memfd_create(f"SYSV{perm.key & 0xFFFFFFFF:08x}", os.MFD_CLOEXEC)
        os.ftruncate(self.fd, size)
        s = os.fstat(self.fd)
        self.dev, self.ino = s.st_dev, s.st_ino
        self.cpid = cpid
        self.lpid = 0
        self.atime = self.dtime = 0
        self.dest = False

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# --- semaphores -----------------------------------------------------------------------
class SemSet(IpcObject):
    def __init__(self, perm: Perm, nsems: int, ctime: int) -> None:
        super().__init__(perm, ctime)
        self.vals = [0] * nsems
        self.pids = [0] * nsems
        self.otime = 0
        self.undo: dict[Process, list[int]] = {}  # per-process semadj
        self.ncnt = [0] * nsems
        self.zcnt = [0] * nsems

    def settle(self) -> None:
        """Apply the SEM_UNDO adjustments of processes that have exited (exit_sem)."""
        for proc in [p for p in self.undo if p.zombie]:
            for i, adj in enumerate(self.undo.pop(proc)):
                if adj:
                    self.vals[i] = max(0, min(SEMVMX, self.vals[i] + adj))
                    self.pids[i] = proc.pid

    def try_ops(self, ops: list[tuple[int, int, int]], proc: Process, *,
                dry: bool = False) -> int | None:
        """Do every operation or none: None if done; else the index of the operation
        that has to wait (try_atomic_semop); ERANGE/EFBIG as KernelError."""
        vals = list(self.vals)
        for i, (num, op, _flg) in enumerate(ops):
            if op == 0:
                if vals[num]:
                    return i
            else:
                nv = vals[num] + op
                if nv < 0:
                    return i
                if nv > SEMVMX:
                    raise KernelError(E.ERANGE)
                vals[num] = nv
        if dry:
            return None
        for num, op, flg in ops:
            if flg & 0x1000 and op:  # SEM_UNDO
                adj = self.undo.setdefault(proc, [0] * len(self.vals))
                if not -SEMAEM - 1 <= adj[num] - op <= SEMAEM:
                    raise KernelError(E.ERANGE)
                adj[num] -= op
            self.pids[num] = proc.pid
        self.vals = vals
        return None


# --- message queues -------------------------------------------------------------------
@dataclass
class Message:
    """One message of a System V message queue."""

    mtype: int
    data: bytes


class MsgQueue(IpcObject):
    def __init__(self, perm: Perm, ctime: int) -> None:
        super().__init__(perm, ctime)
        self.msgs: list[Message] = []
        self.qbytes = MSGMNB
        self.stime = self.rtime = 0
        self.lspid = self.lrpid = 0

    @property
    def cbytes(self) -> int:
        return sum(len(m.data) for m in self.msgs)

    def find(self, msgtyp: int, except_: bool) -> int | None:
        if msgtyp == 0:
            return 0 if self.msgs else None
        if msgtyp > 0:
            for i, m in enumerate(self.msgs):
                if (m.mtype != msgtyp) if except_ else (m.mtype == msgtyp):
                    return i
            return None
        best = None
        for i, m in enumerate(self.msgs):
            if m.mtype <= -msgtyp and (best is None or m.mtype < self.msgs[best].mtype):
                best = i
        return best


# --- the namespace --------------------------------------------------------------------
class IpcNamespace:
    def __init__(self, k: Kernel) -> None:
        self.k = k
        self.shm = IpcIds(SHMMNI)
        self.sem = IpcIds(SEMMNI)
        self.msg = IpcIds(MSGMNI)
        self.shm_by_ino: dict[tuple[int, int], ShmSegment] = {}

    def lookup(self, ids: IpcIds, key: int, flags: int) -> IpcObject | None:
        """ipcget: the object of `key` (None: create one), EEXIST/ENOENT as Linux."""
        if key == IPC_PRIVATE:
            return None
        obj = ids.by_key(key)
        if obj is None:
            if not flags & IPC_CREAT:
                raise KernelError(E.ENOENT)
            return None
        if flags & IPC_CREAT and flags & IPC_EXCL:
            raise KernelError(E.EEXIST)
        return obj

    def new_perm(self, t: Task, key: int, flags: int) -> Perm:
        p = t.proc
        return Perm(key, p.euid, p.egid, flags & 0o777, 0, p.euid, p.egid)

    def check(self, t: Task, obj: IpcObject, want: int) -> None:
        """ipcperms: `want` is 4 (read) / 2 (write) / 6; the owner, group, other bits."""
        p, perm = t.proc, obj.perm
        if p.euid == 0:
            return
        if p.euid in (perm.uid, perm.cuid):
            bits = perm.mode >> 6
        elif p.egid in (perm.gid, perm.cgid):
            bits = perm.mode >> 3
        else:
            bits = perm.mode
        if want & ~bits & 7:
            raise KernelError(E.EACCES)

    def shm_nattch(self, seg: ShmSegment) -> int:
        seen: set[int] = set()
        n = 0
        for proc in self.k.processes.values():
            if proc.zombie or id(proc.mm) in seen:
                continue
            seen.add(id(proc.mm))
            n += sum(1 for v in proc.mm.vmas if v.file is not None
                     and (v.file.dev, v.file.ino) == (seg.dev, seg.ino) and v.pgoff == 0)
        return n

    def shm_reap(self) -> None:
        """Destroy the removed segments nobody has attached any more (shm_destroy)."""
        for key, seg in list(self.shm_by_ino.items()):
            if seg.dest and self.shm_nattch(seg) == 0:
                seg.close()
                del self.shm_by_ino[key]


_NAMESPACES: weakref.WeakKeyDictionary[Kernel, IpcNamespace] = weakref.WeakKeyDictionary()


def namespace(k: Kernel) -> IpcNamespace:
    ns = _NAMESPACES.get(k)
    if ns is None:
        ns = _NAMESPACES[k] = IpcNamespace(k)
    return ns
