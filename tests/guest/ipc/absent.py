"""Calls answering as on a machine without the feature: readahead, process_mrelease,
ioprio (native vs emulated); pkeys (as on a CPU without PKU) only with argv[1] == "pkeys",
as a CPU with PKU answers differently."""
import ctypes
import errno
import mmap
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def sc(*a):
    r = libc.syscall(*a)
    return errno.errorcode[ctypes.get_errno()] if r == -1 else r


m = mmap.mmap(-1, 4096)
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
if sys.argv[1:] == ["pkeys"]:
    print("pkey_alloc", sc(330, 0, 0), "pkey_free", sc(331, 1))
    print("pkey_mprotect -1", sc(329, ctypes.c_void_p(addr), 4096, 1, -1),
          "key 1", sc(329, ctypes.c_void_p(addr), 4096, 3, 1))
fd = os.open("/etc/passwd", os.O_RDONLY)
r, w = os.pipe()
print("readahead", sc(187, fd, 0, 4096), sc(187, r, 0, 10), sc(187, 999, 0, 10))
print("mrelease", sc(448, fd, 0), sc(448, 999, 0))
pidfd = sc(434, os.getpid(), 0)
print("mrelease live", sc(448, pidfd, 0), sc(448, pidfd, 1))
print("ioprio", sc(252, 1, 0), sc(251, 1, 0, (2 << 13) | 7), sc(252, 1, 0), sc(252, 9, 0),
      sc(251, 1, 0, (2 << 13) | 8))
