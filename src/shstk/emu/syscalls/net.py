"""Sockets: AF_UNIX (paths, abstract names, socketpair) and a loopback-only AF_INET and
AF_INET6 inside the emulated machine (kernel/sockets.py, kernel/socknames.py).

Nothing reaches the host's network: a non-loopback address is ENETUNREACH, as on a
machine whose only interface is `lo`. Other families are EAFNOSUPPORT.
"""

from __future__ import annotations

import os
import stat as st
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.kernel import Blocked
from shstk.emu.kernel.sockets import (
    AF_INET,
    AF_INET6,
    AF_UNIX,
    SOCK_DGRAM,
    SOCK_SEQPACKET,
    SOCK_STREAM,
    Socket,
    connect_pair,
)
from shstk.emu.kernel.socknames import Addr, Names, is_any, is_loopback, pack, parse
from shstk.emu.kernel.task import Wait
from shstk.emu.syscalls.fs_common import require_writable, resolve_at
from shstk.emu.syscalls.kinds import s32
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

SOCK_TYPE_MASK = 0xF
SOCK_NONBLOCK = F.O_NONBLOCK
SOCK_CLOEXEC = F.O_CLOEXEC
SOMAXCONN = 4096
_FAMILIES = (AF_UNIX, AF_INET, AF_INET6)


def names(k: Kernel) -> Names:
    found: Names = k.__dict__.setdefault("socknames", Names())
    return found


def _new(k: Kernel, t: Task, family: int, stype: int, proto: int, flags: int) -> Socket:
    sock = Socket(names(k), family, stype, proto, flags)
    sock.creds = (t.proc.pid, t.proc.euid, t.proc.egid)
    return sock


def _check_type(k: Kernel, domain: int, stype: int, protocol: int) -> int:
    if domain not in _FAMILIES:
        k.say_once(f"af:{domain}", f"socket family {domain} is not emulated (only AF_UNIX "
                   "and loopback AF_INET/AF_INET6): returning -EAFNOSUPPORT")
        raise KernelError(E.EAFNOSUPPORT)
    if stype & ~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC):
        raise KernelError(E.EINVAL)
    kind = stype & SOCK_TYPE_MASK
    if domain == AF_UNIX:
        if kind not in (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET):
            raise KernelError(E.ESOCKTNOSUPPORT)
        if protocol not in (0, AF_UNIX):
            raise KernelError(E.EPROTONOSUPPORT)
        return kind
    if kind == SOCK_STREAM and protocol in (0, 6):
        return kind
    if kind == SOCK_DGRAM and protocol in (0, 17):
        return kind
    if kind == 3:  # SOCK_RAW: needs CAP_NET_RAW and a real network
        raise KernelError(E.EPERM)
    raise KernelError(E.EPROTONOSUPPORT if kind in (SOCK_STREAM, SOCK_DGRAM)
                      else E.ESOCKTNOSUPPORT)


def sys_socket(k: Kernel, t: Task, domain: int, stype: int, protocol: int) -> int:
    domain, stype, protocol = i32(domain), i32(stype), i32(protocol)
    kind = _check_type(k, domain, stype, protocol)
    sock = _new(k, t, domain, kind, protocol, stype & SOCK_NONBLOCK)
    return t.proc.files.install(sock, cloexec=bool(stype & SOCK_CLOEXEC))


def sys_socketpair(k: Kernel, t: Task, domain: int, stype: int, protocol: int,
                   sv: int) -> int:
    domain, stype = i32(domain), i32(stype)
    kind = _check_type(k, domain, stype, i32(protocol))
    if domain != AF_UNIX:
        raise KernelError(E.EOPNOTSUPP)
    a = _new(k, t, domain, kind, 0, stype & SOCK_NONBLOCK)
    b = _new(k, t, domain, kind, 0, stype & SOCK_NONBLOCK)
    connect_pair(a, b)
    files = t.proc.files
    cloexec = bool(stype & SOCK_CLOEXEC)
    fd0 = files.install(a, cloexec=cloexec)
    fd1 = files.install(b, cloexec=cloexec)
    t.mm.write(sv, fd0.to_bytes(4, "little") + fd1.to_bytes(4, "little"))
    return 0


def sock_of(t: Task, fd: int) -> Socket:
    """sockfd_lookup_light(): EBADF for no descriptor, ENOTSOCK for one that is no socket."""
    f = t.proc.files.get(fd)
    if not isinstance(f, Socket):
        raise KernelError(E.ENOTSOCK)
    return f


def read_addr(t: Task, sock: Socket, addr: int, length: int) -> Addr:
    length = s32(length)
    if length < 0 or length > 128:
        raise KernelError(E.EINVAL)
    return parse(sock.family, t.mm.read(addr, length))


# --- AF_UNIX path names: the one place that touches the file system ---------------------
def unix_key(k: Kernel, t: Task, path: bytes, *, create: bool, mode: int = 0o777) -> object:
    """The namespace key of a sun_path: ("abs", name) or the (dev, ino) of the node.
    create: bind() makes the socket node (EADDRINUSE if the name exists; EROFS outside
    --rw dirs)."""
    if path[:1] == b"\0":
        return ("abs", path)
    if not path:
        raise KernelError(E.ENOENT if not create else E.EINVAL)
    node = resolve_at(k, t, F.AT_FDCWD, os.fsdecode(path), follow=not create,
                      must_exist=not create)
    if create:
        if node.exists:
            raise KernelError(E.EADDRINUSE)
        require_writable(k, node)
        assert node.host is not None
        try:
            os.mknod(node.host, st.S_IFSOCK | (mode & ~t.proc.fs.umask & 0o777))
        except OSError as exc:
            raise KernelError(exc.errno or E.EIO) from None
    if node.host is None:
        raise KernelError(E.ECONNREFUSED)
    try:
        s = os.stat(node.host)
    except OSError as exc:
        raise KernelError(exc.errno or E.ENOENT) from None
    if not st.S_ISSOCK(s.st_mode):
        raise KernelError(E.ECONNREFUSED)
    return ("ino", s.st_dev, s.st_ino)


def sys_bind(k: Kernel, t: Task, fd: int, addr: int, length: int) -> int:
    sock = sock_of(t, fd)
    if sock.family == AF_UNIX and s32(length) == 2:
        if sock.local is None:
            names(k).autobind(sock)
            return 0
        raise KernelError(E.EINVAL)
    a = read_addr(t, sock, addr, length)
    if sock.local is not None:
        raise KernelError(E.EINVAL)
    if sock.family == AF_UNIX:
        raw = a[1]
        assert isinstance(raw, bytes)
        key = unix_key(k, t, raw, create=True)
        names(k).bind_unix(sock, key, a)
    else:
        if a[1] == AF_INET and sock.family == AF_INET6 and s32(length) < 24:
            raise KernelError(E.EINVAL)
        names(k).bind_inet(sock, a)
    return 0


def _autobind(k: Kernel, sock: Socket) -> None:
    if sock.local is not None:
        return
    if sock.family == AF_UNIX:
        return
    wild = ("inet", sock.family, bytes(4 if sock.family == AF_INET else 16), 0)
    names(k).bind_inet(sock, wild)


def sys_listen(k: Kernel, t: Task, fd: int, backlog: int) -> int:
    sock = sock_of(t, fd)
    if sock.stype not in (SOCK_STREAM, SOCK_SEQPACKET):
        raise KernelError(E.EOPNOTSUPP)
    if sock.connected:
        raise KernelError(E.EINVAL)
    if sock.local is None:
        if sock.family == AF_UNIX:
            raise KernelError(E.EINVAL)
        _autobind(k, sock)
    sock.listening = True
    sock.backlog_max = min(max(i32(backlog), 0), SOMAXCONN)
    sock.creds = (t.proc.pid, t.proc.euid, t.proc.egid)
    return 0


def _target(k: Kernel, t: Task, sock: Socket, a: Addr) -> Socket | None:
    """The socket an address names (None: a UDP port nobody bound)."""
    if sock.family == AF_UNIX:
        raw = a[1]
        assert isinstance(raw, bytes)
        return names(k).lookup_unix(unix_key(k, t, raw, create=False))
    _tag, fam, ip, _port = a
    assert isinstance(ip, bytes)
    if not is_loopback(fam, ip) and not is_any(ip):
        raise KernelError(E.ENETUNREACH)
    if is_any(ip):
        a = ("inet", fam, b"\x7f\0\0\x01" if fam == AF_INET else bytes(15) + b"\x01", a[3])
    found = names(k).find_inet(sock.stype, a, listening=sock.stype != SOCK_DGRAM)
    if found is None and sock.stype != SOCK_DGRAM:
        raise KernelError(E.ECONNREFUSED)
    return found


def sys_connect(k: Kernel, t: Task, fd: int, addr: int, length: int) -> int:
    sock = sock_of(t, fd)
    a = read_addr(t, sock, addr, length)
    if sock.stype == SOCK_DGRAM:
        if a[0] == "unix" or a[1] != 0:
            _target(k, t, sock, a)  # a missing unix name is an error at connect
        _autobind(k, sock)
        sock.peer_addr = a
        return 0
    if sock.listening:
        raise KernelError(E.EINVAL)
    if sock.connected:
        raise KernelError(E.EISCONN)
    listener = _target(k, t, sock, a)
    assert listener is not None
    if not listener.listening:
        raise KernelError(E.ECONNREFUSED)
    if listener.stype != sock.stype:
        raise KernelError(E.EPROTOTYPE)
    nonblock = bool(sock.flags & F.O_NONBLOCK)

    def attempt() -> int:
        if listener.closed or not listener.listening:
            return -E.ECONNREFUSED
        if len(listener.backlog) > listener.backlog_max:
            if nonblock:
                raise KernelError(E.EAGAIN)
            raise Blocked(Wait(lambda: listener.closed or
                               len(listener.backlog) <= listener.backlog_max, "connect"),
                          attempt)
        _autobind(k, sock)
        mine = sock.local
        if mine is not None and isinstance(mine[2], bytes) and is_any(mine[2]):
            sock.local = ("inet", a[1], _connect_ip(a), mine[3])
        server = Socket(names(k), sock.family if sock.family == AF_UNIX else
                        listener.family, sock.stype, sock.proto, 0)
        server.creds = listener.creds
        server.opts = dict(listener.opts)
        if sock.family == AF_UNIX:
            server.local = listener.local
        else:
            server.local = ("inet", a[1], _connect_ip(a), listener.local[3]
                            if listener.local else 0)
        connect_pair(sock, server)
        listener.backlog.append(server)
        if nonblock and sock.family != AF_UNIX:
            return -E.EINPROGRESS
        return 0

    return attempt()


def _connect_ip(a: Addr) -> bytes:
    ip = a[2]
    assert isinstance(ip, bytes)
    if is_any(ip):
        return b"\x7f\0\0\x01" if a[1] == AF_INET else bytes(15) + b"\x01"
    return ip


def sys_accept4(k: Kernel, t: Task, fd: int, addr: int, len_addr: int, flags: int) -> int:
    if flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK):
        raise KernelError(E.EINVAL)
    sock = sock_of(t, fd)
    if sock.stype not in (SOCK_STREAM, SOCK_SEQPACKET):
        raise KernelError(E.EOPNOTSUPP)
    if not sock.listening:
        raise KernelError(E.EINVAL)

    def attempt() -> int:
        if not sock.backlog:
            if sock.flags & F.O_NONBLOCK:
                raise KernelError(E.EAGAIN)
            raise Blocked(Wait(lambda: bool(sock.backlog) or not sock.listening, "accept"),
                          attempt)
        conn = sock.backlog.popleft()
        conn.flags = F.O_RDWR | (flags & SOCK_NONBLOCK)
        newfd = t.proc.files.install(conn, cloexec=bool(flags & SOCK_CLOEXEC))
        if addr:
            peer = conn.peer
            put_sockaddr(t, addr, len_addr, pack(sock.family, peer.local if peer else None))
        return newfd

    return attempt()


def sys_accept(k: Kernel, t: Task, fd: int, addr: int, len_addr: int) -> int:
    return sys_accept4(k, t, fd, addr, len_addr, 0)


def put_sockaddr(t: Task, addr: int, len_addr: int, raw: bytes) -> None:
    """move_addr_to_user(): copy what fits, report the full length."""
    length = s32(t.mm.read_u32(len_addr))
    if length < 0:
        raise KernelError(E.EINVAL)
    if length:
        t.mm.write(addr, raw[:length])
    t.mm.write_u32(len_addr, len(raw))


def sys_getsockname(k: Kernel, t: Task, fd: int, addr: int, len_addr: int) -> int:
    sock = sock_of(t, fd)
    put_sockaddr(t, addr, len_addr, pack(sock.family, sock.local))
    return 0


def sys_getpeername(k: Kernel, t: Task, fd: int, addr: int, len_addr: int) -> int:
    sock = sock_of(t, fd)
    if sock.peer is not None:
        raw = pack(sock.family, sock.peer.local)
    elif sock.peer_addr is not None:
        raw = pack(sock.family, sock.peer_addr)
    else:
        raise KernelError(E.ENOTCONN)
    put_sockaddr(t, addr, len_addr, raw)
    return 0


def sys_shutdown(k: Kernel, t: Task, fd: int, how: int) -> int:
    sock = sock_of(t, fd)
    if how not in (0, 1, 2):
        raise KernelError(E.EINVAL)
    sock.shutdown(how)
    return 0
