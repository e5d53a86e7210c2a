"""Emulated character devices (drivers/char/mem.c, random.c): /dev/null, zero, full,
random and urandom are kernel objects, whatever the sysroot's /dev holds.

A guest opens them by name through the path resolver (vfs.py); their stat carries the
real major:minor, and their metadata cannot change (EROFS, as on a read-only /dev).
"""

from __future__ import annotations

import os
import stat as st
from collections.abc import Callable
from dataclasses import dataclass

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.files import HostFile, OpenFile, StatResult

DEVTMPFS_DEV = 0x6  # st_dev of the (emulated) devtmpfs holding the nodes


@dataclass(frozen=True)
class Device:
    """A character device node: name under /dev, major:minor, mode, owner group."""

    name: str
    major: int
    minor: int
    mode: int = 0o666
    gid: int = 0

    @property
    def rdev(self) -> int:
        return os.makedev(self.major, self.minor)

    @property
    def ino(self) -> int:
        return 0x1000 + self.major * 256 + self.minor

    def stat(self) -> StatResult:
        return StatResult(DEVTMPFS_DEV, self.ino, st.S_IFCHR | self.mode, 1, 0, self.gid,
                          self.rdev, 0, 4096, 0, 0, 0, 0)


DEVICES: dict[str, Device] = {d.name: d for d in (
    Device("null", 1, 3), Device("zero", 1, 5), Device("full", 1, 7),
    Device("random", 1, 8), Device("urandom", 1, 9), Device("tty", 5, 0, gid=5),
)}
# /dev/tty is the guest's controlling terminal: shstk's own, opened on the host.
HOST_TTY = "tty"
# Links of /dev that lead into /proc (udev makes them; here they exist in every sysroot).
DEV_LINKS: dict[str, str] = {
    "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}


class DeviceFile(OpenFile):
    """An open emulated character device."""

    kind = "device"

    def __init__(self, device: Device, flags: int) -> None:
        super().__init__("/dev/" + device.name, flags)
        self.device = device
        self.mount_rw = False

    def read(self, n: int) -> bytes:
        name = self.device.name
        if name == "null":
            return b""
        if name in ("random", "urandom"):
            return os.urandom(min(n, 1 << 25))
        return bytes(min(n, 1 << 25))

    def write(self, data: bytes) -> int:
        if self.device.name == "full":
            raise KernelError(E.ENOSPC)
        return len(data)

    def pread(self, n: int, offset: int) -> bytes:
        return self.read(n)

    def pwrite(self, data: bytes, offset: int) -> int:
        return self.write(data)

    def lseek(self, offset: int, whence: int) -> int:
        return 0  # null_lseek / the zero device: the position stays 0

    def stat(self) -> StatResult:
        return self.device.stat()

    def truncate(self, length: int) -> None:
        raise KernelError(E.EINVAL)

    def poll(self) -> int:
        return F.POLLIN | F.POLLOUT

    def ioctl(self, request: int, arg: int) -> tuple[int, bytes | None]:
        if request in (F.FIONBIO, F.FIOCLEX, F.FIONCLEX):
            return 0, None
        raise KernelError(E.ENOTTY)


class CappedFile(HostFile):
    """A file of the emulated /dev/shm: writes past the tmpfs's size cap get ENOSPC."""

    def __init__(self, path: str, flags: int, fd: int, host_path: str,
                 room: Callable[[], int]) -> None:
        super().__init__(path, flags, fd, host_path)
        self.room = room  # bytes the file system can still take

    def _capped(self, data: bytes) -> bytes:
        left = self.room()
        if left <= 0 and data:
            raise KernelError(E.ENOSPC)
        return data[:left]

    def write(self, data: bytes) -> int:
        return super().write(self._capped(data))

    def pwrite(self, data: bytes, offset: int) -> int:
        return super().pwrite(self._capped(data), offset)
