"""Open an ELF file the way ld.so does: ELF header, program headers, segment bytes.

The loader never looks at section headers: it reads the ELF header, the program header
table and then the bytes that segments describe (PT_INTERP, PT_DYNAMIC, PT_NOTE,
PT_GNU_PROPERTY). This module does the same, so stripped or section-less files are read
exactly as ld.so reads them. pyelftools' structure definitions decode the ELF and program
headers; every read is bounded by the file size, so a truncated or hostile file becomes a
`BadElf` with one line of explanation, never an exception from deep inside a parser.

Files are opened with O_NONBLOCK and checked with fstat before any read, so a FIFO, a
device or a socket found in a scanned tree is rejected instead of blocking the scan.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from elftools.common.exceptions import ELFError
from elftools.construct import ConstructError
from elftools.elf.structs import ELFStructs

from shstk.abi import elf as E
from shstk.errors import BadElf

ELF_MAGIC = b"\x7fELF"
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC

# Largest string table we are willing to read for DT_NEEDED/DT_RUNPATH names. Real ones
# are a few tens of KiB; a hostile DT_STRSZ must not make us allocate gigabytes.
MAX_STRTAB_BYTES = 16 << 20
# Same idea for a note segment: real property notes are tens of bytes.
MAX_NOTE_SEGMENT_BYTES = 1 << 20
HEAD_BYTES = 4096

_MACHINE_NAMES = {
    E.EM_X86_64: "x86-64",
    E.EM_386: "i386",
    E.EM_AARCH64: "aarch64",
    E.EM_RISCV: "riscv",
}


class NotAnElf(BadElf):
    """The file does not start with the ELF magic: a directory scan skips it quietly."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One program header entry (p_type as pyelftools names it, or the number)."""

    type: str | int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int
    ptype: int = -1  # p_type as a number (PT_LOAD, PT_INTERP, ...)


@dataclass(frozen=True, slots=True)
class FileId:
    """Identity of a file on disk, as ld.so compares loaded objects (dev, inode)."""

    dev: int
    ino: int


def open_regular_file(path: str) -> tuple[int, os.stat_result]:
    """Open `path` for reading without ever blocking; only regular files are accepted."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        raise BadElf(path, _os_problem(exc)) from None
    try:
        st = os.fstat(fd)
    except OSError as exc:
        os.close(fd)
        raise BadElf(path, _os_problem(exc)) from None
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise BadElf(path, f"not a regular file ({_file_type(st.st_mode)})")
    return fd, st


def _os_problem(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "no such file or directory"
    if exc.errno == errno.EACCES:
        return "permission denied"
    if exc.errno == errno.EISDIR:
        return "is a directory"
    return exc.strerror or str(exc)


def _file_type(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def machine_name(e_machine: int) -> str:
    return _MACHINE_NAMES.get(e_machine, f"machine {e_machine}")


@lru_cache(maxsize=64)
def _structs(little_endian: bool, elfclass: int) -> ELFStructs:
    """pyelftools structure definitions, built once per (endianness, class).

    Building them is the expensive part of pyelftools' ELFFile (about 1 ms); the ELF
    and program header layouts only depend on endianness and class.
    """
    structs = ELFStructs(little_endian=little_endian, elfclass=elfclass)
    structs.create_basic_structs()
    structs.create_advanced_structs()
    return structs


class ElfImage:
    """An ELF file opened for reading: validated header and program header table.

    Use as a context manager; `read()` is bounded by the file size. With `fd`, the file
    is one the caller opened (the emulated kernel's execve): it is read, never closed.
    """

    def __init__(self, path: str, fd: int | None = None) -> None:
        self.path = path
        self._owned = fd is None
        if fd is None:
            self._fd, st = open_regular_file(path)
        else:
            self._fd, st = fd, os.fstat(fd)
        try:
            self.size = st.st_size
            self.file_id = FileId(st.st_dev, st.st_ino)
            # One read covers the ELF header, the program headers and usually the
            # notes and PT_INTERP: a scan is dominated by system calls, not parsing.
            self._head = os.pread(self._fd, HEAD_BYTES, 0)
            self._read_headers()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> ElfImage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd >= 0 and self._owned:
            os.close(self._fd)
        self._fd = -1

    @property
    def head(self) -> bytes:
        """The first bytes of the file (ELF header and usually the program headers)."""
        return self._head

    # -- reading -------------------------------------------------------------------

    def read(self, offset: int, size: int, what: str = "data") -> bytes:
        """Read exactly `size` bytes at `offset` or raise BadElf (truncated file)."""
        if offset < 0 or size < 0 or offset + size > self.size:
            raise BadElf(self.path, f"truncated: {what} at {offset:#x}..{offset + size:#x}"
                                    f" is past the end of the file ({self.size} bytes)")
        if offset + size <= len(self._head):
            return self._head[offset:offset + size]
        data = os.pread(self._fd, size, offset)
        if len(data) != size:
            raise BadElf(self.path, "file shrank while being read")
        return data

    def read_upto(self, offset: int, size: int) -> bytes:
        """Read at most `size` bytes at `offset` (fewer at the end of the file)."""
        if offset < 0 or offset >= self.size or size <= 0:
            return b""
        size = min(size, self.size - offset)
        if offset + size <= len(self._head):
            return self._head[offset:offset + size]
        return os.pread(self._fd, size, offset)

    def segment_bytes(self, seg: Segment, limit: int = MAX_NOTE_SEGMENT_BYTES) -> bytes:
        """File bytes of a segment (p_filesz from p_offset), bounded by `limit`."""
        if seg.filesz > limit:
            raise BadElf(self.path, f"{_type_name(seg.type)} segment of {seg.filesz} bytes"
                                    " is implausibly large")
        return self.read(seg.offset, seg.filesz, f"{_type_name(seg.type)} segment")

    def vaddr_to_offset(self, vaddr: int) -> int | None:
        """File offset of a virtual address inside a PT_LOAD segment's file bytes."""
        for seg in self.segments:
            if seg.type == "PT_LOAD" and seg.vaddr <= vaddr < seg.vaddr + seg.filesz:
                return seg.offset + (vaddr - seg.vaddr)
        return None

    def segments_of(self, kind: str) -> list[Segment]:
        return [s for s in self.segments if s.type == kind]

    # -- header parsing ------------------------------------------------------------

    @property
    def eligible(self) -> bool:
        """x86-64 user shadow stacks exist only for 64-bit x86-64 objects."""
        return self.elfclass == 64 and self.e_machine == E.EM_X86_64

    @property
    def description(self) -> str:
        endian = "" if self.little_endian else ", big-endian"
        return f"ELF{self.elfclass} {machine_name(self.e_machine)}{endian}"

    def _read_headers(self) -> None:
        ident = self.read_upto(0, 16)
        if len(ident) < 4 or ident[:4] != ELF_MAGIC:
            raise NotAnElf(self.path, "not an ELF file")
        if len(ident) < 16 or self.size < 52:
            raise BadElf(self.path, f"truncated ELF header ({self.size} bytes)")
        ei_class, ei_data, ei_version = ident[4], ident[5], ident[6]
        if ei_class not in (E.ELFCLASS32, E.ELFCLASS64):
            raise BadElf(self.path, f"invalid ELF class byte {ei_class}")
        if ei_data not in (E.ELFDATA2LSB, E.ELFDATA2MSB):
            raise BadElf(self.path, f"invalid ELF data encoding byte {ei_data}")
        if ei_version != E.EV_CURRENT:
            raise BadElf(self.path, f"unsupported ELF version {ei_version}")
        self.elfclass = 64 if ei_class == E.ELFCLASS64 else 32
        self.little_endian = ei_data == E.ELFDATA2LSB
        structs = _structs(self.little_endian, self.elfclass)
        ehdr_size = structs.Elf_Ehdr.sizeof()
        ehdr = _parse(self.path, structs.Elf_Ehdr, self.read(0, ehdr_size, "ELF header"),
                      "ELF header")
        self.e_type = _enum_value(ehdr["e_type"], _E_TYPES)
        self.e_machine = _enum_value(ehdr["e_machine"], {})
        self.e_entry: int = ehdr["e_entry"]
        self.e_phoff: int = ehdr["e_phoff"]
        self.e_phentsize: int = ehdr["e_phentsize"]
        self.e_phnum: int = ehdr["e_phnum"]
        self.segments = self._read_program_headers(structs, ehdr)

    def _read_program_headers(self, structs: ELFStructs, ehdr) -> tuple[Segment, ...]:
        phnum, phentsize, phoff = ehdr["e_phnum"], ehdr["e_phentsize"], ehdr["e_phoff"]
        if phnum == 0:
            return ()
        if phnum == E.PN_XNUM:
            raise BadElf(self.path, "extended program header numbering (PN_XNUM) is not"
                                    " supported by the kernel or ld.so")
        expected = structs.Elf_Phdr.sizeof()
        if phentsize != expected:
            # ld.so: "ELF file's phentsize not the expected size"
            raise BadElf(self.path, f"e_phentsize is {phentsize}, expected {expected}")
        table_size = phnum * phentsize
        if table_size > E.MAX_PHDR_TABLE_BYTES:
            raise BadElf(self.path, f"{phnum} program headers: larger than the kernel"
                                    " accepts (64 KiB)")
        table = self.read(phoff, table_size, "program header table")
        order: Literal["little", "big"] = "little" if self.little_endian else "big"
        segments = []
        for i in range(phnum):
            raw = table[i * phentsize:(i + 1) * phentsize]
            ph = _parse(self.path, structs.Elf_Phdr, raw, "program header")
            segments.append(Segment(
                type=ph["p_type"], flags=ph["p_flags"], offset=ph["p_offset"],
                vaddr=ph["p_vaddr"], filesz=ph["p_filesz"], memsz=ph["p_memsz"],
                align=ph["p_align"], ptype=int.from_bytes(raw[:4], order)))
        return tuple(segments)


_E_TYPES = {"ET_NONE": 0, "ET_REL": E.ET_REL, "ET_EXEC": E.ET_EXEC, "ET_DYN": E.ET_DYN,
            "ET_CORE": E.ET_CORE}


def _enum_value(value: str | int, names: dict[str, int]) -> int:
    """pyelftools decodes known enum values to names; we want the numbers back."""
    if isinstance(value, int):
        return value
    if value in names:
        return names[value]
    from elftools.elf import enums

    return enums.ENUM_E_MACHINE.get(value, -1) if value.startswith("EM_") else -1


def _type_name(kind: str | int) -> str:
    return kind if isinstance(kind, str) else f"segment type {kind:#x}"


def _parse(path: str, struct, data: bytes, what: str):
    try:
        return struct.parse(data)
    except (ConstructError, ELFError, ValueError) as exc:
        raise BadElf(path, f"unreadable {what}: {exc}") from None
