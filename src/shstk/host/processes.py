"""`shstk ps`: the shadow-stack state of running processes, per thread.

Processes exit and threads come and go while /proc is read: a process that vanishes
or refuses access is reported as a problem, never an exception.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from shstk.host.procfs import ThreadFeatures, parse_status, thread_features


@dataclass(frozen=True)
class ThreadRow:
    """One thread of `shstk ps`: its ids, name and shadow-stack features."""

    pid: int
    tid: int
    comm: str
    features: ThreadFeatures


@dataclass(frozen=True)
class Problem:
    """A process `shstk ps` could not read, and why."""

    pid: int
    problem: str


@dataclass
class ProcessScan:
    """What `shstk ps` found: the threads, the processes it could not read, and how many it
    looked at."""

    rows: list[ThreadRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    processes: int = 0

    @property
    def reported(self) -> bool:
        """Does this kernel print x86_Thread_features at all?"""
        return any(row.features.reported for row in self.rows)


def scan_processes(pids: Sequence[int] | None = None, proc: str = "/proc") -> ProcessScan:
    scan = ProcessScan()
    named = pids is not None
    for pid in (pids if pids is not None else _all_pids(proc)):
        rows = _threads(pid, proc, scan, named)
        if rows:
            scan.processes += 1
            scan.rows.extend(rows)
    return scan


def _all_pids(proc: str) -> list[int]:
    try:
        return sorted(int(name) for name in os.listdir(proc) if name.isdigit())
    except OSError:
        return []


def _threads(pid: int, proc: str, scan: ProcessScan, named: bool) -> list[ThreadRow]:
    try:
        tids = sorted(int(t) for t in os.listdir(f"{proc}/{pid}/task") if t.isdigit())
    except OSError as exc:
        scan.problems.append(Problem(pid, _why(exc, named)))
        return []
    rows = []
    for tid in tids:
        try:
            status = parse_status(read_status(f"{proc}/{pid}/task/{tid}/status"))
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                continue  # a thread that just exited: threads come and go
            scan.problems.append(Problem(pid, _why(exc, named)))
            return []
        rows.append(ThreadRow(pid, tid, status.get("Name", "?"), thread_features(status)))
    if not rows and tids:
        scan.problems.append(Problem(pid, "exited during the scan"))
    return rows


def read_status(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def _why(exc: OSError, named: bool) -> str:
    if exc.errno == errno.ENOENT:
        return "no such process" if named else "exited during the scan"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return exc.strerror or str(exc)
