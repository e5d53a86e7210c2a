"""Waiting on descriptors: poll/ppoll, select/pselect6."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.kernel import Blocked
from shstk.emu.kernel.task import Wait
from shstk.emu.syscalls.util import i32

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task


def _poll_ready(t: Task, fds: list[tuple[int, int]]) -> list[int]:
    out = []
    for fd, events in fds:
        if fd < 0:
            out.append(0)
            continue
        f = t.proc.files.fds.get(fd)
        if f is None:
            out.append(F.POLLNVAL)
            continue
        ev = f.file.poll()
        out.append(ev & (events | F.POLLERR | F.POLLHUP | F.POLLNVAL))
    return out


def _do_poll(k: Kernel, t: Task, fds_addr: int, nfds: int, timeout_ns: int | None) -> int:
    if nfds > t.proc.rlimits[7][0]:
        raise KernelError(E.EINVAL)
    raw = t.mm.read(fds_addr, 8 * nfds)
    fds = [struct.unpack_from("<ihh", raw, 8 * i)[:2] for i in range(nfds)]
    deadline = None if timeout_ns is None else k.monotonic_ns() + timeout_ns

    def attempt() -> int:
        revents = _poll_ready(t, fds)
        n = sum(1 for r in revents if r)
        if n or (deadline is not None and k.monotonic_ns() >= deadline):
            out = bytearray(raw)
            for i, r in enumerate(revents):
                struct.pack_into("<h", out, 8 * i + 6, r)
            t.mm.write(fds_addr, bytes(out))
            return n
        host = [t.proc.files.fds[fd].file.host_fd() for fd, _e in fds
                if fd in t.proc.files.fds]
        host_fd = next((h for h in host if h >= 0), -1)
        raise Blocked(Wait(lambda: any(_poll_ready(t, fds)), "poll", deadline=deadline,
                           host_fd=host_fd), attempt)

    return attempt()


def sys_poll(k: Kernel, t: Task, fds: int, nfds: int, timeout: int) -> int:
    ms = i32(timeout)
    return _do_poll(k, t, fds, nfds, None if ms < 0 else ms * 10**6)


def sys_ppoll(k: Kernel, t: Task, fds: int, nfds: int, tsp: int, sigmask: int,
              sigsetsize: int) -> int:
    timeout = None
    if tsp:
        sec, nsec = struct.unpack("<qq", t.mm.read(tsp, 16))
        if sec < 0 or not 0 <= nsec < 10**9:
            raise KernelError(E.EINVAL)
        timeout = sec * 10**9 + nsec
    return _do_poll(k, t, fds, nfds, timeout)


def _fdset(t: Task, addr: int, nfds: int) -> set[int]:
    if not addr:
        return set()
    raw = int.from_bytes(t.mm.read(addr, ((nfds + 63) // 64) * 8), "little")
    return {fd for fd in range(nfds) if raw >> fd & 1}


def _write_fdset(t: Task, addr: int, nfds: int, fds: set[int]) -> None:
    if addr:
        value = sum(1 << fd for fd in fds)
        t.mm.write(addr, value.to_bytes(((nfds + 63) // 64) * 8, "little"))


def _do_select(k: Kernel, t: Task, nfds: int, rd: int, wr: int, ex: int,
               timeout_ns: int | None) -> int:
    nfds = i32(nfds)
    if nfds < 0 or nfds > 1024:
        raise KernelError(E.EINVAL)
    r, w, x = _fdset(t, rd, nfds), _fdset(t, wr, nfds), _fdset(t, ex, nfds)
    for fd in r | w | x:
        t.proc.files.get(fd)
    deadline = None if timeout_ns is None else k.monotonic_ns() + timeout_ns

    def ready() -> tuple[set[int], set[int]]:
        rr = {fd for fd in r if t.proc.files.get(fd).poll() & (F.POLLIN | F.POLLHUP)}
        ww = {fd for fd in w if t.proc.files.get(fd).poll() & F.POLLOUT}
        return rr, ww

    def attempt() -> int:
        rr, ww = ready()
        if rr or ww or (deadline is not None and k.monotonic_ns() >= deadline):
            _write_fdset(t, rd, nfds, rr)
            _write_fdset(t, wr, nfds, ww)
            _write_fdset(t, ex, nfds, set())
            return len(rr) + len(ww)
        host = [t.proc.files.get(fd).host_fd() for fd in r]
        raise Blocked(Wait(lambda: any(ready()), "select", deadline=deadline,
                           host_fd=next((h for h in host if h >= 0), -1)), attempt)

    return attempt()


def sys_select(k: Kernel, t: Task, nfds: int, rd: int, wr: int, ex: int, tvp: int) -> int:
    timeout = None
    if tvp:
        sec, usec = struct.unpack("<qq", t.mm.read(tvp, 16))
        if sec < 0 or usec < 0:
            raise KernelError(E.EINVAL)
        timeout = sec * 10**9 + usec * 1000
    return _do_select(k, t, nfds, rd, wr, ex, timeout)


def sys_pselect6(k: Kernel, t: Task, nfds: int, rd: int, wr: int, ex: int, tsp: int,
                 sig: int) -> int:
    timeout = None
    if tsp:
        sec, nsec = struct.unpack("<qq", t.mm.read(tsp, 16))
        if sec < 0 or not 0 <= nsec < 10**9:
            raise KernelError(E.EINVAL)
        timeout = sec * 10**9 + nsec
    return _do_select(k, t, nfds, rd, wr, ex, timeout)
