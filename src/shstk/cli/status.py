"""`shstk status`: does this machine support user shadow stacks?

Exit status: 0 when the kernel would give a program a shadow stack, 1 when it would
not (the report says why).
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="does this machine support user shadow stacks?",
                       description="CPU, kernel, boot options, glibc and GLIBC_TUNABLES,"
                                   " each with what it means for shadow stacks.")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from shstk.host.status import assess, gather

    status = assess(gather())
    if args.json:
        json.dump(document(status), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        _print(status)
    return 0 if status.kernel_ready else 1


def document(status) -> dict:
    return {
        "schema": "shstk-status/1",
        "kernel_ready": status.kernel_ready,
        "glibc_ready": status.glibc_ready,
        "conclusion": status.conclusion,
        "facts": [{"key": f.key, "label": f.label, "value": f.value, "ok": f.ok,
                   "meaning": f.meaning} for f in status.facts],
    }


def _print(status) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False)
    marks = {True: ("ok", "green"), False: ("no", "red"), None: ("--", "dim")}
    for fact in status.facts:
        word, style = marks[fact.ok]
        line = Text()
        line.append(f"[{word}] ", style=style)
        line.append(f"{fact.label}: ", style="bold")
        line.append(fact.value)
        console.print(line, soft_wrap=True)
        if fact.meaning:
            console.print(Text(f"     {fact.meaning}"), soft_wrap=True)
    console.print(Text(status.conclusion, style="bold"), soft_wrap=True)
