"""`shstk syscalls` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse

from shstk.errors import ShstkError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("syscalls", help="(not implemented yet)")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    raise ShstkError("'syscalls' is not implemented yet")
