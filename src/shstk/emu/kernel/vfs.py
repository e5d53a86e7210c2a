"""The file system the guest sees: the host's, read-only, under a sysroot; /proc is ours.

Paths are resolved one component at a time, as namei does, so absolute symlinks inside a
foreign sysroot stay inside it and anything that leads into /proc reaches the synthetic
procfs. Writes are allowed only below `--rw` directories (and on a few devices);
everywhere else the guest gets EROFS, as on a read-only mount.
"""

from __future__ import annotations

import os
import stat as st
from collections.abc import Callable
from dataclasses import dataclass

from shstk.abi import errno as E
from shstk.emu.kernel.errors import KernelError

MAXSYMLINKS = 40
# Devices a program may open for writing even though nothing else is writable.
WRITABLE_DEVICES = frozenset({"/dev/null", "/dev/zero", "/dev/full", "/dev/tty",
                              "/dev/random", "/dev/urandom"})


@dataclass
class ProcEntry:
    """A node of the synthetic /proc: a link, a directory, or a file made on open."""

    kind: str  # "link" | "dir" | "file"
    target: str = ""  # link target (guest path, or "pipe:[N]" style for fds)
    entries: Callable[[], list[tuple[int, int, str]]] | None = None
    content: Callable[[], bytes] | None = None
    ino: int = 0
    writable: bool = False
    opener: Callable[[int], object] | None = None  # for /proc/PID/mem: flags -> OpenFile


@dataclass
class Node:
    """Where a guest path leads."""

    guest: str  # normalized absolute guest path
    host: str | None  # host path (None for /proc nodes)
    proc: ProcEntry | None = None
    exists: bool = True
    lstat: os.stat_result | None = None


class Vfs:
    def __init__(self, sysroot: str = "/", rw_dirs: tuple[str, ...] = (),
                 proc_lookup: Callable[[list[str], object], ProcEntry | None] | None = None,
                 sys_lookup: Callable[[list[str], object], ProcEntry | None] | None = None
                 ) -> None:
        self.sysroot = os.path.realpath(sysroot)
        self.rw_dirs = tuple(os.path.realpath(d) for d in rw_dirs)
        self.proc_lookup = proc_lookup
        # the synthetic trees: /proc (procfs.py) and /sys (sysfs.py); no host node leaks
        self.synthetic = {"proc": proc_lookup, "sys": sys_lookup}

    def host_path(self, guest: str) -> str:
        if self.sysroot == "/":
            return guest
        return self.sysroot + guest if guest != "/" else self.sysroot

    def guest_path_of_host(self, host: str) -> str | None:
        """The guest path of a host path inside the sysroot, or None."""
        host = os.path.realpath(host)
        if self.sysroot == "/":
            return host
        if host == self.sysroot:
            return "/"
        if host.startswith(self.sysroot + "/"):
            return host[len(self.sysroot):]
        return None

    def resolve(self, cwd: str, path: str, *, follow: bool = True, task: object = None,
                must_exist: bool = True) -> Node:
        """namei: walk `path` (relative to `cwd`), following symlinks inside the sysroot."""
        if path == "":
            raise KernelError(E.ENOENT)
        if len(path) >= 4096:
            raise KernelError(E.ENAMETOOLONG)
        todo = path.split("/")
        done: list[str] = [] if path.startswith("/") else [c for c in cwd.split("/") if c]
        links = 0
        trailing_slash = path.endswith("/") and path.strip("/") != ""
        while todo:
            comp = todo.pop(0)
            if comp in ("", "."):
                continue
            if comp == "..":
                if done:
                    done.pop()
                continue
            if len(comp) > 255:
                raise KernelError(E.ENAMETOOLONG)
            last = not any(c not in ("", ".") for c in todo)
            cand = [*done, comp]
            lookup = self.synthetic.get(cand[0])
            if lookup is not None:
                entry = lookup(cand[1:], task)
                if entry is None:
                    if len(cand) == 1:
                        done = cand
                        continue
                    raise KernelError(E.ENOENT)
                if entry.kind == "link" and (not last or follow or trailing_slash):
                    links += 1
                    if links > MAXSYMLINKS:
                        raise KernelError(E.ELOOP)
                    if not entry.target.startswith("/"):
                        if last:
                            return Node("/" + "/".join(cand), None, entry)
                        raise KernelError(E.ENOENT)
                    todo = entry.target.split("/") + todo
                    done = []
                    continue
                if not last and entry.kind == "file":
                    raise KernelError(E.ENOTDIR)
                if entry.kind == "host":  # a passthrough into the host's /proc
                    done = cand
                    if last:
                        return self._host_node(done, follow=follow, must_exist=must_exist,
                                               host_override=entry.target)
                    continue
                done = cand
                if last:
                    return Node("/" + "/".join(done), None, entry)
                continue
            host = self.host_path("/" + "/".join(cand))
            try:
                lst = os.lstat(host)
            except FileNotFoundError:
                if last and not must_exist:
                    return Node("/" + "/".join(cand), host, exists=False)
                raise KernelError(E.ENOENT) from None
            except NotADirectoryError:
                raise KernelError(E.ENOTDIR) from None
            except PermissionError:
                raise KernelError(E.EACCES) from None
            except OSError as exc:
                raise KernelError(exc.errno or E.EIO) from None
            if st.S_ISLNK(lst.st_mode) and (not last or follow or trailing_slash):
                links += 1
                if links > MAXSYMLINKS:
                    raise KernelError(E.ELOOP)
                target = os.readlink(host)
                if target.startswith("/"):
                    done = []
                todo = target.split("/") + todo
                continue
            if not last and not st.S_ISDIR(lst.st_mode):
                raise KernelError(E.ENOTDIR)
            done = cand
            if last:
                if trailing_slash and not st.S_ISDIR(lst.st_mode):
                    raise KernelError(E.ENOTDIR)
                return Node("/" + "/".join(done), host, lstat=lst)
        guest = "/" + "/".join(done)
        lookup = self.synthetic.get(done[0]) if done else None
        if lookup is not None:
            entry = lookup(done[1:], task)
            if entry is not None and entry.kind != "host":
                return Node(guest, None, entry)
        host = self.host_path(guest)
        try:
            lst = os.lstat(host)
        except OSError:
            raise KernelError(E.ENOENT) from None
        return Node(guest, host, lstat=lst)

    def _host_node(self, done: list[str], *, follow: bool, must_exist: bool,
                   host_override: str) -> Node:
        guest = "/" + "/".join(done)
        try:
            lst = os.lstat(host_override)
        except OSError:
            if must_exist:
                raise KernelError(E.ENOENT) from None
            return Node(guest, host_override, exists=False)
        return Node(guest, host_override, lstat=lst)

    def may_write(self, node: Node) -> bool:
        """Writes (open for writing, create, unlink, ...) are allowed only in --rw dirs."""
        if node.guest in WRITABLE_DEVICES or node.guest.startswith("/dev/pts/"):
            return True
        if node.host is None:
            return bool(node.proc and node.proc.writable)
        real = os.path.realpath(node.host)
        return any(real == d or real.startswith(d + "/") for d in self.rw_dirs)
