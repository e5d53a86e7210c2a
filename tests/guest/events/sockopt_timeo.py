"""SO_RCVTIMEO/SO_SNDTIMEO: a blocking recv/send that runs out is EAGAIN (issue 17)."""
import errno
import socket
import struct
import time

TV = struct.Struct("qq")
a, b = socket.socketpair()
a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, TV.pack(0, 200000))
t0 = time.monotonic()
try:
    a.recv(10)
except OSError as e:
    print("recv", errno.errorcode[e.errno], 0.15 < time.monotonic() - t0 < 5)
b.send(b"x")
print("got", a.recv(10))
b.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, TV.pack(0, 100000))
n = 0
try:
    while True:
        n += b.send(b"y" * 65536)
except OSError as e:
    print("send", errno.errorcode[e.errno], n > 0)
try:
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, TV.pack(0, 10**6))
except OSError as e:
    print("bad usec", errno.errorcode[e.errno])
print(TV.unpack(a.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, 16)))
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
c = socket.create_connection(s.getsockname())
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, TV.pack(0, 100000))
try:
    c.recv(1)
except OSError as e:
    print("tcp recv", errno.errorcode[e.errno])
