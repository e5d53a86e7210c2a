"""`shstk run` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse

from shstk.errors import ShstkError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="(not implemented yet)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    raise ShstkError("'run' is not implemented yet")
