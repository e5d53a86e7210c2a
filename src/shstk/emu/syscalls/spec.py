"""How a system call is described in the table (the gVisor model: one line per number)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from shstk.emu.syscalls.kinds import decoder

SUPPORTED = "supported"
PARTIAL = "partial"
ERROR = "error"


class Handler:
    """A row's handler, named by family module and function: the family is imported the
    first time one of its calls is made. A static hello world needs 11 of the 30
    families; importing all of them (sockets, SysV IPC, message queues, epoll, perf,
    userfaultfd and the kernel objects behind them) was a twentieth of its start-up.
    This is the one place shstk imports its own modules by name (tests/test_layers.py
    adds these edges to its graph, so no import circle can hide here)."""

    __slots__ = ("_fn", "family", "name")

    def __init__(self, family: str, name: str) -> None:
        self.family = family
        self.name = name
        self._fn: Callable[..., object] | None = None

    def resolve(self) -> Callable[..., object]:
        """The function itself (importing its family on first use)."""
        fn = self._fn
        if fn is None:
            module = importlib.import_module(f"{__package__}.{self.family}")
            fn = self._fn = getattr(module, self.name)
        return fn

    def __repr__(self) -> str:
        return f"{self.family}.{self.name}"


class Family:
    """A family module as the table writes it (`fs_rw.sys_read`), without importing it."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Handler:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return Handler(self._name, attr)


def families(*names: str) -> tuple[Family, ...]:
    return tuple(Family(n) for n in names)


@dataclass(frozen=True)
class Syscall:
    """One row of the system-call table: number, name, handler, argument kinds and restart
    behaviour."""

    nr: int
    name: str
    handler: Handler | None
    support: str
    note: str = ""
    # one kind per argument (kinds.py): how dispatch decodes it for the handler and how
    # strace renders it; the handler takes exactly these arguments after (kernel, task)
    args: tuple[str, ...] = ()
    ret: str = "int"
    # what a signal does to a sleeping call: "sys" restarts with SA_RESTART (ERESTARTSYS),
    # "nohand" restarts only when no handler runs, "never" returns -EINTR
    restart: str = "sys"
    errno: int = 0  # for ERROR entries: what the call returns
    quiet: bool = False  # an ERROR Linux itself may give: no diagnostic line
    decoders: tuple[Callable[[int], int], ...] = field(init=False, repr=False,
                                                       compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "decoders", tuple(decoder(k) for k in self.args))


def supported(nr: int, name: str, handler: Handler, args: str = "",
              ret: str = "int", restart: str = "sys", note: str = "") -> Syscall:
    return Syscall(nr, name, handler, SUPPORTED, note, _split(args), ret, restart)


def partial(nr: int, name: str, handler: Handler, note: str, args: str = "",
            ret: str = "int", restart: str = "sys") -> Syscall:
    return Syscall(nr, name, handler, PARTIAL, note, _split(args), ret, restart)


def error(nr: int, name: str, errno: int, note: str, args: str = "",
          quiet: bool = False) -> Syscall:
    return Syscall(nr, name, None, ERROR, note, _split(args), "int", "never", errno, quiet)


def _split(args: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in args.split(",") if a.strip())
