"""ld.so.cache parsing checked against `ldconfig -p` on caches ldconfig itself writes,
in all three layouts, plus ld.so.conf reading."""

from __future__ import annotations

import shutil
import struct
import subprocess

import pytest
from guestbuild import compile_guest

from shstk.elf.ldcache import LdCache, LdCacheError, conf_directories
from shstk.elf.sysroot import Sysroot

needs_ldconfig = pytest.mark.skipif(shutil.which("ldconfig") is None and
                                    not __import__("os").path.exists("/sbin/ldconfig"),
                                    reason="ldconfig not installed")
LDCONFIG = shutil.which("ldconfig") or "/sbin/ldconfig"


def ldconfig_p(cache: str) -> list[str]:
    out = subprocess.run([LDCONFIG, "-p", "-C", cache], capture_output=True, text=True,
                         check=True).stdout
    return [line for line in out.splitlines() if line.startswith("\t")]


@pytest.fixture(scope="module")
def hwcaps_tree(tmp_path_factory):
    """A directory with libgreet.so.1 and a glibc-hwcaps/x86-64-v3 variant of it."""
    root = tmp_path_factory.mktemp("hwcaps")
    lib = compile_guest("audit/libgreet.c", name="libgreet.so.1",
                        flags=("-O2", "-shared", "-fPIC", "-Wl,-soname,libgreet.so.1"))
    (root / "d" / "glibc-hwcaps" / "x86-64-v3").mkdir(parents=True)
    shutil.copy(lib, root / "d" / "libgreet.so.1")
    shutil.copy(lib, root / "d" / "glibc-hwcaps" / "x86-64-v3" / "libgreet.so.1")
    (root / "ld.so.conf").write_text(f"{root / 'd'}\n")
    return root


def make_cache(tree, fmt: str) -> str:
    out = tree / f"cache.{fmt}"
    subprocess.run([LDCONFIG, "-X", "-C", str(out), "-f", str(tree / "ld.so.conf"),
                    "-c", fmt], check=True, capture_output=True)
    return str(out)


@needs_ldconfig
@pytest.mark.parametrize("fmt", ["new", "old", "compat"])
def test_every_layout_matches_ldconfig_p(hwcaps_tree, fmt):
    path = make_cache(hwcaps_tree, fmt)
    cache = LdCache.load(path)
    assert cache.format == fmt
    ours = [e.ldconfig_line() for e in cache.entries]
    theirs = ldconfig_p(path)
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        if fmt == "compat" and "hwcap:" in reference:
            # ldconfig 2.36 prints glibc-hwcaps names of compat caches from the wrong
            # base; ld.so (and we) read them relative to the embedded new header.
            assert 'hwcap: "x86-64-v3"' in mine
            continue
        assert mine == reference


@needs_ldconfig
def test_lookup_prefers_the_plain_entry_over_a_glibc_hwcaps_variant(hwcaps_tree):
    cache = LdCache.load(make_cache(hwcaps_tree, "new"))
    assert cache.lookup("libgreet.so.1") == str(hwcaps_tree / "d" / "libgreet.so.1")
    variants = [e for e in cache.entries if e.key == "libgreet.so.1"]
    assert {e.hwcaps_subdir for e in variants} == {None, "x86-64-v3"}
    assert cache.generator and "ldconfig" in cache.generator


def test_the_host_cache_matches_ldconfig_p():
    try:
        cache = LdCache.load("/etc/ld.so.cache")
    except LdCacheError:
        pytest.skip("no /etc/ld.so.cache on this machine")
    if shutil.which("ldconfig") is None and not __import__("os").path.exists(LDCONFIG):
        pytest.skip("ldconfig not installed")
    assert [e.ldconfig_line() for e in cache.entries] == ldconfig_p("/etc/ld.so.cache")
    assert cache.lookup("libc.so.6", ) is not None


def test_entries_for_other_abis_are_not_found():
    # An i386 entry (flags libc6 only) must not satisfy an x86-64 lookup.
    strings = b"\0libi.so.1\0/lib/i386/libi.so.1\0"
    header = struct.pack("<20sIIB3xI12x", b"glibc-ld.so.cache1.1", 1, len(strings), 2, 0)
    entry = struct.pack("<iIIIQ", 0x0003, 48 + 24 + 1, 48 + 24 + 11, 0, 0)
    cache = LdCache.parse(header + entry + strings)
    assert cache.entries[0].key == "libi.so.1"
    assert cache.entries[0].ldconfig_line() == "\tlibi.so.1 (libc6) => /lib/i386/libi.so.1"
    assert cache.lookup("libi.so.1") is None


@pytest.mark.parametrize("data, problem", [
    (b"", "unknown magic"),
    (b"ld.so-1.7.0", "truncated"),
    (b"ld.so-1.7.0\0" + struct.pack("<I", 10**6), "too short"),
    (b"glibc-ld.so.cache1.1" + struct.pack("<II", 5, 0), "truncated"),
    (b"glibc-ld.so.cache1.1" + struct.pack("<IIB3xI12x", 10**6, 0, 2, 0), "too short"),
    (b"glibc-ld.so.cache1.1" + struct.pack("<IIB3xI12x", 0, 0, 3, 0), "big-endian"),
])
def test_corrupted_caches_are_rejected_with_a_reason(data, problem):
    with pytest.raises(LdCacheError, match=problem):
        LdCache.parse(data)


def test_string_offset_outside_the_cache_is_an_error():
    header = struct.pack("<20sIIB3xI12x", b"glibc-ld.so.cache1.1", 1, 0, 2, 0)
    entry = struct.pack("<iIIIQ", 0x0303, 5000, 6000, 0, 0)
    with pytest.raises(LdCacheError, match="outside"):
        LdCache.parse(header + entry)


def test_ld_so_conf_includes_comments_and_order(tmp_path):
    etc = tmp_path / "etc"
    (etc / "ld.so.conf.d").mkdir(parents=True)
    (etc / "ld.so.conf").write_text(
        "# comment\n/opt/first  # trailing comment\ninclude ld.so.conf.d/*.conf\n"
        "hwcap 1 nosegneg\n/usr/lib=libc5\n/opt/first\n")
    (etc / "ld.so.conf.d" / "b.conf").write_text("/opt/b\n")
    (etc / "ld.so.conf.d" / "a.conf").write_text("/opt/a/\ninclude /etc/ld.so.conf\n")
    dirs = conf_directories(Sysroot(str(tmp_path)))
    # Includes are sorted and relative to the including file; the loop through a.conf
    # is followed (so /usr/lib comes before /opt/b) but cut; duplicates are dropped.
    assert dirs == ["/opt/first", "/opt/a", "/usr/lib", "/opt/b"]


def test_missing_ld_so_conf_gives_no_directories(tmp_path):
    assert conf_directories(Sysroot(str(tmp_path))) == []
