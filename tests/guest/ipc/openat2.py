"""openat2 with RESOLVE_* flags (native vs emulated); argv[1] is a scratch directory."""
import ctypes
import errno
import os
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)
NO_XDEV, NO_MAGICLINKS, NO_SYMLINKS, BENEATH, IN_ROOT = 1, 2, 4, 8, 16
d = sys.argv[1]
os.makedirs(f"{d}/a/b")
with open(f"{d}/a/b/f", "w") as f:
    f.write("inside\n")
os.symlink("b/f", f"{d}/a/rel")
os.symlink("/a/b/f", f"{d}/a/abs")
os.symlink("../../etc", f"{d}/a/up")
dfd = os.open(f"{d}/a", os.O_RDONLY | os.O_DIRECTORY)


def o2(path, flags=os.O_RDONLY, resolve=0, mode=0, size=24, extra=b"", fd=dfd):
    how = struct.pack("<QQQ", flags, mode, resolve) + extra
    how = how.ljust(size, b"\0")[:size] if size >= 24 else how
    r = libc.syscall(437, fd, path.encode(), how, size)
    if r == -1:
        return errno.errorcode[ctypes.get_errno()]
    data = os.read(r, 100) if not flags & os.O_DIRECTORY else b"dir"
    os.close(r)
    return data.decode().strip()


print("plain", o2("b/f"), o2("rel"))
print("no symlinks", o2("rel", resolve=NO_SYMLINKS), o2("b/f", resolve=NO_SYMLINKS))
print("beneath", o2("b/f", resolve=BENEATH), o2("../a/b/f", resolve=BENEATH),
      o2("/etc/hostname", resolve=BENEATH), o2("abs", resolve=BENEATH),
      o2("up/hostname", resolve=BENEATH), o2("b/../b/f", resolve=BENEATH))
print("in root", o2("abs", resolve=IN_ROOT), o2("/b/f", resolve=IN_ROOT),
      o2("../../../b/f", resolve=IN_ROOT))
print("magic", o2(f"/proc/self/fd/{dfd}", os.O_RDONLY | os.O_DIRECTORY, NO_MAGICLINKS, fd=-100),
      o2(f"/proc/self/fd/{dfd}", os.O_RDONLY | os.O_DIRECTORY, NO_SYMLINKS, fd=-100),
      o2("/proc/self/status", resolve=NO_MAGICLINKS, fd=-100)[:5])
print("xdev", o2("/proc/self/status", resolve=NO_XDEV, fd=-100), o2("b/f", resolve=NO_XDEV))
print("bad how", o2("b/f", size=16), o2("b/f", size=32, extra=b"\1"), o2("b/f", size=32),
      o2("b/f", size=8192), o2("b/f", mode=0o644), o2("b/f", resolve=0x40),
      o2("b/f", resolve=BENEATH | IN_ROOT), o2("b/f", flags=1 << 40),
      o2("new", flags=os.O_CREAT | os.O_DIRECTORY, mode=0o600))
print("cached+creat", o2("x", flags=os.O_CREAT | os.O_WRONLY, mode=0o600, resolve=0x20))
print("missing", o2("nope"), o2("nope", resolve=BENEATH))
