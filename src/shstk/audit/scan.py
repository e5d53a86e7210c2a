"""Audit files and directory trees: find ELF programs, parse every file once, judge.

Phase 1 finds the files (directories recursively, each real directory and each file
once even when symlinks point at them twice) and parses them in worker processes,
one chunk per task. Phase 2 runs in the parent: it resolves every program's closure
from the parsed data; libraries the closures need that were not in the scanned trees
are parsed in parallel too, layer by layer (the libraries a round discovers are parsed
before the next round). Phase 3 applies the verdict.
"""

from __future__ import annotations

import ctypes
import os
import signal
import stat
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from shstk.elf.objects import LIBRARY, OTHER, Failure, ObjectInfo, inspect_chunk
from shstk.elf.resolve import Closure, Resolver
from shstk.elf.sysroot import Sysroot
from shstk.elf.verdict import CONTROLS, Verdict, shstk_verdict

# Below this many files a process pool costs more than it saves.
POOL_THRESHOLD = 48

ProgressCallback = Callable[[int, int], None]  # (files parsed, files known so far)
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _worker_init(parent: int) -> None:
    """A worker ignores Ctrl-C (the parent handles it) and dies with its parent.

    PR_SET_PDEATHSIG covers a parent killed by SIGKILL, which runs no clean-up; the
    getppid() check covers a parent that died before the worker got this far."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(1)


@dataclass
class ProgramResult:
    """One program of an audit: its closure and the verdict under each glibc.cpu.x86_shstk
    control."""

    path: str  # host path
    guest_path: str
    kind: str
    closure: Closure
    verdict: Verdict  # under the requested control
    controls: dict[str, Verdict]  # under every control
    explicit: bool = False  # named on the command line


@dataclass
class ScanResult:
    """What an audit found: the programs, the files it could not read, and counts."""

    programs: list[ProgramResult] = field(default_factory=list)
    errors: list[Failure] = field(default_factory=list)
    files: int = 0  # regular files looked at
    skipped: int = 0  # not ELF, or ELF but neither program nor shared object
    libraries_parsed: int = 0  # objects parsed for closures outside the scanned paths
    sysroot: str = "/"
    control: str = "elf_property"
    cache_problem: str | None = None


@dataclass
class _Found:
    """The ELF files under the audited paths, in the order they are reported."""

    files: list[str] = field(default_factory=list)  # named files in order, then the rest
    explicit: set[str] = field(default_factory=set)
    errors: list[Failure] = field(default_factory=list)


def scan(paths: Sequence[str], *, sysroot: str = "/", ld_library_path: Sequence[str] = (),
         control: str = "elf_property", jobs: int | None = None,
         progress: ProgressCallback | None = None) -> ScanResult:
    """Audit `paths` (files or directories, guest paths when a sysroot is given)."""
    if control not in CONTROLS:
        raise ValueError(f"unknown control {control!r}")
    resolver = Resolver(sysroot, ld_library_path)
    found = discover(paths, resolver.sysroot)
    result = ScanResult(errors=list(found.errors), files=len(found.files),
                        sysroot=resolver.sysroot.root, control=control,
                        cache_problem=resolver.cache_problem)
    jobs = jobs or os.cpu_count() or 1
    with _Parser(jobs, len(found.files), progress) as parser:
        parsed = parser.parse(found.files)
        resolver.add_infos(item for item in parsed if item is not None)
        subjects = _subjects(found.files, parsed, found.explicit, result)
        closures = _closures(resolver, [s.path for s in subjects], parser, result)
    for info in subjects:
        closure = closures[info.path]
        verdicts = {c: shstk_verdict(closure, c) for c in CONTROLS}
        result.programs.append(ProgramResult(
            path=info.path, guest_path=resolver.sysroot.guest(info.path), kind=info.kind,
            closure=closure, verdict=verdicts[control], controls=verdicts,
            explicit=info.path in found.explicit))
    return result


def _subjects(paths: list[str], parsed: list[ObjectInfo | Failure | None],
              explicit: set[str], result: ScanResult) -> list[ObjectInfo]:
    """Programs get a verdict; so do shared objects named on the command line."""
    subjects = []
    for path, item in zip(paths, parsed, strict=True):
        named = path in explicit
        if item is None:  # not an ELF file
            if named:
                result.errors.append(Failure(path, "not an ELF file", not_elf=True))
            else:
                result.skipped += 1
        elif isinstance(item, Failure):
            result.errors.append(item)
        elif item.is_program or (named and item.kind == LIBRARY):
            subjects.append(item)
        elif named and item.kind == OTHER:
            result.errors.append(Failure(item.path, item.why_other))
        else:
            result.skipped += item.kind == OTHER
    return subjects


def _closures(resolver: Resolver, programs: list[str], parser: _Parser,
              result: ScanResult) -> dict[str, Closure]:
    """Closures of all programs; missing libraries are parsed in parallel rounds."""
    closures: dict[str, Closure] = {}
    pending = list(programs)
    while pending:
        needs: set[str] = set()
        retry = []
        for path in pending:
            outcome = resolver.closure_or_needs(path)
            if isinstance(outcome, Closure):
                closures[path] = outcome
            else:
                needs |= outcome
                retry.append(path)
        if not needs:
            break
        parsed = parser.parse(sorted(needs))
        result.libraries_parsed += len(parsed)
        resolver.add_infos(item for item in parsed if item is not None)
        pending = retry
    return closures


class _Parser:
    """Parses files on all cores: jobs-1 worker processes plus the parent itself.

    Chunks are submitted to the pool in order; the parent takes chunks from the end
    and parses any chunk whose future it can still cancel (work stealing), so no core
    waits idle and a small round costs no inter-process traffic at all.
    """

    def __init__(self, jobs: int, expected: int, progress: ProgressCallback | None) -> None:
        self.jobs = jobs
        self.progress = progress
        self.done = 0
        self.total = expected
        self.pool: ProcessPoolExecutor | None = None
        self.use_pool = jobs > 1 and expected >= POOL_THRESHOLD

    def __enter__(self) -> _Parser:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def parse(self, paths: list[str]) -> list[ObjectInfo | Failure | None]:
        """One result per path, in order; None for a file that is not ELF."""
        if not paths:
            return []
        self.total = max(self.total, self.done + len(paths))
        chunks = _chunks(paths, self.jobs)
        if not self.use_pool or len(chunks) < 2:
            return [item for chunk in chunks for item in self._done(inspect_chunk(chunk))]
        if self.pool is None:
            # Workers ignore Ctrl-C: the parent handles it and shuts the pool down,
            # so an interrupt prints one line, not a traceback per worker.
            self.pool = ProcessPoolExecutor(max_workers=self.jobs - 1,
                                            initializer=_worker_init,
                                            initargs=(os.getpid(),))
        futures = [self.pool.submit(inspect_chunk, chunk) for chunk in chunks]
        results: list[list[ObjectInfo | Failure | None] | None] = [None] * len(chunks)
        for i in reversed(range(len(chunks))):
            if futures[i].cancel():  # not started by a worker: the parent does it
                results[i] = self._done(inspect_chunk(chunks[i]))
        for i, future in enumerate(futures):
            if results[i] is None:
                results[i] = self._done(future.result())
        return [item for batch in results for item in batch or ()]

    def _done(self, batch: list[ObjectInfo | Failure | None]
              ) -> list[ObjectInfo | Failure | None]:
        self.done += len(batch)
        if self.progress is not None:
            self.progress(self.done, self.total)
        return batch


def _chunks(paths: list[str], jobs: int) -> list[list[str]]:
    # Several chunks per core balance uneven files; not so many that IPC dominates.
    size = max(16, min(128, len(paths) // (jobs * 6) + 1))
    return [paths[i:i + size] for i in range(0, len(paths), size)]


# -- discovery ---------------------------------------------------------------------------


def discover(paths: Sequence[str], sysroot: Sysroot) -> _Found:
    """Regular files to parse, each real file once; problems with named paths."""
    found = _Found()
    named: list[str] = []
    seen_files: dict[tuple[int, int], str] = {}
    seen_dirs: set[tuple[int, int]] = set()
    for arg in paths:
        host = _host_path(arg, sysroot)
        try:
            st = os.stat(host)
        except OSError as exc:
            found.errors.append(Failure(arg, _problem(exc)))
            continue
        if stat.S_ISDIR(st.st_mode):
            _walk(host, sysroot, seen_dirs, seen_files)
        elif stat.S_ISREG(st.st_mode):
            path = seen_files.setdefault((st.st_dev, st.st_ino), host)
            if path not in found.explicit:
                found.explicit.add(path)
                named.append(path)
        else:
            found.errors.append(Failure(arg, "not a regular file or directory"))
    found.files = named + sorted(set(seen_files.values()) - found.explicit)
    return found


def _host_path(arg: str, sysroot: Sysroot) -> str:
    """A command-line path: as is on the host; inside the root when one is given."""
    if sysroot.is_host:
        return os.path.abspath(arg)
    if sysroot.contains(arg) and os.path.isabs(arg):
        return os.path.abspath(arg)
    guest = arg if arg.startswith("/") else "/" + arg
    return sysroot.host(sysroot.resolve(guest) or guest)


def _walk(top: str, sysroot: Sysroot, seen_dirs: set[tuple[int, int]],
          seen_files: dict[tuple[int, int], str]) -> None:
    """Walk a tree; symlinks are followed, but no directory or file twice.

    Symlinks are followed only after the real tree is done, so a file reached both
    directly and through a link is reported under its real name.
    """
    links: list[str] = []
    pending = [top]
    while pending or links:
        if not pending:
            pending = _follow_links(links, sysroot, seen_files)
            links = []
            continue
        directory = pending.pop()
        try:
            st = os.stat(directory)
            if (st.st_dev, st.st_ino) in seen_dirs:
                continue
            seen_dirs.add((st.st_dev, st.st_ino))
            entries = sorted(os.scandir(directory), key=lambda e: e.name, reverse=True)
        except OSError:
            continue  # unreadable directory: nothing to audit in it
        for entry in entries:
            try:
                if entry.is_symlink():
                    links.append(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    seen_files.setdefault((st.st_dev, entry.inode()), entry.path)
                # FIFOs, sockets and devices are never opened.
            except OSError:
                continue


def _follow_links(links: list[str], sysroot: Sysroot,
                  seen_files: dict[tuple[int, int], str]) -> list[str]:
    """Register symlinked files; return symlinked directories to walk next."""
    directories = []
    for link in sorted(links):
        target = link
        if not sysroot.is_host:
            real = sysroot.resolve(sysroot.guest(link))
            if real is None:
                continue
            target = sysroot.host(real)
        try:
            st = os.stat(target)
        except OSError:
            continue  # dangling
        if stat.S_ISDIR(st.st_mode):
            directories.append(target)
        elif stat.S_ISREG(st.st_mode):
            seen_files.setdefault((st.st_dev, st.st_ino), link)
    return directories


def _problem(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()
