"""The dynamic section as ld.so reads it: DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH.

ld.so walks the PT_DYNAMIC array until DT_NULL and reads strings from DT_STRTAB (a
virtual address, mapped through PT_LOAD). When an object has both DT_RUNPATH and
DT_RPATH, `elf_get_dynamic_info` forgets DT_RPATH; `DynamicInfo.search_rpath` applies
that rule. For a repeated tag, the last entry wins, as in glibc's info[] table.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from shstk.abi import elf as E
from shstk.elf.reader import MAX_STRTAB_BYTES, ElfImage
from shstk.errors import BadElf

_MAX_DYNAMIC_BYTES = 1 << 20
_DYN = {
    (64, True): struct.Struct("<qQ"),
    (64, False): struct.Struct(">qQ"),
    (32, True): struct.Struct("<iI"),
    (32, False): struct.Struct(">iI"),
}


@dataclass(frozen=True, slots=True)
class DynamicInfo:
    """What the loader reads from a PT_DYNAMIC segment: DT_NEEDED, SONAME, search paths,
    flags."""

    needed: tuple[str, ...]
    soname: str | None = None
    rpath: str | None = None
    runpath: str | None = None
    flags: int = 0
    flags_1: int = 0

    @property
    def search_rpath(self) -> str | None:
        """DT_RPATH as the loader uses it: ignored when DT_RUNPATH is present."""
        return None if self.runpath is not None else self.rpath

    @property
    def nodeflib(self) -> bool:
        """DF_1_NODEFLIB: dependencies of this object skip ld.so.cache and default dirs."""
        return bool(self.flags_1 & E.DF_1_NODEFLIB)

    @property
    def pie(self) -> bool:
        return bool(self.flags_1 & E.DF_1_PIE)


def read_dynamic(image: ElfImage) -> DynamicInfo | None:
    """The dynamic information of `image`, or None when it has no PT_DYNAMIC."""
    segments = [s for s in image.segments_of("PT_DYNAMIC") if s.filesz > 0]
    if not segments:
        return None
    entries = _entries(image, image.segment_bytes(segments[-1], _MAX_DYNAMIC_BYTES))
    last: dict[int, int] = {}
    needed_offsets: list[int] = []
    for tag, value in entries:
        if tag == E.DT_NEEDED:
            needed_offsets.append(value)
        else:
            last[tag] = value
    strings = _StringTable(image, last.get(E.DT_STRTAB), last.get(E.DT_STRSZ))
    return DynamicInfo(
        needed=tuple(strings.get(off, "DT_NEEDED") for off in needed_offsets),
        soname=strings.get_optional(last.get(E.DT_SONAME), "DT_SONAME"),
        rpath=strings.get_optional(last.get(E.DT_RPATH), "DT_RPATH"),
        runpath=strings.get_optional(last.get(E.DT_RUNPATH), "DT_RUNPATH"),
        flags=last.get(E.DT_FLAGS, 0),
        flags_1=last.get(E.DT_FLAGS_1, 0),
    )


def _entries(image: ElfImage, data: bytes) -> list[tuple[int, int]]:
    layout = _DYN[(image.elfclass, image.little_endian)]
    out = []
    for tag, value in layout.iter_unpack(data[:len(data) - len(data) % layout.size]):
        if tag == E.DT_NULL:
            break
        out.append((tag, value))
    return out


class _StringTable:
    """DT_STRTAB read once, bounded by DT_STRSZ and by the file."""

    def __init__(self, image: ElfImage, vaddr: int | None, size: int | None) -> None:
        self._image = image
        self._data = b""
        self._vaddr = vaddr
        if vaddr is None:
            return
        offset = image.vaddr_to_offset(vaddr)
        if offset is None:
            raise BadElf(image.path, f"DT_STRTAB {vaddr:#x} is outside every PT_LOAD segment")
        limit = MAX_STRTAB_BYTES if size is None else min(size, MAX_STRTAB_BYTES)
        self._data = image.read_upto(offset, limit)

    def get(self, offset: int, tag: str) -> str:
        if self._vaddr is None:
            raise BadElf(self._image.path, f"{tag} present but no DT_STRTAB")
        end = self._data.find(b"\0", offset)
        if offset >= len(self._data) or end < 0:
            raise BadElf(self._image.path, f"{tag} string at offset {offset:#x} lies outside"
                                           " the string table")
        # Names are file names: keep undecodable bytes round-trippable (surrogateescape).
        return os.fsdecode(self._data[offset:end])

    def get_optional(self, offset: int | None, tag: str) -> str | None:
        return None if offset is None else self.get(offset, tag)
