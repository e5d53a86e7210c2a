"""`shstk audit PATH...`: would glibc enable shadow stacks for these programs?

Exit status: 0 every program is ready, 1 some program is not, 2 a usage error or an
input that could not be read (the other inputs are still audited and reported).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from shstk.errors import UsageError

if TYPE_CHECKING:
    from shstk.audit.scan import ScanResult

EXIT_READY, EXIT_NOT_READY, EXIT_ERROR = 0, 1, 2


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit", help="would the loader enable shadow stacks for these programs?",
        description="Read the GNU property notes of programs and of every library they"
                    " would load (resolved as ld.so does) and say whether glibc would"
                    " enable the shadow stack, and what blocks it.")
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="ELF files or directories (scanned recursively)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--sysroot", metavar="DIR", default="/",
                   help="audit a foreign root file system; PATHs are inside it")
    p.add_argument("--ld-library-path", metavar="DIRS", action="append", default=[],
                   help="colon-separated directories, as LD_LIBRARY_PATH (repeatable)")
    p.add_argument("--control", choices=("elf_property", "on", "off", "permissive"),
                   default="elf_property",
                   help="value of the glibc.cpu.x86_shstk tunable to judge with"
                        " (default: elf_property, glibc's default)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show every loaded object of every program")
    p.add_argument("-q", "--quiet", action="store_true", help="only the summary")
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help="worker processes (default: all cores)")
    p.add_argument("--top", type=int, default=10, metavar="N",
                   help="how many blocking libraries the summary lists")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from shstk.audit.jsonout import scan_document
    from shstk.audit.report import print_report, shown
    from shstk.audit.scan import scan

    _check_arguments(args)
    llp = [d for value in args.ld_library_path for d in value.replace(";", ":").split(":")]
    with _Progress(enabled=sys.stderr.isatty() and not args.quiet) as progress:
        result = scan(args.paths, sysroot=args.sysroot, ld_library_path=llp,
                      control=args.control, jobs=args.jobs, progress=progress)
    for failure in result.errors:
        print(f"shstk: {shown(failure.path)}: {shown(failure.problem)}", file=sys.stderr)
    if args.json:
        json.dump(scan_document(result, args.top), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        from rich.console import Console

        print_report(result, Console(highlight=False), verbose=args.verbose,
                     quiet=args.quiet, top=args.top)
    return exit_status(result)


def exit_status(result: ScanResult) -> int:
    if result.errors:
        return EXIT_ERROR
    if any(not p.verdict.enabled for p in result.programs):
        return EXIT_NOT_READY
    return EXIT_READY


def _check_arguments(args: argparse.Namespace) -> None:
    if not os.path.isdir(args.sysroot):
        raise UsageError(f"--sysroot {args.sysroot}: not a directory")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.top < 0:
        raise UsageError("--top must not be negative")
    if args.verbose and args.quiet:
        raise UsageError("--verbose and --quiet contradict each other")


class _Progress:
    """A rich progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar = None
        self._task = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._bar = Progress(TextColumn("parsing ELF files"), BarColumn(),
                             MofNCompleteColumn(), console=Console(stderr=True),
                             transient=True)
        self._bar.start()
        self._task = self._bar.add_task("parse", total=None)
        return self.update

    def update(self, done: int, total: int) -> None:
        assert self._bar is not None
        self._bar.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
