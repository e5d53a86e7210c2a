"""`shstk ps [PID...]`: shadow-stack state (x86_Thread_features) of every thread.

Exit status: 0, or 1 when a named process does not exist or cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys

from shstk.errors import UsageError

NOT_REPORTED = ("This kernel does not report x86_Thread_features in /proc/PID/status"
                " (it was built without CONFIG_X86_USER_SHADOW_STACK, or is older than"
                " Linux 6.6): no process on this machine has a shadow stack.")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ps", help="shadow-stack state of running processes",
                       description="x86_Thread_features and x86_Thread_features_locked of"
                                   " every thread of every process (or of the PIDs given).")
    p.add_argument("pids", nargs="*", metavar="PID", help="process IDs (default: all)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--shstk-only", action="store_true",
                   help="list only threads with a shadow stack enabled")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace, proc: str = "/proc") -> int:
    from shstk.host.processes import scan_processes

    pids = [_pid(p) for p in args.pids] or None
    scan = scan_processes(pids, proc)
    rows = [r for r in scan.rows if r.features.shstk or not args.shstk_only]
    if args.json:
        json.dump(document(scan, rows), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        _print(scan, rows)
    return 1 if pids and scan.problems else 0


def _pid(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise UsageError(f"not a process ID: {text!r}")
    return int(text)


def document(scan, rows) -> dict:
    return {
        "schema": "shstk-ps/1",
        "reported": scan.reported,
        "processes": scan.processes,
        "threads": [{"pid": r.pid, "tid": r.tid, "comm": r.comm,
                     "features": _list(r.features.features),
                     "locked": _list(r.features.locked)} for r in rows],
        "problems": [{"pid": p.pid, "problem": p.problem} for p in scan.problems],
    }


def _list(words):
    return None if words is None else list(words)


def _print(scan, rows) -> None:
    from rich.console import Console
    from rich.table import Table

    from shstk.audit.report import shown
    from shstk.elf.verdict import plural

    console = Console(highlight=False)
    for problem in scan.problems:
        print(f"shstk: process {problem.pid}: {problem.problem}", file=sys.stderr)
    threads = len(scan.rows)
    if not scan.reported:
        console.print(NOT_REPORTED, soft_wrap=True)
        console.print(f"({plural(scan.processes, 'process')},"
                      f" {plural(threads, 'thread')} read)")
        return
    table = Table(box=None, header_style="bold")
    for column in ("PID", "TID", "COMMAND", "FEATURES", "LOCKED"):
        table.add_column(column, justify="right" if column in ("PID", "TID") else "left")
    for r in rows:
        table.add_row(str(r.pid), str(r.tid), shown(r.comm),
                      " ".join(r.features.features or ()) or "-",
                      " ".join(r.features.locked or ()) or "-")
    console.print(table)
    enabled = sum(1 for r in scan.rows if r.features.shstk)
    locked = sum(1 for r in scan.rows if r.features.locked)
    console.print(f"{plural(scan.processes, 'process')}, {plural(threads, 'thread')}:"
                  f" {enabled} with a shadow stack, {locked} with locked features")
