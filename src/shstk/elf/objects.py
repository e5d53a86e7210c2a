"""Everything the audit needs from one ELF file, read in one pass.

`ObjectInfo` is small, immutable and picklable: scan workers build them in parallel and
send them to the parent, which resolves dependency closures without reopening files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from shstk.abi import elf as E
from shstk.elf.dynamic import DynamicInfo, read_dynamic
from shstk.elf.properties import CetProperties, cet_properties_of
from shstk.elf.reader import MAX_NOTE_SEGMENT_BYTES, ElfImage, FileId, NotAnElf
from shstk.errors import BadElf

# Kinds of objects, from the loader's point of view.
DYNAMIC = "dynamic"  # program run through PT_INTERP (ld.so)
STATIC = "static"  # ET_EXEC without interpreter
STATIC_PIE = "static-pie"  # ET_DYN, DF_1_PIE, no interpreter
LIBRARY = "library"  # shared object
OTHER = "other"  # relocatable object, core file...

PROGRAM_KINDS = (DYNAMIC, STATIC, STATIC_PIE)


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One ELF file as the audit and the loader see it: kind, property notes, interpreter,
    dynamic section."""

    path: str
    file_id: FileId
    e_type: int
    description: str
    props: CetProperties
    interp: str | None
    dynamic: DynamicInfo | None
    debug_only: bool = False  # separate debug information (objcopy --only-keep-debug)

    @property
    def eligible(self) -> bool:
        return self.props.eligible

    @property
    def needed(self) -> tuple[str, ...]:
        return self.dynamic.needed if self.dynamic else ()

    @property
    def soname(self) -> str | None:
        return self.dynamic.soname if self.dynamic else None

    @property
    def kind(self) -> str:
        pie = bool(self.dynamic and self.dynamic.pie)
        if self.debug_only:
            return OTHER
        if self.e_type == E.ET_EXEC:
            return DYNAMIC if self.interp is not None else STATIC
        if self.e_type != E.ET_DYN:
            return OTHER
        if self.interp is not None:
            # libc.so.6 has PT_INTERP (it can be run) but is a library: PIE programs carry
            # DF_1_PIE, and old PIEs at least have no SONAME.
            return DYNAMIC if pie or self.soname is None else LIBRARY
        return STATIC_PIE if pie else LIBRARY

    @property
    def is_program(self) -> bool:
        return self.kind in PROGRAM_KINDS

    @property
    def why_other(self) -> str:
        """Why an OTHER object is neither a program nor a shared object."""
        if self.debug_only:
            return "separate debug information (objcopy --only-keep-debug), not loadable"
        return {E.ET_REL: "relocatable object file (.o), not linked",
                E.ET_CORE: "core dump"}.get(self.e_type,
                                            "neither a program nor a shared object")


@dataclass(frozen=True, slots=True)
class Failure:
    """A file that could not be used: `not_elf` ones are skipped quietly by scans."""

    path: str
    problem: str
    not_elf: bool = False

    def message(self) -> str:
        return f"{self.path}: {self.problem}"


def inspect_file(path: str) -> ObjectInfo:
    """Read `path` once: CET properties, interpreter, dynamic section. Raises BadElf."""
    with ElfImage(path) as image:
        props = cet_properties_of(image)
        if _is_debug_only(image):
            return ObjectInfo(path, image.file_id, image.e_type, image.description, props,
                              interp=None, dynamic=None, debug_only=True)
        return ObjectInfo(
            path=path,
            file_id=image.file_id,
            e_type=image.e_type,
            description=image.description,
            props=props,
            interp=_interpreter(image),
            dynamic=read_dynamic(image) if image.e_type in (E.ET_EXEC, E.ET_DYN) else None,
        )


def _is_debug_only(image: ElfImage) -> bool:
    # objcopy --only-keep-debug keeps the program headers but not the bytes they
    # describe; ld.so recognizes such files by a PT_DYNAMIC with p_filesz 0.
    return any(s.type in ("PT_DYNAMIC", "PT_INTERP") and s.filesz == 0 and s.memsz > 0
               for s in image.segments)


def inspect_or_fail(path: str) -> ObjectInfo | Failure:
    """inspect_file, with every problem turned into a Failure (for scan workers)."""
    try:
        return inspect_file(path)
    except NotAnElf as exc:
        return Failure(path, exc.problem, not_elf=True)
    except BadElf as exc:
        return Failure(path, exc.problem)
    except (OSError, MemoryError) as exc:
        return Failure(path, str(exc))


def inspect_many(paths: list[str]) -> list[ObjectInfo | Failure]:
    """A chunk of paths in, one result per path out."""
    return [inspect_or_fail(p) for p in paths]


def inspect_chunk(paths: list[str]) -> list[ObjectInfo | Failure | None]:
    """Scan-worker entry point: like inspect_many, with None for files that are not ELF.

    Most files of a big tree are not ELF; sending None instead of a Failure per file
    keeps the results a worker pickles back to the parent small (6.5 MB -> 0.3 MB for
    /usr/lib).
    """
    out: list[ObjectInfo | Failure | None] = []
    for path in paths:
        result = inspect_or_fail(path)
        out.append(None if isinstance(result, Failure) and result.not_elf else result)
    return out


def _interpreter(image: ElfImage) -> str | None:
    segments = image.segments_of("PT_INTERP")
    if not segments:
        return None
    raw = image.segment_bytes(segments[0], MAX_NOTE_SEGMENT_BYTES)
    name = raw.split(b"\0", 1)[0]
    if not name:
        raise BadElf(image.path, "empty PT_INTERP")
    return os.fsdecode(name)
