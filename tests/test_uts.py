"""The machine's names (issue 16): `hostname`/`uname -n` give the host's name, as Linux in
the host's UTS namespace does, and the files Linux makes from utsname (/proc/version,
/proc/sys/kernel/{osrelease,version,ostype,hostname}) say what uname(2) says."""

from __future__ import annotations

import os

from shstkrun import run_guest

SCRIPT = ("uname -n; hostname; cat /proc/sys/kernel/hostname; uname -r; "
          "cat /proc/sys/kernel/osrelease; uname -v; cat /proc/sys/kernel/version; "
          "uname -s; cat /proc/sys/kernel/ostype; cat /proc/version")


def test_names_agree_with_uname() -> None:
    proc = run_guest("/bin/bash", "-c", SCRIPT, options=("--shstk", "off"), timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.decode().splitlines()
    host = os.uname().nodename
    assert out[:3] == [host] * 3
    assert out[3] == out[4] and out[5] == out[6] and out[7] == out[8] == "Linux"
    assert out[9].startswith(f"Linux version {out[3]} ") and out[9].endswith(out[5])
