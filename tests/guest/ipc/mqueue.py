"""POSIX message queues (native vs emulated)."""
import ctypes
import errno
import os
import select
import signal
import struct
import time

rt = ctypes.CDLL("librt.so.1", use_errno=True)
for fn in ("mq_send", "mq_receive", "mq_timedreceive", "mq_timedsend"):
    getattr(rt, fn).argtypes = None
rt.mq_receive.restype = ctypes.c_ssize_t
rt.mq_timedreceive.restype = ctypes.c_ssize_t


def err(r):
    return "-" + errno.errorcode[ctypes.get_errno()] if r == -1 else r


name = f"/shstk-test-{os.getpid()}".encode()
attr = struct.pack("<qqqq32x", 0, 4, 64, 0)
q = rt.mq_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600, attr)
print("open ok", q >= 0, "excl", err(rt.mq_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600,
                                                 attr)))
print("missing", err(rt.mq_open(b"/shstk-none", os.O_RDWR)), "bad name", err(rt.mq_open(b"x", 0)))
print("poll empty", select.select([q], [q], [], 0)[:2] == ([], [q]))
for text, prio in ((b"low", 1), (b"high", 9), (b"low2", 1), (b"mid", 5)):
    rt.mq_send(q, text, len(text), prio)
print("full", err(rt.mq_timedsend(q, b"x", 1, 0, struct.pack("<qq", 0, 0))))
print("too big", err(rt.mq_send(q, b"x" * 65, 65, 0)))
got = []
buf = ctypes.create_string_buffer(64)
prio = ctypes.c_uint()
for _ in range(4):
    n = rt.mq_receive(q, buf, 64, ctypes.byref(prio))
    got.append((buf.raw[:n], prio.value))
print(got)
print("small buffer", err(rt.mq_receive(q, buf, 10, None)))
a = ctypes.create_string_buffer(64)
rt.mq_getattr(q, a)
print("attr", struct.unpack_from("<qqqq", a))
rt.mq_setattr(q, struct.pack("<qqqq32x", os.O_NONBLOCK, 0, 0, 0), a)
print("nonblock", err(rt.mq_receive(q, buf, 64, None)))
rt.mq_setattr(q, struct.pack("<qqqq32x", 0, 0, 0, 0), None)
print("timed", err(rt.mq_timedreceive(q, buf, 64, None, struct.pack("<qq", 0, 0))))
got_sig = []
signal.signal(signal.SIGUSR1, lambda s, f: got_sig.append(s))
sev = struct.pack("<qii48x", 7, signal.SIGUSR1, 0)
print("notify", rt.mq_notify(q, sev))
pid = os.fork()
if pid == 0:
    time.sleep(0.05)
    c = rt.mq_open(name, os.O_WRONLY)
    rt.mq_send(c, b"from child", 10, 3)
    os._exit(0)
n = rt.mq_receive(q, buf, 64, ctypes.byref(prio))
while n == -1 and ctypes.get_errno() == errno.EINTR:
    n = rt.mq_receive(q, buf, 64, ctypes.byref(prio))
os.waitpid(pid, 0)
print("blocking", buf.raw[:n], prio.value, "signal", got_sig)
print("unlink", rt.mq_unlink(name), "again", err(rt.mq_unlink(name)))
print("still usable", rt.mq_send(q, b"z", 1, 0), rt.mq_receive(q, buf, 64, None))
os.close(q)
