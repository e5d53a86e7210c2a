"""System calls with hostile arguments (uid_t values other than -1 that overflow an int,
negative loff_t, bad rlimit resources, flags Linux does not know, socket calls on files)
return what Linux returns: tests/guest/syscalls/hostile_args.c runs natively and under
`shstk run`, and the two print the same lines. Never an internal error (exit 125).

The host runs the native side as root: every change the program makes is to files in its
own temporary directory or to its own process's ids.
"""

from __future__ import annotations

import os

import pytest
from shstkrun import native, run_guest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="compares with a native run as root")


def test_hostile_arguments_like_linux(build, tmp_path) -> None:
    prog = build("syscalls/hostile_args.c")
    (tmp_path / "native").mkdir()
    (tmp_path / "emu").mkdir()
    want = native(prog, str(tmp_path / "native"))
    assert want.returncode == 0, want.stderr
    got = run_guest(prog, str(tmp_path / "emu"), options=["--rw", str(tmp_path / "emu")])
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout.decode().splitlines() == want.stdout.decode().splitlines()
    # only the calls left unemulated on a real socket may say so; none did here
    assert got.stderr == b""


def test_bash_start_is_quiet(tmp_path) -> None:
    """bash asks getpeername(0) at start: a file descriptor that is no socket, no note."""
    got = run_guest("/bin/bash", "-c", "echo hi", input=b"")
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout == b"hi\n"
    assert got.stderr == b""
