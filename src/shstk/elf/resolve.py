"""The dependency closure of a program, found the way ld.so finds it (elf/dl-load.c).

For each DT_NEEDED name, in breadth-first order from the executable:

1. a name already loaded (as a DT_NEEDED string, a SONAME or the interpreter's names)
   is the same object; a different name that opens the same file (device, inode) too;
2. a name containing "/" (after $ORIGIN/$LIB/$PLATFORM expansion) is opened as is;
3. otherwise, in order: DT_RPATH of the object that needs it, then of the object that
   loaded that one, up to the executable -- all skipped when the needing object has
   DT_RUNPATH, and DT_RPATH itself is ignored in any object that has DT_RUNPATH --;
   LD_LIBRARY_PATH; DT_RUNPATH of the needing object only; /etc/ld.so.cache; the
   default directories. DF_1_NODEFLIB on the needing object skips the cache entries in
   default directories and the default directories themselves.

A file of the wrong class or machine is skipped and the search goes on (ld.so's
"found_other_class"); a file that is not ELF at all stops the search with an error, as
it stops ld.so. Unlike ld.so we do not stop at the first missing library: all of them
are reported.

The dynamic loader named by PT_INTERP is part of every closure (`is_interpreter`); glibc
exempts it from the shadow-stack check.

Limitations, on purpose: glibc-hwcaps subdirectories are not searched (the baseline
library is audited), LD_PRELOAD is not modelled, and secure (setuid) mode is not
applied.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from shstk.abi import elf as E
from shstk.elf.dst import default_directories, expand_dst, lib_expansion
from shstk.elf.ldcache import LdCache, LdCacheError, conf_directories
from shstk.elf.objects import Failure, ObjectInfo, inspect_or_fail
from shstk.elf.properties import CetProperties
from shstk.elf.reader import ELF_MAGIC
from shstk.elf.sysroot import Sysroot
from shstk.errors import BadElf

RPATH = "rpath"
LD_LIBRARY_PATH = "LD_LIBRARY_PATH"
RUNPATH = "runpath"
LD_SO_CACHE = "ld.so.cache"
LD_SO_CONF = "ld.so.conf"  # only when the root has no usable ld.so.cache
DEFAULT = "default"
DIRECT = "direct"
FOUND_VIA = (RPATH, LD_LIBRARY_PATH, RUNPATH, LD_SO_CACHE, LD_SO_CONF, DEFAULT, DIRECT)



@dataclass(frozen=True, slots=True)
class LoadedObject:
    """One object of a closure (the executable itself or a library it loads)."""

    name: str  # the DT_NEEDED string (PT_INTERP string for the interpreter)
    path: str  # host path of the file (symlinks resolved, inside the sysroot)
    guest_path: str  # the same file as the program sees it
    found_via: str  # one of FOUND_VIA
    needed_by: str  # guest path of the object that first needed it ("" for the exe)
    props: CetProperties
    is_interpreter: bool = False
    search_path: str = ""  # guest path where the search found it (before symlinks)
    info: ObjectInfo | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class MissingObject:
    """A DT_NEEDED library that ld.so would not find, and who needs it."""

    name: str
    needed_by: str  # guest path of the object that needs it
    reason: str = "not found"


@dataclass
class Closure:
    """`objects` is in ld.so's breadth-first load order and excludes the executable;
    the interpreter is included (is_interpreter=True) where it is first needed, or at
    the end when no object names it in DT_NEEDED."""

    exe: LoadedObject
    interpreter: str | None
    objects: list[LoadedObject]
    missing: list[MissingObject]
    interpreter_needed: bool = False  # some DT_NEEDED names ld.so (it is then in the
    # search list; otherwise ld.so unlinks itself from the list, and ldd omits it)

    @property
    def kind(self) -> str:
        return self.exe.info.kind if self.exe.info else "dynamic"

    @property
    def libraries(self) -> list[LoadedObject]:
        """Loaded objects other than the interpreter."""
        return [o for o in self.objects if not o.is_interpreter]


class _Pending(Failure):
    """Stands for an object not parsed yet while collecting what a closure needs."""

    __slots__ = ()


class Resolver:
    """Resolves dependency closures in a root file system; caches every parsed object.

    `infos` may be pre-filled by `add_infos` (a parallel scan parses files in worker
    processes); anything else is parsed on demand.
    """

    def __init__(self, sysroot: str = "/", ld_library_path: Sequence[str] = (), *,
                 platform: str = "x86_64", cache: LdCache | None = None,
                 inspect: Callable[[str], ObjectInfo | Failure] = inspect_or_fail) -> None:
        self.sysroot = Sysroot(sysroot)
        self.ld_library_path = tuple(ld_library_path)
        self.platform = platform
        self.default_dirs = default_directories(self.sysroot)
        self.lib = lib_expansion(self.sysroot)
        self._inspect = inspect
        self._infos: dict[str, ObjectInfo | Failure] = {}
        self._headers: dict[str, str] = {}
        self._real: dict[str, str] = {}
        self._collect: set[str] | None = None
        # ld.so.cache is read when a name is first looked up: a static program has no
        # libraries, and parsing the cache was a fifth of its `shstk run` (issue 18)
        self._given_cache = cache
        self._cache_read: tuple[LdCache | None, str | None, tuple[str, ...]] | None = None

    # -- object cache ----------------------------------------------------------------

    def add_infos(self, results: Iterable[ObjectInfo | Failure]) -> None:
        for result in results:
            # Files that are not ELF never join a closure (the search checks the magic
            # first); skipping them saves a realpath() per file of a big tree.
            if not (isinstance(result, Failure) and result.not_elf):
                self._infos[self.realpath(result.path)] = result

    def realpath(self, host_path: str) -> str:
        """os.path.realpath, memoized: closures ask for the same few files again and again."""
        real = self._real.get(host_path)
        if real is None:
            real = self._real[host_path] = os.path.realpath(host_path)
        return real

    def info(self, host_path: str) -> ObjectInfo | Failure:
        """Parsed object at a host path (parsed once, then cached)."""
        key = self.realpath(host_path)
        found = self._infos.get(key)
        if found is None:
            if self._collect is not None:
                self._collect.add(key)
                return _Pending(key, "not parsed yet")
            found = self._inspect(key)
            self._infos[key] = found
        return found

    def closure_or_needs(self, exe_path: str, preload: Sequence[str] = ()
                         ) -> Closure | set[str]:
        """The closure if every object it needs is parsed, else the host paths of the
        objects to parse first (lets a scan parse each layer of libraries in parallel)."""
        self._collect = set()
        try:
            closure = self.closure(exe_path, preload)
        finally:
            needs, self._collect = self._collect, None
        return needs or closure

    # -- closure ---------------------------------------------------------------------

    def closure(self, exe_path: str, preload: Sequence[str] = ()) -> Closure:
        """The closure of the program (or shared object) at host path `exe_path`.

        `preload` is LD_PRELOAD: those objects load right after the executable, before
        its DT_NEEDED entries, searched as if the executable needed them."""
        exe_info = self.info(exe_path)
        if isinstance(exe_info, _Pending):
            exe_info = self._infos[exe_info.path] = self._inspect(exe_info.path)
        if isinstance(exe_info, Failure):
            raise BadElf(exe_info.path, exe_info.problem)
        exe_guest = self.sysroot.guest(os.path.abspath(exe_path))
        real_guest = self.sysroot.resolve(exe_guest) or exe_guest
        exe = LoadedObject(name=os.path.basename(exe_guest), path=self.realpath(exe_path),
                           guest_path=real_guest, found_via=DIRECT, needed_by="",
                           props=exe_info.props, search_path=exe_guest, info=exe_info)
        return _ClosureBuilder(self, exe, preload).build()

    # -- searching ---------------------------------------------------------------------

    def origin_of(self, obj: LoadedObject) -> str:
        # The executable's $ORIGIN comes from /proc/self/exe (symlinks resolved); a
        # library's from the path it was opened by (not resolved).
        path = obj.guest_path if obj.needed_by == "" else obj.search_path or obj.guest_path
        return os.path.dirname(path) or "/"

    def header_check(self, host: str) -> str:
        """'ok', 'other-class' (skipped by ld.so), 'not-elf' or 'unreadable'."""
        if host not in self._headers:
            self._headers[host] = _header_check(host)
        return self._headers[host]

    def _ld_so_cache(self) -> tuple[LdCache | None, str | None, tuple[str, ...]]:
        """The cache, why it is unusable, and ld.so.conf's directories (read only when
        there is no usable cache)."""
        if self._cache_read is None:
            cache, problem = self._given_cache, None
            if cache is None:
                try:
                    cache = LdCache.load(self.sysroot.host("/etc/ld.so.cache"))
                except LdCacheError as exc:
                    problem = str(exc)
            conf = () if cache is not None else tuple(conf_directories(self.sysroot))
            self._cache_read = (cache, problem, conf)
        return self._cache_read

    @property
    def cache(self) -> LdCache | None:
        return self._ld_so_cache()[0]

    @property
    def cache_problem(self) -> str | None:
        return self._ld_so_cache()[1]

    @property
    def conf_dirs(self) -> tuple[str, ...]:
        return self._ld_so_cache()[2]


def _header_check(host: str) -> str:
    try:
        fd = os.open(host, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return "unreadable"
    try:
        if not _is_regular(fd):
            return "unreadable"
        head = os.pread(fd, 20, 0)
    except OSError:
        return "unreadable"
    finally:
        os.close(fd)
    if len(head) < 20 or head[:4] != ELF_MAGIC:
        return "not-elf"
    machine = int.from_bytes(head[18:20], "little" if head[5] == E.ELFDATA2LSB else "big")
    if head[4] != E.ELFCLASS64 or machine != E.EM_X86_64:
        return "other-class"
    return "ok"


def _is_regular(fd: int) -> bool:
    import stat

    return stat.S_ISREG(os.fstat(fd).st_mode)


@dataclass
class _Found:
    """A library located by the search: its guest path and how it was found."""

    guest: str  # canonical guest path
    search_path: str  # guest path as searched
    via: str


class _ClosureBuilder:
    """One breadth-first walk, ld.so's _dl_map_object_deps."""

    def __init__(self, resolver: Resolver, exe: LoadedObject, preload: Sequence[str] = ()
                 ) -> None:
        self.r = resolver
        self.exe = exe
        self.preload = tuple(preload)
        self.objects: list[LoadedObject] = []
        self.missing: list[MissingObject] = []
        self.by_name: dict[str, LoadedObject] = {}
        self.by_id: dict[object, LoadedObject] = {}
        self.parent: dict[str, LoadedObject | None] = {exe.path: None}
        self.interp: LoadedObject | None = None
        self.interp_placed = False

    def build(self) -> Closure:
        info = self.exe.info
        assert info is not None
        self.by_id[info.file_id] = self.exe
        self._load_interpreter(info)
        queue = deque([self.exe])
        for name in self.preload:
            child = self._map(name, self.exe)
            if child is not None:
                queue.append(child)
        while queue:
            obj = queue.popleft()
            if obj.is_interpreter or obj.info is None:
                continue
            for name in obj.info.needed:
                child = self._map(name, obj)
                if child is not None:
                    queue.append(child)
        needed = self.interp_placed
        if self.interp is not None and not needed:
            self.objects.append(self.interp)
        return Closure(self.exe, info.interp, self.objects, self.missing, needed)

    def _load_interpreter(self, info: ObjectInfo) -> None:
        if info.interp is None:
            return
        guest = self.r.sysroot.resolve(info.interp)
        host = self.r.sysroot.host(guest) if guest else None
        if guest is None or host is None or self.r.header_check(host) != "ok":
            self.missing.append(MissingObject(info.interp, self.exe.guest_path,
                                              "interpreter (PT_INTERP) not found"))
            return
        interp_info = self.r.info(host)
        if isinstance(interp_info, _Pending):
            return
        if isinstance(interp_info, Failure):
            self.missing.append(MissingObject(info.interp, self.exe.guest_path,
                                              f"interpreter unusable: {interp_info.problem}"))
            return
        self.interp = LoadedObject(
            name=info.interp, path=self.r.realpath(host), guest_path=guest, found_via=DIRECT,
            needed_by=self.exe.guest_path, props=interp_info.props, is_interpreter=True,
            search_path=info.interp, info=interp_info)
        for alias in (info.interp, interp_info.soname):
            if alias:
                self.by_name[alias] = self.interp
        self.by_id[interp_info.file_id] = self.interp

    def _map(self, name: str, loader: LoadedObject) -> LoadedObject | None:
        """Map one DT_NEEDED entry; returns the object when it is new."""
        known = self.by_name.get(name)
        if known is not None:
            self._adopt(known)
            return None
        found = self._search(name, loader)
        if isinstance(found, MissingObject):
            if not any(m.name == name for m in self.missing):
                self.missing.append(found)
            return None
        host = self.r.sysroot.host(found.guest)
        info = self.r.info(host)
        if isinstance(info, _Pending):
            return None
        if isinstance(info, Failure):
            self.missing.append(MissingObject(name, loader.guest_path,
                                              f"{found.guest}: {info.problem}"))
            return None
        same_file = self.by_id.get(info.file_id)
        if same_file is not None:
            self.by_name[name] = same_file
            self._adopt(same_file)
            return None
        obj = LoadedObject(name=name, path=self.r.realpath(host), guest_path=found.guest,
                           found_via=found.via, needed_by=loader.guest_path, props=info.props,
                           search_path=found.search_path, info=info)
        self.parent[obj.path] = loader
        self.objects.append(obj)
        self.by_id[info.file_id] = obj
        for alias in (name, info.soname):
            if alias:
                self.by_name.setdefault(alias, obj)
        return obj

    def _adopt(self, obj: LoadedObject) -> None:
        # The interpreter joins the load order where a DT_NEEDED first names it.
        if obj.is_interpreter and not self.interp_placed:
            self.objects.append(obj)
            self.interp_placed = True

    # -- the search order of _dl_map_object --------------------------------------------

    def _search(self, name: str, loader: LoadedObject) -> _Found | MissingObject:
        origin = self.r.origin_of(loader)
        expanded = expand_dst(name, origin, self.r.lib, self.r.platform)
        if expanded is None or not expanded:
            return MissingObject(name, loader.guest_path, "cannot expand dynamic string token")
        if "/" in expanded:
            return self._direct(expanded, name, loader)
        dyn = loader.info.dynamic if loader.info else None
        nodeflib = bool(dyn and dyn.nodeflib)
        attempts: list[tuple[str, Iterable[str]]] = []
        if dyn is None or dyn.runpath is None:
            attempts.append((RPATH, self._rpath_chain(loader)))
        # LD_LIBRARY_PATH's $ORIGIN is the executable's (ld.so expands it for the main map).
        attempts.append((LD_LIBRARY_PATH, self._split(":".join(self.r.ld_library_path),
                                                      ":;", self.exe)))
        if dyn is not None and dyn.runpath is not None:
            attempts.append((RUNPATH, self._split(dyn.runpath, ":", loader)))
        for via, dirs in attempts:
            found = self._first_in(dirs, expanded, via)
            if found is not None:
                return found if isinstance(found, _Found) else found.with_needer(name, loader)
        found = self._from_cache(expanded, nodeflib)
        if found is None and not nodeflib:
            found = self._first_in(self.r.default_dirs, expanded, DEFAULT)
        if isinstance(found, _Found):
            return found
        if isinstance(found, _Fatal):
            return found.with_needer(name, loader)
        return MissingObject(name, loader.guest_path)

    def _direct(self, path: str, name: str, loader: LoadedObject) -> _Found | MissingObject:
        guest = path if path.startswith("/") else os.path.join("/", path)
        result = self._candidate(guest, DIRECT)
        if isinstance(result, _Found):
            return result
        if isinstance(result, _Fatal):
            return result.with_needer(name, loader)
        return MissingObject(name, loader.guest_path)

    def _rpath_chain(self, loader: LoadedObject) -> Iterable[str]:
        obj: LoadedObject | None = loader
        while obj is not None:
            dyn = obj.info.dynamic if obj.info else None
            if dyn is not None and dyn.search_rpath:
                yield from self._split(dyn.search_rpath, ":", obj)
            obj = self.parent.get(obj.path)

    def _split(self, text: str, separators: str, owner: LoadedObject) -> Iterable[str]:
        if not text:
            return
        for sep in separators[1:]:
            text = text.replace(sep, separators[0])
        origin = self.r.origin_of(owner)
        for element in text.split(separators[0]):
            if element == "":
                yield "."  # an empty element is the current directory
                continue
            expanded = expand_dst(element, origin, self.r.lib, self.r.platform)
            if expanded:
                yield expanded

    def _from_cache(self, name: str, nodeflib: bool) -> _Found | _Fatal | None:
        if self.r.cache is not None:
            path = self.r.cache.lookup(name)
            if path is None or (nodeflib and os.path.dirname(path) in self.r.default_dirs):
                return None
            result = self._candidate(path, LD_SO_CACHE)
            return result if isinstance(result, _Found | _Fatal) else None
        return self._first_in(self.r.conf_dirs, name, LD_SO_CONF)

    def _first_in(self, dirs: Iterable[str], name: str, via: str) -> _Found | _Fatal | None:
        for directory in dirs:
            if directory != "." and not directory.startswith("/"):
                directory = "/" + directory
            if directory == ".":
                guest = os.path.abspath(name)
            else:
                listing = self.r.sysroot.listdir(directory)
                if listing is None or name not in listing:
                    continue
                guest = directory.rstrip("/") + "/" + name
            result = self._candidate(guest, via)
            if result is not None:
                return result
        return None

    def _candidate(self, guest: str, via: str) -> _Found | _Fatal | None:
        real = self.r.sysroot.resolve(guest)
        if real is None:
            return None
        verdict = self.r.header_check(self.r.sysroot.host(real))
        if verdict == "ok":
            return _Found(real, guest, via)
        if verdict == "not-elf":
            return _Fatal(f"{guest}: invalid ELF header (ld.so stops here)")
        return None  # other class/machine, or unreadable: ld.so keeps searching


@dataclass
class _Fatal:
    """A search that ld.so would end with an error (not merely skip the candidate)."""

    reason: str

    def with_needer(self, name: str, loader: LoadedObject) -> MissingObject:
        return MissingObject(name, loader.guest_path, self.reason)
