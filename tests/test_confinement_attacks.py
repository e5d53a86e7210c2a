"""Confinement, second round (issue 13): the hostile guest tests/guest/confine/attacks.c.

The rows are the escapes the issue measured (a host file hard-linked into --rw and written
through the link, the sysroot's dev/null, zero and tty unlinked, renamed, replaced,
chmod'ed, truncated or written, fchmod/fchown of a stdin outside --rw, symlinks outside
--rw pointing into it, the --rw root removed or renamed) and others like them (linkat with
AT_EMPTY_PATH or through /proc/self/fd, O_TMPFILE, renameat2 flags, mknod, AF_UNIX bind,
truncate through /proc/self/fd, a directory fd whose directory was renamed, fchdir,
symlink loops and ELOOP at 40, ENAMETOOLONG, `..` above the root, /proc/self/{cwd,root},
shared writable mappings, copy_file_range/sendfile into a read-only descriptor, FIFOs,
/dev/shm's cap). Every byte, mode, owner and timestamp outside --rw stays the same and
each row gets the errno Linux gives on a read-only bind mount.

`.venv/bin/python tests/test_confinement_attacks.py OTHER_PYTHON` runs every row in its own
guest against a fresh scratch sysroot and prints which rows changed something outside
--rw (used to measure an older shstk; it never touches the host's /dev).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from guestbuild import compile_guest
from test_confinement import snapshot


def make_root(root: Path, attacks: Path) -> None:
    """A scratch sysroot full of canaries: /out outside --rw, /rw and /rw/sub inside."""
    for d in ("out/d", "rw/sub", "rw/emptydir", "dev", "bin", "proc"):
        (root / d).mkdir(parents=True)
    (root / "out/c").write_bytes(b"canary\n")
    (root / "rw/f").write_bytes(b"inside\n")
    for dev in ("null", "zero", "tty"):
        (root / "dev" / dev).write_bytes(b"the sysroot's dev/%s is a canary\n" % dev.encode())
    os.mkfifo(root / "out/fifo")
    os.symlink("/out/c", root / "rw/lo")
    os.symlink("/rw/f", root / "out/li")
    os.symlink("/rw", root / "out/lrw")
    os.symlink("/dev/null", root / "rw/ldn")
    os.symlink("/out/newfile", root / "rw/dangle")
    os.symlink("../../out/c", root / "rw/sub/up")
    shutil.copy(attacks, root / "bin/attacks")


def run_attacks(python: str, root: Path, only: str | None = None, cwd: Path | None = None
                ) -> subprocess.CompletedProcess[bytes]:
    with open(root / "out/c", "rb") as stdin:
        return subprocess.run(
            [python, "-m", "shstk", "run", "--sysroot", str(root), "--rw", str(root / "rw"),
             "--rw", str(root / "rw/sub"), "/bin/attacks", *([only] if only else [])],
            stdin=stdin, capture_output=True, timeout=120, cwd=cwd)


def rows(out: str) -> dict[str, tuple[int, int]]:
    got = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].lstrip("-").isdigit():
            got[parts[0]] = (int(parts[1]), int(parts[2]))
    return got


def changed(before: dict[str, tuple[object, ...]], after: dict[str, tuple[object, ...]]
            ) -> list[str]:
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


@pytest.fixture(scope="module")
def attacks() -> Path:
    return compile_guest("confine/attacks.c")


@pytest.mark.parametrize("start_in_rw", [False, True], ids=["cwd-outside", "cwd-in-rw"])
def test_attacks_change_nothing_outside_rw(tmp_path: Path, attacks: Path,
                                           start_in_rw: bool) -> None:
    """Every row at once; shstk started outside --rw, then inside an --rw folder (a
    stdin outside --rw must stay out of reach either way)."""
    root = tmp_path / "root"
    make_root(root, attacks)
    before = snapshot(root, root / "rw")
    host_null = os.stat("/dev/null")
    res = run_attacks(sys.executable, root, cwd=root / "rw" if start_in_rw else None)
    out = res.stdout.decode()
    assert res.returncode == 0, out + res.stderr.decode()
    diff = changed(before, snapshot(root, root / "rw"))
    assert not diff, f"changed outside --rw: {diff}\n{out}"
    now_null = os.stat("/dev/null")
    assert (now_null.st_mode, now_null.st_uid, now_null.st_gid, now_null.st_rdev) == \
        (host_null.st_mode, host_null.st_uid, host_null.st_gid, host_null.st_rdev)
    got = rows(out)
    assert len(got) > 150, out
    wrong = {label: g for label, g in got.items() if g[0] != g[1]}
    assert not wrong, f"label: (got, Linux) errno: {wrong}"
    assert "failures 0" in out


def test_host_devnull_as_stdin_default_sysroot(tmp_path: Path) -> None:
    """With the default sysroot and the host's /dev/null as stdin, neither fchmod/fchown
    of descriptor 0 nor chmod of /dev/null reaches the host's device node."""
    rw = tmp_path / "rw"
    rw.mkdir()
    before = os.stat("/dev/null")
    script = ("chmod 777 /dev/null; echo $?; chown 1:1 /dev/null; echo $?; "
              "touch -d @1 /dev/null; echo $?; rm -f /dev/null; echo $?; "
              "chmod 777 /dev/stdin; echo $?; echo x > /dev/null; echo $?")
    with open("/dev/null", "rb") as stdin:
        res = subprocess.run([sys.executable, "-m", "shstk", "run", "--rw", str(rw),
                              "/bin/sh", "-c", script], stdin=stdin, capture_output=True,
                             timeout=60, cwd=rw)
    after = os.stat("/dev/null")
    state = (after.st_mode, after.st_uid, after.st_gid, after.st_rdev, after.st_ctime_ns)
    if state[:4] != (before.st_mode, before.st_uid, before.st_gid, before.st_rdev):
        os.chmod("/dev/null", 0o666)  # put the host back before failing
        os.chown("/dev/null", 0, 0)
    assert state == (before.st_mode, before.st_uid, before.st_gid, before.st_rdev,
                     before.st_ctime_ns), res.stderr.decode()
    codes = res.stdout.decode().split()
    assert codes[:5] == ["1"] * 5 and codes[5] == "0", res.stdout.decode() + \
        res.stderr.decode()


def main() -> None:
    """Measure a (possibly older) shstk: each row alone on a fresh scratch sysroot."""
    python = sys.argv[1]
    attacks = compile_guest("confine/attacks.c")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        make_root(root, attacks)
        # the rows, as this checkout's shstk lists them (an old one may stop early)
        labels = list(rows(run_attacks(sys.executable, root).stdout.decode()))
    escaped, wrong = [], []
    for label in labels:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "root"
            make_root(root, attacks)
            before = snapshot(root, root / "rw")
            res = run_attacks(python, root, only=label)
            diff = changed(before, snapshot(root, root / "rw"))
            got = rows(res.stdout.decode()).get(label)
            if diff:
                escaped.append(label)
                print(f"ESCAPED {label}: {[p[len(str(root)):] for p in diff]}")
            if got is None or got[0] != got[1]:
                wrong.append(label)
                print(f"errno {label}: (got, Linux) {got}")
    print(f"rows {len(labels)} escaped {len(escaped)} wrong-errno {len(wrong)}")


if __name__ == "__main__":
    main()
