"""Would glibc turn on the shadow stack for this program? (SPEC.md §15.1)

Dynamic programs follow sysdeps/x86/dl-cet.c (`dl_cet_check`, `dl_cet_check_startup`,
`dl_check_legacy_object`), with the SHSTK CPU feature assumed usable (a CET-enabled glibc
on a CPU and kernel with user shadow stacks, and SHSTK active through
`glibc.cpu.hwcaps=SHSTK` since glibc 2.39):

* the executable's IBT|SHSTK bits start the process; if both are 0, nothing is enabled;
* control `off`: SHSTK dropped;
* control `on` with the executable marked SHSTK: enabled whatever the libraries say
  ([QUIRK]: `on` keeps SHSTK when the executable has it). With `on` an executable marked
  IBT but not SHSTK still gets SHSTK when every library is marked (`on` forces the bit
  on in `dl_cet_check_startup`, the legacy check then keeps it);
* otherwise every loaded object except ld.so and the executable must be marked SHSTK
  (the executable's own bit was checked first);
* `permissive` enables exactly like the default at start-up, but skips the lock, so a
  later dlopen of an unmarked library turns SHSTK off instead of failing.

Static executables (sysdeps/x86_64/libc-start.h `get_cet_feature`): only the
executable's PT_GNU_PROPERTY bit and the CPU feature count; the `glibc.cpu.x86_shstk`
tunable is not consulted there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from shstk.abi import elf as E
from shstk.elf.objects import DYNAMIC, LIBRARY, STATIC, STATIC_PIE
from shstk.elf.resolve import Closure, LoadedObject, MissingObject

CONTROLS = ("elf_property", "on", "off", "permissive")
SHSTK = E.GNU_PROPERTY_X86_FEATURE_1_SHSTK
IBT = E.GNU_PROPERTY_X86_FEATURE_1_IBT

# Status words, also used by the report and the JSON document.
READY = "ready"
BLOCKED = "blocked"
MISSING = "missing"
INELIGIBLE = "ineligible"


if TYPE_CHECKING:
    class _Common(TypedDict):
        """What every verdict of one closure shares."""

        control: str
        blockers: tuple[LoadedObject, ...]
        missing: tuple[MissingObject, ...]
        exe_marked: bool
else:
    _Common = dict  # creating a TypedDict at run time was a millisecond of every start-up


@dataclass(frozen=True)
class Verdict:
    """Whether the loader would enable shadow stacks for a program, and why (or which object
    prevents it)."""

    enabled: bool
    reason: str  # one line, for humans
    control: str = "elf_property"
    blockers: tuple[LoadedObject, ...] = ()  # loaded objects without SHSTK (ld.so exempt)
    missing: tuple[MissingObject, ...] = ()
    exe_marked: bool = False
    status: str = BLOCKED  # READY, BLOCKED, MISSING or INELIGIBLE

    @property
    def ready(self) -> bool:
        return self.enabled


def shstk_verdict(closure: Closure, control: str = "elf_property", *,
                  ibt_control: str = "elf_property") -> Verdict:
    """Verdict for the program of `closure` under `glibc.cpu.x86_shstk=control`."""
    if control not in CONTROLS:
        raise ValueError(f"unknown control {control!r}; expected one of {CONTROLS}")
    exe = closure.exe
    blockers = tuple(o for o in closure.objects if not o.is_interpreter and not o.props.shstk)
    missing = tuple(closure.missing)
    common = _Common(control=control, blockers=blockers, missing=missing,
                     exe_marked=exe.props.shstk)
    if not exe.props.eligible:
        return Verdict(False, exe.props.quirks[0] if exe.props.quirks else "not x86-64",
                       status=INELIGIBLE, **common)
    kind = closure.kind
    if kind in (STATIC, STATIC_PIE):
        return _static_verdict(exe, common)
    if missing:
        names = ", ".join(m.name for m in missing)
        return Verdict(False, f"cannot start: {names} not found", status=MISSING, **common)
    if kind == LIBRARY:
        return _library_verdict(blockers, common)
    return _dynamic_verdict(exe, blockers, control, ibt_control, common)


def _static_verdict(exe: LoadedObject, common: _Common) -> Verdict:
    # Static start-up reads only PT_GNU_PROPERTY (glibc master's parser).
    marked = exe.props.eligible and bool(exe.props.loader_bits & SHSTK)
    common = _Common(control=common["control"], blockers=(), missing=common["missing"],
                     exe_marked=marked)
    if marked:
        return Verdict(True, "static executable marked SHSTK", status=READY, **common)
    return Verdict(False, "static executable not marked SHSTK", status=BLOCKED, **common)


def _library_verdict(blockers: tuple[LoadedObject, ...], common: _Common) -> Verdict:
    if not common["exe_marked"]:
        return Verdict(False, "shared object not marked SHSTK: it keeps shadow stacks off"
                              " in every program that loads it", status=BLOCKED, **common)
    if blockers:
        return Verdict(False, f"marked, but needs {_names(blockers)} (not marked)",
                       status=BLOCKED, **common)
    return Verdict(True, "marked SHSTK, and so are its dependencies", status=READY, **common)


def _dynamic_verdict(exe: LoadedObject, blockers: tuple[LoadedObject, ...], control: str,
                     ibt_control: str, common: _Common) -> Verdict:
    bits = exe.props.cet_bits
    if bits == 0:
        return Verdict(False, "executable not marked SHSTK (no CET property)",
                       status=BLOCKED, **common)
    if control == "off":
        return Verdict(False, "glibc.cpu.x86_shstk=off", status=BLOCKED, **common)
    exe_shstk = bool(bits & SHSTK)
    if control == "on" and ibt_control == "on":
        # dl_cet_check returns early: the executable's bits are used as they are.
        if exe_shstk:
            return Verdict(True, "x86_shstk=on and x86_ibt=on skip the library check",
                           status=READY, **common)
        return Verdict(False, "executable not marked SHSTK", status=BLOCKED, **common)
    if control == "on" and exe_shstk:
        extra = (f" ({plural(len(blockers), 'unmarked library')} loaded anyway)"
                 if blockers else "")
        return Verdict(True, f"x86_shstk=on keeps the executable's SHSTK{extra}",
                       status=READY, **common)
    if not exe_shstk and control != "on":
        return Verdict(False, "executable marked IBT only, not SHSTK", status=BLOCKED, **common)
    if blockers:
        return Verdict(False, f"not marked SHSTK: {_names(blockers)}", status=BLOCKED, **common)
    if control == "on":
        return Verdict(True, "x86_shstk=on adds SHSTK to an IBT-marked executable whose"
                             " libraries are all marked", status=READY, **common)
    if control == "permissive":
        return Verdict(True, "every object is marked; not locked, so a later dlopen of an"
                             " unmarked library turns it off", status=READY, **common)
    return Verdict(True, "the executable and every library are marked SHSTK",
                   status=READY, **common)


def _names(objects: tuple[LoadedObject, ...], limit: int = 4) -> str:
    names = [o.name for o in objects[:limit]]
    more = len(objects) - limit
    return ", ".join(names) + (f" and {more} more" if more > 0 else "")


def plural(count: int, noun: str) -> str:
    if count == 1:
        return f"1 {noun}"
    if noun.endswith("y"):
        return f"{count} {noun[:-1]}ies"
    return f"{count} {noun}es" if noun.endswith("s") else f"{count} {noun}s"


def all_controls(closure: Closure) -> dict[str, Verdict]:
    """The verdict under each value of glibc.cpu.x86_shstk."""
    return {control: shstk_verdict(closure, control) for control in CONTROLS}


__all__ = ["BLOCKED", "CONTROLS", "DYNAMIC", "INELIGIBLE", "MISSING", "READY", "Verdict",
           "all_controls", "shstk_verdict"]
