"""The file system the guest sees: the host's, read-only, under a sysroot; /proc is ours.

Paths are resolved one component at a time, as namei does, so absolute symlinks inside a
foreign sysroot stay inside it and anything that leads into /proc reaches the synthetic
procfs. /dev/null, zero, full, random, urandom and the /dev/fd, stdin, stdout, stderr
links are kernel objects (devices.py) whatever the sysroot's /dev holds; /dev/shm is a
private, per-run directory.

Mounts: the sysroot is a read-only mount; every `--rw` directory (and /dev/shm) is a
writable mount on it. A mutation asks the mount of what it touches -- the entry's
directory for names (create, unlink, rename, link), the object for its metadata -- and
gets EROFS on the read-only one, EXDEV across two, EBUSY for a mount point itself, as
Linux does. The mount of an entry is found from its directory's real host path, never
by following the entry itself (a symlink outside --rw that points inside stays outside).
"""

from __future__ import annotations

import os
import stat as st
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from shstk.abi import errno as E
from shstk.emu.kernel.devices import DEV_LINKS, DEVICES, Device
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.fifo import FifoTable
from shstk.emu.kernel.flock import FlockTable

MAXSYMLINKS = 40
# The read-only mount (the sysroot) and the emulated ones, as mount ids; a writable
# mount's id is its host directory.
RO_ROOT = ""
PROC_MOUNT = "proc"
SHM_GUEST = "/dev/shm"
SHM_SIZE = 64 << 20  # the emulated /dev/shm's size cap (ENOSPC beyond)


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
    obj: object = None  # for /proc/PID/fd/N: the open file the link stands for


@dataclass
class Node:
    """Where a guest path leads."""

    guest: str  # normalized absolute guest path
    host: str | None  # host path (None for /proc nodes)
    proc: ProcEntry | None = None
    exists: bool = True
    lstat: os.stat_result | None = None
    device: Device | None = None  # an emulated character device (devices.py)


def _components(path: str) -> list[str]:
    """The names of a path to walk: empty names (`//`, a trailing `/`) and `.` name no
    step of the walk, so they are left out (`..` is one)."""
    return [c for c in path.split("/") if c and c != "."]


def _object_host_fd(obj: object) -> int:
    """The host descriptor of an open host file or directory (-1: another object)."""
    fd = getattr(obj, "fd", -1)
    host_path = getattr(obj, "host_path", None)
    if isinstance(fd, int) and fd >= 0 and host_path is not None and \
            getattr(obj, "kind", "") == "host":
        return fd
    return -1


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
        self._shm: str | None = None
        self.fifos = FifoTable()
        self.flocks = FlockTable()

    @property
    def shm_dir(self) -> str:
        """The host directory behind the guest's /dev/shm: private to this run, made on
        first use in the host's memory file system when there is one, removed at exit."""
        if self._shm is None:
            import shutil  # here: with tempfile, 3 ms of every start-up otherwise
            import tempfile

            base = "/dev/shm" if os.access("/dev/shm", os.W_OK | os.X_OK) else None
            private = os.path.realpath(tempfile.mkdtemp(prefix="shstk-shm-", dir=base))
            weakref.finalize(self, shutil.rmtree, private, True)
            self._shm = os.path.join(private, "shm")
            os.mkdir(self._shm)
            os.chmod(self._shm, 0o1777)  # drwxrwxrwt, as a tmpfs on /dev/shm
        return self._shm

    def shm_used(self) -> int:
        """Bytes held by the files of /dev/shm (st_blocks, as tmpfs counts pages)."""
        used = 0
        for dirpath, _dirs, files in os.walk(self.shm_dir):
            for name in files:
                try:
                    used += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                except OSError:
                    pass
        return used

    def is_shm(self, mount: str) -> bool:
        return self._shm is not None and mount == self._shm

    def current_guest_path(self, host_fd: int) -> str | None:
        """Where an open object is now, as a guest path (None: not in the guest's tree):
        a descriptor follows its object through renames, never a path looked up again."""
        try:
            real = os.readlink(f"/proc/self/fd/{host_fd}")
        except OSError:
            return None
        if not real.startswith("/") or real.endswith(" (deleted)"):
            return None
        return self.guest_path_of_host(real)

    def host_path(self, guest: str) -> str:
        if guest == SHM_GUEST or guest.startswith(SHM_GUEST + "/"):
            return self.shm_dir + guest[len(SHM_GUEST):]
        if self.sysroot == "/":
            return guest
        return self.sysroot + guest if guest != "/" else self.sysroot

    def guest_path_of_host(self, host: str) -> str | None:
        """The guest path of a host path inside the sysroot, or None."""
        host = os.path.realpath(host)
        if self._shm is not None and (host == self._shm or host.startswith(self._shm + "/")):
            return SHM_GUEST + host[len(self._shm):]
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
        todo = _components(path)
        done: list[str] = [] if path.startswith("/") else [c for c in cwd.split("/") if c]
        links = 0
        trailing_slash = path.endswith("/") and path.strip("/") != ""
        while todo:
            comp = todo.pop(0)
            if comp == "..":
                if done:
                    done.pop()
                continue
            if len(comp) > 255:
                raise KernelError(E.ENAMETOOLONG)
            last = not todo
            cand = [*done, comp]
            if len(cand) == 2 and cand[0] == "dev":
                if cand[1] in DEVICES:
                    if not last:
                        raise KernelError(E.ENOTDIR)
                    return Node("/dev/" + comp, None, device=DEVICES[comp])
                if cand[1] in DEV_LINKS:
                    target = DEV_LINKS[comp]
                    if last and not follow and not trailing_slash:
                        return Node("/dev/" + comp, None, ProcEntry("link", target=target))
                    links += 1
                    if links > MAXSYMLINKS:
                        raise KernelError(E.ELOOP)
                    todo = _components(target) + todo
                    done = []
                    continue
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
                    if getattr(entry.obj, "inherited", False):
                        # shstk's own stdio: not in the guest's tree; re-opened as it is
                        if last:
                            return Node("/" + "/".join(cand), None, entry)
                        raise KernelError(E.ENOTDIR)
                    obj_fd = _object_host_fd(entry.obj)
                    if obj_fd >= 0:  # a magic link: the object the descriptor holds
                        now = self.current_guest_path(obj_fd)
                        if now is None:
                            raise KernelError(E.ENOENT)  # outside the guest's tree
                        todo = _components(now) + todo
                        done = []
                        continue
                    if not entry.target.startswith("/"):
                        if last:
                            return Node("/" + "/".join(cand), None, entry)
                        raise KernelError(E.ENOENT)
                    todo = _components(entry.target) + todo
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
                todo = _components(target) + todo
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

    # --- mounts -----------------------------------------------------------------------
    def _mount_roots(self) -> tuple[str, ...]:
        return (*self.rw_dirs, self._shm) if self._shm is not None else self.rw_dirs

    def _mount_of_dir(self, real: str) -> str:
        """The mount a real host directory (or file) lies on: the innermost writable
        mount holding it, else the read-only root."""
        best = RO_ROOT
        for d in self._mount_roots():
            if (real == d or real.startswith(d.rstrip("/") + "/")) and len(d) > len(best):
                best = d
        return best

    def entry_mount(self, node: Node) -> str:
        """The mount of the directory holding `node`'s name (for create, unlink, rename,
        link): found without following the name itself."""
        if node.proc is not None and node.host is None:
            return PROC_MOUNT
        if node.host is None:  # an emulated device: its entry lies in the root's /dev
            return RO_ROOT
        parent, _sep, _name = node.host.rstrip("/").rpartition("/")
        return self._mount_of_dir(os.path.realpath(parent or "/"))

    def object_mount(self, node: Node) -> str:
        """The mount of the object `node` names (for its mode, owner, times, size)."""
        if node.device is not None:
            return RO_ROOT
        if node.host is None:
            return PROC_MOUNT
        if not node.exists or (node.lstat is not None and st.S_ISLNK(node.lstat.st_mode)):
            return self.entry_mount(node)
        return self._mount_of_dir(os.path.realpath(node.host))

    @staticmethod
    def writable_mount(mount: str) -> bool:
        return mount not in (RO_ROOT, PROC_MOUNT)

    def is_mount_point(self, node: Node) -> bool:
        """An --rw directory (or /dev/shm) itself: removing or renaming it is EBUSY."""
        if node.host is None or not node.exists:
            return False
        real = os.path.realpath(node.host)
        return real in self._mount_roots() or real == self.sysroot

    def may_write(self, node: Node) -> bool:
        """May the object `node` names change (open for writing, mode, owner, times)?"""
        if node.host is None:
            return bool(node.proc and node.proc.writable)
        return self.writable_mount(self.object_mount(node))
