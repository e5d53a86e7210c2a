"""Human output of an audit: a line (or a block) per program, then a summary.

Everything printed goes through `shown()`: file names are bytes, and a hostile name
with a newline or invalid UTF-8 must neither break the one-line-per-problem promise
nor crash the printer.
"""

from __future__ import annotations

import os
import unicodedata
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from shstk.audit.scan import ProgramResult, ScanResult
from shstk.elf.resolve import LoadedObject
from shstk.elf.verdict import BLOCKED, CONTROLS, INELIGIBLE, MISSING, READY, plural

_STATUS_STYLE = {READY: "bold green", BLOCKED: "bold red", MISSING: "bold yellow",
                 INELIGIBLE: "yellow"}
_STATUS_WORD = {READY: "ready", BLOCKED: "blocked", MISSING: "cannot start",
                INELIGIBLE: "not x86-64"}


def shown(text: str) -> str:
    """A path or name made safe to print on one line (escapes, valid UTF-8)."""
    raw = os.fsencode(text).decode("utf-8", "backslashreplace")
    if raw.isprintable():
        return raw
    return "".join(c if c.isprintable() or c == " " else _escape(c) for c in raw)


def _escape(char: str) -> str:
    if unicodedata.category(char) == "Cc" and ord(char) < 0x100:
        return f"\\x{ord(char):02x}"
    return f"\\u{ord(char):04x}"


@dataclass
class Summary:
    """The counts at the end of an audit report: statuses, controls, the libraries that
    block most programs."""

    programs: int
    counts: Counter  # status -> programs
    not_marked_themselves: int
    ready_under: dict[str, int]  # control -> ready programs
    top_blockers: list[tuple[str, int, str]]  # (guest path, blocked programs, name)
    errors: int


def summarize(result: ScanResult, top: int = 10) -> Summary:
    counts: Counter = Counter(p.verdict.status for p in result.programs)
    blockers: Counter = Counter()
    names: dict[str, Counter] = {}
    for program in result.programs:
        if program.verdict.status == BLOCKED:
            blockers.update({o.guest_path for o in program.verdict.blockers})
            for o in program.verdict.blockers:
                names.setdefault(o.guest_path, Counter())[o.name] += 1
    return Summary(
        programs=len(result.programs),
        counts=counts,
        not_marked_themselves=sum(
            1 for p in result.programs
            if p.verdict.status == BLOCKED and not p.verdict.exe_marked),
        ready_under={c: sum(1 for p in result.programs if p.controls[c].enabled)
                     for c in CONTROLS},
        top_blockers=[(path, count, names[path].most_common(1)[0][0])
                      for path, count in sorted(blockers.items(),
                                                key=lambda kv: (-kv[1], kv[0]))[:top]],
        errors=len(result.errors),
    )


def summary_line(summary: Summary) -> str:
    c = summary.counts
    return (f"{plural(summary.programs, 'program')}: {c[READY]} ready, {c[BLOCKED]} blocked,"
            f" {c[MISSING]} cannot start (missing libraries), {c[INELIGIBLE]} not x86-64;"
            f" {plural(summary.errors, 'unreadable file')}")


# -- per program -----------------------------------------------------------------------


def program_line(program: ProgramResult) -> Text:
    """One line: status, path, reason."""
    status = program.verdict.status
    line = Text()
    line.append(f"{_STATUS_WORD[status]:<12}", style=_STATUS_STYLE[status])
    line.append(shown(program.guest_path))
    line.append(f": {shown(_short_reason(program))}")
    return line


def _short_reason(program: ProgramResult) -> str:
    v = program.verdict
    if v.status != BLOCKED or not v.blockers:
        return v.reason
    libs = ", ".join(o.name for o in v.blockers[:5])
    more = f" (+{len(v.blockers) - 5})" if len(v.blockers) > 5 else ""
    if not v.exe_marked:
        return f"executable not marked; libraries not marked: {libs}{more}"
    return f"libraries not marked: {libs}{more}"


def program_block(program: ProgramResult) -> Iterator[Text]:
    """Several lines: every object with its marking and where it was found."""
    closure = program.closure
    header = Text()
    header.append(shown(program.guest_path), style="bold")
    interp = f", interpreter {shown(closure.interpreter)}" if closure.interpreter else ""
    header.append(f"  ({program.kind}{interp})")
    yield header
    verdict = program.verdict
    word = "WOULD be enabled" if verdict.enabled else "would NOT be enabled"
    line = Text("  shadow stack ")
    line.append(word, style=_STATUS_STYLE[verdict.status])
    line.append(f": {shown(verdict.reason)}")
    yield line
    yield _object_line(closure.exe, "the executable")
    for obj in closure.objects:
        yield _object_line(obj, None)
    for missing in closure.missing:
        yield Text(f"    {'MISSING':<9} {shown(missing.name)}: {shown(missing.reason)}"
                   f" (needed by {shown(missing.needed_by)})", style="yellow")
    for quirk in program.closure.exe.props.quirks:
        yield Text(f"  note: {shown(quirk)}")
    for obj in closure.objects:
        for quirk in obj.props.quirks:
            yield Text(f"  note: {shown(obj.name)}: {shown(quirk)}")
    yield from _control_lines(program)


def _object_line(obj: LoadedObject, label: str | None) -> Text:
    if obj.is_interpreter:
        mark, style = "exempt", "dim"
    elif obj.props.shstk:
        mark, style = "SHSTK", "green"
    else:
        mark, style = "no SHSTK", "red"
    line = Text("    ")
    line.append(f"{mark:<9}", style=style)
    if label:
        line.append(f" {shown(obj.guest_path)} ({label})")
        return line
    via = "interpreter (PT_INTERP), exempt" if obj.is_interpreter else obj.found_via
    # Like ldd: the path where the search found it (its symlinks resolved in JSON).
    line.append(f" {shown(obj.name)} => {shown(obj.search_path or obj.guest_path)}  [{via};"
                f" needed by {shown(obj.needed_by)}]")
    return line


def _control_lines(program: ProgramResult) -> Iterator[Text]:
    for control in ("on", "permissive", "off"):
        v = program.controls[control]
        state = "enabled" if v.enabled else "not enabled"
        yield Text(f"  with glibc.cpu.x86_shstk={control}: {state} ({shown(v.reason)})")


# -- the whole report -------------------------------------------------------------------


def print_report(result: ScanResult, console: Console, *, verbose: bool = False,
                 quiet: bool = False, top: int = 10) -> Summary:
    summary = summarize(result, top)
    one_line = 0
    if not quiet:
        for program in result.programs:
            detailed = verbose or (program.explicit and len(result.programs) <= 8)
            lines = program_block(program) if detailed else [program_line(program)]
            for line in lines:
                console.print(line, soft_wrap=True)
            if detailed:
                console.print()
            one_line += not detailed
    if one_line:
        console.print("(-v shows every loaded object, the path it was found at, and what"
                      " each glibc.cpu.x86_shstk value changes)", soft_wrap=True)
    if result.cache_problem:
        console.print(Text(f"note: no usable ld.so.cache ({shown(result.cache_problem)});"
                           " searched the ld.so.conf directories instead"), soft_wrap=True)
    if not result.programs:
        console.print("no programs found")
        return summary
    console.print(Text(summary_line(summary), style="bold"), soft_wrap=True)
    _print_controls(summary, console)
    if summary.top_blockers:
        console.print(_blocker_table(summary))
    return summary


def _print_controls(summary: Summary, console: Console) -> None:
    ready = summary.ready_under
    console.print(f"ready with glibc.cpu.x86_shstk=on: {ready['on']},"
                  f" permissive: {ready['permissive']}, off: {ready['off']}"
                  f" (default: {ready['elf_property']});"
                  f" blocked programs whose own executable is not marked:"
                  f" {summary.not_marked_themselves}", soft_wrap=True)


def _blocker_table(summary: Summary) -> Table:
    table = Table(title="Libraries that block the most programs", title_justify="left")
    table.add_column("programs", justify="right")
    table.add_column("library", overflow="fold")
    table.add_column("file", overflow="fold")  # wrap long paths, never cut them
    for path, count, name in summary.top_blockers:
        table.add_row(str(count), shown(name), shown(path))
    return table
