"""`shstk audit` end to end: exit status, named blockers, JSON, one-line errors, scans
of trees with junk in them, and this machine's /usr/bin."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from guestbuild import GUEST_DIR as GUEST
from test_elf_guests import (
    fake_ld_so,
    install,
    marked_greet,
    plain_greet,
    program,
    static_program,
)
from test_elf_synth import build_elf, marked_layout

import shstk.audit.scan as scan_module
from shstk.audit.scan import scan
from shstk.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["audit", *args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def apps(tmp_path) -> Path:
    """ready/greet with a marked libgreet, blocked/greet with an unmarked one."""
    exe = program("greet.c", [marked_greet()], extra=("-Wl,-rpath,$ORIGIN",))
    install(exe, tmp_path / "ready" / "greet")
    install(marked_greet(), tmp_path / "ready" / "libgreet.so")
    install(exe, tmp_path / "blocked" / "greet")
    install(plain_greet(), tmp_path / "blocked" / "libgreet.so")
    return tmp_path


def test_ready_program_exits_0(apps, capsys):
    status, out, err = run(capsys, str(apps / "ready" / "greet"))
    assert status == 0 and err == ""
    assert "WOULD be enabled" in out
    assert "1 program: 1 ready, 0 blocked" in out


def test_blocked_program_exits_1_and_names_the_library_and_where_it_came_from(apps, capsys):
    status, out, _ = run(capsys, str(apps / "blocked" / "greet"))
    assert status == 1
    assert "would NOT be enabled: not marked SHSTK: libgreet.so" in out
    assert f"no SHSTK  libgreet.so => {apps}/blocked/libgreet.so  [runpath;" in out
    assert "with glibc.cpu.x86_shstk=on: enabled" in out
    assert "with glibc.cpu.x86_shstk=permissive: not enabled" in out


def test_directory_scan_with_junk(apps, capsys):
    tree = apps
    (tree / "notes.txt").write_text("not an ELF\n")
    (tree / "broken.so").write_bytes(build_elf(marked_layout())[:100])
    os.mkfifo(tree / "fifo")
    (tree / "loop").symlink_to(tree)  # a directory reached twice
    (tree / "alias").symlink_to(tree / "ready" / "greet")  # a file reached twice
    (tree / "dangling").symlink_to(tree / "nowhere")
    signal.alarm(30)  # a fifo opened for reading would hang the scan
    try:
        status, out, err = run(capsys, str(tree))
    finally:
        signal.alarm(0)
    assert status == 2  # an unreadable input
    assert err.splitlines() == [
        f"shstk: {tree}/broken.so: truncated: program header table at 0x40..0x120 is past"
        " the end of the file (100 bytes)"]
    assert "2 programs: 1 ready, 1 blocked" in out
    assert f"ready       {tree}/ready/greet" in out
    assert f"blocked     {tree}/blocked/greet: libraries not marked: libgreet.so" in out


def test_json_document(apps, capsys):
    status, out, err = run(capsys, "--json", str(apps))
    assert status == 1 and err == ""
    doc = json.loads(out)
    assert doc["schema"] == "shstk-audit/1"
    by_path = {p["path"]: p for p in doc["programs"]}
    blocked = by_path[f"{apps}/blocked/greet"]
    assert (blocked["status"], blocked["ready"], blocked["kind"]) == ("blocked", False,
                                                                      "dynamic")
    assert blocked["self"]["shstk"] is True
    assert [(b["name"], b["path"], b["found_via"]) for b in blocked["blockers"]] == [
        ("libgreet.so", f"{apps}/blocked/libgreet.so", "runpath")]
    assert blocked["controls"]["on"]["enabled"] is True
    ready = by_path[f"{apps}/ready/greet"]
    assert ready["status"] == "ready" and ready["blockers"] == []
    interp = [o for o in ready["objects"] if o["is_interpreter"]]
    assert interp[0]["name"] == "/lib64/ld-linux-x86-64.so.2"
    summary = doc["summary"]
    assert (summary["programs"], summary["ready"], summary["blocked"]) == (2, 1, 1)
    assert summary["top_blockers"] == [
        {"name": "libgreet.so", "guest_path": f"{apps}/blocked/libgreet.so", "programs": 1}]
    assert doc["errors"] == []


def test_missing_path_is_one_line_and_exit_2(capsys, tmp_path):
    status, _, err = run(capsys, str(tmp_path / "nope"))
    assert status == 2
    assert err == f"shstk: {tmp_path}/nope: no such file or directory\n"


def test_named_fifo_is_refused_without_blocking(capsys, tmp_path):
    os.mkfifo(tmp_path / "f")
    signal.alarm(10)
    try:
        status, _, err = run(capsys, str(tmp_path / "f"))
    finally:
        signal.alarm(0)
    assert status == 2 and err == f"shstk: {tmp_path}/f: not a regular file or directory\n"


def test_named_non_elf_file_is_an_error(capsys, tmp_path):
    (tmp_path / "script").write_text("#!/bin/sh\n")
    status, _, err = run(capsys, str(tmp_path / "script"))
    assert status == 2 and err == f"shstk: {tmp_path}/script: not an ELF file\n"


def test_hostile_file_name_stays_on_one_line(capsys, tmp_path):
    name = os.fsdecode(b"bad\nname\xff.so")
    (tmp_path / name).write_bytes(b"\x7fELF\x02\x01\x01")
    status, _, err = run(capsys, str(tmp_path))
    assert status == 2
    assert err == f"shstk: {tmp_path}/bad\\x0aname\\xff.so: truncated ELF header (7 bytes)\n"


def test_bad_sysroot_is_a_usage_error(capsys, tmp_path):
    status, _, err = run(capsys, "--sysroot", str(tmp_path / "none"), "/bin/ls")
    assert status == 2
    assert err == f"shstk: error: --sysroot {tmp_path}/none: not a directory\n"


def test_static_program_and_control_option(capsys):
    status, out, _ = run(capsys, "--control", "off", str(static_program()))
    assert status == 0 and "static executable marked SHSTK" in out


def test_quiet_prints_only_the_summary(apps, capsys):
    status, out, _ = run(capsys, "-q", str(apps))
    assert status == 1
    assert out.splitlines()[0].startswith("2 programs: 1 ready, 1 blocked")
    assert "greet:" not in out


def test_process_pool_gives_the_same_answers(apps, monkeypatch):
    for i in range(12):  # enough files for several chunks
        install(apps / "blocked" / "greet", apps / "more" / f"p{i}")
    install(plain_greet(), apps / "more" / "libgreet.so")
    serial = scan([str(apps)], jobs=1)
    pools = []

    class CountingPool(scan_module.ProcessPoolExecutor):
        def __init__(self, *args, **kw):
            super().__init__(*args, **kw)
            pools.append(self)

    monkeypatch.setattr(scan_module, "POOL_THRESHOLD", 1)
    monkeypatch.setattr(scan_module, "ProcessPoolExecutor", CountingPool)
    monkeypatch.setattr(scan_module, "_chunks",
                        lambda paths, jobs: [paths[i:i + 2] for i in range(0, len(paths), 2)])
    parallel = scan([str(apps)], jobs=2)
    assert len(pools) == 1  # the worker pool was really used
    key = [(p.path, p.verdict.status, [o.path for o in p.closure.objects])
           for p in serial.programs]
    assert key == [(p.path, p.verdict.status, [o.path for o in p.closure.objects])
                   for p in parallel.programs]
    assert len(serial.programs) == 14


@pytest.mark.skipif(not os.path.isdir("/usr/bin"), reason="no /usr/bin")
def test_this_machines_usr_bin(capsys):
    status, out, err = run(capsys, "-q", "/usr/bin")
    assert err == ""
    summary = out.splitlines()[0]
    assert summary.endswith("0 unreadable files")
    if " 0 ready" in summary:  # Debian and most distributions today: not CET-ready
        assert status == 1
    assert "Libraries that block the most programs" in out


@pytest.mark.skipif(shutil.which("objcopy") is None or shutil.which("gcc") is None,
                    reason="needs objcopy and gcc")
def test_debug_files_and_object_files_are_not_programs(capsys, tmp_path):
    lib = install(marked_greet(), tmp_path / "tree" / "libgreet.so")
    debug = tmp_path / "tree" / "libgreet.so.debug"
    subprocess.run(["objcopy", "--only-keep-debug", str(lib), str(debug)], check=True)
    obj = tmp_path / "tree" / "greet.o"
    subprocess.run(["gcc", "-c", "-o", str(obj), str(GUEST / "audit" / "libgreet.c")],
                   check=True)
    status, out, err = run(capsys, str(tmp_path / "tree"))
    assert (status, err) == (0, "")  # skipped quietly in a scan
    assert "no programs found" in out
    status, _, err = run(capsys, str(debug), str(obj))
    assert status == 2
    assert err.splitlines() == [
        f"shstk: {debug}: separate debug information (objcopy --only-keep-debug),"
        " not loadable",
        f"shstk: {obj}: relocatable object file (.o), not linked"]


def test_sysroot_paths_are_inside_the_root(capsys, tmp_path):
    root = tmp_path / "root"
    install(marked_greet(), root / "usr" / "lib" / "libgreet.so")
    install(program("greet.c", [marked_greet()]), root / "usr" / "bin" / "greet")
    install(fake_ld_so(), root / "lib64" / "ld-linux-x86-64.so.2")
    status, out, _ = run(capsys, "--json", "--sysroot", str(root), "/usr/bin")
    doc = json.loads(out)
    (program_doc,) = doc["programs"]
    assert status == 0 and doc["sysroot"] == str(root)
    assert program_doc["guest_path"] == "/usr/bin/greet"
    lib = program_doc["objects"][0]
    assert (lib["guest_path"], lib["found_via"]) == ("/usr/lib/libgreet.so", "default")
    assert lib["path"] == str(root / "usr" / "lib" / "libgreet.so")


def test_ld_library_path_option(capsys, tmp_path):
    exe = install(program("greet.c", [marked_greet()]), tmp_path / "bin" / "greet")
    install(plain_greet(), tmp_path / "plain" / "libgreet.so")
    install(marked_greet(), tmp_path / "marked" / "libgreet.so")
    status, out, _ = run(capsys, "--ld-library-path", f"{tmp_path}/plain", str(exe))
    assert status == 1 and f"{tmp_path}/plain/libgreet.so  [LD_LIBRARY_PATH;" in out
    status, out, _ = run(capsys, "--ld-library-path", f"{tmp_path}/nowhere:{tmp_path}/marked",
                         str(exe))
    assert status == 0
    status, out, _ = run(capsys, str(exe))
    assert status == 1 and "cannot start: libgreet.so not found" in out


def _children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_workers_end_with_their_parent(sig):
    """A killed `shstk audit` leaves no worker behind, whatever killed it."""
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-m", "shstk", "audit", "--jobs", "3", "/usr"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while len(workers) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            workers = _children(proc.pid)
        if len(workers) < 2:
            pytest.skip("the scan ended before its workers could be seen")
        proc.send_signal(sig)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [w for w in workers if _alive(w)], "workers outlived their parent"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
