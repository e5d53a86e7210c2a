"""/proc parsers on text recorded from this machine (tests/data/proc) and on the
formats of SPEC.md §10."""

from __future__ import annotations

from pathlib import Path

import pytest

from shstk.host.glibc import parse_tunables
from shstk.host.procfs import cmdline_words, parse_cpuinfo, parse_status, thread_features

DATA = Path(__file__).parent / "data" / "proc"


def text(name: str) -> str:
    return (DATA / name).read_text()


def test_cpuinfo_of_a_vm_without_shadow_stacks():
    cpu = parse_cpuinfo(text("cpuinfo_amd_vm.txt"))
    assert (cpu.vendor, cpu.family, cpu.model, cpu.model_name) == (
        "AuthenticAMD", 26, 2, "AMD EPYC")
    assert "sse2" in cpu.flags
    assert not cpu.user_shstk and not cpu.ibt


def test_cpuinfo_with_user_shstk():
    cpu = parse_cpuinfo(text("cpuinfo_intel_cet.txt"))
    assert cpu.vendor == "GenuineIntel" and cpu.user_shstk and cpu.ibt


def test_only_the_first_processor_block_is_read():
    two = "processor\t: 0\nflags\t\t: fpu user_shstk\n\nprocessor\t: 1\nflags\t\t: fpu\n"
    assert parse_cpuinfo(two).user_shstk


@pytest.mark.parametrize("name, features, locked", [
    ("status_no_features.txt", None, None),  # this machine: option not built in
    ("status_shstk_locked.txt", ("shstk",), ("shstk", "wrss")),
    ("status_shstk_wrss.txt", ("shstk", "wrss"), ()),
    ("status_features_empty.txt", (), ()),
])
def test_thread_features_lines(name, features, locked):
    parsed = thread_features(parse_status(text(name)))
    assert (parsed.features, parsed.locked) == (features, locked)
    assert parsed.reported == (features is not None)
    assert parsed.shstk == bool(features and "shstk" in features)


def test_exact_kernel_format_with_trailing_space():
    status = parse_status("Name:\tx\nx86_Thread_features:\tshstk wrss \n"
                          "x86_Thread_features_locked:\t\n")
    features = thread_features(status)
    assert features.features == ("shstk", "wrss") and features.wrss
    assert features.locked == ()


def test_cmdline():
    assert "nousershstk" in cmdline_words(text("cmdline_nousershstk.txt"))
    assert "nousershstk" not in cmdline_words(text("cmdline_plain.txt"))


@pytest.mark.parametrize("value, control, hwcaps, problems", [
    (None, "elf_property", None, 0),
    ("glibc.cpu.hwcaps=SHSTK", "elf_property", True, 0),
    ("glibc.cpu.x86_shstk=on:glibc.cpu.hwcaps=-AVX2,SHSTK", "on", True, 0),
    ("glibc.cpu.hwcaps=SHSTK,-SHSTK:glibc.cpu.x86_shstk=permissive", "permissive", False, 0),
    ("glibc.cpu.x86_shstk=yes", "elf_property", None, 1),  # ignored by glibc
    ("garbage:glibc.cpu.x86_shstk=off", "off", None, 1),
])
def test_glibc_tunables(value, control, hwcaps, problems):
    tunables = parse_tunables(value)
    assert tunables.shstk_control == control
    assert tunables.hwcaps_shstk is hwcaps
    assert len(tunables.problems) == problems
