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
from shstk.emu.kernel.files import OpenFile, Pipe, PipeEnd, StatResult
from shstk.emu.syscalls.fs import _blocking
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

    def __init__(self, flags: int) -> None:
        super().__init__("socket:[unix]", F.O_RDWR | flags)

    def read(self, n: int) -> bytes:
        raise KernelError(E.ENOTCONN)

    def write(self, data: bytes) -> int:
        raise KernelError(E.ENOTCONN)

    def stat(self) -> StatResult:
        return StatResult(0x8, 0, S_IFSOCK | 0o777, 1, 0, 0, 0, 0, 4096, 0, 0, 0, 0)


class SocketEnd(PipeEnd):
    """One end of a socketpair: reads one pipe, writes the other."""

    kind = "socket"

    def __init__(self, rx: Pipe, tx: Pipe, flags: int) -> None:
        super().__init__(rx, F.O_RDWR | flags, write_end=False)
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
    sock = UnixSocket(stype & SOCK_NONBLOCK)
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
    fd0 = files.install(SocketEnd(a, b, flags), cloexec=cloexec)
    fd1 = files.install(SocketEnd(b, a, flags), cloexec=cloexec)
    t.mm.write(sv, fd0.to_bytes(4, "little") + fd1.to_bytes(4, "little"))
    return 0


def sys_connect(k: Kernel, t: Task, fd: int, addr: int, addrlen: int) -> int:
    f = t.proc.files.get(i32(fd))
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


def sys_not_connected(k: Kernel, t: Task, fd: int, *_: int) -> int:
    f = t.proc.files.get(i32(fd))
    if not isinstance(f, (UnixSocket, SocketEnd)):
        raise KernelError(E.ENOTSOCK)
    raise KernelError(E.ENOTCONN)


def sys_sendto(k: Kernel, t: Task, fd: int, buf: int, length: int, flags: int, dest: int,
               addrlen: int) -> int:
    f = t.proc.files.get(i32(fd))
    if isinstance(f, SocketEnd):
        data = t.mm.read(buf, length)
        return _blocking(t, lambda: f.write(data))
    return sys_not_connected(k, t, fd)


def sys_recvfrom(k: Kernel, t: Task, fd: int, buf: int, length: int, flags: int, src: int,
                 addrlen: int) -> int:
    f = t.proc.files.get(i32(fd))
    if isinstance(f, SocketEnd):
        from shstk.emu.syscalls.fs import _user_buffer

        length = _user_buffer(t, buf, length)

        def op() -> int:
            data = f.read(length)
            t.mm.write(buf, data)
            return len(data)

        return _blocking(t, op)
    return sys_not_connected(k, t, fd)


def sys_shutdown(k: Kernel, t: Task, fd: int, how: int) -> int:
    f = t.proc.files.get(i32(fd))
    if isinstance(f, SocketEnd):
        return 0
    return sys_not_connected(k, t, fd)
