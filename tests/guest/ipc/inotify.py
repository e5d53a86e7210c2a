"""inotify on changes this program makes; prints the events (run natively and emulated)."""
import ctypes
import errno
import os
import select
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)
IN_NAMES = {0x1: "ACCESS", 0x2: "MODIFY", 0x4: "ATTRIB", 0x8: "CLOSE_WRITE",
            0x10: "CLOSE_NOWRITE", 0x20: "OPEN", 0x40: "MOVED_FROM", 0x80: "MOVED_TO",
            0x100: "CREATE", 0x200: "DELETE", 0x400: "DELETE_SELF", 0x800: "MOVE_SELF",
            0x8000: "IGNORED", 0x40000000: "ISDIR"}


def call(fn, *args):
    r = fn(*args)
    if r < 0:
        return "-" + errno.errorcode[ctypes.get_errno()]
    return r


def events(fd, names, bufsize=4096):
    out = []
    while select.select([fd], [], [], 0)[0]:
        data = os.read(fd, bufsize)
        pos = 0
        while pos < len(data):
            wd, mask, cookie, n = struct.unpack_from("iIII", data, pos)
            name = data[pos + 16:pos + 16 + n].rstrip(b"\0").decode()
            pos += 16 + n
            flags = "|".join(v for b, v in IN_NAMES.items() if mask & b)
            out.append(f"{names.get(wd, wd)} {flags} {name} {'cookie' if cookie else ''}")
    return out


d = sys.argv[1]
fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
print("ready before", select.select([fd], [], [], 0)[0])
try:
    os.read(fd, 64)
except OSError as e:
    print("empty read", errno.errorcode[e.errno])
wd = call(libc.inotify_add_watch, fd, d.encode(), 0xFFF)
names = {wd: "dir"}
print("same wd", call(libc.inotify_add_watch, fd, d.encode(), 0xFFF) == wd)
f = os.path.join(d, "a.txt")
h = os.open(f, os.O_CREAT | os.O_WRONLY, 0o644)
os.write(h, b"hello")
os.close(h)
print("FIONREAD>0", struct.unpack("i", __import__("fcntl").ioctl(fd, 0x541B, b"\0" * 4))[0] > 0)
try:
    os.read(fd, 8)
except OSError as e:
    print("small buffer", errno.errorcode[e.errno])
print("\n".join(events(fd, names)))
fw = call(libc.inotify_add_watch, fd, f.encode(), 0x2 | 0x80000000)  # MODIFY|ONESHOT
names[fw] = "file"
print("onlydir", call(libc.inotify_add_watch, fd, f.encode(), 0x1000000 | 0xFFF))
print("no events", call(libc.inotify_add_watch, fd, f.encode(), 0))
print("missing", call(libc.inotify_add_watch, fd, (d + "/nope").encode(), 0xFFF))
print("not inotify", call(libc.inotify_add_watch, 0, f.encode(), 0xFFF))
with open(f, "rb") as r:
    r.read()
h = os.open(f, os.O_WRONLY | os.O_APPEND)
os.write(h, b"1")
os.write(h, b"2")
os.close(h)
os.chmod(f, 0o600)
print("\n".join(events(fd, names)))
os.rename(f, os.path.join(d, "b.txt"))
os.mkdir(os.path.join(d, "sub"))
os.listdir(os.path.join(d, "sub"))
os.rmdir(os.path.join(d, "sub"))
os.symlink("b.txt", os.path.join(d, "l"))
os.unlink(os.path.join(d, "l"))
fw = call(libc.inotify_add_watch, fd, os.path.join(d, "b.txt").encode(), 0x4)  # ATTRIB
names[fw] = "b"
print("mask add", call(libc.inotify_add_watch, fd, os.path.join(d, "b.txt").encode(),
                       0x20000000 | 0x400) == fw)
os.unlink(os.path.join(d, "b.txt"))
print("\n".join(events(fd, names)))
print("rm bad", call(libc.inotify_rm_watch, fd, 999))
print("rm", call(libc.inotify_rm_watch, fd, wd))
print("\n".join(events(fd, names)))
os.close(fd)
fd = libc.inotify_init1(os.O_NONBLOCK)
names = {call(libc.inotify_add_watch, fd, d.encode(), 0x8 | 0x10): "dir"}
h = os.open(os.path.join(d, "c"), os.O_CREAT | os.O_WRONLY, 0o600)
os.dup2(os.open(os.path.join(d, "c"), os.O_RDONLY), h)
os.closerange(h, h + 1)
pid = os.fork()
if pid == 0:
    os.open(os.path.join(d, "c"), os.O_RDONLY)
    os._exit(0)
os.waitpid(pid, 0)
print("\n".join(events(fd, names)))
