"""GNU property notes: is this object marked for shadow stacks, as glibc's loader sees it?

The x86 marking lives in an NT_GNU_PROPERTY_TYPE_0 note ("GNU") as the property
GNU_PROPERTY_X86_FEATURE_1_AND (bit 0 IBT, bit 1 SHSTK). How glibc finds and parses that
note changed over time, and both parsers matter because both are deployed:

* PT_NOTE parser (released glibc, at least 2.33 to the 2023 sources of bminor/glibc
  65cc53fe, sysdeps/x86/dl-prop.h `_dl_process_property_note`; the release that
  dropped it was not pinned down): the PT_NOTE segments are
  scanned from the last to the first; the first one with p_align == 8 decides. Inside it,
  a second property note makes the loader give up (the "older linker" case): the object
  counts as unmarked. A malformed property (types out of order, size overrun, a 4-byte
  property of another size) also discards everything.
* PT_GNU_PROPERTY parser (glibc master, 2026; elf/dl-load.c
  `_dl_process_pt_gnu_property` + sysdeps/x86/dl-prop.h `_dl_process_gnu_property`):
  only the last PT_GNU_PROPERTY segment is read, only its first property note; an
  object without PT_GNU_PROPERTY is unmarked, whatever its PT_NOTE segments say.
  Properties read before a malformed one are kept.

Static executables: glibc master's static start-up reads PT_GNU_PROPERTY
(sysdeps/x86_64/libc-start.h `get_cet_feature`), so their verdict uses `loader_bits`
alone (how older static start-up found the note was not checked).

`CetProperties.shstk` is True only when both parsers find SHSTK (and the object is
ELF64 x86-64), so a "ready" verdict holds for every CET-capable glibc. When they
disagree, `quirks` says why in words a user can act on.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from shstk.abi import elf as E
from shstk.elf.reader import ElfImage, Segment

_U32_LE = struct.Struct("<I")
_U32_BE = struct.Struct(">I")
_NHDR_LE = struct.Struct("<III")
_NHDR_BE = struct.Struct(">III")

# The three 4-byte properties glibc's x86 loader looks for, in ascending type order.
_WANTED = (E.GNU_PROPERTY_1_NEEDED, E.GNU_PROPERTY_X86_FEATURE_1_AND,
           E.GNU_PROPERTY_X86_ISA_1_NEEDED)


def _align_up(value: int, align: int) -> int:
    return (value + align - 1) & ~(align - 1) if align > 1 else value


@dataclass(frozen=True, slots=True)
class Note:
    """One note header inside a note segment (offsets relative to the segment)."""

    offset: int
    namesz: int
    descsz: int
    type: int
    desc_offset: int
    is_gnu_property: bool


def iter_notes(data: bytes, align: int, little_endian: bool = True):
    """Walk notes the way glibc does: a header must start before the end of the
    segment, and the next note is at ALIGN_UP(ALIGN_UP(12 + namesz, a) + descsz, a)."""
    nhdr = _NHDR_LE if little_endian else _NHDR_BE
    step_align = align if align > 1 else 1
    offset = 0
    size = len(data)
    while offset + E.ELF_NOTE_HEADER_SIZE < size:
        namesz, descsz, ntype = nhdr.unpack_from(data, offset)
        name = data[offset + 12:offset + 16]
        desc_offset = _align_up(E.ELF_NOTE_HEADER_SIZE + namesz, step_align) + offset
        yield Note(offset, namesz, descsz, ntype, desc_offset,
                   namesz == 4 and ntype == E.NT_GNU_PROPERTY_TYPE_0
                   and name == E.GNU_PROPERTY_NOTE_NAME)
        step = _align_up(desc_offset - offset + descsz, step_align)
        if step <= 0:
            break
        offset += step


@dataclass(slots=True)
class _Values:
    """Properties collected from one property note."""

    feature_1_and: int | None = None
    isa_1_needed: int | None = None
    needed_1: int | None = None

    def bits(self) -> int:
        return (self.feature_1_and or 0) & E.X86_CET_BITS


@dataclass(slots=True)
class NoteView:
    """What one of glibc's two parsers concludes about an object."""

    kept: _Values = field(default_factory=_Values)  # what the loader keeps
    seen: _Values = field(default_factory=_Values)  # what the note says, as far as read
    found: bool = False  # a property note was found where this parser looks
    problem: str | None = None  # why the parser stopped early or ignored the note


def _property_array(data: bytes, note: Note, wordsize: int, little_endian: bool,
                    view: NoteView, *, legacy: bool) -> None:
    """Walk the pr_type/pr_datasz array of one property note, glibc style.

    legacy=True follows `_dl_process_property_note` (any problem discards all values);
    legacy=False follows `_dl_process_pt_gnu_property` + x86 `_dl_process_gnu_property`
    (values read before the problem are kept).
    """
    u32 = _U32_LE if little_endian else _U32_BE
    # glibc takes the array right after the 4-byte name: (note + 1) + 4.
    ptr = note.offset + E.ELF_NOTE_HEADER_SIZE + 4
    end = ptr + note.descsz
    if note.descsz < 8 or note.descsz % wordsize:
        view.problem = f"malformed property note (descsz {note.descsz})"
        return
    if end > len(data):
        view.problem = "property note runs past the end of its segment"
        return
    last_type = 0
    values = _Values()
    while True:
        ptype = u32.unpack_from(data, ptr)[0]
        datasz = u32.unpack_from(data, ptr + 4)[0]
        if ptype < last_type:
            view.problem = "property types are not in ascending order"
            break
        ptr += 8
        if ptr + datasz > end:
            view.problem = f"property {ptype:#x} overruns its note"
            break
        last_type = ptype
        if ptype in _WANTED:
            if datasz != 4:
                view.problem = f"property {ptype:#x} has size {datasz}, not 4"
                break
            value = u32.unpack_from(data, ptr)[0]
            _store(values, ptype, value)
            _store(view.seen, ptype, value)
            if ptype == E.GNU_PROPERTY_X86_ISA_1_NEEDED:
                break  # the last type glibc wants: stop reading this note
        elif ptype > E.GNU_PROPERTY_X86_ISA_1_NEEDED:
            break  # sorted: nothing wanted can follow
        ptr += _align_up(datasz, wordsize)
        if end - ptr < 8:
            break
    if legacy and view.problem:
        return  # the PT_NOTE parser returns before storing anything
    view.kept = values


def _store(values: _Values, ptype: int, value: int) -> None:
    if ptype == E.GNU_PROPERTY_X86_FEATURE_1_AND:
        values.feature_1_and = value
    elif ptype == E.GNU_PROPERTY_X86_ISA_1_NEEDED:
        values.isa_1_needed = value
    else:
        values.needed_1 = value


def gnu_property_segment_view(data: bytes, align: int, wordsize: int = 8,
                              little_endian: bool = True) -> NoteView:
    """glibc master: the first property note inside the PT_GNU_PROPERTY segment."""
    view = NoteView()
    if align != wordsize:
        view.problem = f"PT_GNU_PROPERTY has p_align {align}, the loader requires {wordsize}"
        return view
    for note in iter_notes(data, align, little_endian):
        if note.is_gnu_property:
            view.found = True
            _property_array(data, note, wordsize, little_endian, view, legacy=False)
            return view  # "Only handle one NT_GNU_PROPERTY_TYPE_0."
    return view


def pt_note_view(segments: list[tuple[Segment, bytes]], wordsize: int = 8,
                 little_endian: bool = True) -> NoteView:
    """Older glibc: the last PT_NOTE segment with p_align == wordsize decides."""
    view = NoteView()
    for seg, data in reversed(segments):
        if seg.align != wordsize:
            continue
        for note in iter_notes(data, seg.align, little_endian):
            if not note.is_gnu_property:
                continue
            if view.found:
                view.problem = "more than one NT_GNU_PROPERTY_TYPE_0 note"
                view.kept = _Values()
                return view
            view.found = True
            _property_array(data, note, wordsize, little_endian, view, legacy=True)
            if view.problem:
                return view
        return view  # only the first suitable segment is ever processed
    return view


@dataclass(frozen=True, slots=True)
class CetProperties:
    """The CET marking of one ELF object and how glibc's loader treats it.

    feature_1_and / isa_needed: the values written in the object's property note (None
    when absent). property_notes: how many NT_GNU_PROPERTY_TYPE_0 notes the object's
    note segments hold. loader_bits / legacy_loader_bits: IBT|SHSTK bits that glibc
    master (PT_GNU_PROPERTY) and older glibc (PT_NOTE) actually keep.
    """

    feature_1_and: int | None
    isa_needed: int | None
    property_notes: int
    eligible: bool
    elf_class: int = 64
    machine: int = E.EM_X86_64
    loader_bits: int = 0
    legacy_loader_bits: int = 0
    quirks: tuple[str, ...] = ()

    @property
    def shstk(self) -> bool:
        """Marked SHSTK for every CET-capable glibc (both parsers agree)."""
        return self.eligible and bool(
            self.loader_bits & self.legacy_loader_bits & E.GNU_PROPERTY_X86_FEATURE_1_SHSTK)

    @property
    def ibt(self) -> bool:
        return self.eligible and bool(
            self.loader_bits & self.legacy_loader_bits & E.GNU_PROPERTY_X86_FEATURE_1_IBT)

    @property
    def cet_bits(self) -> int:
        """IBT|SHSTK bits as the loader will use them (0 for ineligible objects)."""
        return (self.loader_bits & self.legacy_loader_bits) if self.eligible else 0

    @property
    def isa_needed_names(self) -> list[str]:
        if not self.isa_needed:
            return []
        names = [name for bit, name in sorted(E.ISA_1_NAMES.items()) if self.isa_needed & bit]
        unknown = self.isa_needed & ~sum(E.ISA_1_NAMES)
        if unknown:
            names.append(f"{unknown:#x}")
        return names

    @property
    def marking(self) -> str:
        """What the note says, readelf-style: 'IBT, SHSTK', 'IBT', 'none'."""
        if self.feature_1_and is None:
            return "not marked"
        words = [w for bit, w in ((E.GNU_PROPERTY_X86_FEATURE_1_IBT, "IBT"),
                                  (E.GNU_PROPERTY_X86_FEATURE_1_SHSTK, "SHSTK"))
                 if self.feature_1_and & bit]
        return ", ".join(words) or "no CET bits"


def read_cet_properties(path: str) -> CetProperties:
    """CET properties of the ELF file at `path`; raises BadElf for unusable files."""
    with ElfImage(path) as image:
        return cet_properties_of(image)


def cet_properties_of(image: ElfImage) -> CetProperties:
    if image.e_type not in (E.ET_EXEC, E.ET_DYN):
        # Relocatable objects and core dumps are never loaded: their notes (a core's
        # can be megabytes) are not the loader's business.
        return CetProperties(None, None, 0, image.eligible, image.elfclass, image.e_machine)
    wordsize = image.elfclass // 8
    le = image.little_endian
    note_segments = [(seg, _segment_memory(image, seg)) for seg in image.segments_of("PT_NOTE")]
    prop_segments = image.segments_of("PT_GNU_PROPERTY")
    modern = NoteView()
    if prop_segments:
        seg = prop_segments[-1]  # glibc scans program headers backwards and stops at the first
        modern = gnu_property_segment_view(_segment_memory(image, seg), seg.align, wordsize, le)
    legacy = pt_note_view(note_segments, wordsize, le)
    count = _count_property_notes(image, note_segments, prop_segments, le)
    seen = modern.seen if modern.found else legacy.seen
    return CetProperties(
        feature_1_and=seen.feature_1_and,
        isa_needed=seen.isa_1_needed,
        property_notes=count,
        eligible=image.eligible,
        elf_class=image.elfclass,
        machine=image.e_machine,
        loader_bits=modern.kept.bits(),
        legacy_loader_bits=legacy.kept.bits(),
        quirks=_explain(image, modern, legacy, bool(prop_segments), count),
    )


def _segment_memory(image: ElfImage, seg: Segment) -> bytes:
    """The bytes the loader sees at p_vaddr: file bytes, zero-filled up to p_memsz."""
    data = image.segment_bytes(seg)
    if seg.memsz > seg.filesz:
        data += bytes(min(seg.memsz - seg.filesz, 4096))
    return data


def _count_property_notes(image: ElfImage, note_segments: list[tuple[Segment, bytes]],
                          prop_segments: list[Segment], le: bool) -> int:
    """Distinct NT_GNU_PROPERTY_TYPE_0 notes in all note segments (by file offset)."""
    offsets: set[int] = set()
    regions = list(note_segments)
    regions += [(seg, _segment_memory(image, seg)) for seg in prop_segments]
    for seg, data in regions:
        align = seg.align if seg.align in (4, 8) else 4
        for note in iter_notes(data, align, le):
            if note.is_gnu_property:
                offsets.add(seg.offset + note.offset)
    return len(offsets)


def _explain(image: ElfImage, modern: NoteView, legacy: NoteView, has_segment: bool,
             count: int) -> tuple[str, ...]:
    """Sentences for every way the loader's view differs from what the note says."""
    if not image.eligible:
        return (f"{image.description}: Linux user shadow stacks exist only for"
                " 64-bit x86-64 programs",)
    out: list[str] = []
    shstk = E.GNU_PROPERTY_X86_FEATURE_1_SHSTK
    says_shstk = bool(((modern.seen.feature_1_and if modern.found else None)
                       or legacy.seen.feature_1_and or 0) & shstk)
    if count > 1:
        out.append(f"{count} NT_GNU_PROPERTY_TYPE_0 notes: older glibc (PT_NOTE parser) ignores"
                   " them all, glibc master reads only the first")
    if legacy.found and not has_segment and says_shstk:
        out.append("no PT_GNU_PROPERTY segment: glibc master and static start-up ignore"
                   " the property note in PT_NOTE (relink with binutils ≥ 2.32)")
    for who, view in (("glibc master", modern), ("older glibc", legacy)):
        if view.problem and (view.found or "p_align" in view.problem):
            out.append(f"{who}: {view.problem}")
    if not legacy.found and modern.found and says_shstk:
        out.append("the property note is not in a PT_NOTE segment with p_align 8:"
                   " older glibc ignores it")
    return tuple(dict.fromkeys(out))
