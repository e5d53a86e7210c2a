"""Hand-built ELF files for the corner cases compilers do not produce, and the
property-note rules of glibc's two loaders checked on them.

`build_elf` writes a minimal ELF (header, program headers, one PT_LOAD over the whole
file, optional PT_INTERP, note segments, PT_GNU_PROPERTY, PT_DYNAMIC with a string
table); vaddr == file offset everywhere. Other test modules import it.
"""

from __future__ import annotations

import os
import signal
import struct
from dataclasses import dataclass, field

import pytest

from shstk.abi import elf as E
from shstk.elf.objects import inspect_file
from shstk.elf.properties import read_cet_properties
from shstk.elf.reader import NotAnElf
from shstk.errors import BadElf

SHSTK = E.GNU_PROPERTY_X86_FEATURE_1_SHSTK
IBT = E.GNU_PROPERTY_X86_FEATURE_1_IBT


def prop(ptype: int, value: int, size: int = 4) -> tuple[int, bytes]:
    return ptype, value.to_bytes(size, "little")


def feature(bits: int) -> tuple[int, bytes]:
    return prop(E.GNU_PROPERTY_X86_FEATURE_1_AND, bits)


def isa(bits: int) -> tuple[int, bytes]:
    return prop(E.GNU_PROPERTY_X86_ISA_1_NEEDED, bits)


def property_note(*props: tuple[int, bytes], align: int = 8, name: bytes = b"GNU\0",
                  ntype: int = E.NT_GNU_PROPERTY_TYPE_0, descsz: int | None = None) -> bytes:
    desc = b""
    for ptype, data in props:
        desc += struct.pack("<II", ptype, len(data)) + data
        desc += bytes(-len(desc) % align)
    return note(name, ntype, desc, align, descsz)


def note(name: bytes, ntype: int, desc: bytes, align: int = 4,
         descsz: int | None = None) -> bytes:
    head = struct.pack("<III", len(name), len(desc) if descsz is None else descsz, ntype)
    body = head + name + bytes(-(12 + len(name)) % align) + desc
    return body + bytes(-len(body) % align)


def build_id_note() -> bytes:
    return note(b"GNU\0", E.NT_GNU_BUILD_ID, bytes(range(20)), 4)


@dataclass
class Layout:
    """What to put in the synthetic ELF."""

    notes: list[tuple[bytes, int]] = field(default_factory=list)  # (data, p_align)
    gnu_property: int | None = 0  # index into notes covered by PT_GNU_PROPERTY
    gnu_property_align: int | None = None
    e_type: int = E.ET_DYN
    machine: int = E.EM_X86_64
    elfclass: int = 64
    interp: str | None = None
    needed: tuple[str, ...] = ()
    soname: str | None = None
    rpath: str | None = None
    runpath: str | None = None
    flags_1: int = 0


def build_elf(layout: Layout) -> bytes:
    if layout.elfclass == 32:
        return _build_elf32(layout)
    blobs: list[tuple[str, bytes, int]] = []  # (kind, data, align)
    if layout.interp is not None:
        blobs.append(("interp", layout.interp.encode() + b"\0", 1))
    for data, align in layout.notes:
        blobs.append(("note", data, align))
    strtab, dyn = _dynamic(layout)
    if dyn is not None:
        blobs.append(("strtab", strtab, 1))
        blobs.append(("dynamic", dyn, 8))
    nph = 1 + sum(1 for b in blobs if b[0] in ("interp", "note", "dynamic"))
    nph += layout.gnu_property is not None and bool(layout.notes)
    offset = 64 + nph * 56
    placed = []
    for kind, data, align in blobs:
        offset += -offset % max(align, 8 if kind != "interp" else 1)
        placed.append((kind, offset, data, align))
        offset += len(data)
    image = bytearray(offset)
    phdrs = [_phdr(E.PT_LOAD, 0, offset, 0x1000, E.PF_R)]
    strtab_off = next((o for k, o, _, _ in placed if k == "strtab"), 0)
    note_index = 0
    for kind, off, data, align in placed:
        if kind == "dynamic":
            data = data.replace(b"STRTAB__", struct.pack("<Q", strtab_off))
        image[off:off + len(data)] = data
        if kind == "interp":
            phdrs.append(_phdr(E.PT_INTERP, off, len(data), 1))
        elif kind == "note":
            phdrs.append(_phdr(E.PT_NOTE, off, len(data), align))
            if note_index == layout.gnu_property:
                gp_align = layout.gnu_property_align or align
                gnu = _phdr(E.PT_GNU_PROPERTY, off, len(data), gp_align)
            note_index += 1
        elif kind == "dynamic":
            phdrs.append(_phdr(E.PT_DYNAMIC, off, len(data), 8, E.PF_R | E.PF_W))
    if layout.gnu_property is not None and layout.notes:
        phdrs.append(gnu)
    image[0:64] = struct.pack(
        "<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), layout.e_type,
        layout.machine, 1, 0, 64, 0, 0, 64, 56, len(phdrs), 64, 0, 0)
    for i, ph in enumerate(phdrs):
        image[64 + i * 56:64 + (i + 1) * 56] = ph
    return bytes(image)


def _phdr(ptype: int, off: int, size: int, align: int, flags: int = E.PF_R) -> bytes:
    return struct.pack("<IIQQQQQQ", ptype, flags, off, off, off, size, size, align)


def _dynamic(layout: Layout) -> tuple[bytes, bytes | None]:
    names = [*layout.needed]
    entries: list[tuple[int, str | int]] = [(E.DT_NEEDED, n) for n in names]
    for tag, value in ((E.DT_SONAME, layout.soname), (E.DT_RPATH, layout.rpath),
                       (E.DT_RUNPATH, layout.runpath)):
        if value is not None:
            entries.append((tag, value))
    if not entries and not layout.flags_1:
        return b"", None
    strtab = bytearray(b"\0")
    dyn = bytearray()
    for tag, value in entries:
        dyn += struct.pack("<qQ", tag, len(strtab))
        strtab += str(value).encode() + b"\0"
    if layout.flags_1:
        dyn += struct.pack("<qQ", E.DT_FLAGS_1, layout.flags_1)
    dyn += struct.pack("<q", E.DT_STRTAB) + b"STRTAB__"
    dyn += struct.pack("<qQ", E.DT_STRSZ, len(strtab))
    dyn += struct.pack("<qQ", E.DT_NULL, 0)
    return bytes(strtab), bytes(dyn)


def _build_elf32(layout: Layout) -> bytes:
    notes = b"".join(data for data, _ in layout.notes)
    phoff, nph = 52, 3
    note_off = phoff + nph * 32
    size = note_off + len(notes)
    image = bytearray(size)
    image[0:52] = struct.pack("<16sHHIIIIIHHHHHH", b"\x7fELF\x01\x01\x01" + bytes(9),
                              layout.e_type, layout.machine, 1, 0, phoff, 0, 0, 52, 32,
                              nph, 40, 0, 0)
    ph = [struct.pack("<IIIIIIII", E.PT_LOAD, 0, 0, 0, size, size, E.PF_R, 0x1000),
          struct.pack("<IIIIIIII", E.PT_NOTE, note_off, note_off, note_off, len(notes),
                      len(notes), E.PF_R, 4),
          struct.pack("<IIIIIIII", E.PT_GNU_PROPERTY, note_off, note_off, note_off,
                      len(notes), len(notes), E.PF_R, 4)]
    for i, entry in enumerate(ph):
        image[phoff + i * 32:phoff + (i + 1) * 32] = entry
    image[note_off:] = notes
    return bytes(image)


def write(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def marked_layout(bits: int = IBT | SHSTK, **kw) -> Layout:
    return Layout(notes=[(property_note(feature(bits), isa(1)), 8), (build_id_note(), 4)],
                  **kw)


# -- the rules ----------------------------------------------------------------------


def test_single_note_in_pt_gnu_property_is_marked(tmp_path):
    props = read_cet_properties(write(tmp_path, "a", build_elf(marked_layout())))
    assert props.shstk and props.ibt
    assert props.feature_1_and == IBT | SHSTK
    assert props.isa_needed_names == ["x86-64-baseline"]
    assert props.property_notes == 1
    assert props.quirks == ()


def test_shstk_only_marking_is_not_ibt(tmp_path):
    props = read_cet_properties(write(tmp_path, "a", build_elf(marked_layout(SHSTK))))
    assert props.shstk and not props.ibt
    assert props.marking == "SHSTK"


def test_two_property_notes_disable_cet_for_the_pt_note_parser(tmp_path):
    # Old linkers emitted one note per input: older glibc gives up, master reads the
    # first. Both must agree for a "ready" verdict.
    notes = property_note(feature(IBT | SHSTK)) + property_note(feature(IBT | SHSTK))
    props = read_cet_properties(write(tmp_path, "a", build_elf(Layout(notes=[(notes, 8)]))))
    assert props.property_notes == 2
    assert props.legacy_loader_bits == 0
    assert props.loader_bits == IBT | SHSTK
    assert not props.shstk
    assert any("2 NT_GNU_PROPERTY_TYPE_0 notes" in q for q in props.quirks)


def test_note_only_in_pt_note_is_ignored_by_glibc_master(tmp_path):
    layout = marked_layout(gnu_property=None)
    props = read_cet_properties(write(tmp_path, "a", build_elf(layout)))
    assert props.feature_1_and == IBT | SHSTK  # the note says so...
    assert props.legacy_loader_bits == IBT | SHSTK
    assert props.loader_bits == 0  # ...but the PT_GNU_PROPERTY parser never sees it
    assert not props.shstk
    assert any("no PT_GNU_PROPERTY" in q for q in props.quirks)


def test_misaligned_property_segment_is_skipped(tmp_path):
    # A 64-bit property note must be 8-aligned; glibc skips the segment otherwise.
    layout = Layout(notes=[(property_note(feature(SHSTK), align=4), 4)])
    props = read_cet_properties(write(tmp_path, "a", build_elf(layout)))
    assert props.loader_bits == 0 and props.legacy_loader_bits == 0
    assert not props.shstk


def test_pt_gnu_property_with_wrong_alignment_is_ignored(tmp_path):
    layout = marked_layout(gnu_property_align=4)
    props = read_cet_properties(write(tmp_path, "a", build_elf(layout)))
    assert props.loader_bits == 0 and not props.shstk
    assert any("p_align 4" in q for q in props.quirks)


def test_descsz_not_multiple_of_eight_makes_the_note_invalid(tmp_path):
    data = property_note(feature(SHSTK))
    data = data[:4] + struct.pack("<I", 12) + data[8:]  # descsz 12
    props = read_cet_properties(write(tmp_path, "a", build_elf(Layout(notes=[(data, 8)]))))
    assert not props.shstk and props.loader_bits == 0


def test_properties_out_of_order_keep_only_what_master_read_first(tmp_path):
    # FEATURE_1_AND then a smaller type: master keeps FEATURE_1_AND, the PT_NOTE parser
    # discards everything.
    data = property_note(feature(SHSTK), prop(E.GNU_PROPERTY_1_NEEDED, 1))
    props = read_cet_properties(write(tmp_path, "a", build_elf(Layout(notes=[(data, 8)]))))
    assert props.loader_bits == SHSTK
    assert props.legacy_loader_bits == 0
    assert not props.shstk
    assert any("ascending" in q for q in props.quirks)


def test_feature_property_of_wrong_size_is_not_read(tmp_path):
    data = property_note(prop(E.GNU_PROPERTY_X86_FEATURE_1_AND, SHSTK, size=8))
    props = read_cet_properties(write(tmp_path, "a", build_elf(Layout(notes=[(data, 8)]))))
    assert props.loader_bits == 0 and props.legacy_loader_bits == 0
    assert props.feature_1_and is None


def test_isa_needed_without_features(tmp_path):
    data = property_note(isa(E.GNU_PROPERTY_X86_ISA_1_V2 | E.GNU_PROPERTY_X86_ISA_1_V3))
    props = read_cet_properties(write(tmp_path, "a", build_elf(Layout(notes=[(data, 8)]))))
    assert props.feature_1_and is None
    assert props.isa_needed_names == ["x86-64-v2", "x86-64-v3"]
    assert props.marking == "not marked" and not props.shstk


def test_no_property_note_at_all_is_not_marked(tmp_path):
    layout = Layout(notes=[(build_id_note(), 4)])
    props = read_cet_properties(write(tmp_path, "a", build_elf(layout)))
    assert props.property_notes == 0 and props.feature_1_and is None and not props.shstk


def test_32_bit_object_is_not_eligible_even_when_marked(tmp_path):
    layout = Layout(notes=[(property_note(feature(SHSTK), align=4), 4)], elfclass=32,
                    machine=E.EM_386)
    props = read_cet_properties(write(tmp_path, "a", build_elf(layout)))
    assert not props.eligible and not props.shstk
    assert props.feature_1_and == SHSTK
    assert "64-bit x86-64" in props.quirks[0]


def test_other_machine_is_not_eligible(tmp_path):
    props = read_cet_properties(
        write(tmp_path, "a", build_elf(marked_layout(machine=E.EM_AARCH64))))
    assert not props.eligible and not props.shstk and props.cet_bits == 0


def test_dynamic_section_is_read_like_ld_so(tmp_path):
    layout = marked_layout(needed=("liba.so.1", "libb.so.2"), soname="libself.so.3",
                           rpath="/r", runpath="$ORIGIN/lib", flags_1=E.DF_1_NODEFLIB)
    info = inspect_file(write(tmp_path, "a", build_elf(layout)))
    assert info.needed == ("liba.so.1", "libb.so.2")
    assert info.soname == "libself.so.3"
    assert info.dynamic.search_rpath is None  # DT_RUNPATH hides DT_RPATH
    assert info.dynamic.runpath == "$ORIGIN/lib"
    assert info.dynamic.nodeflib
    assert info.kind == "library"


# -- hostile and odd inputs: one clear BadElf, never another exception -------------------


def test_every_truncation_of_a_valid_file_is_a_clean_error_or_a_result(tmp_path):
    data = build_elf(marked_layout(needed=("liba.so",), interp="/lib64/ld.so"))
    path = tmp_path / "t"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        try:
            inspect_file(str(path))
        except BadElf as exc:
            assert str(path) in str(exc) and "\n" not in str(exc)


def test_non_elf_file_is_not_an_elf(tmp_path):
    with pytest.raises(NotAnElf):
        read_cet_properties(write(tmp_path, "script", b"#!/bin/sh\necho hi\n"))


def test_fifo_is_rejected_without_blocking(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    signal.alarm(5)  # a blocking open would hang the test: fail it instead
    try:
        with pytest.raises(BadElf, match="fifo"):
            read_cet_properties(str(fifo))
    finally:
        signal.alarm(0)


def test_directory_is_rejected(tmp_path):
    with pytest.raises(BadElf, match="director"):
        read_cet_properties(str(tmp_path))


def test_permission_denied_is_a_clean_error(tmp_path, monkeypatch):
    path = write(tmp_path, "a", build_elf(marked_layout()))

    def deny(*args, **kw):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", deny)
    with pytest.raises(BadElf, match="permission denied"):
        read_cet_properties(path)


def test_huge_program_header_count_is_refused(tmp_path):
    data = bytearray(build_elf(marked_layout()))
    struct.pack_into("<H", data, 56, 2000)  # e_phnum
    with pytest.raises(BadElf, match="program headers"):
        read_cet_properties(write(tmp_path, "a", bytes(data)))


def test_wrong_phentsize_is_refused_like_ld_so(tmp_path):
    data = bytearray(build_elf(marked_layout()))
    struct.pack_into("<H", data, 54, 40)  # e_phentsize
    with pytest.raises(BadElf, match="e_phentsize"):
        read_cet_properties(write(tmp_path, "a", bytes(data)))


def test_core_dumps_and_object_files_are_not_read_for_properties(tmp_path):
    # A core's PT_NOTE can be megabytes; it is never loaded, so it is not parsed.
    huge = Layout(notes=[(note(b"CORE\0", 1, bytes(2 << 20)), 4)], gnu_property=None,
                  e_type=E.ET_CORE)
    info = inspect_file(write(tmp_path, "core", build_elf(huge)))
    assert info.kind == "other" and info.why_other == "core dump"
    assert info.props.property_notes == 0 and not info.props.shstk
