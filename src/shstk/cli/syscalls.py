"""`shstk syscalls`: the emulator's system-call table."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("syscalls", help="list the system calls the emulator implements",
                       description="Print the emulator's system-call table: number, name, "
                       "support status and what is missing.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--status", choices=("supported", "partial", "error", "unknown"),
                   help="only entries with this status")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from shstk.abi.syscalls import NAMES
    from shstk.emu.syscalls.table import TABLE

    rows = []
    for nr in sorted(set(NAMES) | set(TABLE)):
        entry = TABLE.get(nr)
        if entry is None:
            rows.append((nr, NAMES[nr], "unknown", "not in the table: -ENOSYS"))
        else:
            note = entry.note
            if entry.support == "error":
                from shstk.abi.errno import NAMES as ERRNO

                note = f"-{ERRNO.get(entry.errno, entry.errno)}: {note}"
            rows.append((nr, entry.name, entry.support, note))
    if args.status:
        rows = [r for r in rows if r[2] == args.status]
    if args.json:
        print(json.dumps([{"nr": nr, "name": n, "status": s, "note": note}
                          for nr, n, s, note in rows], indent=1))
        return 0
    width = max(len(r[1]) for r in rows) if rows else 10
    for nr, name, status, note in rows:
        print(f"{nr:4}  {name:<{width}}  {status:<9}  {note}".rstrip())
    counts = {s: sum(1 for r in rows if r[2] == s) for s in
              ("supported", "partial", "error", "unknown")}
    print(f"\n{counts['supported']} supported, {counts['partial']} partial, "
          f"{counts['error']} not emulated (errno), {counts['unknown']} unknown (ENOSYS)")
    return 0
