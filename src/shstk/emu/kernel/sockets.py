"""Sockets inside the emulated machine: AF_UNIX and loopback AF_INET/AF_INET6.

One `Socket` class models stream, datagram and seqpacket sockets of every family: a
receive queue of messages (data, sender address, passed files, credentials), a peer for a
connected socket, a backlog of already-connected server ends for a listener. Nothing
reaches the host's network; names live in `socknames`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import OpenFile, StatResult, WouldBlock, release

if TYPE_CHECKING:
    from shstk.emu.kernel.socknames import Names

AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET = 1, 2, 5
RCVBUF = 212992
POLLRDHUP = 0x2000
S_IFSOCK = 0o140000


@dataclass
class Msg:
    """One message in a socket's queue, with its sender, passed descriptors and credentials."""

    data: bytes
    addr: tuple[object, ...] | None = None  # sender's address (datagrams)
    rights: list[OpenFile] = field(default_factory=list)
    creds: tuple[int, int, int] | None = None


class Socket(OpenFile):
    kind = "socket"
    _next_ino = 50000

    def __init__(self, names: Names, family: int, stype: int, proto: int, flags: int) -> None:
        Socket._next_ino += 1
        self.ino = Socket._next_ino
        super().__init__(f"socket:[{self.ino}]", F.O_RDWR | flags)
        self.names = names
        self.family, self.stype, self.proto = family, stype, proto
        self.local: tuple[object, ...] | None = None  # bound address
        self.peer: Socket | None = None
        self.peer_addr: tuple[object, ...] | None = None  # connect()ed datagram target
        self.listening = False
        self.backlog: deque[Socket] = deque()
        self.backlog_max = 0
        self.rx: deque[Msg] = deque()
        self.rx_bytes = 0
        self.rx_total = 0  # bytes ever queued (edge-triggered epoll)
        self.shut_rd = self.shut_wr = False
        self.peer_gone = False  # the other end closed or shut down writing: EOF after data
        self.reset = False
        self.opts: dict[tuple[int, int], bytes] = {}
        self.creds: tuple[int, int, int] = (0, 0, 0)  # of the opener (SO_PEERCRED source)
        self.peer_creds: tuple[int, int, int] | None = None
        self.closed = False

    # --- state --------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self.peer is not None or self.peer_gone

    @property
    def stream(self) -> bool:
        return self.stype in (SOCK_STREAM, SOCK_SEQPACKET)

    def stat(self) -> StatResult:
        return StatResult(0x8, self.ino, S_IFSOCK | 0o777, 1, 0, 0, 0, 0, 4096, 0, 0, 0, 0)

    def ioctl(self, request: int, arg: int) -> tuple[int, bytes | None]:
        if request == F.FIONREAD:
            n = self.rx_bytes if self.stream else (len(self.rx[0].data) if self.rx else 0)
            return 0, n.to_bytes(4, "little")
        if request in (F.FIONBIO, F.FIOCLEX, F.FIONCLEX):
            return 0, None
        raise KernelError(E.ENOTTY)

    def poll(self) -> int:
        if self.listening:
            return F.POLLIN if self.backlog else 0
        ev = 0
        if self.rx:
            ev |= F.POLLIN
        if self.shut_rd or (self.stream and self.peer_gone):
            ev |= F.POLLIN | POLLRDHUP
        if self.reset:
            ev |= F.POLLERR
        if self.stream:
            if self.peer is not None and not self.shut_wr:
                if self.peer.rx_bytes < RCVBUF:
                    ev |= F.POLLOUT
            elif self.peer is None and not self.peer_gone:
                ev |= F.POLLOUT if self.family == AF_UNIX else F.POLLOUT | F.POLLHUP
            if (self.shut_rd and self.shut_wr) or (self.peer_gone and
                                                    (self.shut_wr or self.family == AF_UNIX)):
                ev |= F.POLLHUP
        else:
            ev |= F.POLLOUT
        return ev

    # --- data ---------------------------------------------------------------------------
    def deliver(self, msg: Msg) -> None:
        self.rx.append(msg)
        self.rx_bytes += len(msg.data)
        self.rx_total += len(msg.data) + 1

    def send(self, data: bytes, *, nonblock: bool, rights: list[OpenFile] | None = None,
             creds: tuple[int, int, int] | None = None,
             dest: Socket | None = None, src: tuple[object, ...] | None = None) -> int:
        """Queue data on the peer (or `dest`, for a datagram); EPIPE after a shutdown."""
        rights = rights or []
        if self.stream:
            if self.shut_wr or self.peer_gone:
                raise KernelError(E.ECONNRESET if self.reset else E.EPIPE)
            peer = self.peer
            if peer is None:
                raise KernelError(E.ENOTCONN if self.family == AF_UNIX or not self.listening
                                  else E.EPIPE)
            if self.stype == SOCK_SEQPACKET and len(data) > RCVBUF:
                raise KernelError(E.EMSGSIZE)
            room = RCVBUF - peer.rx_bytes
            if room <= 0 or (self.stype == SOCK_SEQPACKET and room < len(data)):
                self._wait(nonblock, lambda: self.peer is None or
                           self.peer.rx_bytes < RCVBUF or self.shut_wr or self.peer_gone)
            n = len(data) if self.stype == SOCK_SEQPACKET else min(len(data), room)
            if not data and self.stype == SOCK_STREAM and not rights:
                return 0
            self._hold(rights)
            peer.deliver(Msg(data[:n], None, rights, creds))
            return n
        target = dest if dest is not None else self.peer
        if target is None:
            raise KernelError(E.ENOTCONN if self.family == AF_UNIX else E.EDESTADDRREQ)
        if target.closed:
            raise KernelError(E.ECONNREFUSED)
        if len(data) > RCVBUF:
            raise KernelError(E.EMSGSIZE)
        if target.rx_bytes + len(data) > RCVBUF and self.family == AF_UNIX:
            self._wait(nonblock, lambda: target.closed or
                       target.rx_bytes + len(data) <= RCVBUF)
        elif target.rx_bytes + len(data) > RCVBUF:
            return len(data)  # UDP drops what does not fit
        self._hold(rights)
        target.deliver(Msg(data, src if src is not None else self.local, rights, creds))
        return len(data)

    @staticmethod
    def _hold(rights: list[OpenFile]) -> None:
        for f in rights:
            f.refs += 1  # in flight: the message holds a reference

    def _wait(self, nonblock: bool, ready: object) -> None:
        if nonblock:
            raise KernelError(E.EAGAIN)
        raise WouldBlock(ready)  # type: ignore[arg-type]  # a Callable[[], bool]

    def recv(self, n: int, *, nonblock: bool, peek: bool = False,
             waitall: bool = False) -> tuple[bytes, Msg | None, int]:
        """(data, the first message (address, files, creds), its full length)."""
        if self.listening or (self.stream and not self.connected and not self.rx):
            raise KernelError(E.ENOTCONN if self.family == AF_UNIX or self.stream
                              else E.EINVAL)
        if not self.rx:
            if self.reset:
                self.reset = False
                raise KernelError(E.ECONNRESET)
            if self.shut_rd or (self.stream and self.peer_gone):
                return b"", None, 0
            self._wait(nonblock, lambda: bool(self.rx) or self.shut_rd or self.peer_gone)
        if self.stype == SOCK_STREAM:
            if waitall and not nonblock and self.rx_bytes < n and not (
                    self.shut_rd or self.peer_gone):
                self._wait(False, lambda: self.rx_bytes >= n or self.shut_rd or
                           self.peer_gone)
            return self._recv_stream(n, peek)
        msg = self.rx[0]
        if not peek:
            self.rx.popleft()
            self.rx_bytes -= len(msg.data)
        return msg.data[:n], msg, len(msg.data)

    def _recv_stream(self, n: int, peek: bool) -> tuple[bytes, Msg | None, int]:
        out = bytearray()
        first: Msg | None = None
        idx = 0
        while idx < len(self.rx) and len(out) < n:
            msg = self.rx[idx]
            if first is not None and (msg.rights or msg.creds != first.creds):
                break  # ancillary data starts a new read
            if first is None:
                first = msg
            take = msg.data[:n - len(out)]
            out += take
            if peek:
                idx += 1
            else:
                if len(take) == len(msg.data):
                    self.rx.popleft()
                else:
                    self.rx[0] = Msg(msg.data[len(take):], msg.addr, [], msg.creds)
                self.rx_bytes -= len(take)
            if first.rights:
                break
        return bytes(out), first, len(out)

    def read(self, n: int) -> bytes:
        data, msg, _full = self.recv(n, nonblock=bool(self.flags & F.O_NONBLOCK))
        if msg is not None:
            for f in msg.rights:
                release(f)  # read(2) discards passed files
        return data

    def write(self, data: bytes) -> int:
        return self.send(data, nonblock=bool(self.flags & F.O_NONBLOCK))

    # --- connections ----------------------------------------------------------------------
    def shutdown(self, how: int) -> None:
        if not self.connected and self.stream:
            raise KernelError(E.ENOTCONN)
        if how in (0, 2):
            self.shut_rd = True
        if how in (1, 2):
            self.shut_wr = True
            if self.peer is not None:
                self.peer.peer_gone = True
                if self.family == AF_UNIX and how == 2:
                    self.peer.shut_wr = True

    def on_last_close(self) -> None:
        self.closed = True
        self.names.unbind(self)
        for child in self.backlog:
            child.on_last_close()
        self.backlog.clear()
        peer, self.peer = self.peer, None
        if peer is not None and peer.peer is self:
            peer.peer = None
            peer.peer_gone = True
            if self.rx and self.family != AF_UNIX:
                peer.reset = True  # closing with unread data sends a RST
        while self.rx:
            for f in self.rx.popleft().rights:
                release(f)
        self.rx_bytes = 0


def connect_pair(a: Socket, b: Socket) -> None:
    a.peer, b.peer = b, a
    a.peer_creds, b.peer_creds = b.creds, a.creds
