"""POSIX message queues: mq_open, mq_unlink, mq_timedsend, mq_timedreceive, mq_notify,
mq_getsetattr (ipc/mqueue.c), on kernel/mqueue.py."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel import mqueue as MQ
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.kernel import Blocked
from shstk.emu.kernel.task import Wait

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

_ATTR = struct.Struct("<qqqq32x")  # struct mq_attr
NAME_MAX = 255


def _name(t: Task, addr: int) -> str:
    raw = t.mm.read_cstring(addr, 4096)
    if len(raw) > NAME_MAX:
        raise KernelError(E.ENAMETOOLONG)
    if not raw:
        raise KernelError(E.ENOENT)
    if b"/" in raw or raw in (b".", b".."):
        raise KernelError(E.EACCES if b"/" in raw else E.EINVAL)
    return raw.decode("utf-8", "surrogateescape")


def sys_mq_open(k: Kernel, t: Task, name_addr: int, oflag: int, mode: int, attr: int) -> int:
    name = _name(t, name_addr)
    qs = MQ.queues(k)
    q = qs.get(name)
    acc = oflag & F.O_ACCMODE
    if acc == F.O_ACCMODE:
        raise KernelError(E.EINVAL)
    if q is not None:
        if oflag & F.O_CREAT and oflag & F.O_EXCL:
            raise KernelError(E.EEXIST)
    elif not oflag & F.O_CREAT:
        raise KernelError(E.ENOENT)
    else:
        maxmsg, msgsize = MQ.DFLT_MAXMSG, MQ.DFLT_MSGSIZE
        if attr:
            _f, maxmsg, msgsize, _c = _ATTR.unpack(t.mm.read(attr, _ATTR.size))
            if maxmsg <= 0 or msgsize <= 0:
                raise KernelError(E.EINVAL)
            if maxmsg > MQ.HARD_MAXMSG or msgsize > MQ.HARD_MSGSIZE:
                raise KernelError(E.EINVAL)
        q = MQ.Queue(name, maxmsg, msgsize, mode & ~t.proc.fs.umask & 0o777,
                     t.proc.euid, t.proc.egid)
        qs[name] = q
        return t.proc.files.install(MQ.MqFile(q, acc | (oflag & F.O_NONBLOCK)),
                                    cloexec=True)
    want = {F.O_RDONLY: 4, F.O_WRONLY: 2, F.O_RDWR: 6}[acc]
    if t.proc.euid != 0:
        bits = q.mode >> 6 if t.proc.euid == q.uid else \
            q.mode >> 3 if t.proc.egid == q.gid else q.mode
        if want & ~bits & 7:
            raise KernelError(E.EACCES)
    return t.proc.files.install(MQ.MqFile(q, acc | (oflag & F.O_NONBLOCK)), cloexec=True)


def sys_mq_unlink(k: Kernel, t: Task, name_addr: int) -> int:
    name = _name(t, name_addr)
    if MQ.queues(k).pop(name, None) is None:
        raise KernelError(E.ENOENT)
    return 0


def _mqd(t: Task, mqdes: int) -> MQ.MqFile:
    f = t.proc.files.get(mqdes)
    if not isinstance(f, MQ.MqFile):
        raise KernelError(E.EBADF)
    return f


def _deadline(k: Kernel, t: Task, addr: int) -> int | None:
    """An absolute CLOCK_REALTIME timeout as a monotonic deadline."""
    if not addr:
        return None
    sec, nsec = struct.unpack("<qq", t.mm.read(addr, 16))
    if sec < 0 or not 0 <= nsec < 1_000_000_000:
        raise KernelError(E.EINVAL)
    return k.monotonic_ns() + (sec * 1_000_000_000 + nsec - k.realtime_ns())


def sys_mq_timedsend(k: Kernel, t: Task, mqdes: int, msg: int, length: int, prio: int,
                     timeout: int) -> int:
    f = _mqd(t, mqdes)
    if prio >= MQ.MQ_PRIO_MAX:
        raise KernelError(E.EINVAL)
    if not f.flags & F.O_ACCMODE:
        raise KernelError(E.EBADF)
    q = f.q
    if length > q.msgsize:
        raise KernelError(E.EMSGSIZE)
    data = t.mm.read(msg, length)
    full = len(q.msgs) >= q.maxmsg
    deadline = _deadline(k, t, timeout) if full and not f.flags & F.O_NONBLOCK else None

    def attempt() -> int:
        if len(q.msgs) >= q.maxmsg:
            if f.flags & F.O_NONBLOCK:
                raise KernelError(E.EAGAIN)
            if deadline is not None and k.monotonic_ns() >= deadline:
                raise KernelError(E.ETIMEDOUT)
            raise Blocked(Wait(lambda: len(q.msgs) < q.maxmsg, "mq_timedsend",
                               deadline=deadline), attempt)
        q.put(k, data, prio)
        return 0
    return attempt()


def sys_mq_timedreceive(k: Kernel, t: Task, mqdes: int, msg: int, length: int,
                        prio_addr: int, timeout: int) -> int:
    f = _mqd(t, mqdes)
    if f.flags & F.O_ACCMODE == F.O_WRONLY:
        raise KernelError(E.EBADF)
    q = f.q
    if length < q.msgsize:
        raise KernelError(E.EMSGSIZE)
    deadline = _deadline(k, t, timeout) if not q.msgs and not f.flags & F.O_NONBLOCK \
        else None
    counted = [False]

    def attempt() -> int:
        if counted[0]:
            q.receivers -= 1
            counted[0] = False
        if not q.msgs:
            if f.flags & F.O_NONBLOCK:
                raise KernelError(E.EAGAIN)
            if deadline is not None and k.monotonic_ns() >= deadline:
                raise KernelError(E.ETIMEDOUT)
            q.receivers += 1
            counted[0] = True
            raise Blocked(Wait(lambda: bool(q.msgs), "mq_timedreceive", deadline=deadline),
                          attempt)
        prio, data = q.get()
        t.mm.write(msg, data)
        if prio_addr:
            t.mm.write(prio_addr, struct.pack("<I", prio))
        return len(data)
    return attempt()


def sys_mq_notify(k: Kernel, t: Task, mqdes: int, sevp: int) -> int:
    notify = signo = value = 0
    if sevp:
        value, signo, notify = struct.unpack("<qii", t.mm.read(sevp, 16))
        if notify not in (MQ.SIGEV_SIGNAL, MQ.SIGEV_NONE, MQ.SIGEV_THREAD):
            raise KernelError(E.EINVAL)
        if notify == MQ.SIGEV_SIGNAL and not 1 <= signo <= 64:
            raise KernelError(E.EINVAL)
        if notify == MQ.SIGEV_THREAD:
            raise KernelError(E.EINVAL)  # needs a netlink socket, which this kernel lacks
    q = _mqd(t, mqdes).q
    if not sevp:
        if q.notify is not None and q.notify.proc is t.proc:
            q.notify = None
        return 0
    if q.notify is not None and not q.notify.proc.zombie:
        raise KernelError(E.EBUSY)
    q.notify = MQ.Notify(t.proc, notify, signo, value)
    return 0


def sys_mq_getsetattr(k: Kernel, t: Task, mqdes: int, new: int, old: int) -> int:
    newflags = None
    if new:
        newflags = _ATTR.unpack(t.mm.read(new, _ATTR.size))[0]
        if newflags & ~F.O_NONBLOCK:
            raise KernelError(E.EINVAL)
    f = _mqd(t, mqdes)
    q = f.q
    if old:
        t.mm.write(old, _ATTR.pack(f.flags & F.O_NONBLOCK, q.maxmsg, q.msgsize, len(q.msgs)))
    if newflags is not None:
        f.flags = (f.flags & ~F.O_NONBLOCK) | newflags
    return 0
