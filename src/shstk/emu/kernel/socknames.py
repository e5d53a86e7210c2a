"""Socket names: the AF_UNIX namespaces (paths and abstract) and loopback ports.

Addresses are tuples: ("unix", raw sun_path bytes), ("inet", family, ip bytes, port).
A path name is keyed by the (dev, ino) of the socket node bind() created, so a renamed
node still reaches its socket and an unlinked one no longer does, as in Linux. Only
loopback exists: 127.0.0.0/8 and ::1 (and the wildcards); any other address is
ENETUNREACH to connect and EADDRNOTAVAIL to bind.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.emu.kernel.errors import KernelError

if TYPE_CHECKING:
    from shstk.emu.kernel.sockets import Socket

AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
EPHEMERAL = (32768, 60999)
ANY4, ANY6 = bytes(4), bytes(16)
LOOP6 = bytes(15) + b"\x01"
MAPPED = bytes(10) + b"\xff\xff"
SOL_SOCKET, SO_REUSEADDR, SO_REUSEPORT = 1, 2, 15
IPPROTO_IPV6, IPV6_V6ONLY = 41, 26

Addr = tuple[object, ...]


def parse(family: int, raw: bytes) -> Addr:
    """A sockaddr from the guest, checked as the family's bind/connect do."""
    if len(raw) < 2:
        raise KernelError(E.EINVAL)
    fam = int.from_bytes(raw[:2], "little")
    if family == AF_UNIX:
        if fam != AF_UNIX:
            raise KernelError(E.EINVAL)
        path = raw[2:]
        if path[:1] != b"\0":
            path = path.split(b"\0", 1)[0]
        return ("unix", path)
    if fam != family and not (family == AF_INET6 and fam == AF_INET):
        raise KernelError(E.EAFNOSUPPORT)
    if fam == AF_INET:
        if len(raw) < 16:
            raise KernelError(E.EINVAL)
        port = struct.unpack(">H", raw[2:4])[0]
        return ("inet", AF_INET, raw[4:8], port)
    if len(raw) < 24:
        raise KernelError(E.EINVAL)
    port = struct.unpack(">H", raw[2:4])[0]
    ip = raw[8:24]
    if ip[:12] == MAPPED:
        return ("inet", AF_INET, ip[12:], port)
    return ("inet", AF_INET6, ip, port)


def pack(family: int, addr: Addr | None) -> bytes:
    """The sockaddr of an address as a socket of `family` reports it."""
    if family == AF_UNIX:
        path = addr[1] if addr is not None else b""
        assert isinstance(path, bytes)
        tail = b"\0" if path and path[:1] != b"\0" else b""
        return AF_UNIX.to_bytes(2, "little") + path + tail
    if addr is None:
        addr = ("inet", family, ANY4 if family == AF_INET else ANY6, 0)
    _tag, fam, ip, port = addr
    assert isinstance(ip, bytes) and isinstance(port, int)
    if family == AF_INET:
        return struct.pack("<H", AF_INET) + struct.pack(">H", port) + ip + bytes(8)
    if fam == AF_INET:
        ip = (ANY6 if ip == ANY4 else MAPPED + ip)
    return struct.pack("<H", AF_INET6) + struct.pack(">H", port) + bytes(4) + ip + bytes(4)


def is_loopback(fam: object, ip: bytes) -> bool:
    return ip[:1] == b"\x7f" if fam == AF_INET else ip == LOOP6


def is_any(ip: bytes) -> bool:
    return ip in (ANY4, ANY6)


def show(addr: Addr | None) -> str:
    if addr is None:
        return "unnamed"
    if addr[0] == "unix":
        return repr(addr[1])
    ip = addr[2]
    assert isinstance(ip, bytes)
    return f"{ipaddress.ip_address(ip)}:{addr[3]}"


class Names:
    """The machine's socket namespaces."""

    def __init__(self) -> None:
        self.unix: dict[object, Socket] = {}  # ("abs", name) or ("ino", dev, ino)
        self.ports: dict[tuple[int, int], list[Socket]] = {}  # (stype, port) -> bound
        self.next_port = EPHEMERAL[0]
        self.auto = 0

    # --- AF_UNIX --------------------------------------------------------------------------
    def bind_unix(self, sock: Socket, key: object, addr: Addr) -> None:
        if key in self.unix:
            raise KernelError(E.EADDRINUSE)
        self.unix[key] = sock
        sock.local = addr
        sock.__dict__["name_key"] = key

    def autobind(self, sock: Socket) -> None:
        while True:
            self.auto += 1
            name = b"\0" + b"%05x" % (self.auto & 0xFFFFF)
            if ("abs", name) not in self.unix:
                self.bind_unix(sock, ("abs", name), ("unix", name))
                return

    def lookup_unix(self, key: object) -> Socket:
        sock = self.unix.get(key)
        if sock is None or sock.closed:
            raise KernelError(E.ECONNREFUSED)
        return sock

    # --- loopback ports -------------------------------------------------------------------
    def bind_inet(self, sock: Socket, addr: Addr) -> None:
        _tag, fam, ip, port = addr
        assert isinstance(ip, bytes) and isinstance(port, int)
        if not is_any(ip) and not is_loopback(fam, ip):
            raise KernelError(E.EADDRNOTAVAIL)
        kind = 1 if sock.stype != 2 else 2
        if port == 0:
            port = self._ephemeral(kind)
        else:
            for other in self.ports.get((kind, port), []):
                if self._overlap(sock, ip, other) and not self._shareable(sock, other):
                    raise KernelError(E.EADDRINUSE)
        sock.local = ("inet", fam, ip, port)
        self.ports.setdefault((kind, port), []).append(sock)

    def _ephemeral(self, kind: int) -> int:
        lo, hi = EPHEMERAL
        for _ in range(hi - lo + 1):
            port = self.next_port
            self.next_port = lo if port >= hi else port + 1
            if not self.ports.get((kind, port)):
                return port
        raise KernelError(E.EADDRINUSE)

    @staticmethod
    def _opt(sock: Socket, level: int, name: int) -> bool:
        return int.from_bytes(sock.opts.get((level, name), b"\0")[:4], "little") != 0

    def _shareable(self, a: Socket, b: Socket) -> bool:
        if self._opt(a, SOL_SOCKET, SO_REUSEPORT) and self._opt(b, SOL_SOCKET, SO_REUSEPORT):
            return True
        return (self._opt(a, SOL_SOCKET, SO_REUSEADDR) and
                self._opt(b, SOL_SOCKET, SO_REUSEADDR) and not b.listening)

    def _v6only(self, sock: Socket) -> bool:
        return self._opt(sock, IPPROTO_IPV6, IPV6_V6ONLY)

    def _matches(self, sock: Socket, fam: object, ip: bytes) -> bool:
        """Does `sock`'s bound address receive traffic for (fam, ip)?"""
        local = sock.local
        assert local is not None
        _t, lfam, lip, _p = local
        assert isinstance(lip, bytes)
        if lfam == fam:
            return lip == ip or is_any(lip)
        # an AF_INET6 socket bound to :: also receives IPv4 unless IPV6_V6ONLY
        return lfam == AF_INET6 and fam == AF_INET and lip == ANY6 and not self._v6only(sock)

    def _overlap(self, sock: Socket, ip: bytes, other: Socket) -> bool:
        local = other.local
        assert local is not None
        _t, ofam, oip, _p = local
        assert isinstance(oip, bytes)
        fam = sock.family if sock.family == AF_INET else (AF_INET6 if len(ip) == 16 else
                                                          AF_INET)
        if ofam == fam:
            return oip == ip or is_any(oip) or is_any(ip)
        if is_any(ip) and fam == AF_INET6 and not self._v6only(sock):
            return True
        return self._matches(other, fam, ip)

    def find_inet(self, stype: int, addr: Addr, *, listening: bool) -> Socket | None:
        _tag, fam, ip, port = addr
        assert isinstance(ip, bytes) and isinstance(port, int)
        kind = 1 if stype != 2 else 2
        best = None
        for sock in self.ports.get((kind, port), []):
            if sock.closed or (listening and not sock.listening):
                continue
            if self._matches(sock, fam, ip):
                local = sock.local
                assert local is not None
                if local[2] == ip:
                    return sock
                best = best or sock
        return best

    def unbind(self, sock: Socket) -> None:
        key = sock.__dict__.pop("name_key", None)
        if key is not None and self.unix.get(key) is sock:
            del self.unix[key]
        if sock.local is not None and sock.local[0] == "inet":
            kind = 1 if sock.stype != 2 else 2
            port = sock.local[3]
            assert isinstance(port, int)
            bound = self.ports.get((kind, port), [])
            if sock in bound:
                bound.remove(sock)
            if not bound:
                self.ports.pop((kind, port), None)
