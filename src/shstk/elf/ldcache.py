"""/etc/ld.so.cache, read the way ld.so reads it (elf/dl-cache.c, sysdeps/generic/dl-cache.h).

Three layouts exist, all written by `ldconfig -c new|old|compat`:

* new: "glibc-ld.so.cache1.1", 48-byte header (nlibs, len_strings, endianness flag,
  extension offset), 24-byte entries (flags, key, value, osversion, hwcap); string
  offsets count from the start of this header.
* old: "ld.so-1.7.0", 16-byte header (magic, nlibs), 12-byte entries (flags, key,
  value); string offsets count from the end of the entry array.
* compat: an old cache followed, at the next 8-byte boundary, by a complete new one.
  ld.so prefers the embedded new cache.

Entries whose flags are not "libc6, x86-64" belong to other ABIs (i386, x32) and are
skipped by an x86-64 ld.so. When the root has no usable cache, `conf_directories` reads
/etc/ld.so.conf (with its `include` globs) so a freshly unpacked root, on which ldconfig
never ran, can still be audited.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from shstk.elf.sysroot import Sysroot

OLD_MAGIC = b"ld.so-1.7.0"
NEW_MAGIC = b"glibc-ld.so.cache1.1"
_OLD_HEADER = struct.Struct("<11sxI")  # magic, pad, nlibs
_OLD_ENTRY = struct.Struct("<iII")  # flags, key, value
_NEW_HEADER = struct.Struct("<20sIIB3xI12x")  # magic+version, nlibs, len_strings, flags, ext
_NEW_ENTRY = struct.Struct("<iIIIQ")  # flags, key, value, osversion_unused, hwcap
_EXT_HEADER = struct.Struct("<II")  # magic, count
_EXT_SECTION = struct.Struct("<IIII")  # tag, flags, offset, size
_EXT_MAGIC = 0xEAA42174
_EXT_TAG_GENERATOR = 0
_EXT_TAG_GLIBC_HWCAPS = 1

# cache_file_new.flags: endianness the cache was written with.
_ENDIAN_UNSET, _ENDIAN_INVALID, _ENDIAN_LITTLE, _ENDIAN_BIG = 0, 1, 2, 3

FLAG_TYPE_MASK = 0x00FF
FLAG_REQUIRED_MASK = 0xFF00
FLAG_ELF = 0x0001
FLAG_ELF_LIBC5 = 0x0002
FLAG_ELF_LIBC6 = 0x0003
FLAG_X8664_LIB64 = 0x0300
X86_64_FLAGS = FLAG_ELF_LIBC6 | FLAG_X8664_LIB64  # _dl_cache_check_flags on x86-64

# The top bits of hwcap mark an entry in a glibc-hwcaps subdirectory; the low 32 bits
# are then an index into the extension's glibc-hwcaps string table.
DL_CACHE_HWCAP_EXTENSION = 1 << 62
DL_CACHE_HWCAP_ISA_LEVEL_MASK = 0x3FF << 32  # ignored by lookups, kept for printing

_TYPE_NAMES = {FLAG_ELF: "ELF", FLAG_ELF_LIBC5: "libc5", FLAG_ELF_LIBC6: "libc6"}
# ldconfig -p spells the ABI like this (elf/cache.c print_entry).
_ABI_NAMES = {
    0x0100: ",64bit", 0x0200: ",IA-64", 0x0300: ",x86-64", 0x0400: ",64bit",
    0x0500: ",64bit", 0x0600: ",N32", 0x0700: ",64bit", 0x0800: ",x32",
    0x0900: ",hard-float", 0x0A00: ",AArch64", 0x0B00: ",soft-float",
    0x0C00: ",nan2008", 0x0D00: ",N32,nan2008", 0x0E00: ",64bit,nan2008",
    0x0F00: ",soft-float", 0x1000: ",double-float",
}


class LdCacheError(ValueError):
    """The cache file is not one of the three layouts, or is corrupted."""


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One library in /etc/ld.so.cache: its name, path, flags and hwcaps."""

    key: str  # the library name looked up (usually a SONAME)
    value: str  # the path ld.so opens
    flags: int
    hwcap: int = 0
    hwcaps_subdir: str | None = None  # "x86-64-v3" for glibc-hwcaps entries

    @property
    def is_x86_64(self) -> bool:
        return self.flags == X86_64_FLAGS

    @property
    def is_plain(self) -> bool:
        """Not tied to a glibc-hwcaps subdirectory or legacy hwcap/platform bits."""
        return self.hwcap == 0

    def ldconfig_line(self) -> str:
        """The line `ldconfig -p` prints for this entry."""
        kind = _TYPE_NAMES.get(self.flags & FLAG_TYPE_MASK, "unknown")
        abi = self.flags & FLAG_REQUIRED_MASK
        abi_text = _ABI_NAMES.get(abi, f",{abi}" if abi else "")
        if self.hwcaps_subdir is not None:
            hw = f', hwcap: "{self.hwcaps_subdir}"'
        elif self.hwcap:
            hw = f", hwcap: {self.hwcap:#018x}"
        else:
            hw = ""
        return f"\t{self.key} ({kind}{abi_text}{hw}) => {self.value}"


@dataclass(frozen=True)
class LdCache:
    """A parsed /etc/ld.so.cache: its layout and entries in the file's order."""

    format: str  # "new", "old" or "compat"
    entries: tuple[CacheEntry, ...]
    generator: str | None = None

    def __post_init__(self) -> None:
        index: dict[str, str] = {}
        fallback: dict[str, str] = {}
        for entry in self.entries:
            if not entry.is_x86_64:
                continue
            # ld.so can pick a glibc-hwcaps variant on a capable CPU; the plain entry is
            # the one every x86-64 CPU gets, so it is the one we audit.
            target = index if entry.is_plain else fallback
            target.setdefault(entry.key, entry.value)
        for key, value in fallback.items():
            index.setdefault(key, value)
        object.__setattr__(self, "_index", index)

    def lookup(self, name: str) -> str | None:
        """Path ld.so would take from the cache for `name` on x86-64, or None."""
        return self._index.get(name)  # type: ignore[attr-defined]

    @classmethod
    def parse(cls, data: bytes) -> LdCache:
        if data.startswith(NEW_MAGIC):
            return _parse_new(data, 0, "new")
        if data.startswith(OLD_MAGIC):
            return _parse_old_or_compat(data)
        raise LdCacheError("not an ld.so.cache file (unknown magic)")

    @classmethod
    def load(cls, path: str) -> LdCache:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise LdCacheError(f"{path}: {exc.strerror}") from None
        return cls.parse(data)


def _parse_old_or_compat(data: bytes) -> LdCache:
    if len(data) < _OLD_HEADER.size:
        raise LdCacheError("truncated old-format header")
    _, nlibs = _OLD_HEADER.unpack_from(data, 0)
    entries_end = _OLD_HEADER.size + nlibs * _OLD_ENTRY.size
    if entries_end > len(data):
        raise LdCacheError(f"old-format cache claims {nlibs} entries, file is too short")
    new_offset = (entries_end + 7) & ~7  # ALIGN_CACHE: alignof(struct cache_file_new)
    if data[new_offset:new_offset + len(NEW_MAGIC)] == NEW_MAGIC:
        return _parse_new(data, new_offset, "compat")
    strings = data[entries_end:]
    entries = tuple(
        CacheEntry(_string(strings, key), _string(strings, value), flags)
        for flags, key, value in _OLD_ENTRY.iter_unpack(data[_OLD_HEADER.size:entries_end]))
    return LdCache("old", entries)


def _parse_new(data: bytes, base: int, fmt: str) -> LdCache:
    if len(data) < base + _NEW_HEADER.size:
        raise LdCacheError("truncated new-format header")
    _, nlibs, _len_strings, endian, ext_offset = _NEW_HEADER.unpack_from(data, base)
    if endian in (_ENDIAN_INVALID, _ENDIAN_BIG):
        raise LdCacheError("cache written for a big-endian machine")
    start = base + _NEW_HEADER.size
    end = start + nlibs * _NEW_ENTRY.size
    if end > len(data):
        raise LdCacheError(f"cache claims {nlibs} entries, file is too short")
    table = data[base:]  # new-format string offsets count from the header
    # Extension offsets count from the start of the file (dl-cache.c cache_extension_load),
    # which differs from the header in the compat layout.
    generator, hwcaps = _extensions(data, ext_offset, table)
    entries = []
    for flags, key, value, _os, hwcap in _NEW_ENTRY.iter_unpack(data[start:end]):
        subdir = None
        if hwcap & DL_CACHE_HWCAP_EXTENSION:
            index = hwcap & 0xFFFFFFFF
            subdir = hwcaps[index] if index < len(hwcaps) else f"#{index}"
        entries.append(CacheEntry(_string(table, key), _string(table, value), flags,
                                  hwcap, subdir))
    return LdCache(fmt, tuple(entries), generator)


def _extensions(data: bytes, offset: int, table: bytes) -> tuple[str | None, list[str]]:
    """The generator string and the glibc-hwcaps subdirectory names, if present."""
    if offset == 0 or offset + _EXT_HEADER.size > len(data):
        return None, []
    magic, count = _EXT_HEADER.unpack_from(data, offset)
    if magic != _EXT_MAGIC:
        return None, []
    generator: str | None = None
    hwcaps: list[str] = []
    for i in range(min(count, 64)):
        pos = offset + _EXT_HEADER.size + i * _EXT_SECTION.size
        if pos + _EXT_SECTION.size > len(data):
            break
        tag, _flags, sec_offset, size = _EXT_SECTION.unpack_from(data, pos)
        blob = data[sec_offset:sec_offset + size]
        if tag == _EXT_TAG_GENERATOR:
            generator = blob.decode("utf-8", "replace")
        elif tag == _EXT_TAG_GLIBC_HWCAPS:
            hwcaps = [_string(table, off) for (off,) in struct.iter_unpack("<I", blob[:size & ~3])]
    return generator, hwcaps


def _string(table: bytes, offset: int) -> str:
    end = table.find(b"\0", offset)
    if offset >= len(table) or end < 0:
        raise LdCacheError(f"string offset {offset:#x} outside the cache")
    return os.fsdecode(table[offset:end])


# -- /etc/ld.so.conf ---------------------------------------------------------------


def conf_directories(sysroot: Sysroot, conf: str = "/etc/ld.so.conf") -> list[str]:
    """Guest directories listed by ld.so.conf and its includes, in order, deduplicated."""
    seen: dict[str, None] = {}
    for directory in _conf_lines(sysroot, conf, depth=0):
        seen.setdefault(directory, None)
    return list(seen)


def _conf_lines(sysroot: Sysroot, conf: str, depth: int) -> Iterator[str]:
    if depth > 8:  # include loops
        return
    try:
        with open(sysroot.host(conf), encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] == "include":
            for pattern in words[1:]:
                yield from _include(sysroot, conf, pattern, depth)
        elif words[0] == "hwcap":
            continue  # obsolete hwcap lines are ignored by ldconfig as well
        else:
            # "dir=libc5" / "dir libc6" give a library type (obsolete): keep the dir.
            directory = line.split("=", 1)[0].split()[0].rstrip("/") or "/"
            if directory.startswith("/"):
                yield directory


def _include(sysroot: Sysroot, conf: str, pattern: str, depth: int) -> Iterator[str]:
    if not pattern.startswith("/"):
        pattern = os.path.join(os.path.dirname(conf), pattern)
    import glob  # only an `include` line needs it: not at every start-up

    for host in sorted(glob.glob(sysroot.host(pattern))):
        yield from _conf_lines(sysroot, sysroot.guest(host), depth + 1)
