"""splice/tee/vmsplice between pipes, files and sockets (native vs emulated)."""
import ctypes
import errno
import os
import signal
import socket

libc = ctypes.CDLL(None, use_errno=True)


def e(fn, *a, **kw):
    try:
        return fn(*a, **kw)
    except OSError as x:
        return errno.errorcode[x.errno]


src = os.memfd_create("src")
os.write(src, b"0123456789" * 10)
r, w = os.pipe()
print("file->pipe", os.splice(src, w, 25, offset_src=5), os.lseek(src, 0, os.SEEK_CUR))
print("file->pipe pos", os.lseek(src, 0, os.SEEK_SET), os.splice(src, w, 5))
dst = os.memfd_create("dst")
print("pipe->file", os.splice(r, dst, 100), os.pread(dst, 100, 0))
print("no pipe", e(os.splice, src, dst, 10),
      "pipe offset", e(os.splice, r, dst, 1, offset_src=0))
r2, w2 = os.pipe()
os.write(w, b"teedata")
tee = libc.tee
print("tee", tee(r, w2, 100, 0), os.read(r2, 100), os.read(r, 100))
print("tee same pipe", tee(r, w, 10, 0), errno.errorcode[ctypes.get_errno()])
print("nonblock empty", e(os.splice, r, dst, 10, flags=os.SPLICE_F_NONBLOCK))
buf = ctypes.create_string_buffer(b"vmspliced!")
iov = (ctypes.c_void_p * 2)(ctypes.addressof(buf), 10)
print("vmsplice write", libc.vmsplice(w, iov, 1, 0), os.read(r, 100))
os.write(w, b"back")
out = ctypes.create_string_buffer(10)
iov2 = (ctypes.c_void_p * 2)(ctypes.addressof(out), 10)
print("vmsplice read", libc.vmsplice(r, iov2, 1, 0), out.raw[:4])
a, b = socket.socketpair()
os.write(w, b"to socket")
print("pipe->socket", os.splice(r, a.fileno(), 100), b.recv(100))
b.send(b"from socket")
print("socket->pipe", os.splice(a.fileno(), w, 100), os.read(r, 100))
os.close(w)
print("eof", os.splice(r, dst, 10))
rr, ww = os.pipe()
os.close(rr)
print("epipe", e(os.splice, src, ww, 10, offset_src=0))
signal.signal(signal.SIGPIPE, lambda s, f: print("SIGPIPE"))
print("epipe with handler", e(os.splice, src, ww, 10, offset_src=0))
