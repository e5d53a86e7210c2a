"""Errors inside the kernel model."""

from __future__ import annotations


class KernelError(Exception):
    """A system call fails with this errno (the handler's return value is -errno)."""

    def __init__(self, errno: int, why: str = "") -> None:
        super().__init__(errno, why)
        self.errno = errno
        self.why = why
