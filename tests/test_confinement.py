"""Confinement (issue 13): a guest changes nothing outside its --rw folders, by any path.

One static guest (tests/guest/confine/attack.c) makes every path-taking system call
against every kind of path -- outside, inside, symlink inside->outside and outside->inside,
`..`, /proc/self/root, a device, the --rw root, a hard link -- in a scratch sysroot full
of canaries. Afterwards every byte, mode, owner and timestamp (but atime) outside --rw is
unchanged, and each call got the errno Linux gives with a read-only root and --rw bind
mounts. A path system call in the table without a row here fails the test.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from guestbuild import compile_guest

from shstk.emu.syscalls.table import ENTRIES

OK = 0
ROFS, XDEV, BUSY = errno.EROFS, errno.EXDEV, errno.EBUSY

# (call, label) -> the errno Linux gives (0: success); None: only "nothing changed".
EXPECTED: dict[tuple[str, str], int | None] = {
    ("open", "out-wr"): ROFS, ("open", "out-trunc"): ROFS, ("open", "out-creat"): ROFS,
    ("open", "lo-wr"): ROFS, ("open", "dotdot-wr"): ROFS, ("open", "procroot-wr"): ROFS,
    ("open", "dev-wr"): OK, ("open", "devdir-creat"): ROFS, ("open", "li-wr"): OK,
    ("open", "stdin-reopen-wr"): None,
    ("creat", "out"): ROFS, ("creat", "lo"): ROFS,
    ("openat", "rwfd-dotdot-wr"): ROFS, ("openat", "rwfd-dotdot-creat"): ROFS,
    ("truncate", "out"): ROFS, ("truncate", "lo"): ROFS, ("truncate", "dev"): errno.EINVAL,
    ("ftruncate", "stdin"): errno.EINVAL,
    ("chmod", "out"): ROFS, ("chmod", "lo"): ROFS, ("chmod", "dev"): ROFS,
    ("chmod", "outdir"): ROFS, ("fchmodat", "rwfd-dotdot"): ROFS,
    ("fchmodat2", "lo-nofollow"): errno.EOPNOTSUPP, ("fchmodat2", "dotdot"): ROFS,
    ("fchmod", "stdin"): ROFS,
    ("chown", "out"): ROFS, ("chown", "lo"): ROFS, ("chown", "dev"): ROFS,
    ("lchown", "li"): ROFS, ("fchownat", "rwfd-dotdot"): ROFS,
    ("fchownat", "li-nofollow"): ROFS, ("fchown", "stdin"): ROFS,
    ("utimes", "out"): ROFS, ("utimes", "lo"): ROFS, ("utimes", "dev"): ROFS,
    ("utimensat", "li-nofollow"): ROFS, ("utimensat", "rwfd-dotdot"): ROFS,
    ("utimensat", "stdin-fd"): ROFS,
    ("unlink", "out"): ROFS, ("unlink", "li"): ROFS, ("unlink", "dev"): ROFS,
    ("unlinkat", "rwfd-dotdot"): ROFS,
    # the parent of an --rw root is read-only: mnt_want_write() fails before the busy check
    ("unlinkat", "rwroot-rmdir"): ROFS, ("rmdir", "rwroot"): ROFS,
    ("rmdir", "nested-rwroot"): BUSY, ("rmdir", "outdir"): ROFS,
    ("rmdir", "dot"): errno.EINVAL, ("rmdir", "dotdot"): errno.ENOTEMPTY,
    ("rename", "out-out"): ROFS, ("rename", "out-rw"): XDEV, ("rename", "rw-out"): XDEV,
    ("rename", "li-rw"): XDEV, ("rename", "rwroot"): ROFS,
    ("rename", "nested-rwroot"): BUSY, ("rename", "over-rwroot"): BUSY,
    ("rename", "dev-rw"): XDEV, ("renameat", "rwfd-dotdot"): XDEV,
    ("renameat2", "rwfd-dotdot"): XDEV,
    ("link", "out-rw"): XDEV, ("link", "rw-out"): ROFS, ("link", "dev-rw"): XDEV,
    ("linkat", "lo-follow"): XDEV, ("linkat", "rwfd-dotdot"): XDEV,
    ("linkat", "procfd"): None,
    ("symlink", "out"): ROFS, ("symlink", "dev"): ROFS, ("symlinkat", "rwfd-dotdot"): ROFS,
    ("mkdir", "out"): ROFS, ("mkdir", "dev"): ROFS, ("mkdirat", "rwfd-dotdot"): ROFS,
    ("mknod", "out-fifo"): ROFS, ("mknod", "dev-chr"): ROFS,
    ("mknodat", "rwfd-dotdot"): ROFS, ("mknod", "rw-fifo"): OK,
    ("access", "out-w"): ROFS, ("access", "dev-w"): OK,
    ("faccessat", "rwfd-dotdot-w"): ROFS, ("faccessat2", "lo-w"): ROFS,
    ("stat", "out"): OK, ("lstat", "li"): OK, ("newfstatat", "rwfd-dotdot"): OK,
    ("statx", "out"): OK, ("statfs", "out"): OK, ("readlink", "li"): OK,
    ("readlinkat", "rwfd-lo"): OK, ("chdir", "out"): OK,
    ("execve", "out"): errno.EACCES, ("execveat", "out"): errno.EACCES,
    ("lchown", "lo"): OK, ("unlink", "lo"): OK,
    ("setxattr", "out"): ROFS, ("setxattr", "lo"): ROFS, ("lsetxattr", "lo"): errno.EPERM,
    ("getxattr", "out"): errno.ENODATA, ("getxattr", "missing"): errno.ENOENT,
    ("lgetxattr", "li"): errno.ENODATA, ("listxattr", "out"): OK, ("llistxattr", "lo"): OK,
    ("removexattr", "out"): ROFS, ("lremovexattr", "lo"): errno.EPERM,
    ("inotify_add_watch", "out"): OK, ("openat2", "out-wr"): ROFS,
    ("openat2", "rwfd-dotdot-wr"): ROFS, ("utime", "out"): ROFS,
    ("futimesat", "rwfd-dotdot"): ROFS, ("setxattrat", "rwfd-dotdot"): ROFS,
    ("getxattrat", "out"): errno.ENODATA, ("listxattrat", "out"): OK,
    ("removexattrat", "rwfd-dotdot"): ROFS, ("openat2", "rwfd-dotdot-beneath"): XDEV,
}


def _path_calls() -> set[str]:
    """Every implemented system call that takes a path (argument kind `path`)."""
    return {s.name for s in ENTRIES if "path" in s.args and s.handler is not None}


def snapshot(root: Path, skip: Path) -> dict[str, tuple[object, ...]]:
    """Everything but atime of every node under `root` outside `skip`."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d != skip]
        for name in [*dirnames, *filenames, "."]:
            p = here / name
            if p == skip:
                continue
            s = os.lstat(p)
            data: object = None
            if stat.S_ISREG(s.st_mode):
                data = p.read_bytes()
            elif stat.S_ISLNK(s.st_mode):
                data = os.readlink(p)
            out[str(p)] = (s.st_mode, s.st_uid, s.st_gid, s.st_size, s.st_mtime_ns,
                           s.st_ctime_ns, s.st_nlink, s.st_ino, data)
    return out


@pytest.fixture(scope="module")
def attack() -> Path:
    return compile_guest("confine/attack.c")


@pytest.fixture
def scratch(tmp_path: Path, attack: Path) -> Path:
    root = tmp_path / "root"
    for d in ("out/d", "rw/sub", "dev", "bin", "proc"):
        (root / d).mkdir(parents=True)
    (root / "out/c").write_bytes(b"canary\n")
    (root / "rw/f").write_bytes(b"inside\n")
    (root / "dev/null").write_bytes(b"the sysroot's dev/null is a canary\n")
    (root / "dev/tty").write_bytes(b"so is its dev/tty\n")
    os.symlink("/out/c", root / "rw/lo")
    os.symlink("/rw/f", root / "out/li")
    shutil.copy(attack, root / "bin/attack")
    return root


def test_every_path_call_has_rows():
    covered = {call for call, _label in EXPECTED}
    missing = _path_calls() - covered
    assert not missing, f"path system calls without confinement rows: {sorted(missing)}"


def test_nothing_outside_rw_changes(scratch: Path):
    root = scratch
    before = snapshot(root, root / "rw")
    host_null = os.stat("/dev/null")
    with open(root / "out/c", "rb") as stdin:
        res = subprocess.run([sys.executable, "-m", "shstk", "run", "--sysroot", str(root),
                              "--rw", str(root / "rw"), "--rw", str(root / "rw/sub"),
                              "/bin/attack"], stdin=stdin, capture_output=True, timeout=120)
    out = res.stdout.decode()
    assert res.returncode == 0, out + res.stderr.decode()
    after = snapshot(root, root / "rw")
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, f"changed outside --rw: {changed}\n{out}"
    now_null = os.stat("/dev/null")
    assert (now_null.st_mode, now_null.st_uid, now_null.st_ctime_ns) == \
        (host_null.st_mode, host_null.st_uid, host_null.st_ctime_ns)
    got: dict[tuple[str, str], int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] != "devnull":
            got[(parts[0], parts[1])] = int(parts[2])
    assert "devnull chr 1:3" in out  # the device, whatever the sysroot's dev/null is
    wrong = {key: (got.get(key), want) for key, want in EXPECTED.items()
             if want is not None and got.get(key) != want}
    assert not wrong, f"(got, Linux) errno: {wrong}"
    assert stat.S_ISFIFO(os.lstat(root / "rw/p").st_mode)
