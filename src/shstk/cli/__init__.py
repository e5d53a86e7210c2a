"""Command line: `shstk run|audit|status|ps|syscalls`.

Each subcommand lives in its own module with `register(subparsers)`; the module's
handler receives the parsed arguments and returns the exit status. Heavy imports
(Unicorn, capstone) happen inside the handlers so `shstk --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from shstk import __version__
from shstk.errors import ShstkError

SUBCOMMANDS = ("run", "audit", "status", "ps", "syscalls")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shstk",
        description="Run, test and audit Linux user-space shadow stacks (x86 CET SHSTK).",
    )
    parser.add_argument("--version", action="version", version=f"shstk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import importlib

    for name in SUBCOMMANDS:
        importlib.import_module(f"shstk.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except ShstkError as exc:
        print(f"shstk: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("shstk: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
