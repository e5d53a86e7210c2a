"""Dependency closures, checked against glibc's own ldd wherever ldd can answer."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
from test_elf_guests import (
    inner,
    install,
    ldd,
    library,
    marked_greet,
    needs_ldd,
    outer,
    plain_greet,
    program,
)
from test_elf_synth import Layout, build_elf

from shstk.abi import elf as E
from shstk.elf.objects import ObjectInfo
from shstk.elf.resolve import Resolver, expand_dst


def greet_with(tmp_path: Path, link: tuple[str, ...], name: str = "greet") -> Path:
    return install(program("greet.c", [marked_greet()], extra=link, name=name),
                   tmp_path / "bin" / name)


def searched(closure) -> list[str]:
    """Our answer in ldd's terms: where each object was found, in load order, then
    NAME: not found. ldd omits ld.so when no DT_NEEDED names it."""
    found = [o.search_path for o in closure.objects
             if not o.is_interpreter or closure.interpreter_needed]
    return found + [f"{m.name}: not found" for m in closure.missing]


# -- search order ----------------------------------------------------------------------


@needs_ldd
def test_runpath_with_origin(tmp_path):
    exe = greet_with(tmp_path, ("-Wl,--enable-new-dtags,-rpath,$ORIGIN/../lib",))
    install(marked_greet(), tmp_path / "lib" / "libgreet.so")
    closure = Resolver().closure(str(exe))
    lib = closure.objects[0]
    assert (lib.name, lib.found_via) == ("libgreet.so", "runpath")
    assert lib.search_path == f"{tmp_path}/bin/../lib/libgreet.so"
    assert lib.guest_path == f"{tmp_path}/lib/libgreet.so"
    assert lib.needed_by == str(exe)
    assert searched(closure) == ldd(exe)


@needs_ldd
def test_rpath_is_inherited_by_dependencies_runpath_is_not(tmp_path):
    for lib in (outer(), inner()):
        install(lib, tmp_path / "lib" / lib.name)
    rpath = program("outer.c", [outer()], name="outer-rpath",
                    extra=(f"-Wl,--disable-new-dtags,-rpath,{tmp_path}/lib",))
    runpath = program("outer.c", [outer()], name="outer-runpath",
                      extra=(f"-Wl,--enable-new-dtags,-rpath,{tmp_path}/lib",))
    with_rpath = Resolver().closure(str(rpath))
    assert [(o.name, o.found_via) for o in with_rpath.libraries] == [
        ("libouter.so", "rpath"), ("libinner.so", "rpath")]
    assert searched(with_rpath) == ldd(rpath)
    with_runpath = Resolver().closure(str(runpath))
    assert [o.name for o in with_runpath.libraries] == ["libouter.so"]
    assert [(m.name, m.needed_by) for m in with_runpath.missing] == [
        ("libinner.so", f"{tmp_path}/lib/libouter.so")]
    assert searched(with_runpath) == ldd(runpath)


@needs_ldd
@pytest.mark.parametrize("dtags, via", [("--disable-new-dtags", "rpath"),
                                        ("--enable-new-dtags", "LD_LIBRARY_PATH")])
def test_ld_library_path_comes_after_rpath_and_before_runpath(tmp_path, dtags, via):
    a = install(marked_greet(), tmp_path / "a" / "libgreet.so")
    b = install(plain_greet(), tmp_path / "b" / "libgreet.so")
    exe = greet_with(tmp_path, (f"-Wl,{dtags},-rpath,{tmp_path}/a",), name=f"greet-{via}")
    closure = Resolver(ld_library_path=[f"{tmp_path}/b"]).closure(str(exe))
    lib = closure.objects[0]
    assert lib.found_via == via
    assert lib.path == str(a if via == "rpath" else b)
    assert lib.props.shstk == (via == "rpath")
    assert searched(closure) == ldd(exe, {"LD_LIBRARY_PATH": f"{tmp_path}/b"})


@needs_ldd
def test_wrong_machine_is_skipped_and_the_search_goes_on(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "libgreet.so").write_bytes(
        build_elf(Layout(notes=[], machine=E.EM_AARCH64, soname="libgreet.so")))
    install(marked_greet(), tmp_path / "b" / "libgreet.so")
    exe = greet_with(tmp_path, (f"-Wl,-rpath,{tmp_path}/a:{tmp_path}/b",))
    closure = Resolver().closure(str(exe))
    assert closure.objects[0].path == f"{tmp_path}/b/libgreet.so"
    assert searched(closure) == ldd(exe)


def test_a_non_elf_file_stops_the_search_like_ld_so(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "libgreet.so").write_text("INPUT(-lgreet)\n")
    install(marked_greet(), tmp_path / "b" / "libgreet.so")
    exe = greet_with(tmp_path, (f"-Wl,-rpath,{tmp_path}/a:{tmp_path}/b",))
    closure = Resolver().closure(str(exe))
    assert closure.libraries == []
    assert "invalid ELF header" in closure.missing[0].reason


@needs_ldd
def test_breadth_first_order_and_one_object_per_file(tmp_path):
    for lib in (outer(), inner(), marked_greet()):
        install(lib, tmp_path / "lib" / lib.name)
    # libgreet reachable under a second name: still one object (same inode).
    os.link(tmp_path / "lib" / "libgreet.so", tmp_path / "lib" / "libgreet-alias.so")
    exe = install(program("outer.c", [outer(), marked_greet()], name="outer-greet",
                          extra=(f"-Wl,--disable-new-dtags,-rpath,{tmp_path}/lib",)),
                  tmp_path / "bin" / "og")
    closure = Resolver().closure(str(exe))
    assert [o.name for o in closure.objects] == [
        "libouter.so", "libgreet.so", "libinner.so", "/lib64/ld-linux-x86-64.so.2"]
    assert closure.objects[-1].is_interpreter and not closure.interpreter_needed
    assert searched(closure) == ldd(exe)


def test_symlinked_program_takes_origin_from_its_real_location(tmp_path):
    # The kernel runs the real file and ld.so reads /proc/self/exe: $ORIGIN is the
    # target's directory. (ldd gets this wrong: it passes the symlink to ld.so.)
    exe = greet_with(tmp_path, ("-Wl,-rpath,$ORIGIN/../lib",))
    install(marked_greet(), tmp_path / "lib" / "libgreet.so")
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "elsewhere" / "greet"
    link.symlink_to(exe)
    closure = Resolver().closure(str(link))
    assert closure.missing == []
    assert closure.objects[0].guest_path == f"{tmp_path}/lib/libgreet.so"


def set_flags_1(path: Path, bits: int) -> None:
    """OR `bits` into the DT_FLAGS_1 entry of a 64-bit little-endian object."""
    data = bytearray(path.read_bytes())
    phoff, phnum = struct.unpack_from("<Q", data, 32)[0], struct.unpack_from("<H", data, 56)[0]
    for i in range(phnum):
        ptype, _, offset, _, _, filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * 56)
        if ptype != E.PT_DYNAMIC:
            continue
        for pos in range(offset, offset + filesz, 16):
            tag, value = struct.unpack_from("<qQ", data, pos)
            if tag == E.DT_FLAGS_1:
                struct.pack_into("<qQ", data, pos, tag, value | bits)
                path.write_bytes(bytes(data))
                return
    raise AssertionError(f"{path} has no DT_FLAGS_1")


@needs_ldd
@pytest.mark.parametrize("nodeflib", [False, True])
def test_nodeflib_skips_cache_and_default_directories(tmp_path, nodeflib):
    # DF_1_NODEFLIB on libgreet applies to libgreet's own dependency libz.so.1. (GNU ld
    # 2.40 ignores -z nodeflib, so the flag is patched into DT_FLAGS_1.)
    if Resolver().cache is None or Resolver().cache.lookup("libz.so.1") is None:
        pytest.skip("no libz.so.1 in this machine's ld.so.cache")
    lib = library("libgreet.c", "libgreet.so",
                  extra=("-Wl,--no-as-needed", "-lz", "-Wl,-z,now"))
    installed = install(lib, tmp_path / "libgreet.so")
    if nodeflib:
        set_flags_1(installed, E.DF_1_NODEFLIB)
    exe = install(program("greet.c", [lib], extra=("-Wl,-rpath,$ORIGIN",),
                          name=f"greet-z{nodeflib}"), tmp_path / "greet")
    closure = Resolver().closure(str(exe))
    assert searched(closure) == ldd(exe)
    if nodeflib:
        assert [(m.name, m.needed_by) for m in closure.missing] == [
            ("libz.so.1", str(tmp_path / "libgreet.so")),
            ("libc.so.6", str(tmp_path / "libgreet.so"))]
    else:
        found = {o.name: o.found_via for o in closure.objects}
        assert found["libz.so.1"] == "ld.so.cache"


@needs_ldd
def test_matches_ldd_on_this_machines_programs():
    programs = []
    for name in sorted(os.listdir("/usr/bin")):
        path = f"/usr/bin/{name}"
        if os.path.islink(path) or not os.path.isfile(path):
            continue
        info = Resolver().info(path)
        if isinstance(info, ObjectInfo) and info.kind == "dynamic":
            programs.append(path)
    resolver = Resolver()
    for path in programs[:: max(1, len(programs) // 40)]:
        assert searched(resolver.closure(path)) == ldd(path), path


# -- foreign roots -----------------------------------------------------------------------


def write_cache(path: Path, entries: list[tuple[str, str]]) -> None:
    """A minimal new-format ld.so.cache (x86-64 entries)."""
    strings = bytearray()
    offsets = []
    base = 48 + 24 * len(entries)
    for key, value in entries:
        offsets.append((base + len(strings), base + len(strings) + len(key) + 1))
        strings += key.encode() + b"\0" + value.encode() + b"\0"
    data = struct.pack("<20sIIB3xI12x", b"glibc-ld.so.cache1.1", len(entries),
                       len(strings), 2, 0)
    for key_off, value_off in offsets:
        data += struct.pack("<iIIIQ", 0x0303, key_off, value_off, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data + bytes(strings))


@pytest.fixture
def root(tmp_path):
    """A merged-/usr Debian-like root with its own dynamic loader and libgreet."""
    root = tmp_path / "root"
    multiarch = root / "usr" / "lib" / "x86_64-linux-gnu"
    install(inner(), multiarch / "ld-linux-x86-64.so.2")  # any x86-64 ELF will do
    install(marked_greet(), multiarch / "libgreet.so")
    (root / "lib").symlink_to("usr/lib")
    (root / "lib64").mkdir()
    (root / "lib64" / "ld-linux-x86-64.so.2").symlink_to(
        "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")  # absolute: inside the root
    install(program("greet.c", [marked_greet()], name="greet-root"),
            root / "usr" / "bin" / "greet")
    return root


def test_sysroot_uses_its_own_cache_and_loader(root):
    write_cache(root / "etc" / "ld.so.cache",
                [("libgreet.so", "/lib/x86_64-linux-gnu/libgreet.so")])
    resolver = Resolver(str(root))
    closure = resolver.closure(str(root / "usr" / "bin" / "greet"))
    lib, interp = closure.objects
    assert (lib.found_via, lib.search_path) == ("ld.so.cache",
                                                "/lib/x86_64-linux-gnu/libgreet.so")
    assert lib.guest_path == "/usr/lib/x86_64-linux-gnu/libgreet.so"
    assert lib.path == str(root / "usr/lib/x86_64-linux-gnu/libgreet.so")
    assert interp.is_interpreter
    assert interp.guest_path == "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    assert interp.path.startswith(str(root))
    assert closure.exe.guest_path == "/usr/bin/greet"


def test_sysroot_without_cache_reads_ld_so_conf(root):
    (root / "etc" / "ld.so.conf.d").mkdir(parents=True)
    (root / "etc" / "ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    (root / "etc" / "ld.so.conf.d" / "opt.conf").write_text("/opt/lib\n")
    os.rename(root / "usr/lib/x86_64-linux-gnu/libgreet.so", root / "opt.so")
    install(root / "opt.so", root / "opt" / "lib" / "libgreet.so")
    resolver = Resolver(str(root))
    assert resolver.cache is None and resolver.conf_dirs == ("/opt/lib",)
    lib = resolver.closure(str(root / "usr/bin/greet")).objects[0]
    assert (lib.found_via, lib.guest_path) == ("ld.so.conf", "/opt/lib/libgreet.so")


def test_sysroot_default_directories(root):
    lib = Resolver(str(root)).closure(str(root / "usr/bin/greet")).objects[0]
    assert (lib.found_via, lib.search_path) == ("default",
                                                "/lib/x86_64-linux-gnu/libgreet.so")


def test_missing_interpreter_is_reported(root):
    os.unlink(root / "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    closure = Resolver(str(root)).closure(str(root / "usr/bin/greet"))
    assert [m.name for m in closure.missing] == ["/lib64/ld-linux-x86-64.so.2"]
    assert "interpreter" in closure.missing[0].reason


# -- $ORIGIN and friends -----------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("$ORIGIN/lib", "/o/lib"),
    ("${ORIGIN}/lib", "/o/lib"),
    ("$ORIGIN_X/lib", "$ORIGIN_X/lib"),  # not a token: an identifier continues
    ("${ORIGIN", "${ORIGIN"),
    ("/usr/$LIB/x", "/usr/lib/x86_64-linux-gnu/x"),
    ("/p/$PLATFORM", "/p/x86_64"),
    ("/p/${PLATFORM}/$FOO", "/p/x86_64/$FOO"),
    ("plain", "plain"),
])
def test_dynamic_string_tokens(text, expected):
    assert expand_dst(text, "/o", "lib/x86_64-linux-gnu", "x86_64") == expected


def test_unknown_origin_drops_the_entry():
    assert expand_dst("$ORIGIN/lib", None, "lib64", "x86_64") is None
