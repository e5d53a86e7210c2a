"""`shstk check PROG... | -f COMMANDS`: if shadow stacks were on for these programs, what
would break, and where?

Every program (or command line) runs under `shstk run --shstk on` in its own process,
`--jobs` at a time; each gets the audit verdict (is it marked, which library keeps shadow
stacks off) next to the run's result. Output: one table, or `--json`; `--junit FILE`
for CI. The audit and the runs are joined here: `audit` and `run` never import each other.

Exit status: 0 every program passed, 1 some program violated its shadow stack, 3 none
did but some other failure or timeout happened, 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shstk.errors import ShstkError, UsageError

if TYPE_CHECKING:
    from shstk.audit.scan import ProgramResult
    from shstk.run.check import Command, Outcome

EXIT_PASSED, EXIT_VIOLATION, EXIT_USAGE, EXIT_FAILED = 0, 1, 2, 3
SCHEMA = "shstk-check/1"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="run programs with shadow stacks on: what breaks, and where?",
        description="Run each program (or each command line of -f FILE) under "
        "`shstk run --shstk on`, in parallel, and print one table: the audit verdict "
        "(marked or not, and which library keeps shadow stacks off), the result (passed, "
        "a shadow-stack violation and where, another failure, a timeout) and the report. "
        "Exit status: 0 all passed, 1 some violation, 3 no violation but other failures "
        "or timeouts, 2 usage error.")
    p.add_argument("programs", nargs="*", metavar="PROG",
                   help="programs to run, without arguments (searched in PATH)")
    p.add_argument("-f", "--file", metavar="COMMANDS", dest="commands_file",
                   help="read shell-quoted command lines from COMMANDS, one per line "
                   "(# comments and blank lines ignored; - is stdin)")
    p.add_argument("-j", "--jobs", type=int, default=None, metavar="N",
                   help="programs run at once (default: the number of cores)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="stop each program after S seconds (passed to shstk run --timeout)")
    p.add_argument("--reports", metavar="DIR",
                   help="keep reports and logs in DIR (default: a new temporary directory)")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML to FILE")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document (schema shstk-check/1) instead of the table")
    p.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from shstk.run.check import Command, read_commands, run_all

    commands = [Command((prog,)) for prog in args.programs]
    _check_arguments(args)
    if args.commands_file is not None:
        commands += read_commands(args.commands_file)
        if not commands:
            raise UsageError(f"-f {args.commands_file}: no command lines")
    jobs = args.jobs or os.cpu_count() or 1
    reports = args.reports or tempfile.mkdtemp(prefix="shstk-check-")
    try:
        os.makedirs(reports, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--reports {reports}: {exc.strerror}") from None
    audits = audit_commands(commands, jobs)
    started = time.monotonic()
    with _Progress(len(commands), enabled=sys.stderr.isatty()) as progress:
        outcomes = run_all(commands, reports, jobs=jobs, timeout=args.timeout,
                           progress=progress)
    elapsed = time.monotonic() - started
    status = exit_status(outcomes)
    if args.junit:
        write_junit(args.junit, outcomes, elapsed)
    if args.json:
        json.dump(document(outcomes, audits, reports, status, args.timeout), sys.stdout,
                  indent=1)
        sys.stdout.write("\n")
    else:
        print_table(outcomes, audits, reports)
    return status


def _check_arguments(args: argparse.Namespace) -> None:
    if not args.programs and args.commands_file is None:
        raise UsageError("check: no programs (give PROG... or -f COMMANDS)")
    if args.programs and args.commands_file is not None:
        raise UsageError("check: give either PROG... or -f COMMANDS, not both")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError("--timeout must be positive")
    if args.junit:
        parent = os.path.dirname(os.path.abspath(args.junit))
        if not os.path.isdir(parent):
            raise UsageError(f"--junit {args.junit}: no directory {parent}")


def exit_status(outcomes: Sequence[Outcome]) -> int:
    from shstk.run.check import PASSED, VIOLATION

    if any(o.status == VIOLATION for o in outcomes):
        return EXIT_VIOLATION
    if any(o.status != PASSED for o in outcomes):
        return EXIT_FAILED
    return EXIT_PASSED


# -- the audit verdict -------------------------------------------------------------------


def audit_commands(commands: Sequence[Command], jobs: int) -> list[dict[str, Any]]:
    """`shstk audit`'s verdict (glibc's default control) for each command's program."""
    from shstk.audit.scan import scan

    paths: list[str | None] = [_program_path(c.argv[0]) for c in commands]
    wanted = sorted({p for p in paths if p is not None})
    result = scan(wanted, jobs=jobs) if wanted else None
    by_file: dict[tuple[int, int], ProgramResult] = {}
    problems: dict[str, str] = {}
    if result is not None:
        for program in result.programs:
            key = _file_key(program.path)
            if key is not None:
                by_file[key] = program
        for failure in result.errors:
            problems[os.path.abspath(failure.path)] = failure.problem
    audits: list[dict[str, Any]] = []
    for command, path in zip(commands, paths, strict=True):
        if path is None:
            audits.append({"status": "error", "path": None, "marked": None, "blockers": [],
                           "reason": f"{command.argv[0]}: not found in PATH"})
            continue
        key = _file_key(path)
        found = by_file.get(key) if key is not None else None
        if found is None:
            problem = problems.get(os.path.abspath(path), "not audited")
            audits.append({"status": "error", "path": path, "marked": None, "blockers": [],
                           "reason": problem})
            continue
        verdict = found.verdict
        audits.append({"status": verdict.status, "path": found.path,
                       "marked": verdict.exe_marked,
                       "blockers": [o.name for o in verdict.blockers],
                       "reason": verdict.reason})
    return audits


def _program_path(argv0: str) -> str | None:
    """Where `shstk run` finds the program: a name without a slash is searched in PATH."""
    if "/" in argv0:
        return argv0
    return shutil.which(argv0, path=os.environ.get("PATH", "/usr/bin:/bin"))


def _file_key(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def audit_words(audit: dict[str, Any]) -> str:
    """`marked`, `not marked: libfoo.so`, `not marked (executable)`, ..."""
    status = audit["status"]
    if status == "ready":
        return "marked"
    if status == "blocked":
        if not audit["marked"]:
            blockers = audit["blockers"]
            return "not marked (executable" + (f", {', '.join(blockers)})" if blockers else ")")
        return "not marked: " + ", ".join(audit["blockers"])
    if status == "missing":
        return str(audit["reason"])
    if status == "ineligible":
        return f"not x86-64 ({audit['reason']})"
    return f"not audited: {audit['reason']}"


# -- output ------------------------------------------------------------------------------


def result_words(outcome: Outcome) -> str:
    from shstk.run.check import FAILED, PASSED, TIMEOUT, VIOLATION

    if outcome.status == PASSED:
        return "passed"
    if outcome.status == VIOLATION:
        where = f" at {outcome.where.short()}" if outcome.where else ""
        return f"VIOLATION{where}"
    if outcome.status == TIMEOUT:
        return "timeout"
    assert outcome.status == FAILED
    return f"failed: {outcome.summary}"


def _file_shown(outcome: Outcome, reports: str) -> str:
    path = outcome.report or outcome.log
    return os.path.relpath(path, reports) if path else "-"


def print_table(outcomes: Sequence[Outcome], audits: Sequence[dict[str, Any]],
                reports: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from shstk.run.check import PASSED, VIOLATION

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    table = Table(show_lines=False, box=None, pad_edge=False)
    for name in ("program", "audit", "result", "report"):
        table.add_column(name, overflow="fold")
    styles = {PASSED: "green", VIOLATION: "bold red"}
    for outcome, audit in zip(outcomes, audits, strict=True):
        table.add_row(_printable(outcome.command.text), audit_words(audit),
                      result_words(outcome), _file_shown(outcome, reports),
                      style=styles.get(outcome.status, "yellow"))
    console.print(table)
    console.print(summary_line(outcomes))
    console.print(f"reports and logs in {reports}")


def summary_line(outcomes: Sequence[Outcome]) -> str:
    from shstk.elf.verdict import plural

    counts = Counter(o.status for o in outcomes)
    return (f"{plural(len(outcomes), 'program')}: {counts['passed']} passed, "
            f"{plural(counts['violation'], 'violation')}, "
            f"{plural(counts['failed'], 'other failure')}, "
            f"{plural(counts['timeout'], 'timeout')}")


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def summary(outcomes: Sequence[Outcome], status: int) -> dict[str, Any]:
    from shstk.run.check import STATUSES

    counts = Counter(o.status for o in outcomes)
    return {"programs": len(outcomes), **{s: counts[s] for s in STATUSES},
            "exit_status": status}


def document(outcomes: Sequence[Outcome], audits: Sequence[dict[str, Any]], reports: str,
             status: int, timeout: float | None) -> dict[str, Any]:
    programs = []
    for outcome, audit in zip(outcomes, audits, strict=True):
        programs.append({
            "command": outcome.command.text,
            "argv": list(outcome.command.argv),
            "origin": outcome.command.origin or None,
            "audit": audit,
            "result": {
                "status": outcome.status,
                "exit_status": outcome.exit_status,
                "signal": outcome.signal,
                "where": outcome.where.to_json() if outcome.where else None,
                "summary": outcome.summary,
                "seconds": round(outcome.seconds, 3),
            },
            "report": outcome.report,
            "log": outcome.log,
        })
    return {"schema": SCHEMA, "reports": reports, "timeout": timeout, "programs": programs,
            "summary": summary(outcomes, status)}


# XML 1.0 allows neither most control characters nor lone surrogates (surrogateescape).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def junit_tree(outcomes: Sequence[Outcome], elapsed: float):
    import xml.etree.ElementTree as ET

    from shstk.run.check import FAILED, TIMEOUT, VIOLATION

    counts = Counter(o.status for o in outcomes)
    common = {"tests": str(len(outcomes)), "failures": str(counts[VIOLATION]),
              "errors": str(counts[FAILED] + counts[TIMEOUT]), "skipped": "0",
              "time": f"{elapsed:.3f}"}
    root = ET.Element("testsuites", {"name": "shstk check", **common})
    suite = ET.SubElement(root, "testsuite", {
        "name": "shstk check", **common,
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "hostname": socket.gethostname()})
    for outcome in outcomes:
        case = ET.SubElement(suite, "testcase", {
            "classname": "shstk check", "name": _xml(outcome.command.text),
            "time": f"{outcome.seconds:.3f}"})
        if outcome.status == VIOLATION:
            tag, kind = "failure", "shadow-stack violation"
        elif outcome.status == FAILED:
            tag, kind = "error", "failed"
        elif outcome.status == TIMEOUT:
            tag, kind = "error", "timeout"
        else:
            continue
        text = list(outcome.details)
        if outcome.report:
            text.append(f"report: {outcome.report}")
        if outcome.log:
            text.append(f"log: {outcome.log}")
        element = ET.SubElement(case, tag, {"message": _xml(outcome.summary), "type": kind})
        element.text = _xml("\n".join(text))
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: str, outcomes: Sequence[Outcome], elapsed: float) -> None:
    try:
        junit_tree(outcomes, elapsed).write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise ShstkError(f"--junit {path}: {exc.strerror}") from None


class _Progress:
    """A rich progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._bar = Progress(TextColumn("shstk check"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.description}"), TimeElapsedColumn(),
                             console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task("", total=self.total)
        return self.update

    def update(self, outcome: Outcome) -> None:
        self._bar.update(self._task, advance=1,
                         description=f"{outcome.status}: {_printable(outcome.command.text)}")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
