"""Sockets: only what programs do on a machine without network services.

AF_UNIX sockets exist (glibc's NSS probes nscd through one, and finding no daemon is
normal: ENOENT or ECONNREFUSED); socketpair gives a connected pair inside the machine.
Other families are not emulated: EAFNOSUPPORT, with one diagnostic line.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import OpenFile, StatResult
from shstk.emu.kernel.pipe import Pipe, PipeEnd
from shstk.emu.syscalls.fs_common import blocking, user_buffer
from shstk.emu.syscalls.kinds import s32
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

AF_UNIX = 1
SOCK_TYPE_MASK = 0xF
SOCK_STREAM = 1
SOCK_DGRAM = 2
SOCK_SEQPACKET = 5
SOCK_NONBLOCK = F.O_NONBLOCK
SOCK_CLOEXEC = F.O_CLOEXEC
S_IFSOCK = 0o140000


class UnixSocket(OpenFile):
    """An unconnected AF_UNIX socket: nothing in this machine listens."""

    kind = "socket"

    def __init__(self, flags: int, stype: int = SOCK_STREAM) -> None:
        super().__init__("socket:[unix]", F.O_RDWR | flags)
        self.stype = stype

    def read(self, n: int) -> bytes:
        raise KernelError(E.ENOTCONN)

    def write(self, data: bytes) -> int:
        raise KernelError(E.ENOTCONN)

    def stat(self) -> StatResult:
        return StatResult(0x8, 0, S_IFSOCK | 0o777, 1, 0, 0, 0, 0, 4096, 0, 0, 0, 0)


class SocketEnd(PipeEnd):
    """One end of a socketpair: reads one pipe, writes the other."""

    kind = "socket"

    def __init__(self, rx: Pipe, tx: Pipe, flags: int, stype: int = SOCK_STREAM) -> None:
        super().__init__(rx, F.O_RDWR | flags, write_end=False)
        self.stype = stype
        self.tx = PipeEnd(tx, F.O_WRONLY | flags, write_end=True)
        self.path = f"socket:[{rx.ino}]"

    @property
    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:
        self.tx.flags = self.flags
        return self.tx.write(data)

    def poll(self) -> int:
        return (super().poll() & ~F.POLLOUT) | (self.tx.poll() & F.POLLOUT)

    def on_last_close(self) -> None:
        super().on_last_close()
        self.tx.on_last_close()

    def stat(self) -> StatResult:
        return StatResult(0x8, self.pipe.ino, S_IFSOCK | 0o777, 1, 0, 0, 0, 0, 4096, 0, 0, 0,
                          0)


def _family(k: Kernel, domain: int) -> None:
    if domain != AF_UNIX:
        k.say_once(f"af:{domain}", f"socket family {domain} is not emulated (no networking): "
                   "returning -EAFNOSUPPORT")
        raise KernelError(E.EAFNOSUPPORT)


def sys_socket(k: Kernel, t: Task, domain: int, stype: int, protocol: int) -> int:
    domain, stype = i32(domain), i32(stype)
    _family(k, domain)
    if stype & SOCK_TYPE_MASK not in (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET):
        raise KernelError(E.EINVAL)
    sock = UnixSocket(stype & SOCK_NONBLOCK, stype & SOCK_TYPE_MASK)
    return t.proc.files.install(sock, cloexec=bool(stype & SOCK_CLOEXEC))


def sys_socketpair(k: Kernel, t: Task, domain: int, stype: int, protocol: int,
                   sv: int) -> int:
    domain, stype = i32(domain), i32(stype)
    _family(k, domain)
    if stype & SOCK_TYPE_MASK not in (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET):
        raise KernelError(E.EINVAL)
    a, b = Pipe(), Pipe()
    k.pipe_ino += 2
    a.ino, b.ino = k.pipe_ino - 1, k.pipe_ino
    flags = stype & SOCK_NONBLOCK
    files = t.proc.files
    cloexec = bool(stype & SOCK_CLOEXEC)
    kind = stype & SOCK_TYPE_MASK
    fd0 = files.install(SocketEnd(a, b, flags, kind), cloexec=cloexec)
    fd1 = files.install(SocketEnd(b, a, flags, kind), cloexec=cloexec)
    t.mm.write(sv, fd0.to_bytes(4, "little") + fd1.to_bytes(4, "little"))
    return 0


def sys_connect(k: Kernel, t: Task, fd: int, addr: int, addrlen: int) -> int:
    f = t.proc.files.get(fd)
    if not isinstance(f, UnixSocket):
        raise KernelError(E.ENOTSOCK if not isinstance(f, SocketEnd) else E.EISCONN)
    raw = t.mm.read(addr, min(i32(addrlen), 110))
    if len(raw) < 2 or int.from_bytes(raw[:2], "little") != AF_UNIX:
        raise KernelError(E.EAFNOSUPPORT)
    path = raw[2:].split(b"\0", 1)[0]
    if not raw[2:3] or raw[2:3] == b"\0":
        raise KernelError(E.ECONNREFUSED)  # abstract socket: nobody listens
    k.vfs.resolve(t.proc.fs.cwd, os.fsdecode(path), task=t)  # ENOENT if missing
    raise KernelError(E.ECONNREFUSED)


def _socket(t: Task, fd: int) -> UnixSocket | SocketEnd:
    """sockfd_lookup_light(): EBADF for no descriptor, ENOTSOCK for one that is no socket."""
    f = t.proc.files.get(fd)
    if not isinstance(f, (UnixSocket, SocketEnd)):
        raise KernelError(E.ENOTSOCK)
    return f


def _not_connected(t: Task, fd: int) -> int:
    _socket(t, fd)
    raise KernelError(E.ENOTCONN)


def _not_emulated(k: Kernel, name: str) -> int:
    k.say_once(f"net:{name}", f"{name} on a socket is not emulated (no networking): "
               "returning -ENOSYS")
    raise KernelError(E.ENOSYS)


def _put_sockaddr(t: Task, addr: int, len_addr: int, family: int) -> int:
    """move_addr_to_user() of an unnamed AF_UNIX address: the family alone, 2 bytes."""
    klen = 2
    length = s32(t.mm.read_u32(len_addr))
    if length >= 0:
        t.mm.write_u32(len_addr, klen)
    if length < 0:
        raise KernelError(E.EINVAL)
    if length:
        t.mm.write(addr, family.to_bytes(2, "little")[:min(length, klen)])
    return 0


def sys_getsockname(k: Kernel, t: Task, fd: int, addr: int, len_addr: int) -> int:
    _socket(t, fd)
    return _put_sockaddr(t, addr, len_addr, AF_UNIX)


def sys_getpeername(k: Kernel, t: Task, fd: int, addr: int, len_addr: int) -> int:
    if not isinstance(_socket(t, fd), SocketEnd):
        raise KernelError(E.ENOTCONN)
    return _put_sockaddr(t, addr, len_addr, AF_UNIX)


SOL_SOCKET = 1
SO_TYPE, SO_ERROR, SO_PROTOCOL, SO_DOMAIN = 3, 4, 38, 39


def sys_getsockopt(k: Kernel, t: Task, fd: int, level: int, name: int, val: int,
                   len_addr: int) -> int:
    sock = _socket(t, fd)
    if level != SOL_SOCKET:
        raise KernelError(E.EOPNOTSUPP)  # AF_UNIX has no options of its own
    length = s32(t.mm.read_u32(len_addr))
    if length < 0:
        raise KernelError(E.EINVAL)
    values = {SO_TYPE: sock.stype, SO_ERROR: 0, SO_PROTOCOL: 0, SO_DOMAIN: AF_UNIX}
    if name not in values:
        return _not_emulated(k, f"getsockopt(SOL_SOCKET, {name})")
    length = min(length, 4)
    t.mm.write(val, values[name].to_bytes(4, "little")[:length])
    t.mm.write_u32(len_addr, length)
    return 0


def sys_setsockopt(k: Kernel, t: Task, fd: int, level: int, name: int, val: int,
                   length: int) -> int:
    _socket(t, fd)
    return _not_emulated(k, "setsockopt")


def sys_bind(k: Kernel, t: Task, fd: int, addr: int, length: int) -> int:
    _socket(t, fd)
    return _not_emulated(k, "bind")


def sys_listen(k: Kernel, t: Task, fd: int, backlog: int) -> int:
    """unix_listen(): only an unconnected, bound stream socket listens; none is bound."""
    sock = _socket(t, fd)
    if sock.stype not in (SOCK_STREAM, SOCK_SEQPACKET):
        raise KernelError(E.EOPNOTSUPP)
    raise KernelError(E.EINVAL)


def sys_accept4(k: Kernel, t: Task, fd: int, addr: int, len_addr: int, flags: int) -> int:
    """unix_accept(): nothing listens in this machine."""
    if flags & ~(SOCK_CLOEXEC | SOCK_NONBLOCK):
        raise KernelError(E.EINVAL)
    sock = _socket(t, fd)
    if sock.stype not in (SOCK_STREAM, SOCK_SEQPACKET):
        raise KernelError(E.EOPNOTSUPP)
    raise KernelError(E.EINVAL)


def sys_accept(k: Kernel, t: Task, fd: int, addr: int, len_addr: int) -> int:
    return sys_accept4(k, t, fd, addr, len_addr, 0)


def sys_sendmsg(k: Kernel, t: Task, fd: int, msg: int, flags: int) -> int:
    _socket(t, fd)
    return _not_emulated(k, "sendmsg")


def sys_recvmsg(k: Kernel, t: Task, fd: int, msg: int, flags: int) -> int:
    _socket(t, fd)
    return _not_emulated(k, "recvmsg")


def sys_sendto(k: Kernel, t: Task, fd: int, buf: int, length: int, flags: int, dest: int,
               addrlen: int) -> int:
    f = t.proc.files.get(fd)
    if isinstance(f, SocketEnd):
        data = t.mm.read(buf, length)
        return blocking(t, lambda: f.write(data))
    return _not_connected(t, fd)


def sys_recvfrom(k: Kernel, t: Task, fd: int, buf: int, length: int, flags: int, src: int,
                 addrlen: int) -> int:
    f = t.proc.files.get(fd)
    if isinstance(f, SocketEnd):
        length = user_buffer(t, buf, length)

        def op() -> int:
            data = f.read(length)
            t.mm.write(buf, data)
            return len(data)

        return blocking(t, op)
    return _not_connected(t, fd)


def sys_shutdown(k: Kernel, t: Task, fd: int, how: int) -> int:
    f = t.proc.files.get(fd)
    if isinstance(f, SocketEnd):
        return 0
    return _not_connected(t, fd)
