"""Programs on a terminal: what a user sees running `shstk run` from a shell.

The tests give shstk a pseudo-terminal as its stdio. isatty()/tcgetattr() (TCGETS copies
the kernel's 36-byte struct termios: a larger copy smashes glibc's stack buffer), the
terminal's own /dev/pts node (reachable: it is shstk's), and no other host device.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys


def _on_a_pty(*argv: str) -> tuple[int, str]:
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "shstk", "run", *argv],
                                stdin=slave, stdout=slave, stderr=slave, close_fds=True)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not chunk:
                break
            out += chunk
        return proc.wait(timeout=120), out.decode(errors="replace").replace("\r\n", "\n")
    finally:
        os.close(master)


def test_tty_names_the_terminal_and_isatty_holds():
    status, out = _on_a_pty("/bin/sh", "-c",
                            "tty; test -t 0 && echo stdin-is-a-tty; stty size >/dev/null "
                            "&& echo stty-ok; echo hello > $(tty) && echo wrote-own-tty")
    assert status == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("/dev/pts/"), out
    assert lines[1:] == ["stdin-is-a-tty", "stty-ok", "hello", "wrote-own-tty"], out
    assert "stack smashing" not in out


def test_other_host_devices_are_not_reachable():
    status, out = _on_a_pty("/bin/sh", "-c", "cat /dev/loop0 >/dev/null 2>&1; echo rc=$?; "
                            "head -c1 /dev/kmsg >/dev/null 2>&1; echo rc=$?")
    assert status == 0, out
    assert out.splitlines() == ["rc=1", "rc=1"], out
