"""System V shared memory, semaphores and message queues across fork (native vs emulated)."""
import ctypes
import errno
import os
import struct
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
IPC_PRIVATE, IPC_CREAT, IPC_EXCL, IPC_NOWAIT, IPC_RMID, IPC_STAT = 0, 0o1000, 0o2000, 0o4000, 0, 2
SEM_UNDO, GETVAL, SETVAL, GETALL, GETNCNT = 0x1000, 12, 16, 13, 14


def err(r):
    return "-" + errno.errorcode[ctypes.get_errno()] if r == -1 else r


def ok(r):
    assert r != -1, errno.errorcode[ctypes.get_errno()]
    return r


# --- shared memory
shmid = ok(libc.shmget(IPC_PRIVATE, 10000, IPC_CREAT | 0o600))
addr = libc.shmat(shmid, None, 0)
buf = (ctypes.c_char * 10000).from_address(addr)
buf[0:5] = b"hello"
ds = ctypes.create_string_buffer(112)
ok(libc.shmctl(shmid, IPC_STAT, ds))
segsz, nattch = struct.unpack_from("<Q", ds, 48)[0], struct.unpack_from("<Q", ds, 88)[0]
print("shm segsz", segsz, "nattch", nattch, "mode", oct(struct.unpack_from("<I", ds, 20)[0]))
pid = os.fork()
if pid == 0:
    buf[0:5] = b"HELLO"
    libc.shmctl(shmid, IPC_STAT, ds)
    print("child nattch", struct.unpack_from("<Q", ds, 88)[0], flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print("parent sees", buf[0:5])
ok(libc.shmctl(shmid, IPC_STAT, ds))
print("nattch after child exit", struct.unpack_from("<Q", ds, 88)[0])
print("shmdt", libc.shmdt(addr), "again", err(libc.shmdt(addr)))
print("odd addr", err(libc.shmdt(addr + 1)))
print("rmid", libc.shmctl(shmid, IPC_RMID, None),
      "stat after", err(libc.shmctl(shmid, IPC_STAT, ds)))
key = 0x5157AB00 + os.getpid() % 200
k1 = ok(libc.shmget(key, 4096, IPC_CREAT | 0o600))
print("same key", libc.shmget(key, 0, 0) == k1,
      "excl", err(libc.shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0o600)),
      "too big", err(libc.shmget(key, 8192, 0)))
libc.shmctl(k1, IPC_RMID, None)
print("gone", err(libc.shmget(key, 0, 0)), "size 0", err(libc.shmget(IPC_PRIVATE, 0, IPC_CREAT)))

# --- semaphores
semid = ok(libc.semget(IPC_PRIVATE, 2, IPC_CREAT | 0o600))


def semop(*ops, nowait=False, sid=None):
    arr = b"".join(struct.pack("<Hhh", n, o, f | (IPC_NOWAIT if nowait else 0)) for n, o, f in ops)
    cbuf = ctypes.create_string_buffer(arr, len(arr))
    return err(libc.semop(semid if sid is None else sid, cbuf, len(ops)))


print("setval", libc.semctl(semid, 0, SETVAL, 1), "getval", libc.semctl(semid, 0, GETVAL))
print("take", semop((0, -1, 0)), "again nowait", semop((0, -1, 0), nowait=True))
print("atomic", semop((1, 1, 0), (0, -1, 0), nowait=True), "sem1", libc.semctl(semid, 1, GETVAL))
print("efbig", semop((5, 1, 0)), "erange", err(libc.semctl(semid, 0, SETVAL, 40000)))
r, w = os.pipe()
pid = os.fork()
if pid == 0:
    os.read(r, 1)
    time.sleep(0.05)
    semop((0, 1, 0))  # release: wakes the parent
    semop((1, 5, SEM_UNDO))  # undone when this child exits
    os._exit(0)
os.write(w, b"x")
print("blocking take", semop((0, -1, 0)))
os.waitpid(pid, 0)
print("after undo", libc.semctl(semid, 1, GETVAL))
ts = struct.pack("<qq", 0, 20_000_000)
arr = struct.pack("<Hhh", 0, -1, 0)
print("timed", err(libc.semtimedop(semid, arr, 1, ts)))
pid = os.fork()
if pid == 0:
    time.sleep(0.05)
    libc.semctl(semid, 0, IPC_RMID)
    os._exit(0)
print("removed while waiting", semop((0, -1, 0)))
os.waitpid(pid, 0)

# --- message queues
q = ok(libc.msgget(IPC_PRIVATE, IPC_CREAT | 0o600))


def send(mtype, text, flags=0):
    m = struct.pack("<q", mtype) + text
    return err(libc.msgsnd(q, m, len(text), flags))


def recv(size, mtype, flags=0):
    b = ctypes.create_string_buffer(8 + size)
    n = libc.msgrcv(q, b, size, ctypes.c_long(mtype), flags)
    if n == -1:
        return err(n)
    return struct.unpack_from("<q", b)[0], b.raw[8:8 + n]


print(send(2, b"two"), send(1, b"one"), send(3, b"three"), send(0, b"zero"))
print(recv(100, 3), recv(100, -2), recv(2, 0), recv(2, 0, 0o10000))
print(recv(100, 0, IPC_NOWAIT))
pid = os.fork()
if pid == 0:
    time.sleep(0.05)
    send(7, b"from child")
    os._exit(0)
print("blocking", recv(100, 7))
os.waitpid(pid, 0)
ds = ctypes.create_string_buffer(120)
send(1, b"abc")
ok(libc.msgctl(q, IPC_STAT, ds))
print("cbytes qnum qbytes", struct.unpack_from("<QQQ", ds, 72))
print("rmid", libc.msgctl(q, IPC_RMID, None), err(libc.msgctl(q, IPC_STAT, ds)))
