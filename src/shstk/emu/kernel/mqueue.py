"""POSIX message queues (ipc/mqueue.c): named queues of one emulated machine.

A queue lives in the machine's own mqueue namespace (`queues(k)`), never the host's. An
open queue is a descriptor whose read() gives the QSIZE line, as a file of the mqueue
file system does, and whose poll() says whether a message can be received or sent.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shstk.abi import errno as E
from shstk.abi import fs as F
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.eventfiles import AnonFile
from shstk.emu.kernel.signal import SigInfo

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Process

MQ_PRIO_MAX = 32768
DFLT_MAXMSG, DFLT_MSGSIZE = 10, 8192
HARD_MAXMSG, HARD_MSGSIZE = 65536, 16 * 1024 * 1024
SI_MESGQ = -3
SIGEV_SIGNAL, SIGEV_NONE, SIGEV_THREAD = 0, 1, 2


@dataclass
class Notify:
    """A process's mq_notify registration: how to tell it that a message arrived."""

    proc: Process
    notify: int
    signo: int
    value: int


@dataclass(eq=False)
class Queue:
    """A POSIX message queue: its attributes, owner, messages and waiters."""

    name: str
    maxmsg: int
    msgsize: int
    mode: int
    uid: int
    gid: int
    msgs: list[tuple[int, int, bytes]] = field(default_factory=list)  # (-prio, seq, data)
    seq: int = 0
    notify: Notify | None = None
    receivers: int = 0
    changes: int = 0

    @property
    def qsize(self) -> int:
        return sum(len(m[2]) for m in self.msgs)

    def put(self, k: Kernel, data: bytes, prio: int) -> None:
        was_empty = not self.msgs
        self.seq += 1
        self.msgs.append((-prio, self.seq, data))
        self.msgs.sort()
        self.changes += 1
        n = self.notify
        if was_empty and n is not None and not self.receivers:
            self.notify = None  # one notification, then the registration is gone
            if n.notify == SIGEV_SIGNAL and not n.proc.zombie:
                k.signals.send_process(n.proc, SigInfo(n.signo, SI_MESGQ, pid=n.proc.pid,
                                                       value=n.value))

    def get(self) -> tuple[int, bytes]:
        prio, _seq, data = self.msgs.pop(0)
        self.changes += 1
        return -prio, data


class MqFile(AnonFile):
    """An open queue (an mqueue-fs file)."""

    kind = "mqueue"
    name = "mqueue"

    def __init__(self, q: Queue, flags: int) -> None:
        super().__init__(flags)
        self.flags = flags  # the access mode is the one mq_open asked for
        self.path = "/" + q.name
        self.q = q

    def read(self, n: int) -> bytes:
        q = self.q
        sig = q.notify.signo if q.notify and q.notify.notify != SIGEV_NONE else 0
        text = (f"QSIZE:{q.qsize:<10} NOTIFY:{q.notify.notify if q.notify else 0:<5} "
                f"SIGNO:{sig:<5} NOTIFY_PID:{q.notify.proc.pid if q.notify else 0:<6}\n")
        return text.encode()[:n]

    def write(self, data: bytes) -> int:
        raise KernelError(E.EINVAL)

    def poll(self) -> int:
        ev = F.POLLIN | F.POLLRDNORM if self.q.msgs else 0
        if len(self.q.msgs) < self.q.maxmsg:
            ev |= F.POLLOUT | F.POLLWRNORM
        return ev

    def fdinfo(self) -> str:
        return self.read(4096).decode()


_QUEUES: weakref.WeakKeyDictionary[Kernel, dict[str, Queue]] = weakref.WeakKeyDictionary()


def queues(k: Kernel) -> dict[str, Queue]:
    qs = _QUEUES.get(k)
    if qs is None:
        qs = _QUEUES[k] = {}
    return qs


