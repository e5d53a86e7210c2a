"""System V IPC: shmget/shmat/shmdt/shmctl, semget/semop/semtimedop/semctl and
msgget/msgsnd/msgrcv/msgctl (ipc/shm.c, ipc/sem.c, ipc/msg.c), on kernel/sysvipc.py."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import mman as M
from shstk.emu.kernel import sysvipc as V
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.kernel import Blocked
from shstk.emu.kernel.task import Wait
from shstk.emu.kernel.vma import FileRef

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

SHM_RDONLY, SHM_RND, SHM_REMAP, SHM_EXEC = 0o10000, 0o20000, 0o40000, 0o100000
SHM_LOCK, SHM_UNLOCK, SHM_STAT, SHM_INFO, SHM_STAT_ANY = 11, 12, 13, 14, 15
GETPID, GETVAL, GETALL, GETNCNT, GETZCNT, SETVAL, SETALL = 11, 12, 13, 14, 15, 16, 17
SEM_UNDO = 0x1000
MSG_NOERROR, MSG_EXCEPT, MSG_COPY = 0o10000, 0o20000, 0o40000
_PERM = struct.Struct("<iIIIIIHH4xQQ")  # struct ipc64_perm, 48 bytes
SHMLBA = 4096


def _now(k: Kernel) -> int:
    return k.realtime_ns() // 1_000_000_000


def _perm_bytes(obj: V.IpcObject) -> bytes:
    p = obj.perm
    return _PERM.pack(p.key, p.uid, p.gid, p.cuid, p.cgid, p.mode, p.seq, 0, 0, 0)


def _set_perm(t: Task, obj: V.IpcObject, buf: int) -> None:
    """IPC_SET: the caller must own or have created it; takes uid, gid and mode bits."""
    _key, uid, gid, *_ = _PERM.unpack(t.mm.read(buf, _PERM.size))
    mode = _PERM.unpack(t.mm.read(buf, _PERM.size))[5]
    p = t.proc
    if p.euid != 0 and p.euid not in (obj.perm.uid, obj.perm.cuid):
        raise KernelError(E.EPERM)
    obj.perm.uid, obj.perm.gid = uid, gid
    obj.perm.mode = (obj.perm.mode & ~0o777) | (mode & 0o777)


def _owner_or_root(t: Task, obj: V.IpcObject) -> None:
    if t.proc.euid != 0 and t.proc.euid not in (obj.perm.uid, obj.perm.cuid):
        raise KernelError(E.EPERM)


# --- shared memory --------------------------------------------------------------------
def sys_shmget(k: Kernel, t: Task, key: int, size: int, flags: int) -> int:
    ns = V.namespace(k)
    ns.shm_reap()
    obj = ns.lookup(ns.shm, key, flags)
    if obj is not None:
        assert isinstance(obj, V.ShmSegment)
        if obj.size < size:
            raise KernelError(E.EINVAL)
        ns.check(t, obj, (flags >> 6) & 6 if flags & 0o777 else 0)
        return obj.id
    if size < V.SHMMIN or size > V.SHMMAX:
        raise KernelError(E.EINVAL)
    seg = V.ShmSegment(ns.new_perm(t, key, flags), size, _now(k), t.proc.pid)
    ns.shm.add(seg)
    ns.shm_by_ino[(seg.dev, seg.ino)] = seg
    return seg.id


def _segment(k: Kernel, shmid: int) -> V.ShmSegment:
    obj = V.namespace(k).shm.get(shmid)
    assert isinstance(obj, V.ShmSegment)
    return obj


def sys_shmat(k: Kernel, t: Task, shmid: int, addr: int, flags: int) -> int:
    if addr & (SHMLBA - 1):
        if not flags & SHM_RND:
            raise KernelError(E.EINVAL)
        addr &= ~(SHMLBA - 1)
    seg = _segment(k, shmid)
    ns = V.namespace(k)
    prot = M.PROT_READ | (0 if flags & SHM_RDONLY else M.PROT_WRITE)
    prot |= M.PROT_EXEC if flags & SHM_EXEC else 0
    ns.check(t, seg, 4 if flags & SHM_RDONLY else 6)
    if seg.fd < 0:
        raise KernelError(E.EIDRM)
    length = (seg.size + 0xFFF) & ~0xFFF
    mm = t.mm
    mflags = M.MAP_SHARED | (M.MAP_FIXED if addr else 0)
    where = mm.get_unmapped_area(addr, length, mflags)
    if addr and not flags & SHM_REMAP and mm.overlapping(where, where + length):
        raise KernelError(E.EINVAL)
    if addr:
        mm.unmap(where, where + length)
    mm.map_file(where, length, prot, seg.fd, 0, shared=True, fd_writable=True,
                file_size=seg.size,
                file=FileRef(f"/SYSV{seg.perm.key & 0xFFFFFFFF:08x} (deleted)", seg.dev, seg.ino))
    seg.atime = _now(k)
    seg.lpid = t.proc.pid
    return where


def sys_shmdt(k: Kernel, t: Task, addr: int) -> int:
    if addr & 0xFFF:
        raise KernelError(E.EINVAL)
    ns = V.namespace(k)
    v = t.mm.find(addr)
    if v is None or v.start != addr or v.file is None or v.pgoff != 0:
        raise KernelError(E.EINVAL)
    seg = ns.shm_by_ino.get((v.file.dev, v.file.ino))
    if seg is None:
        raise KernelError(E.EINVAL)
    end = v.start
    while v is not None and v.start == end and v.file is not None \
            and (v.file.dev, v.file.ino) == (seg.dev, seg.ino):
        end = v.end
        v = t.mm.find(end)
    t.mm.unmap(addr, end)
    seg.dtime = _now(k)
    seg.lpid = t.proc.pid
    ns.shm_reap()
    return 0


def _shm_ds(ns: V.IpcNamespace, seg: V.ShmSegment) -> bytes:
    mode = seg.perm.mode | (V.SHM_DEST if seg.dest else 0)
    p = seg.perm
    return (_PERM.pack(p.key, p.uid, p.gid, p.cuid, p.cgid, mode, p.seq, 0, 0, 0)
            + struct.pack("<Qqqqiiqqq", seg.size, seg.atime, seg.dtime, seg.ctime,
                          seg.cpid, seg.lpid, ns.shm_nattch(seg), 0, 0))


def sys_shmctl(k: Kernel, t: Task, shmid: int, cmd: int, buf: int) -> int:
    ns = V.namespace(k)
    ns.shm_reap()
    if cmd < 0 or shmid < 0:
        raise KernelError(E.EINVAL)
    if cmd == V.IPC_INFO:
        t.mm.write(buf, struct.pack("<QQQQQ4x4x", V.SHMMAX, V.SHMMIN, V.SHMMNI, 1, V.SHMALL)
                   [:40] + bytes(40))
        return max(ns.shm.objs, default=0)
    if cmd == SHM_INFO:
        t.mm.write(buf, struct.pack("<i4xQQQQQ", len(ns.shm.objs), 0, 0, 0, 0, 0))
        return max(ns.shm.objs, default=0)
    if cmd in (SHM_STAT, SHM_STAT_ANY):
        obj = ns.shm.objs.get(shmid)
        if obj is None:
            raise KernelError(E.EINVAL)
        assert isinstance(obj, V.ShmSegment)
        if cmd == SHM_STAT:
            ns.check(t, obj, 4)
        t.mm.write(buf, _shm_ds(ns, obj))
        return obj.id
    seg = _segment(k, shmid)
    if cmd == V.IPC_STAT:
        ns.check(t, seg, 4)
        t.mm.write(buf, _shm_ds(ns, seg))
        return 0
    if cmd == V.IPC_SET:
        _set_perm(t, seg, buf)
        seg.ctime = _now(k)
        return 0
    if cmd == V.IPC_RMID:
        _owner_or_root(t, seg)
        seg.dest = True
        ns.shm.remove(seg)
        seg.perm.key = V.IPC_PRIVATE
        ns.shm_reap()
        return 0
    if cmd in (SHM_LOCK, SHM_UNLOCK):
        _owner_or_root(t, seg)
        return 0
    raise KernelError(E.EINVAL)


# --- semaphores -----------------------------------------------------------------------
def sys_semget(k: Kernel, t: Task, key: int, nsems: int, flags: int) -> int:
    ns = V.namespace(k)
    if nsems < 0 or nsems > V.SEMMSL:
        raise KernelError(E.EINVAL)
    obj = ns.lookup(ns.sem, key, flags)
    if obj is not None:
        assert isinstance(obj, V.SemSet)
        if nsems > len(obj.vals):
            raise KernelError(E.EINVAL)
        ns.check(t, obj, (flags >> 6) & 6 if flags & 0o777 else 0)
        return obj.id
    if nsems == 0:
        raise KernelError(E.EINVAL)
    return ns.sem.add(V.SemSet(ns.new_perm(t, key, flags), nsems, _now(k)))


def _semset(k: Kernel, semid: int) -> V.SemSet:
    obj = V.namespace(k).sem.get(semid)
    assert isinstance(obj, V.SemSet)
    obj.settle()
    return obj


def _timeout(t: Task, addr: int) -> int | None:
    if not addr:
        return None
    sec, nsec = struct.unpack("<qq", t.mm.read(addr, 16))
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise KernelError(E.EINVAL)
    return sec * 1_000_000_000 + nsec


def sys_semop(k: Kernel, t: Task, semid: int, sops: int, nsops: int) -> int:
    return sys_semtimedop(k, t, semid, sops, nsops, 0)


def sys_semtimedop(k: Kernel, t: Task, semid: int, sops: int, nsops: int,
                   timeout: int) -> int:
    if nsops < 1 or semid < 0:
        raise KernelError(E.EINVAL)
    if nsops > V.SEMOPM:
        raise KernelError(E.E2BIG)
    raw = t.mm.read(sops, 6 * nsops)
    ops = [struct.unpack_from("<Hhh", raw, 6 * i) for i in range(nsops)]
    tmo = _timeout(t, timeout)
    deadline = None if tmo is None else k.monotonic_ns() + tmo
    sem = _semset(k, semid)
    if any(num >= len(sem.vals) for num, _op, _f in ops):
        raise KernelError(E.EFBIG)
    alter = any(op for _n, op, _f in ops)
    V.namespace(k).check(t, sem, 6 if alter else 4)
    waiting: list[tuple[int, bool]] = []

    def unwait() -> None:
        for num, zero in waiting:
            (sem.zcnt if zero else sem.ncnt)[num] -= 1
        waiting.clear()

    def attempt() -> int:
        unwait()
        if sem.removed:
            raise KernelError(E.EIDRM)
        sem.settle()
        blocked_at = sem.try_ops(ops, t.proc)
        if blocked_at is None:
            sem.otime = _now(k)
            return 0
        num, op, flg = ops[blocked_at]
        if flg & V.IPC_NOWAIT:
            raise KernelError(E.EAGAIN)
        if deadline is not None and k.monotonic_ns() >= deadline:
            raise KernelError(E.EAGAIN)
        waiting.append((num, op == 0))
        (sem.zcnt if op == 0 else sem.ncnt)[num] += 1

        def ready() -> bool:
            sem.settle()
            if sem.removed or (deadline is not None and k.monotonic_ns() >= deadline):
                return True
            try:
                return sem.try_ops(ops, t.proc, dry=True) is None
            except KernelError:
                return True
        raise Blocked(Wait(ready, "semop", deadline=deadline, interruptible=True),
                      _interruptible(attempt, unwait))
    return attempt()


def _interruptible(attempt: Callable[[], int], cleanup: Callable[[], None]
                   ) -> Callable[[], int]:
    def retry() -> int:
        try:
            return attempt()
        except KernelError:
            cleanup()
            raise
    return retry


def _sem_ds(sem: V.SemSet) -> bytes:
    return _perm_bytes(sem) + struct.pack("<qQqQQQQ", sem.otime, 0, sem.ctime, 0,
                                          len(sem.vals), 0, 0)


def sys_semctl(k: Kernel, t: Task, semid: int, semnum: int, cmd: int, arg: int) -> int:
    ns = V.namespace(k)
    if semid < 0 or cmd < 0:
        raise KernelError(E.EINVAL)
    if cmd in (V.IPC_INFO, 19):  # SEM_INFO
        t.mm.write(arg, struct.pack("<10i", V.SEMMNI * 2, V.SEMMNS, V.SEMMNI, V.SEMMNS,
                                    V.SEMMSL, V.SEMOPM, 32000, 20, V.SEMVMX, V.SEMAEM))
        return max(ns.sem.objs, default=0)
    sem = _semset(k, semid)
    n = len(sem.vals)
    if cmd in (GETVAL, GETPID, GETNCNT, GETZCNT, SETVAL) and not 0 <= semnum < n:
        raise KernelError(E.EINVAL)
    if cmd == V.IPC_RMID:
        _owner_or_root(t, sem)
        ns.sem.remove(sem)
        return 0
    if cmd == V.IPC_SET:
        _set_perm(t, sem, arg)
        sem.ctime = _now(k)
        return 0
    if cmd in (SETVAL, SETALL):
        ns.check(t, sem, 2)
        vals = [arg & 0xFFFFFFFF] if cmd == SETVAL else \
            list(struct.unpack(f"<{n}H", t.mm.read(arg, 2 * n)))
        vals = [v - (1 << 32) if v & (1 << 31) else v for v in vals]
        if any(v < 0 or v > V.SEMVMX for v in vals):
            raise KernelError(E.ERANGE)
        targets = [semnum] if cmd == SETVAL else list(range(n))
        for i, v in zip(targets, vals, strict=True):
            sem.vals[i] = v
            sem.pids[i] = t.proc.pid
            for adj in sem.undo.values():
                adj[i] = 0
        sem.ctime = _now(k)
        return 0
    ns.check(t, sem, 4)
    if cmd == V.IPC_STAT:
        t.mm.write(arg, _sem_ds(sem))
        return 0
    if cmd == GETALL:
        t.mm.write(arg, struct.pack(f"<{n}H", *sem.vals))
        return 0
    simple = {GETVAL: sem.vals, GETPID: sem.pids, GETNCNT: sem.ncnt, GETZCNT: sem.zcnt}
    if cmd in simple:
        return simple[cmd][semnum]
    raise KernelError(E.EINVAL)


# --- message queues -------------------------------------------------------------------
def sys_msgget(k: Kernel, t: Task, key: int, flags: int) -> int:
    ns = V.namespace(k)
    obj = ns.lookup(ns.msg, key, flags)
    if obj is not None:
        ns.check(t, obj, (flags >> 6) & 6 if flags & 0o777 else 0)
        return obj.id
    return ns.msg.add(V.MsgQueue(ns.new_perm(t, key, flags), _now(k)))


def _queue(k: Kernel, msqid: int) -> V.MsgQueue:
    obj = V.namespace(k).msg.get(msqid)
    assert isinstance(obj, V.MsgQueue)
    return obj


def sys_msgsnd(k: Kernel, t: Task, msqid: int, msgp: int, msgsz: int, flags: int) -> int:
    if msgsz > V.MSGMAX or msqid < 0 or msgsz >= 1 << 63:
        raise KernelError(E.EINVAL)
    mtype = struct.unpack("<q", t.mm.read(msgp, 8))[0]
    if mtype < 1:
        raise KernelError(E.EINVAL)
    data = t.mm.read(msgp + 8, msgsz)
    q = _queue(k, msqid)
    V.namespace(k).check(t, q, 2)

    def attempt() -> int:
        if q.removed:
            raise KernelError(E.EIDRM)
        if q.cbytes + len(data) > q.qbytes or len(q.msgs) + 1 > q.qbytes:
            if flags & V.IPC_NOWAIT:
                raise KernelError(E.EAGAIN)
            raise Blocked(Wait(lambda: q.removed or q.cbytes + len(data) <= q.qbytes,
                               "msgsnd"), attempt)
        q.msgs.append(V.Message(mtype, data))
        q.lspid, q.stime = t.proc.pid, _now(k)
        return 0
    return attempt()


def sys_msgrcv(k: Kernel, t: Task, msqid: int, msgp: int, msgsz: int, msgtyp: int,
               flags: int) -> int:
    if msqid < 0 or msgsz >= 1 << 63:
        raise KernelError(E.EINVAL)
    if flags & MSG_COPY:
        raise KernelError(E.ENOSYS if not flags & V.IPC_NOWAIT else E.EINVAL)
    q = _queue(k, msqid)
    V.namespace(k).check(t, q, 4)

    def attempt() -> int:
        if q.removed:
            raise KernelError(E.EIDRM)
        i = q.find(msgtyp, bool(flags & MSG_EXCEPT))
        if i is None:
            if flags & V.IPC_NOWAIT:
                raise KernelError(E.ENOMSG)
            raise Blocked(Wait(lambda: q.removed or q.find(msgtyp, bool(flags & MSG_EXCEPT))
                               is not None, "msgrcv"), attempt)
        m = q.msgs[i]
        if len(m.data) > msgsz and not flags & MSG_NOERROR:
            raise KernelError(E.E2BIG)
        body = m.data[:msgsz]
        t.mm.write(msgp, struct.pack("<q", m.mtype) + body)
        del q.msgs[i]
        q.lrpid, q.rtime = t.proc.pid, _now(k)
        return len(body)
    return attempt()


def sys_msgctl(k: Kernel, t: Task, msqid: int, cmd: int, buf: int) -> int:
    ns = V.namespace(k)
    if msqid < 0 or cmd < 0:
        raise KernelError(E.EINVAL)
    if cmd in (V.IPC_INFO, 12):  # MSG_INFO
        t.mm.write(buf, struct.pack("<8iH2x", 4056, 16384, V.MSGMAX, V.MSGMNB, V.MSGMNI,
                                    16, 8192 * 4, 1, 1 << 15))
        return max(ns.msg.objs, default=0)
    q = _queue(k, msqid)
    if cmd == V.IPC_RMID:
        _owner_or_root(t, q)
        ns.msg.remove(q)
        return 0
    if cmd == V.IPC_SET:
        _set_perm(t, q, buf)
        qbytes = struct.unpack("<Q", t.mm.read(buf + 48 + 24 + 16, 8))[0]
        if qbytes > V.MSGMNB and t.proc.euid != 0:
            raise KernelError(E.EPERM)
        q.qbytes = qbytes
        q.ctime = _now(k)
        return 0
    if cmd == V.IPC_STAT:
        ns.check(t, q, 4)
        t.mm.write(buf, _perm_bytes(q) + struct.pack(
            "<qqqQQQiiQQ", q.stime, q.rtime, q.ctime, q.cbytes, len(q.msgs), q.qbytes,
            q.lspid, q.lrpid, 0, 0))
        return 0
    raise KernelError(E.EINVAL)

