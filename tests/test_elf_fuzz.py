"""Property-based tests: mutated note sections and ELF headers never crash the parser.

Whatever the bytes, reading a file gives either a result that respects the loader's
invariants or a BadElf naming the file on one line: never another exception, never a
hang.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_elf_synth import IBT, SHSTK, Layout, build_elf, feature, isa, marked_layout, property_note

from shstk.abi import elf as E
from shstk.elf.ldcache import LdCache, LdCacheError
from shstk.elf.objects import inspect_file
from shstk.elf.properties import gnu_property_segment_view, iter_notes, pt_note_view
from shstk.elf.reader import Segment
from shstk.errors import BadElf

# SHSTK_FUZZ_EXAMPLES=5000 for a longer run; the default keeps the suite fast.
SETTINGS = settings(max_examples=int(os.environ.get("SHSTK_FUZZ_EXAMPLES", "300")),
                    deadline=None, suppress_health_check=[HealthCheck.too_slow])

u32 = st.integers(min_value=0, max_value=2**32 - 1)
interesting_u32 = st.one_of(
    u32, st.sampled_from([0, 1, 3, 4, 7, 8, 12, 16, 0xFFFFFFFF, 0x7FFFFFFF,
                          E.NT_GNU_PROPERTY_TYPE_0, E.GNU_PROPERTY_X86_FEATURE_1_AND,
                          E.GNU_PROPERTY_X86_ISA_1_NEEDED, E.GNU_PROPERTY_1_NEEDED]))

_DIR = Path(tempfile.mkdtemp(prefix="shstk-fuzz-"))


def _check_file(data: bytes) -> None:
    path = _DIR / "f"
    path.write_bytes(data)
    try:
        info = inspect_file(str(path))
    except BadElf as exc:
        assert str(path) in str(exc)
        assert "\n" not in str(exc)
        return
    props = info.props
    assert props.loader_bits & ~(IBT | SHSTK) == 0
    assert props.legacy_loader_bits & ~(IBT | SHSTK) == 0
    assert props.property_notes >= 0
    if props.shstk:
        assert props.eligible
        assert props.loader_bits & props.legacy_loader_bits & SHSTK
    assert all("\n" not in q for q in props.quirks)


BASE = build_elf(marked_layout(needed=("liba.so.1",), soname="libx.so", runpath="$ORIGIN",
                               interp="/lib64/ld-linux-x86-64.so.2"))


@SETTINGS
@given(st.lists(st.tuples(st.integers(0, len(BASE) - 1), st.integers(0, 255)),
                min_size=1, max_size=12))
def test_random_byte_flips_anywhere(flips):
    data = bytearray(BASE)
    for pos, value in flips:
        data[pos] = value
    _check_file(bytes(data))


@SETTINGS
@given(offset=st.sampled_from([16, 18, 20, 24, 32, 40, 48, 52, 54, 56, 58, 60, 62]),
       value=st.integers(0, 2**64 - 1), cut=st.integers(0, len(BASE)))
def test_mutated_elf_header_fields(offset, value, cut):
    data = bytearray(BASE)
    width = 8 if offset in (24, 32, 40) else (4 if offset in (20, 48) else 2)
    data[offset:offset + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
    _check_file(bytes(data[:max(cut, 1)]))


@SETTINGS
@given(index=st.integers(0, 12), field=st.integers(0, 7), value=interesting_u32)
def test_mutated_program_headers(index, field, value):
    data = bytearray(BASE)
    phnum = struct.unpack_from("<H", data, 56)[0]
    base = 64 + (index % phnum) * 56
    offsets = [0, 4, 8, 16, 24, 32, 40, 48]
    pos = base + offsets[field]
    width = 4 if field < 2 else 8
    data[pos:pos + width] = value.to_bytes(width, "little")
    _check_file(bytes(data))


@SETTINGS
@given(namesz=interesting_u32, descsz=interesting_u32, ntype=interesting_u32,
       props=st.lists(st.tuples(interesting_u32, interesting_u32, interesting_u32),
                      max_size=5),
       twice=st.booleans())
def test_mutated_property_notes_in_a_file(namesz, descsz, ntype, props, twice):
    desc = b"".join(struct.pack("<III", t, s, v) + b"\0" * 4 for t, s, v in props)
    raw = struct.pack("<III", namesz, descsz, ntype) + b"GNU\0" + desc
    notes = raw + (property_note(feature(SHSTK), isa(1)) if twice else b"")
    layout = Layout(notes=[(notes, 8)], needed=("libc.so.6",))
    _check_file(build_elf(layout))


@SETTINGS
@given(data=st.binary(max_size=256), align=st.sampled_from([0, 1, 2, 4, 8, 16, 3]),
       le=st.booleans())
def test_note_walkers_accept_any_bytes(data, align, le):
    # The pure walkers see raw segment bytes: they must never raise.
    list(iter_notes(data, align, le))
    view = gnu_property_segment_view(data, align, 8, le)
    assert view.kept.bits() & ~(IBT | SHSTK) == 0
    seg = Segment("PT_NOTE", 4, 0, 0, len(data), len(data), align)
    pt_note_view([(seg, data)], 8, le)


@SETTINGS
@given(st.binary(max_size=400), st.sampled_from([b"", b"ld.so-1.7.0",
                                                  b"glibc-ld.so.cache1.1"]))
def test_ld_so_cache_parser_rejects_garbage_cleanly(tail, magic):
    with contextlib.suppress(LdCacheError):
        LdCache.parse(magic + tail)
