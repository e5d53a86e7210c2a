"""Command line: `shstk run|check|audit|status|ps|syscalls`.

Each subcommand lives in its own module with `register(subparsers)`; the module's
handler receives the parsed arguments and returns the exit status. Heavy imports
(Unicorn, capstone) happen inside the handlers so `shstk --help` stays fast.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from shstk import __version__
from shstk.cli import dccache
from shstk.emu.cpu import preload
from shstk.errors import ShstkError

dccache.install()  # before the subcommand's modules define their dataclasses

# argparse asks gettext for each of its messages; the first question imports locale and
# looks for catalogues on disk (a millisecond of every start-up). Python installs none
# for argparse's messages, so they are used as written.
argparse._ = lambda message: message  # type: ignore[attr-defined]
argparse.ngettext = (  # type: ignore[attr-defined]
    lambda singular, plural, n: singular if n == 1 else plural)

SUBCOMMANDS = ("run", "check", "audit", "status", "ps", "syscalls")


def _terminal_width() -> int:
    """shutil.get_terminal_size().columns without importing shutil (with its compression
    modules, 2.5 ms of every start-up: argparse builds a formatter for every option)."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         _terminal_width() - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    """argparse's parser with the formatter above (subcommands inherit the class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; with `only`, just that subcommand is registered (its module alone is
    imported: `shstk run` does not pay for the others' imports at start-up)."""
    parser = _Parser(
        prog="shstk",
        description="Run, test and audit Linux user-space shadow stacks (x86 CET SHSTK).",
    )
    parser.add_argument("--version", action="version", version=f"shstk {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    import importlib

    for name in SUBCOMMANDS if only is None else (only,):
        importlib.import_module(f"shstk.cli.{name}").register(sub)
    return parser


def _named_command(argv: Sequence[str]) -> str | None:
    """The subcommand when it is the first argument (the usual case), else None."""
    return argv[0] if argv and argv[0] in SUBCOMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    command = _named_command(sys.argv[1:] if argv is None else argv)
    if command == "run":
        preload.start()  # the engine's libraries load on the other core meanwhile
    parser = build_parser(command)
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
    except Exception as exc:  # a bug in shstk: one line, the traceback on request
        import os
        import traceback

        if os.environ.get("SHSTK_DEBUG"):
            traceback.print_exc()
        where = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        at = f" ({os.path.basename(where.filename)}:{where.lineno})" if where else ""
        print(f"shstk: internal error: {type(exc).__name__}: {exc}{at}; this is a bug in "
              "shstk (SHSTK_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 125


def entry() -> NoReturn:
    """The `shstk` command: main(), then an exit without the interpreter's teardown.

    Tearing down a run (garbage-collecting its kernel objects and modules) took a few
    milliseconds of every `shstk run` and changes nothing outside the process: what must
    happen at exit does (standard streams flushed, atexit functions and weakref
    finalizers run: the dataclass cache is written, private directories are removed)."""
    status = main()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing left to lose
            pass
    atexit._run_exitfuncs()  # what the interpreter's own exit runs first
    os._exit(status)  # truncated to 8 bits by the system, as sys.exit(status) is
