"""Addresses to `symbol+offset (file)`, from the ELF symbol tables of mapped files."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class MappingLike(Protocol):
    """A file mapping (read-only fields: a frozen record satisfies it)."""

    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def path(self) -> str: ...
    @property
    def host(self) -> str: ...
    @property
    def offset(self) -> int: ...
    @property
    def perms(self) -> str: ...


@dataclass
class _Symbols:
    """An ELF file's function symbols sorted by address, and its loadable segments."""

    starts: list[int]
    entries: list[tuple[int, int, str]]  # (value, size, name), sorted by value
    segments: list[tuple[int, int, int]]  # (p_offset, p_filesz, p_vaddr) of PT_LOADs


_SYMBOLS: dict[str, _Symbols | None] = {}  # parsed once per file per process


class Symbolizer:
    def __init__(self, maps: Sequence[MappingLike]) -> None:
        self.maps = sorted(maps, key=lambda m: m.start)
        self._cache = _SYMBOLS

    def mapping(self, addr: int) -> MappingLike | None:
        for m in self.maps:
            if m.start <= addr < m.end:
                return m
        return None

    def is_code(self, addr: int) -> bool:
        m = self.mapping(addr)
        return m is not None and "x" in m.perms

    def describe(self, addr: int) -> str:
        """`name+0xoff (path)`, or `path+0xoff`, or the bare address."""
        m = self.mapping(addr)
        if m is None:
            return "?"
        file_off = addr - m.start + m.offset
        syms = self._load(m.host or m.path)
        short = m.path
        if syms is None:
            return f"({short}+{file_off:#x})"
        vaddr = _vaddr_of(syms, file_off)
        if vaddr is None:
            return f"({short}+{file_off:#x})"
        name = _lookup(syms, vaddr)
        if name is None:
            return f"({short}+{file_off:#x})"
        sym, off = name
        return f"{sym}+{off:#x} ({short})" if off else f"{sym} ({short})"

    def symbol(self, addr: int) -> str | None:
        m = self.mapping(addr)
        if m is None:
            return None
        syms = self._load(m.host or m.path)
        if syms is None:
            return None
        vaddr = _vaddr_of(syms, addr - m.start + m.offset)
        if vaddr is None:
            return None
        found = _lookup(syms, vaddr)
        return found[0] if found else None

    def _load(self, path: str) -> _Symbols | None:
        if path in self._cache:
            return self._cache[path]
        syms = _read_symbols(path)
        self._cache[path] = syms
        return syms


def _vaddr_of(syms: _Symbols, file_off: int) -> int | None:
    for off, size, vaddr in syms.segments:
        if off <= file_off < off + max(size, 1):
            return vaddr + (file_off - off)
    return None


def _lookup(syms: _Symbols, vaddr: int) -> tuple[str, int] | None:
    """The function containing `vaddr` (symbols of size 0 cover up to a page)."""
    i = bisect.bisect_right(syms.starts, vaddr) - 1
    if i < 0:
        return None
    value, size, name = syms.entries[i]
    off = vaddr - value
    if off >= (size if size else 0x1000):
        return None
    return name, off


def _read_symbols(path: str) -> _Symbols | None:
    try:
        from elftools.common.exceptions import ELFError
        from elftools.elf.elffile import ELFFile
        from elftools.elf.sections import SymbolTableSection
    except ImportError:  # pragma: no cover
        return None
    try:
        with open(path, "rb") as f:
            elf = ELFFile(f)
            segments = [(s["p_offset"], s["p_filesz"], s["p_vaddr"]) for s in elf.iter_segments()
                        if s["p_type"] == "PT_LOAD"]
            entries: dict[int, tuple[int, int, str, bool]] = {}
            for sec in elf.iter_sections():
                if not isinstance(sec, SymbolTableSection):
                    continue
                for sym in sec.iter_symbols():
                    kind = sym["st_info"]["type"]
                    # functions, and untyped labels of hand-written assembly
                    if kind not in ("STT_FUNC", "STT_GNU_IFUNC", "STT_NOTYPE") or \
                            not sym["st_value"] or not sym.name or \
                            sym["st_shndx"] in ("SHN_UNDEF", "SHN_ABS") or \
                            sym.name.startswith((".L", "$")):
                        continue
                    value = sym["st_value"]
                    old = entries.get(value)
                    typed = kind != "STT_NOTYPE"
                    # prefer a function over a label, a global name over a local alias
                    if old is None or (typed and old[3] is False) or \
                            (typed == old[3] and sym["st_info"]["bind"] == "STB_GLOBAL" and
                             not old[2][0].isalpha()):
                        entries[value] = (value, sym["st_size"], sym.name, typed)
    except (OSError, ELFError, ValueError, KeyError, AttributeError):
        return None
    ordered = sorted((v, size, name) for v, size, name, _typed in entries.values())
    return _Symbols([e[0] for e in ordered], ordered, segments)
