"""memfd seals, which the host's memfd holds and enforces (see fs_fd's F_ADD_SEALS)."""

from __future__ import annotations

import fcntl

F_SEAL_WRITE, F_SEAL_FUTURE_WRITE = 0x8, 0x10


def write_sealed(host_fd: int) -> bool:
    """Whether a shared writable mapping of this file is refused (seal_check_write):
    a memfd with F_SEAL_WRITE or F_SEAL_FUTURE_WRITE; any other file has no seals."""
    try:
        return bool(fcntl.fcntl(host_fd, fcntl.F_GET_SEALS) & (F_SEAL_WRITE |
                                                                F_SEAL_FUTURE_WRITE))
    except (OSError, ValueError):
        return False
