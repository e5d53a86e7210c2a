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
