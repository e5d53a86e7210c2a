"""utime, futimesat, the old getdents, sched_rr_get_interval, sched_getattr (native vs
emulated); argv[1] is a scratch directory."""
import ctypes
import errno
import os
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


def sc(*a):
    r = libc.syscall(*a)
    return errno.errorcode[ctypes.get_errno()] if r == -1 else r


d = sys.argv[1]
for n in ("a", "bb", "ccc"):
    open(os.path.join(d, n), "w").close()
os.mkdir(os.path.join(d, "sub"))
f = os.path.join(d, "a").encode()
print("utime", sc(132, f, struct.pack("<qq", 1000, 2000)), os.stat(f).st_mtime,
      os.stat(f).st_atime)
print("utime missing", sc(132, b"/nonexistent/x", None))
dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
print("futimesat", sc(261, dfd, b"bb", struct.pack("<qqqq", 5, 1, 7, 2)),
      os.stat(os.path.join(d, "bb")).st_mtime_ns,
      sc(261, dfd, b"bb", struct.pack("<qqqq", 5, 10**6, 7, 2)))
buf = ctypes.create_string_buffer(4096)
n = sc(78, dfd, buf, 4096)
names = []
pos = 0
while pos < n:
    ino, off, reclen = struct.unpack_from("<QqH", buf, pos)
    name = buf.raw[pos + 18:pos + reclen].split(b"\0")[0].decode()
    names.append((name, buf.raw[pos + reclen - 1]))
    pos += reclen
print("getdents", sorted(names), sc(78, dfd, buf, 4096))
print("getdents small", sc(78, os.open(d, os.O_RDONLY), buf, 10), "not dir", sc(78, 0, buf, 100))
ts = ctypes.create_string_buffer(16)
print("rr interval", sc(148, 0, ts), struct.unpack("<qq", ts), sc(148, -1, ts),
      sc(148, 4000000, ts))
attr = ctypes.create_string_buffer(56)
print("getattr", sc(315, 0, attr, 56, 0), struct.unpack_from("<IIQiI", attr),
      sc(315, 0, attr, 40, 0), sc(315, 0, attr, 56, 1))
xa = struct.pack("<QII", 0, 0, 0)
S16, S8, S0 = ctypes.c_size_t(16), ctypes.c_size_t(8), ctypes.c_size_t(0)
print("getxattrat", sc(464, dfd, b"a", 0, b"user.x", xa, S16),
      sc(464, dfd, b"nope", 0, b"user.x", xa, S16), sc(464, dfd, b"a", 0, b"user.x", xa, S8),
      sc(465, dfd, b"a", 0, None, S0), sc(465, dfd, b"", 0x1000, None, S0),
      sc(465, dfd, b"a", 0x8000, None, S0))
