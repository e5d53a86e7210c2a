# ruff: noqa  (a compact guest script, compared line by line with a native run)
import errno, os, socket, struct
a, b = socket.socketpair()
r, w = os.pipe()
socket.send_fds(a, [b"fd"], [w])
msg, fds, _f, _ad = socket.recv_fds(b, 10, 4)
os.write(fds[0], b"via passed fd"); print(msg, os.read(r, 100))
pid, uid, gid = struct.unpack("3i", b.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
print("peercred", pid == os.getpid(), uid == os.getuid())
print("peek", a.send(b"abc"), b.recv(2, socket.MSG_PEEK), b.recv(10))
a.close(); print("eof", b.recv(10))
try:
    b.send(b"x", socket.MSG_NOSIGNAL)
except OSError as x:
    print("epipe", x.errno == errno.EPIPE)
d1, d2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
d1.send(b"one"); d1.send(b"two"); print("dgram", d2.recv(10), d2.recv(10))
abs_ = socket.socket(socket.AF_UNIX); abs_.bind(b"\0shstk-test-abs"); abs_.listen()
c = socket.socket(socket.AF_UNIX); c.connect(b"\0shstk-test-abs")
s, _ = abs_.accept(); c.sendall(b"abstract"); print(s.recv(100), s.getsockname())
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", 0)); l.listen(); port = l.getsockname()[1]
x = socket.socket()
try:
    x.bind(("127.0.0.1", port))
except OSError as e:
    print("inuse", e.errno == errno.EADDRINUSE)
c = socket.create_connection(("localhost", port)); s, peer = l.accept()
c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
c.sendall(b"tcp"); print(s.recv(10), peer[0], c.getpeername() == ("127.0.0.1", port))
l.close()
for addr, name in ((("127.0.0.1", port), "refused"),):
    try:
        socket.create_connection(addr, timeout=5)
    except OSError as e:
        print(name, errno.errorcode.get(e.errno))
u1 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); u1.bind(("::1", 0))
u2 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
u2.sendto(b"udp6", u1.getsockname()); data, src = u1.recvfrom(100); print(data, src[0])
