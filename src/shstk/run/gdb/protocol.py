"""GDB remote serial protocol framing: `$payload#xx` packets, acks, escapes, Ctrl-C."""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable


class Disconnected(Exception):
    """gdb went away."""


def escape(data: bytes) -> bytes:
    """Binary data in a reply (qXfer): '#', '$', '}' and '*' are escaped with '}'."""
    out = bytearray()
    for b in data:
        if b in (0x23, 0x24, 0x7D, 0x2A):
            out += bytes((0x7D, b ^ 0x20))
        else:
            out.append(b)
    return bytes(out)


def unescape(data: bytes) -> bytes:
    out = bytearray()
    it = iter(data)
    for b in it:
        if b == 0x7D:
            out.append(next(it, 0) ^ 0x20)
        else:
            out.append(b)
    return bytes(out)


class Connection:
    """One gdb connection. Packets are read only while the target is stopped; while it
    runs, `watch` waits for Ctrl-C on another thread."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.ack = True
        self._watcher: threading.Thread | None = None
        self._wake_r, self._wake_w = socket.socketpair()

    def _fill(self) -> None:
        try:
            data = self.sock.recv(65536)
        except OSError:
            data = b""
        if not data:
            raise Disconnected
        self.buf += data

    def read_packet(self) -> bytes:
        while True:
            while True:
                start = self.buf.find(b"$")
                junk = self.buf[:start] if start >= 0 else self.buf
                # acks and a Ctrl-C sent while stopped: nothing to do
                del junk
                if start >= 0:
                    del self.buf[:start]
                    break
                self.buf.clear()
                self._fill()
            end = self.buf.find(b"#")
            while end < 0 or len(self.buf) < end + 3:
                self._fill()
                end = self.buf.find(b"#")
            payload = bytes(self.buf[1:end])
            checksum = bytes(self.buf[end + 1:end + 3])
            del self.buf[:end + 3]
            ok = True
            try:
                ok = int(checksum, 16) == sum(payload) & 0xFF
            except ValueError:
                ok = False
            if self.ack:
                self.sock.sendall(b"+" if ok else b"-")
            if ok:
                return payload

    def send(self, payload: bytes | str) -> None:
        data = payload.encode() if isinstance(payload, str) else payload
        frame = b"$" + data + b"#" + b"%02x" % (sum(data) & 0xFF)
        try:
            self.sock.sendall(frame)
        except OSError:
            raise Disconnected from None
        # in ack mode gdb answers '+'; read_packet skips it

    # --- while the target runs ---------------------------------------------------------
    def watch(self, on_interrupt: Callable[[], None]) -> None:
        """Until `stop_watching`: call `on_interrupt` when gdb sends Ctrl-C (\\x03)."""
        if b"\x03" in self.buf:
            self.buf = self.buf.replace(b"\x03", b"")
            on_interrupt()
            return

        def loop() -> None:
            while True:
                try:
                    ready, _, _ = select.select([self.sock, self._wake_r], [], [])
                except (OSError, ValueError):
                    return
                if self._wake_r in ready:
                    self._wake_r.recv(64)
                    return
                try:
                    data = self.sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    on_interrupt()  # gdb went away: stop, read_packet will see it
                    return
                if b"\x03" in data:
                    self.buf += data.replace(b"\x03", b"")
                    on_interrupt()
                    return
                self.buf += data

        self._watcher = threading.Thread(target=loop, name="gdb-ctrl-c", daemon=True)
        self._watcher.start()

    def stop_watching(self) -> None:
        w, self._watcher = self._watcher, None
        if w is None:
            return
        if w.is_alive():
            self._wake_w.send(b"x")
            w.join()
        # drain a wake-up the thread did not consume
        self._wake_r.setblocking(False)
        try:
            self._wake_r.recv(64)
        except OSError:
            pass
        self._wake_r.setblocking(True)

    def close(self) -> None:
        self.stop_watching()
        for s in (self.sock, self._wake_r, self._wake_w):
            try:
                s.close()
            except OSError:
                pass
