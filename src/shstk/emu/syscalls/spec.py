"""How a system call is described in the table (the gVisor model: one line per number)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from shstk.emu.syscalls.kinds import decoder

SUPPORTED = "supported"
PARTIAL = "partial"
ERROR = "error"


@dataclass(frozen=True)
class Syscall:
    nr: int
    name: str
    handler: Callable[..., object] | None
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


def supported(nr: int, name: str, handler: Callable[..., object], args: str = "",
              ret: str = "int", restart: str = "sys", note: str = "") -> Syscall:
    return Syscall(nr, name, handler, SUPPORTED, note, _split(args), ret, restart)


def partial(nr: int, name: str, handler: Callable[..., object], note: str, args: str = "",
            ret: str = "int", restart: str = "sys") -> Syscall:
    return Syscall(nr, name, handler, PARTIAL, note, _split(args), ret, restart)


def error(nr: int, name: str, errno: int, note: str, args: str = "",
          quiet: bool = False) -> Syscall:
    return Syscall(nr, name, None, ERROR, note, _split(args), "int", "never", errno, quiet)


def _split(args: str) -> tuple[str, ...]:
    return tuple(a.strip() for a in args.split(",") if a.strip())
