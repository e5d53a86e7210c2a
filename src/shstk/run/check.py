"""Run many command lines under `shstk run --shstk on`, each in its own process, and say
how each ended: passed, a shadow-stack violation (and where), another failure, a timeout.

Each run is `python -m shstk run --shstk on --report json --report-file F ... -- ARGV`
with this Python, so a crash or a hang of one program never takes the others down; the
JSON report (written when a signal ends the program) and the output of the run are kept
in the reports directory. The audit verdict is not this module's business (`run` and
`audit` are siblings): the CLI joins the two.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from shstk.abi import signals as S
from shstk.errors import UsageError

PASSED, VIOLATION, FAILED, TIMEOUT = "passed", "violation", "failed", "timeout"
STATUSES = (PASSED, VIOLATION, FAILED, TIMEOUT)

# `shstk run` exits 124 when --timeout (or --max-insns) stops the guest, and says so.
RUN_LIMIT_STATUS = 124
_LIMIT_LINE = re.compile(r"^shstk: (timeout: |stopped after \d+ instructions)", re.M)


@dataclass(frozen=True)
class Command:
    """One command line that `shstk check` runs, and where it was read."""

    argv: tuple[str, ...]
    origin: str = ""  # "FILE:LINE" for a command read with -f

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


@dataclass(frozen=True)
class Where:
    """The faulting instruction as the report names it: `function+0xoff (library)`, or
    `(library+0xoff)` when the library has no symbol there."""

    symbol: str
    function: str | None
    library: str | None
    offset: str | None = None  # into the library file, when there is no function

    @classmethod
    def parse(cls, symbol: str) -> Where:
        m = re.fullmatch(r"\((.+)\+(0x[0-9a-f]+)\)", symbol)
        if m:
            return cls(symbol, None, m.group(1), m.group(2))
        m = re.fullmatch(r"(.+?) \((.+)\)", symbol)
        if m:
            return cls(symbol, m.group(1), m.group(2))
        return cls(symbol, None, None)

    def short(self) -> str:
        lib = os.path.basename(self.library) if self.library else None
        if self.function and lib:
            return f"{self.function} in {lib}"
        if lib and self.offset:
            return f"{lib}+{self.offset}"
        return self.symbol

    def to_json(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "function": self.function, "library": self.library,
                "offset": self.offset}


@dataclass
class Outcome:
    """How one command of `shstk check` ended."""

    command: Command
    status: str  # PASSED, VIOLATION, FAILED or TIMEOUT
    exit_status: int | None  # of `shstk run` (128 + signal when one killed the guest)
    signal: str | None = None  # the signal that ended the guest (or the run), by name
    where: Where | None = None
    summary: str = ""  # one line
    details: list[str] = field(default_factory=list)  # the report's first lines
    report: str | None = None  # the JSON report, when a signal ended the program
    log: str | None = None  # stdout and stderr of the run
    seconds: float = 0.0
    report_data: dict[str, Any] | None = None


def read_commands(path: str) -> list[Command]:
    """One shell-quoted command line per line; `#` comments and blank lines ignored."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
    except OSError as exc:
        raise UsageError(f"-f {path}: {exc.strerror}") from None
    commands = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            argv = shlex.split(line, comments=True)
        except ValueError as exc:
            raise UsageError(f"{path}:{number}: {exc}") from None
        if argv:
            commands.append(Command(tuple(argv), f"{path}:{number}"))
    return commands


def file_stem(index: int, count: int, command: Command) -> str:
    """`03-name`: numbered in input order, named after the program."""
    name = re.sub(r"[^A-Za-z0-9._+-]", "_", os.path.basename(command.argv[0]))[:40] or "prog"
    return f"{index + 1:0{len(str(count))}d}-{name}"


def run_command(command: Command, stem: str, reports: str, *, timeout: float | None = None,
                extra: Sequence[str] = (), python: str = sys.executable) -> Outcome:
    """Run one command line under `shstk run --shstk on` and classify how it ended."""
    report = os.path.join(reports, stem + ".json")
    log = os.path.join(reports, stem + ".log")
    for stale in (report, log):
        if os.path.lexists(stale):
            os.unlink(stale)
    cmd = [python, "-m", "shstk", "run", "--shstk", "on", "--report", "json",
           "--report-file", report, *extra]
    if timeout is not None:
        cmd += ["--timeout", str(timeout)]
    cmd += ["--", *command.argv]
    started = time.monotonic()
    killed = False
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
        _LIVE.add(proc)
        try:
            status = proc.wait(timeout=None if timeout is None else timeout + margin(timeout))
        except subprocess.TimeoutExpired:
            killed = True
            _kill(proc)
            status = proc.wait()
        finally:
            _LIVE.discard(proc)
    seconds = time.monotonic() - started
    with open(log, "rb") as f:
        output = f.read().decode("utf-8", "backslashreplace")
    data = _load_report(report)
    outcome = classify(command, status, data, output, killed=killed, timeout=timeout)
    outcome.report = report if data is not None else None
    outcome.log = log
    outcome.seconds = seconds
    return outcome


def margin(timeout: float) -> float:
    """How long after `--timeout S` the run itself is killed: start-up, the report."""
    return max(10.0, timeout / 2)


# The runs in flight: each is in its own session (so a timeout kills all of it), which
# also keeps the terminal's Ctrl-C from reaching them; run_all ends them itself.
_LIVE: set[subprocess.Popen] = set()


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: nothing else is in it
    except ProcessLookupError:
        pass


def _load_report(path: str) -> dict[str, Any] | None:
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def classify(command: Command, status: int, data: dict[str, Any] | None, output: str, *,
             killed: bool = False, timeout: float | None = None) -> Outcome:
    """`status` is the run's return code (negative: a host signal killed `shstk run`)."""
    if killed:
        return Outcome(command, TIMEOUT, None, signal="SIGKILL",
                       summary=f"timeout: still running {timeout} s after its --timeout")
    if status < 0:
        name = S.NAMES.get(-status, f"signal {-status}")
        return Outcome(command, FAILED, None, signal=name,
                       summary=f"shstk run was killed by {name}",
                       details=_tail(output))
    if status == 0:
        return Outcome(command, PASSED, 0, summary="passed")
    if data is not None:
        return _from_report(command, status, data)
    limit = _LIMIT_LINE.search(output)
    if status == RUN_LIMIT_STATUS and limit:
        line = output[limit.start():].splitlines()[0]
        return Outcome(command, TIMEOUT, status, summary=line.removeprefix("shstk: "),
                       details=[line])
    last = _last_shstk_line(output)
    said = last.removeprefix("shstk: ").removeprefix("error: ") if last else ""
    summary = f"exit status {status}" + (f": {said}" if said else "")
    return Outcome(command, FAILED, status, summary=summary, details=_tail(output))


def _from_report(command: Command, status: int, data: dict[str, Any]) -> Outcome:
    sig = str(data.get("signal") or "")
    code = str(data.get("si_code") or "")
    where = Where.parse(str(data["rip_symbol"])) if data.get("rip_symbol") else None
    at = f" at {where.short()}" if where else ""
    violation = data.get("violation")
    if isinstance(violation, dict):
        kind = str(violation.get("kind", "?"))
        what = kind if kind.startswith("shadow-stack") else f"#CP {kind}"
        summary = f"shadow-stack violation ({what}){at}: {sig} ({code})"
        return Outcome(command, VIOLATION, status, signal=sig or None, where=where,
                       summary=summary, details=report_lines(data), report_data=data)
    summary = f"killed by {sig} ({code}){at}"
    return Outcome(command, FAILED, status, signal=sig or None, where=where,
                   summary=summary, details=report_lines(data), report_data=data)


def report_lines(data: dict[str, Any]) -> list[str]:
    """The first lines of the text report, rebuilt from the JSON one."""
    sig = f"{data.get('signal')} ({data.get('si_code')})"
    prog = data.get("program", "?")
    at = f"  at {int(data.get('rip', 0)):#x}  {data.get('rip_symbol')}: {data.get('instruction')}"
    violation = data.get("violation")
    if not isinstance(violation, dict):
        return [f"{prog} [pid {data.get('pid')}] killed by {sig}", at]
    kind = str(violation.get("kind"))
    what = kind if kind.startswith("shadow-stack") else f"#CP {kind}"
    lines = [f"shadow-stack violation ({what}) in {prog} "
             f"[pid {data.get('pid')}]: {sig}", at]
    if "return_address" in violation:
        lines.append(f"  return address on the stack:   {int(violation['return_address']):#018x}"
                     f"  {violation.get('return_symbol')}")
        lines.append(f"  shadow stack expected:         {int(violation.get('expected', 0)):#018x}"
                     f"  {violation.get('expected_symbol')}")
    if "token_address" in violation:
        lines.append(f"  token at {int(violation['token_address']):#x}: "
                     f"{int(violation.get('token', 0)):#x}")
    if violation.get("why"):
        lines.append(f"  why: {violation['why']}")
    return lines


def _last_shstk_line(output: str) -> str | None:
    lines = [ln for ln in output.splitlines() if ln.startswith("shstk: ")]
    return lines[-1] if lines else None


def _tail(output: str, lines: int = 10) -> list[str]:
    return output.splitlines()[-lines:]


ProgressCallback = Callable[[Outcome], None]


def run_all(commands: Sequence[Command], reports: str, *, jobs: int,
            timeout: float | None = None, extra: Sequence[str] = (),
            progress: ProgressCallback | None = None) -> list[Outcome]:
    """Run every command, `jobs` at a time; the outcomes in the order of `commands`."""
    os.makedirs(reports, exist_ok=True)
    stems = [file_stem(i, len(commands), c) for i, c in enumerate(commands)]

    def one(i: int) -> Outcome:
        outcome = run_command(commands[i], stems[i], reports, timeout=timeout, extra=extra)
        if progress is not None:
            progress(outcome)
        return outcome

    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    try:
        futures = [pool.submit(one, i) for i in range(len(commands))]
        return [future.result() for future in futures]
    except BaseException:  # Ctrl-C: start nothing more, end what runs
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(_LIVE):
            _kill(proc)
        raise
    finally:
        pool.shutdown(wait=True)
