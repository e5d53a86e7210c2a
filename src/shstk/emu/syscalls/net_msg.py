"""Socket data and options: send/recv (to, from, msg, mmsg) with SCM_RIGHTS and
SCM_CREDENTIALS, MSG_PEEK/DONTWAIT/NOSIGNAL/TRUNC/WAITALL, SIGPIPE; get/setsockopt."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.abi import signals as S
from shstk.emu.kernel.entry import Blocked
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import OpenFile, WouldBlock, release
from shstk.emu.kernel.signal import SigInfo
from shstk.emu.kernel.sockets import AF_UNIX, RCVBUF, SOCK_DGRAM, SOCK_STREAM, Msg, Socket
from shstk.emu.kernel.socknames import pack
from shstk.emu.kernel.task import Wait
from shstk.emu.syscalls.fs_common import blocking
from shstk.emu.syscalls.kinds import s32
from shstk.emu.syscalls.net import _autobind, _target, put_sockaddr, read_addr, sock_of

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

MSG_OOB, MSG_PEEK, MSG_CTRUNC, MSG_TRUNC = 0x1, 0x2, 0x8, 0x20
MSG_DONTWAIT, MSG_EOR, MSG_WAITALL, MSG_NOSIGNAL = 0x40, 0x80, 0x100, 0x4000
MSG_CMSG_CLOEXEC = 0x40000000
SOL_SOCKET, SCM_RIGHTS, SCM_CREDENTIALS = 1, 1, 2
SCM_MAX_FD = 253


def _nonblock(sock: Socket, flags: int) -> bool:
    return bool(sock.flags & F.O_NONBLOCK or flags & MSG_DONTWAIT)


def _send(k: Kernel, t: Task, sock: Socket, data: bytes, flags: int, dest: int, dlen: int,
          rights: list[OpenFile], creds: tuple[int, int, int] | None) -> int:
    if flags & MSG_OOB:
        raise KernelError(E.EOPNOTSUPP)
    target = None
    src = None
    if sock.stype == SOCK_DGRAM:
        a = read_addr(t, sock, dest, dlen) if dest else sock.peer_addr
        if a is None and sock.peer is None:
            raise KernelError(E.ENOTCONN if sock.family == AF_UNIX else E.EDESTADDRREQ)
        if a is not None:
            _autobind(k, sock)
            target = _target(k, t, sock, a)
            if target is None:
                return len(data)  # no UDP socket on that port: dropped
            src = sock.local
            if src is not None and src[0] == "inet" and src[2] in (bytes(4), bytes(16)):
                src = ("inet", a[1], a[2], src[3])  # the source a loopback route picks
    elif dest and sock.family == AF_UNIX and not sock.connected:
        raise KernelError(E.EOPNOTSUPP)
    if sock.family == AF_UNIX and creds is None and (
            (target is not None and _passcred(target)) or
            (sock.peer is not None and _passcred(sock.peer))):
        creds = (t.proc.pid, t.proc.uid, t.proc.gid)

    def op() -> int:
        try:
            return sock.send(data, nonblock=_nonblock(sock, flags), rights=rights,
                             creds=creds, dest=target, src=src)
        except KernelError as exc:
            if exc.errno == E.EPIPE and not flags & MSG_NOSIGNAL:
                k.signals.send_thread(t, SigInfo(S.SIGPIPE, S.SI_USER, pid=t.pid))
            raise

    return _timed(k, t, sock, op, SO_SNDTIMEO)


def _passcred(sock: Socket) -> bool:
    return sock.opts.get((SOL_SOCKET, 16), b"\0")[:1] != b"\0"


Finish = Callable[[bytes, "Msg | None", int], int]


def _recv(k: Kernel, t: Task, sock: Socket, n: int, flags: int, finish: Finish) -> int:
    """Receive and copy out as one operation: a blocked receive retries all of it."""
    def op() -> int:
        data, msg, full = sock.recv(n, nonblock=_nonblock(sock, flags),
                                    peek=bool(flags & MSG_PEEK),
                                    waitall=bool(flags & MSG_WAITALL))
        return finish(data, msg, full)

    return _timed(k, t, sock, op, SO_RCVTIMEO)


def _timed(k: Kernel, t: Task, sock: Socket, op: Callable[[], int], opt: int) -> int:
    """A blocking send/receive bounded by SO_SNDTIMEO/SO_RCVTIMEO: EAGAIN when it runs out
    (sock_sndtimeo/sock_rcvtimeo; a partial stream transfer returns its count, as op does)."""
    raw = sock.opts.get((SOL_SOCKET, opt))
    sec, usec = struct.unpack("<qq", raw[:16].ljust(16, b"\0")) if raw else (0, 0)
    if sec <= 0 and usec <= 0:
        return blocking(t, op)  # 0: wait for ever
    deadline = k.monotonic_ns() + sec * 10**9 + usec * 1000

    def attempt() -> int:
        try:
            return op()
        except WouldBlock as wb:
            if k.monotonic_ns() >= deadline:
                raise KernelError(E.EAGAIN) from None
            raise Blocked(Wait(wb.ready, "io", host_fd=wb.host_fd, host_write=wb.write,
                               deadline=deadline), attempt) from None

    return attempt()


def sys_sendto(k: Kernel, t: Task, fd: int, buf: int, length: int, flags: int, dest: int,
               addrlen: int) -> int:
    sock = sock_of(t, fd)
    data = t.mm.read(buf, min(length, 0x7FFFF000))
    return _send(k, t, sock, data, flags, dest, addrlen, [], None)


def sys_recvfrom(k: Kernel, t: Task, fd: int, buf: int, length: int, flags: int, src: int,
                 addrlen: int) -> int:
    sock = sock_of(t, fd)

    def finish(data: bytes, msg: Msg | None, full: int) -> int:
        t.mm.write(buf, data)
        if src and addrlen:
            put_sockaddr(t, src, addrlen, pack(sock.family, _sender(sock, msg)))
        if not flags & MSG_PEEK:
            _drop_rights(msg)
        return full if flags & MSG_TRUNC and sock.stype != SOCK_STREAM else len(data)

    return _recv(k, t, sock, length, flags, finish)


def _sender(sock: Socket, msg: object) -> tuple[object, ...] | None:
    addr = getattr(msg, "addr", None)
    if addr is not None:
        return addr
    return sock.peer.local if sock.peer is not None else None


def _drop_rights(msg: object) -> None:
    for f in getattr(msg, "rights", []) or []:
        release(f)


def _iov(t: Task, iov: int, iovlen: int) -> list[tuple[int, int]]:
    if iovlen > 1024:
        raise KernelError(E.EMSGSIZE)
    raw = t.mm.read(iov, 16 * iovlen)
    return [struct.unpack_from("<QQ", raw, 16 * i) for i in range(iovlen)]


def _msghdr(t: Task, msg: int) -> tuple[int, int, int, int, int, int, int]:
    name, namelen, iov, iovlen, control, controllen, mflags = struct.unpack(
        "<QI4xQQQQI4x", t.mm.read(msg, 56))
    return name, namelen, iov, iovlen, control, controllen, mflags


def _parse_cmsgs(k: Kernel, t: Task, control: int,
                 clen: int) -> tuple[list[OpenFile], tuple[int, int, int] | None]:
    raw = t.mm.read(control, clen) if clen else b""
    rights: list[OpenFile] = []
    creds = None
    off = 0
    while off + 16 <= len(raw):
        ln, level, ctype = struct.unpack_from("<QII", raw, off)
        if ln < 16 or off + ln > len(raw):
            raise KernelError(E.EINVAL)
        body = raw[off + 16:off + ln]
        if level == SOL_SOCKET and ctype == SCM_RIGHTS:
            fds = [s32(int.from_bytes(body[i:i + 4], "little"))
                   for i in range(0, len(body) - 3, 4)]
            if len(fds) > SCM_MAX_FD:
                raise KernelError(E.EINVAL)
            rights += [t.proc.files.get(fd) for fd in fds]
        elif level == SOL_SOCKET and ctype == SCM_CREDENTIALS:
            pid, uid, gid = struct.unpack_from("<iII", body)
            mine = (pid, uid, gid) == (t.proc.pid, t.proc.uid, t.proc.gid)
            if not mine and t.proc.euid != 0:
                raise KernelError(E.EPERM)
            creds = (pid, uid, gid)
        else:
            raise KernelError(E.EINVAL)
        off += (ln + 7) & ~7
    return rights, creds


def sys_sendmsg(k: Kernel, t: Task, fd: int, msg: int, flags: int) -> int:
    sock = sock_of(t, fd)
    name, namelen, iov, iovlen, control, clen, _f = _msghdr(t, msg)
    data = b"".join(t.mm.read(base, ln) for base, ln in _iov(t, iov, iovlen))
    rights, creds = _parse_cmsgs(k, t, control, clen)
    if (rights or creds) and sock.family != AF_UNIX:
        raise KernelError(E.EINVAL)
    return _send(k, t, sock, data, flags, name, namelen, rights, creds)


def sys_recvmsg(k: Kernel, t: Task, fd: int, msg: int, flags: int) -> int:
    sock = sock_of(t, fd)
    name, namelen, iov, iovlen, control, clen, _f = _msghdr(t, msg)
    vecs = _iov(t, iov, iovlen)
    total = sum(ln for _b, ln in vecs)

    def finish(data: bytes, m: Msg | None, full: int) -> int:
        off = 0
        for base, ln in vecs:
            if off >= len(data):
                break
            t.mm.write(base, data[off:off + ln])
            off += ln
        out_flags = 0
        if sock.stype != SOCK_STREAM and full > len(data):
            out_flags |= MSG_TRUNC
        if name and namelen:
            raw = pack(sock.family, _sender(sock, m))
            t.mm.write(name, raw[:namelen])
            t.mm.write_u32(msg + 8, len(raw))
        elif name == 0:
            t.mm.write_u32(msg + 8, 0)
        cmsgs = b""
        creds = getattr(m, "creds", None)
        if creds is not None and _passcred(sock):
            cmsgs += _cmsg(SCM_CREDENTIALS, struct.pack("<iII", *creds))
        rights = list(getattr(m, "rights", []) or [])
        if rights and not flags & MSG_PEEK:
            room = max(0, (clen - len(cmsgs) - 16) // 4)
            fds = []
            for f in rights[:room]:
                fds.append(t.proc.files.install(f, cloexec=bool(flags & MSG_CMSG_CLOEXEC)))
            for f in rights:
                release(f)  # the in-flight reference
            if fds:
                cmsgs += _cmsg(SCM_RIGHTS, b"".join(fd.to_bytes(4, "little") for fd in fds))
            if len(fds) < len(rights):
                out_flags |= MSG_CTRUNC
        if len(cmsgs) > clen:
            cmsgs = cmsgs[:0]
            out_flags |= MSG_CTRUNC
        if cmsgs:
            t.mm.write(control, cmsgs)
        t.mm.write(msg + 40, len(cmsgs).to_bytes(8, "little"))
        t.mm.write_u32(msg + 48, out_flags)
        return full if flags & MSG_TRUNC and sock.stype != SOCK_STREAM else len(data)

    return _recv(k, t, sock, total, flags, finish)


def _cmsg(ctype: int, body: bytes) -> bytes:
    ln = 16 + len(body)
    return struct.pack("<QII", ln, SOL_SOCKET, ctype) + body + bytes((-ln) % 8)


def sys_sendmmsg(k: Kernel, t: Task, fd: int, vec: int, vlen: int, flags: int) -> int:
    sock_of(t, fd)
    sent = 0
    for i in range(min(vlen, 1024)):
        try:
            n = sys_sendmsg(k, t, fd, vec + 64 * i, flags)
        except KernelError:
            if sent:
                break
            raise
        t.mm.write_u32(vec + 64 * i + 56, n)
        sent += 1
    return sent


def sys_recvmmsg(k: Kernel, t: Task, fd: int, vec: int, vlen: int, flags: int,
                 timeout: int) -> int:
    sock_of(t, fd)
    got = 0
    for i in range(min(vlen, 1024)):
        try:
            n = sys_recvmsg(k, t, fd, vec + 64 * i, flags if not got else flags | MSG_DONTWAIT)
        except KernelError as exc:
            if got and exc.errno == E.EAGAIN:
                break
            raise
        t.mm.write_u32(vec + 64 * i + 56, n)
        got += 1
    return got


# --- options ----------------------------------------------------------------------------
SO_TYPE, SO_ERROR, SO_SNDBUF, SO_RCVBUF = 3, 4, 7, 8
SO_PEERCRED, SO_ACCEPTCONN, SO_PROTOCOL, SO_DOMAIN, SO_LINGER = 17, 30, 38, 39, 13
SO_RCVTIMEO, SO_SNDTIMEO, SO_PEERSEC = 20, 21, 31
_LEVELS = (SOL_SOCKET, 0, 6, 17, 41)  # SOL_SOCKET, IP, TCP, UDP, IPV6


def _value(sock: Socket, level: int, name: int) -> bytes:
    if level == SOL_SOCKET:
        fixed = {SO_TYPE: sock.stype, SO_ERROR: 0, SO_PROTOCOL: _proto(sock),
                 SO_DOMAIN: sock.family, SO_ACCEPTCONN: int(sock.listening)}
        if name in fixed:
            return fixed[name].to_bytes(4, "little")
        if name == SO_PEERCRED:
            creds = sock.peer_creds or (0, 0xFFFFFFFF, 0xFFFFFFFF)
            return struct.pack("<iII", *creds)
        if name == SO_PEERSEC:
            raise KernelError(E.ENOPROTOOPT)
        if name in (SO_LINGER,):
            return sock.opts.get((level, name), bytes(8))
        if name in (SO_RCVTIMEO, SO_SNDTIMEO):
            return sock.opts.get((level, name), bytes(16))
        if name in (SO_SNDBUF, SO_RCVBUF) and (level, name) not in sock.opts:
            return RCVBUF.to_bytes(4, "little")
    return sock.opts.get((level, name), bytes(4))


def _proto(sock: Socket) -> int:
    if sock.family == AF_UNIX:
        return 0
    return 6 if sock.stype == SOCK_STREAM else 17


def sys_getsockopt(k: Kernel, t: Task, fd: int, level: int, name: int, val: int,
                   len_addr: int) -> int:
    sock = sock_of(t, fd)
    length = s32(t.mm.read_u32(len_addr))
    if length < 0:
        raise KernelError(E.EINVAL)
    if level not in _LEVELS or (sock.family == AF_UNIX and level != SOL_SOCKET):
        raise KernelError(E.EOPNOTSUPP if sock.family == AF_UNIX else E.ENOPROTOOPT)
    raw = _value(sock, level, name)
    length = min(length, len(raw))
    t.mm.write(val, raw[:length])
    t.mm.write_u32(len_addr, length)
    return 0


def sys_setsockopt(k: Kernel, t: Task, fd: int, level: int, name: int, val: int,
                   length: int) -> int:
    sock = sock_of(t, fd)
    length = s32(length)
    if length < 0:
        raise KernelError(E.EINVAL)
    if level not in _LEVELS or (sock.family == AF_UNIX and level not in (SOL_SOCKET,)):
        raise KernelError(E.EOPNOTSUPP if sock.family == AF_UNIX else E.ENOPROTOOPT)
    if level == SOL_SOCKET and name in (SO_TYPE, SO_PROTOCOL, SO_DOMAIN, SO_PEERCRED,
                                        SO_ACCEPTCONN, SO_ERROR):
        raise KernelError(E.ENOPROTOOPT)
    if length < 4 and not (level != SOL_SOCKET and length >= 1):
        raise KernelError(E.EINVAL)
    raw = t.mm.read(val, min(length, 64))
    if level == SOL_SOCKET and name in (SO_RCVTIMEO, SO_SNDTIMEO):
        if length < 16:
            raise KernelError(E.EINVAL)  # sock_copy_user_timeval: a struct timeval
        if not 0 <= struct.unpack_from("<q", raw, 8)[0] < 10**6:
            raise KernelError(E.EDOM)
    if len(raw) < 4:
        raw = raw + bytes(4 - len(raw))
    sock.opts[(level, name)] = raw
    return 0
