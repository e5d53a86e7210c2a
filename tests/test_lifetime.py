"""Process lifetime and reports as under `strace -f`: `shstk run` returns when the last
guest process has exited, with the first process's status, and every process that a
shadow-stack violation kills gets its own report."""

from __future__ import annotations

import json

import pytest
from shstkrun import native, run_guest

MARK = ("-fcf-protection=full", "-Wl,-z,shstk", "-Wl,-z,ibt")


@pytest.fixture(scope="module")
def family(build):
    return build("lifetime/family.c", flags=("-static", "-O2", *MARK), name="family")


def test_orphan_outlives_its_parent(family):
    """The run waits for the orphan; the status is still the first process's."""
    nat = native(family, "orphan")
    proc = run_guest(family, "orphan", options=["--shstk", "off"])
    assert nat.returncode == 5
    # natively the orphan is re-parented to init (or a subreaper): its line is the same
    # up to that word, and it is there because the pipe stays open until it exits
    assert nat.stdout.decode().splitlines()[0] == "parent exits"
    assert proc.stdout.decode().splitlines() == ["parent exits",
                                                 "orphan done, parent now init"]
    assert proc.returncode == 5, proc.stderr.decode()


def test_every_violating_child_gets_a_report(family):
    proc = run_guest(family, "smash-child", "2", options=["--shstk", "on"])
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    assert proc.stdout.decode().splitlines() == ["child 0: signal 11", "child 1: signal 11"]
    heads = [line for line in err.splitlines() if line.startswith("shstk: shadow-stack")]
    assert len(heads) == 2, err
    for i, head in enumerate(heads):
        assert f"[pid {1001 + i}, parent 1000]" in head, head
        assert str(family) in head and "(#CP near ret)" in head, head


def test_reports_as_json_lines(family, tmp_path):
    out = tmp_path / "reports.jsonl"
    proc = run_guest(family, "smash-child", "3",
                     options=["--shstk", "on", "--report", "json", "--report-file", str(out)])
    assert proc.returncode == 3
    assert b"shadow-stack" not in proc.stderr
    reports = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["pid"] for r in reports] == [1001, 1002, 1003]
    for r in reports:
        assert r["ppid"] == 1000 and r["first_process"] is False
        assert r["exe"] == str(family)
        assert r["si_code"] == "SEGV_CPERR" and r["violation"]["kind"] == "near ret"
