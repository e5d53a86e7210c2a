"""Verdicts (SPEC.md §15.1) on real programs built for each case."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_elf_guests import (
    IBT_ONLY,
    NO_MARK,
    fake_ld_so,
    inner,
    install,
    marked_greet,
    outer,
    plain_greet,
    program,
    static_program,
)
from test_elf_synth import Layout, build_elf

from shstk.abi import elf as E
from shstk.elf.resolve import Resolver
from shstk.elf.verdict import (
    BLOCKED,
    CONTROLS,
    INELIGIBLE,
    MISSING,
    READY,
    all_controls,
    shstk_verdict,
)


def closure_of(tmp_path: Path, lib: Path | None, *, mark=None, name="greet"):
    """greet (RUNPATH $ORIGIN) installed next to `lib` (or with no libgreet at all)."""
    kwargs = {} if mark is None else {"mark": mark}
    exe = install(program("greet.c", [marked_greet()], extra=("-Wl,-rpath,$ORIGIN",),
                          name=name, **kwargs), tmp_path / name)
    if lib is not None:
        install(lib, tmp_path / "libgreet.so")
    return Resolver().closure(str(exe))


def statuses(closure) -> dict[str, str]:
    return {c: v.status for c, v in all_controls(closure).items()}


def test_marked_program_and_library_are_ready(tmp_path):
    closure = closure_of(tmp_path, marked_greet())
    verdict = shstk_verdict(closure)
    assert verdict.enabled and verdict.status == READY and verdict.blockers == ()
    assert statuses(closure) == {"elf_property": READY, "on": READY, "off": BLOCKED,
                                 "permissive": READY}


def test_an_unmarked_dynamic_loader_does_not_block(tmp_path):
    # glibc skips ld.so in the legacy-object check; here it is deliberately unmarked.
    root = tmp_path / "root"
    install(fake_ld_so(), root / "lib64" / "ld-linux-x86-64.so.2")
    install(marked_greet(), root / "usr" / "bin" / "libgreet.so")
    install(program("greet.c", [marked_greet()], extra=("-Wl,-rpath,$ORIGIN",)),
            root / "usr" / "bin" / "greet")
    closure = Resolver(str(root)).closure(str(root / "usr" / "bin" / "greet"))
    interp = [o for o in closure.objects if o.is_interpreter]
    assert len(interp) == 1 and not interp[0].props.shstk
    assert [o.name for o in closure.libraries] == ["libgreet.so"]
    verdict = shstk_verdict(closure)
    assert verdict.status == READY and verdict.blockers == ()


def test_unmarked_library_blocks_and_is_named(tmp_path):
    closure = closure_of(tmp_path, plain_greet())
    verdict = shstk_verdict(closure)
    assert not verdict.enabled and verdict.status == BLOCKED
    assert [(o.name, o.path) for o in verdict.blockers] == [
        ("libgreet.so", str(tmp_path / "libgreet.so"))]
    assert verdict.exe_marked
    assert "libgreet.so" in verdict.reason


def test_on_keeps_shstk_of_a_marked_executable_despite_libraries(tmp_path):
    # [QUIRK] in SPEC §15.1: x86_shstk=on does not look at the libraries.
    closure = closure_of(tmp_path, plain_greet())
    assert statuses(closure) == {"elf_property": BLOCKED, "on": READY, "off": BLOCKED,
                                 "permissive": BLOCKED}
    assert "1 unmarked library" in shstk_verdict(closure, "on").reason


def test_unmarked_executable_is_blocked_under_every_control(tmp_path):
    closure = closure_of(tmp_path, marked_greet(), mark=NO_MARK, name="greet-plain")
    assert set(statuses(closure).values()) == {BLOCKED}
    verdict = shstk_verdict(closure)
    assert not verdict.exe_marked and "executable not marked" in verdict.reason


def test_ibt_only_executable_gets_shstk_with_on_when_libraries_are_marked(tmp_path):
    # dl_cet_check_startup forces SHSTK on for x86_shstk=on whenever the executable has
    # any CET bit; the legacy-object check then keeps it if all libraries are marked.
    closure = closure_of(tmp_path, marked_greet(), mark=IBT_ONLY, name="greet-ibt")
    assert statuses(closure) == {"elf_property": BLOCKED, "on": READY, "off": BLOCKED,
                                 "permissive": BLOCKED}
    assert not shstk_verdict(closure, "on", ibt_control="on").enabled


def test_ibt_only_executable_with_unmarked_library_stays_off_with_on(tmp_path):
    closure = closure_of(tmp_path, plain_greet(), mark=IBT_ONLY, name="greet-ibt")
    assert not shstk_verdict(closure, "on").enabled


def test_missing_library_means_the_program_cannot_start(tmp_path):
    closure = closure_of(tmp_path, None)
    assert set(statuses(closure).values()) == {MISSING}
    verdict = shstk_verdict(closure)
    assert [(m.name, m.needed_by) for m in verdict.missing] == [
        ("libgreet.so", str(tmp_path / "greet"))]
    assert "libgreet.so not found" in verdict.reason


def test_static_executable_depends_only_on_its_own_marking():
    marked = Resolver().closure(str(static_program()))
    assert marked.kind == "static" and marked.objects == []
    # get_cet_feature() in static start-up ignores glibc.cpu.x86_shstk.
    assert set(statuses(marked).values()) == {READY}
    plain = Resolver().closure(str(static_program(mark=NO_MARK)))
    assert set(statuses(plain).values()) == {BLOCKED}


def test_shared_library_verdict_includes_its_dependencies(tmp_path):
    for lib in (outer(), inner()):
        install(lib, tmp_path / lib.name)
    resolver = Resolver(ld_library_path=[str(tmp_path)])
    verdict = shstk_verdict(resolver.closure(str(tmp_path / "libouter.so")))
    assert verdict.status == READY
    plain = install(plain_greet(), tmp_path / "plain" / "libgreet.so")
    assert shstk_verdict(resolver.closure(str(plain))).status == BLOCKED


def test_other_architectures_are_ineligible(tmp_path):
    path = tmp_path / "arm"
    path.write_bytes(build_elf(Layout(notes=[], machine=E.EM_AARCH64, e_type=E.ET_EXEC,
                                      interp="/lib/ld-linux-aarch64.so.1")))
    verdict = shstk_verdict(Resolver().closure(str(path)))
    assert verdict.status == INELIGIBLE and "x86-64" in verdict.reason


def test_unknown_control_is_refused(tmp_path):
    with pytest.raises(ValueError, match="control"):
        shstk_verdict(closure_of(tmp_path, marked_greet()), "sometimes")
    assert CONTROLS == ("elf_property", "on", "off", "permissive")
