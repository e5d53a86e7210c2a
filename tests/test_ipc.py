"""inotify, System V and POSIX IPC, pidfds and the rest of issue 17 part 4: guest programs
compared with native runs."""

from __future__ import annotations

import tempfile
from pathlib import Path

from shstkrun import native, run_guest

GUEST = Path(__file__).parent / "guest" / "ipc"
PY = "/usr/bin/python3"


def _compare(script: str, *, rw: bool = False) -> None:
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        want = native(PY, str(GUEST / script), a)
        got = run_guest(PY, str(GUEST / script), b, options=("--rw", b) if rw else (),
                        timeout=120)
    assert got.returncode == want.returncode == 0, got.stderr.decode()
    assert got.stdout.decode() == want.stdout.decode()
    assert b"not emulated" not in got.stderr, got.stderr.decode()


def test_inotify_matches_native() -> None:
    _compare("inotify.py", rw=True)


def test_sysv_ipc_matches_native() -> None:
    _compare("sysv.py")


def test_posix_mqueue_matches_native() -> None:
    _compare("mqueue.py")


def test_pidfd_matches_native() -> None:
    _compare("pidfd.py")


def test_xattrs_answer_as_a_file_system_without_them() -> None:
    code = ("import errno, os, sys\nd = sys.argv[1]\nf = os.path.join(d, 'f')\n"
            "open(f, 'w').close()\n"
            "def e(fn, *a):\n"
            "    try:\n        return fn(*a)\n"
            "    except OSError as x:\n        return errno.errorcode[x.errno]\n"
            "print(e(os.getxattr, f, 'user.x'), e(os.getxattr, d + '/nope', 'user.x'),\n"
            "      e(os.listxattr, f), e(os.setxattr, f, 'user.x', b'v'),\n"
            "      e(os.removexattr, f, 'user.x'),\n"
            "      e(os.setxattr, '/etc/hostname', 'user.x', b'v'),\n"
            "      e(os.getxattr, f, ''))\n")
    with tempfile.TemporaryDirectory() as d:
        got = run_guest(PY, "-c", code, d, options=("--rw", d), timeout=120)
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout == b"ENODATA ENOENT [] ENOTSUP ENODATA EROFS ERANGE\n"


def test_memfd_seals_match_native() -> None:
    _compare("seals.py")


def test_close_range_unshare_and_cloexec(build) -> None:
    prog = build("ipc/close_range.c")
    want = native(prog)
    got = run_guest(prog, timeout=60)
    assert got.returncode == want.returncode == 0, got.stderr.decode()
    assert got.stdout == want.stdout


def test_openat2_resolve_flags_match_native() -> None:
    _compare("openat2.py", rw=True)


def test_splice_tee_vmsplice_match_native() -> None:
    _compare("splice.py")


def test_absent_features_match_native() -> None:
    _compare("absent.py")


def test_pkeys_answer_as_a_cpu_without_pku() -> None:
    got = run_guest(PY, str(GUEST / "absent.py"), "pkeys", timeout=120)
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout.decode().splitlines()[:2] == [
        "pkey_alloc EINVAL pkey_free EINVAL", "pkey_mprotect -1 0 key 1 EINVAL"]


def test_older_calls_match_native() -> None:
    _compare("compat.py", rw=True)
