"""Open an ELF file the way ld.so does: ELF header, program headers, segment bytes.

The loader never looks at section headers: it reads the ELF header, the program header
table and then the bytes that segments describe (PT_INTERP, PT_DYNAMIC, PT_NOTE,
PT_GNU_PROPERTY). This module does the same, so stripped or section-less files are read
exactly as ld.so reads them. The two fixed layouts (ELF header, program header) are
decoded with `struct`, not pyelftools, so that `shstk run` does not import a parser it
does not need (start-up time, issue 18); every read is bounded by the file size, so a
truncated or hostile file becomes a `BadElf` with one line of explanation.

Files are opened with O_NONBLOCK and checked with fstat before any read, so a FIFO, a
device or a socket found in a scanned tree is rejected instead of blocking the scan.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from dataclasses import dataclass

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
    """One program header entry (p_type by its name, "PT_LOAD", or the number)."""

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


# e_type, e_machine, e_version, e_entry, e_phoff, e_shoff, e_flags, e_ehsize,
# e_phentsize, e_phnum (after the 16 identification bytes)
_EHDR = {64: "HHIQQQIHHH", 32: "HHIIIIIHHH"}
_EHDR_SIZE = {64: 64, 32: 52}
# p_type, p_flags, p_offset, p_vaddr, p_filesz, p_memsz, p_align in each class's order
_PHDR = {64: "IIQQQQQQ", 32: "IIIIIIII"}
_PHDR_SIZE = {64: 56, 32: 32}

_PT_NAMES = {E.PT_NULL: "PT_NULL", E.PT_LOAD: "PT_LOAD", E.PT_DYNAMIC: "PT_DYNAMIC",
             E.PT_INTERP: "PT_INTERP", E.PT_NOTE: "PT_NOTE", 5: "PT_SHLIB",
             E.PT_PHDR: "PT_PHDR", E.PT_TLS: "PT_TLS", E.PT_GNU_EH_FRAME: "PT_GNU_EH_FRAME",
             E.PT_GNU_STACK: "PT_GNU_STACK", E.PT_GNU_RELRO: "PT_GNU_RELRO",
             E.PT_GNU_PROPERTY: "PT_GNU_PROPERTY"}


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
        self._order = "<" if self.little_endian else ">"
        size = _EHDR_SIZE[self.elfclass]
        raw = self.read(0, size, "ELF header")
        (self.e_type, self.e_machine, _version, self.e_entry, self.e_phoff, _shoff, _flags,
         _ehsize, self.e_phentsize, self.e_phnum) = struct.unpack_from(
            self._order + _EHDR[self.elfclass], raw, 16)
        self.segments = self._read_program_headers()

    def _read_program_headers(self) -> tuple[Segment, ...]:
        phnum, phentsize, phoff = self.e_phnum, self.e_phentsize, self.e_phoff
        if phnum == 0:
            return ()
        if phnum == E.PN_XNUM:
            raise BadElf(self.path, "extended program header numbering (PN_XNUM) is not"
                                    " supported by the kernel or ld.so")
        expected = _PHDR_SIZE[self.elfclass]
        if phentsize != expected:
            # ld.so: "ELF file's phentsize not the expected size"
            raise BadElf(self.path, f"e_phentsize is {phentsize}, expected {expected}")
        table_size = phnum * phentsize
        if table_size > E.MAX_PHDR_TABLE_BYTES:
            raise BadElf(self.path, f"{phnum} program headers: larger than the kernel"
                                    " accepts (64 KiB)")
        table = self.read(phoff, table_size, "program header table")
        layout = struct.Struct(self._order + _PHDR[self.elfclass])
        segments = []
        for fields in layout.iter_unpack(table):
            if self.elfclass == 64:
                ptype, flags, offset, vaddr, _paddr, filesz, memsz, align = fields
            else:
                ptype, offset, vaddr, _paddr, filesz, memsz, flags, align = fields
            segments.append(Segment(type=_PT_NAMES.get(ptype, ptype), flags=flags,
                                    offset=offset, vaddr=vaddr, filesz=filesz, memsz=memsz,
                                    align=align, ptype=ptype))
        return tuple(segments)


def _type_name(kind: str | int) -> str:
    return kind if isinstance(kind, str) else f"segment type {kind:#x}"


