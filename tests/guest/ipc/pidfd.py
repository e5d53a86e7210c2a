"""pidfd_open/send_signal/getfd, waitid(P_PIDFD), poll on a pidfd (native vs emulated)."""
import ctypes
import errno
import os
import select
import signal
import time

libc = ctypes.CDLL(None, use_errno=True)
SYS_pidfd_open, SYS_pidfd_send_signal, SYS_pidfd_getfd = 434, 424, 438
P_PIDFD = 3


def sc(*a):
    r = libc.syscall(*a)
    return "-" + errno.errorcode[ctypes.get_errno()] if r == -1 else r


print("bad flags", sc(SYS_pidfd_open, os.getpid(), 1))
print("no such pid", sc(SYS_pidfd_open, 4000000, 0))
print("pid 0", sc(SYS_pidfd_open, 0, 0))
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.close(w)
    os.read(r, 1)
    os._exit(3)
fd = sc(SYS_pidfd_open, pid, 0)
print("cloexec", bool(__import__("fcntl").fcntl(fd, __import__("fcntl").F_GETFD) & 1))
print("poll running", select.select([fd], [], [], 0)[0])
got = sc(SYS_pidfd_getfd, fd, r, 0)
print("getfd is the pipe", os.fstat(got).st_ino == os.fstat(r).st_ino)
print("getfd bad fd", sc(SYS_pidfd_getfd, fd, 999, 0), "not a pidfd", sc(SYS_pidfd_getfd, r, 0, 0))
print("signal 0", sc(SYS_pidfd_send_signal, fd, 0, None, 0),
      "flags", sc(SYS_pidfd_send_signal, fd, 0, None, 1), sc(SYS_pidfd_send_signal, fd, 0, None, 3))
os.write(w, b"x")
print("poll exited", select.select([fd], [], [], 5)[0] == [fd])
info = os.waitid(P_PIDFD, fd, os.WEXITED)
print("waitid", info.si_pid == pid, info.si_status, info.si_code == os.CLD_EXITED)
print("after reap", sc(SYS_pidfd_send_signal, fd, signal.SIGTERM, None, 0))
try:
    os.waitid(P_PIDFD, fd, os.WEXITED)
except OSError as e:
    print("waitid again", errno.errorcode[e.errno])
os.close(fd)
pid = os.fork()
if pid == 0:
    time.sleep(30)
    os._exit(0)
fd = sc(SYS_pidfd_open, pid, 0)
print("kill", sc(SYS_pidfd_send_signal, fd, signal.SIGKILL, None, 0))
_, status = os.waitpid(pid, 0)
print("killed by", os.WTERMSIG(status))
nb = sc(SYS_pidfd_open, os.getpid(), os.O_NONBLOCK)
print("self nonblock ok", nb >= 0)
try:
    os.waitid(P_PIDFD, 0, os.WEXITED)
except OSError as e:
    print("waitid not a pidfd", errno.errorcode[e.errno])
out = ctypes.c_int(-1)
child = libc.syscall(56, 0x1000 | signal.SIGCHLD, None, ctypes.byref(out), None, None)
if child == 0:
    os._exit(5)
print("clone pidfd", out.value > 2, select.select([out.value], [], [], 5)[0] == [out.value])
info = os.waitid(P_PIDFD, out.value, os.WEXITED)
print("clone waitid", info.si_pid == child, info.si_status)
print("clone pidfd+settid", sc(56, 0x1000 | 0x100000 | signal.SIGCHLD, None, ctypes.byref(out),
                               None, None))
