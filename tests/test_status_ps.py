"""`shstk status` and `shstk ps` commands: output, JSON, exit status, a fake /proc."""

from __future__ import annotations

import argparse
import errno
import json
import shutil
from pathlib import Path

import pytest

import shstk.host.processes as processes
from shstk.cli import main
from shstk.cli import ps as ps_cli

DATA = Path(__file__).parent / "data" / "proc"


def fake_proc(tmp_path: Path, threads: dict[tuple[int, int], str]) -> str:
    """/proc with the given recorded status files per (pid, tid)."""
    for (pid, tid), name in threads.items():
        task = tmp_path / str(pid) / "task" / str(tid)
        task.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / name, task / "status")
    (tmp_path / "self").mkdir(exist_ok=True)
    return str(tmp_path)


def ps(capsys, proc: str, *pids: str, json_out=False, shstk_only=False):
    args = argparse.Namespace(pids=list(pids), json=json_out, shstk_only=shstk_only)
    status = ps_cli.handle(args, proc=proc)
    out, err = capsys.readouterr()
    return status, out, err


def test_ps_table_on_a_cet_machine(tmp_path, capsys):
    proc = fake_proc(tmp_path, {(4242, 4242): "status_shstk_locked.txt",
                                (4242, 4250): "status_shstk_locked.txt",
                                (4243, 4243): "status_shstk_wrss.txt",
                                (4244, 4244): "status_features_empty.txt"})
    status, out, err = ps(capsys, proc)
    assert status == 0 and err == ""
    lines = [line.split() for line in out.splitlines()]
    assert ["4242", "4250", "cet-app", "shstk", "shstk", "wrss"] in lines
    assert ["4243", "4243", "criu-restore", "shstk", "wrss", "-"] in lines
    assert ["4244", "4244", "legacy-app", "-", "-"] in lines
    assert out.splitlines()[-1] == ("3 processes, 4 threads: 3 with a shadow stack,"
                                    " 2 with locked features")


def test_ps_json_and_shstk_only(tmp_path, capsys):
    proc = fake_proc(tmp_path, {(4243, 4243): "status_shstk_wrss.txt",
                                (4244, 4244): "status_features_empty.txt"})
    status, out, _ = ps(capsys, proc, json_out=True, shstk_only=True)
    doc = json.loads(out)
    assert status == 0 and doc["reported"] is True
    assert doc["threads"] == [{"pid": 4243, "tid": 4243, "comm": "criu-restore",
                               "features": ["shstk", "wrss"], "locked": []}]


def test_ps_says_plainly_when_the_kernel_reports_nothing(tmp_path, capsys):
    proc = fake_proc(tmp_path, {(1, 1): "status_no_features.txt"})
    status, out, _ = ps(capsys, proc)
    assert status == 0
    assert out.startswith("This kernel does not report x86_Thread_features")
    assert "(1 process, 1 thread read)" in out


def test_ps_reports_vanished_and_denied_processes(tmp_path, capsys, monkeypatch):
    proc = fake_proc(tmp_path, {(10, 10): "status_shstk_locked.txt",
                                (11, 11): "status_shstk_locked.txt"})
    real = processes.read_status

    def flaky(path: str) -> str:
        if "/11/" in path:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(path)

    monkeypatch.setattr(processes, "read_status", flaky)
    status, out, err = ps(capsys, proc, "10", "11", "12")
    assert status == 1  # named processes missing or unreadable
    assert err.splitlines() == ["shstk: process 11: permission denied",
                                "shstk: process 12: no such process"]
    assert "1 process, 1 thread: 1 with a shadow stack" in out


def test_process_exiting_during_the_scan_is_not_fatal(tmp_path, monkeypatch):
    proc = fake_proc(tmp_path, {(20, 20): "status_shstk_locked.txt"})

    def gone(path: str) -> str:
        raise FileNotFoundError(errno.ENOENT, "No such file")

    monkeypatch.setattr(processes, "read_status", gone)
    scan = processes.scan_processes(proc=proc)
    assert scan.rows == [] and [p.problem for p in scan.problems] == ["exited during the scan"]


def test_ps_on_this_machine(capsys):
    status = main(["ps", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert status == 0 and doc["processes"] >= 1
    mine = [t for t in doc["threads"] if t["pid"] == __import__("os").getpid()]
    assert mine, "the test process itself is listed"
    assert doc["reported"] == (mine[0]["features"] is not None)


def test_ps_rejects_a_bad_pid(capsys):
    assert main(["ps", "abc"]) == 2
    assert capsys.readouterr().err == "shstk: error: not a process ID: 'abc'\n"


def test_status_text_and_exit_status(capsys):
    status = main(["status"])
    out = capsys.readouterr().out
    assert status in (0, 1)
    assert "user_shstk in /proc/cpuinfo:" in out and "glibc built with CET:" in out
    if "[no] x86_Thread_features in /proc/self/status: absent" in out:
        assert status == 1


def test_status_json(capsys, monkeypatch):
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.cpu.x86_shstk=permissive")
    status = main(["status", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "shstk-status/1"
    assert status == (0 if doc["kernel_ready"] else 1)
    facts = {f["key"]: f for f in doc["facts"]}
    assert facts["tunables"]["value"] == "glibc.cpu.x86_shstk=permissive"
    assert "permissive" in facts["tunables"]["meaning"]
    assert set(facts) >= {"cpu", "user_shstk", "kernel", "nousershstk", "kconfig", "glibc",
                          "glibc_cet", "tunables"}


@pytest.mark.parametrize("command", ["status", "ps"])
def test_help_works(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
