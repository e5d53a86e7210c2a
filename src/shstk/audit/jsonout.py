"""`shstk audit --json`: one machine-readable document (schema "shstk-audit/1").

The schema is documented in docs/audit.md. Paths are the exact file names (undecodable
bytes appear as JSON \\udcXX escapes, as Python's surrogateescape maps them), so a
consumer can open them again.
"""

from __future__ import annotations

from typing import Any

from shstk.audit.report import Summary, summarize
from shstk.audit.scan import ProgramResult, ScanResult
from shstk.elf.properties import CetProperties
from shstk.elf.resolve import LoadedObject, MissingObject
from shstk.elf.verdict import CONTROLS, Verdict

SCHEMA = "shstk-audit/1"


def scan_document(result: ScanResult, top: int = 10) -> dict[str, Any]:
    summary = summarize(result, top)
    return {
        "schema": SCHEMA,
        "sysroot": result.sysroot,
        "control": result.control,
        "ld_so_cache": None if result.cache_problem else "ok",
        "programs": [_program(p) for p in result.programs],
        "errors": [{"path": e.path, "problem": e.problem} for e in result.errors],
        "summary": _summary(summary, result),
    }


def _program(program: ProgramResult) -> dict[str, Any]:
    closure = program.closure
    verdict = program.verdict
    return {
        "path": program.path,
        "guest_path": program.guest_path,
        "kind": program.kind,
        "status": verdict.status,
        "ready": verdict.enabled,
        "reason": verdict.reason,
        "interpreter": closure.interpreter,
        "interpreter_needed": closure.interpreter_needed,
        "self": properties(closure.exe.props),
        "objects": [_object(o) for o in closure.objects],
        "blockers": [_ref(o) for o in verdict.blockers],
        "missing": [_missing(m) for m in closure.missing],
        "controls": {c: _verdict(program.controls[c]) for c in CONTROLS},
    }


def properties(props: CetProperties) -> dict[str, Any]:
    return {
        "shstk": props.shstk,
        "ibt": props.ibt,
        "eligible": props.eligible,
        "feature_1_and": props.feature_1_and,
        "isa_needed": props.isa_needed_names,
        "property_notes": props.property_notes,
        "quirks": list(props.quirks),
    }


def _object(obj: LoadedObject) -> dict[str, Any]:
    return {**_ref(obj), "shstk": obj.props.shstk, "ibt": obj.props.ibt,
            "is_interpreter": obj.is_interpreter, "quirks": list(obj.props.quirks)}


def _ref(obj: LoadedObject) -> dict[str, Any]:
    return {"name": obj.name, "path": obj.path, "guest_path": obj.guest_path,
            "search_path": obj.search_path, "found_via": obj.found_via,
            "needed_by": obj.needed_by}


def _missing(missing: MissingObject) -> dict[str, Any]:
    return {"name": missing.name, "needed_by": missing.needed_by, "reason": missing.reason}


def _verdict(verdict: Verdict) -> dict[str, Any]:
    return {"enabled": verdict.enabled, "status": verdict.status, "reason": verdict.reason}


def _summary(summary: Summary, result: ScanResult) -> dict[str, Any]:
    return {
        "programs": summary.programs,
        "ready": summary.counts["ready"],
        "blocked": summary.counts["blocked"],
        "missing": summary.counts["missing"],
        "ineligible": summary.counts["ineligible"],
        "errors": summary.errors,
        "files": result.files,
        "skipped": result.skipped,
        "not_marked_themselves": summary.not_marked_themselves,
        "ready_under": summary.ready_under,
        "top_blockers": [{"name": name, "guest_path": path, "programs": count}
                         for path, count, name in summary.top_blockers],
    }
