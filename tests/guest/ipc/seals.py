"""memfd seals (native vs emulated)."""
import errno
import fcntl
import mmap
import os

SEAL, SHRINK, GROW, WRITE, FUTURE_WRITE = 1, 2, 4, 8, 16


def e(fn, *a):
    try:
        r = fn(*a)
        return r if isinstance(r, int) else "ok"
    except OSError as x:
        return errno.errorcode[x.errno]


fd = os.memfd_create("s", os.MFD_ALLOW_SEALING)
os.write(fd, b"hello world")
print("seals", fcntl.fcntl(fd, fcntl.F_GET_SEALS))
print("add shrink|grow", e(fcntl.fcntl, fd, fcntl.F_ADD_SEALS, SHRINK | GROW))
print("shrink", e(os.ftruncate, fd, 2), "grow", e(os.ftruncate, fd, 100),
      "same size", e(os.ftruncate, fd, 11))
print("write past end", e(os.pwrite, fd, b"xyz", 10), "inside", e(os.pwrite, fd, b"H", 0))
m = mmap.mmap(fd, 11, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
print("seal write while mapped", e(fcntl.fcntl, fd, fcntl.F_ADD_SEALS, WRITE))
m.close()
print("seal write", e(fcntl.fcntl, fd, fcntl.F_ADD_SEALS, WRITE))
print("write", e(os.write, fd, b"x"), "map writable",
      e(lambda: mmap.mmap(fd, 11, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)))
print("map read", e(lambda: mmap.mmap(fd, 11, mmap.MAP_SHARED, mmap.PROT_READ)[:5]))
print("seal seal", e(fcntl.fcntl, fd, fcntl.F_ADD_SEALS, SEAL), "then",
      e(fcntl.fcntl, fd, fcntl.F_ADD_SEALS, FUTURE_WRITE), fcntl.fcntl(fd, fcntl.F_GET_SEALS))
print("bad seal", e(fcntl.fcntl, os.memfd_create("b", os.MFD_ALLOW_SEALING), fcntl.F_ADD_SEALS,
                    0x1000))
plain = os.memfd_create("p")
print("no sealing", fcntl.fcntl(plain, fcntl.F_GET_SEALS), e(fcntl.fcntl, plain,
                                                              fcntl.F_ADD_SEALS, WRITE))
fw = os.memfd_create("fw", os.MFD_ALLOW_SEALING)
os.write(fw, b"abc")
print("future write", e(fcntl.fcntl, fw, fcntl.F_ADD_SEALS, FUTURE_WRITE),
      e(os.write, fw, b"x"), e(lambda: mmap.mmap(fw, 3, mmap.MAP_SHARED,
                                                  mmap.PROT_READ | mmap.PROT_WRITE)))
with open("/etc/passwd", "rb") as f:
    print("regular file", e(fcntl.fcntl, f.fileno(), fcntl.F_GET_SEALS))
r, w = os.pipe()
print("pipe", e(fcntl.fcntl, r, fcntl.F_GET_SEALS))
