"""`shstk check`: the examples under shadow stacks, -f command lines, --json, --junit,
timeouts and usage errors. The example programs are built as `make demo` builds them."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from shstk.cli import main
from shstk.run.check import (
    FAILED,
    PASSED,
    TIMEOUT,
    VIOLATION,
    Command,
    Where,
    classify,
    read_commands,
)

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not os.path.exists("/usr/bin/gcc"), reason="needs gcc")


def _demo_module():
    spec = importlib.util.spec_from_file_location("shstk_demo", ROOT / "examples" / "demo.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> Path:
    """rop, coro, ready/hello and blocked/hello, built by the demo's own steps."""
    demo = _demo_module()
    out = tmp_path_factory.mktemp("examples")
    ctx = demo.Demo(build=out)
    demo.build_audit_examples(ctx)
    demo.build_run_examples(ctx)
    return out


def shstk_check(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shstk", "check", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_examples_table_exit_status_and_junit(examples, tmp_path):
    rop, coro, hello = examples / "rop", examples / "coro", examples / "ready" / "hello"
    junit = tmp_path / "check.xml"
    reports = tmp_path / "reports"
    proc = shstk_check("--junit", str(junit), "--reports", str(reports), "-j", "2",
                       str(rop), str(coro), str(hello))
    assert proc.returncode == 1, proc.stderr
    rows = {line.split()[0]: line for line in proc.stdout.splitlines() if line.startswith("/")}
    assert set(rows) == {str(rop), str(coro), str(hello)}
    assert "marked" in rows[str(rop)] and "VIOLATION at vulnerable+0x2d in rop" in rows[str(rop)]
    # coro is marked, but Debian's libc.so.6 is not, and its swapcontext is what breaks
    assert "not marked: libc.so.6" in rows[str(coro)]
    assert "VIOLATION at swapcontext" in rows[str(coro)] and "in libc.so.6" in rows[str(coro)]
    assert "marked" in rows[str(hello)] and "passed" in rows[str(hello)]
    assert "3 programs: 1 passed, 2 violations, 0 other failures, 0 timeouts" in proc.stdout
    assert f"reports and logs in {reports}" in proc.stdout
    assert sorted(os.listdir(reports)) == ["1-rop.json", "1-rop.log", "2-coro.json",
                                           "2-coro.log", "3-hello.log"]
    assert (reports / "3-hello.log").read_text() == "hello from libgreet.so\n"

    root = ET.parse(junit).getroot()
    suites = root.findall("testsuite")
    assert len(suites) == 1 and suites[0].get("name") == "shstk check"
    cases = {case.get("name"): case for case in suites[0].findall("testcase")}
    assert list(cases) == [str(rop), str(coro), str(hello)]
    assert suites[0].get("tests") == "3" and suites[0].get("failures") == "2"
    assert suites[0].get("errors") == "0" and suites[0].get("skipped") == "0"
    for prog, where in ((rop, "vulnerable+0x2d"), (coro, "swapcontext")):
        failure = cases[str(prog)].find("failure")
        assert failure is not None and cases[str(prog)].find("error") is None
        assert where in failure.get("message", "")
        assert "SEGV_CPERR" in failure.get("message", "")
        text = failure.text or ""
        assert text.startswith("shadow-stack violation (#CP near ret) in ")
        assert "shadow stack expected:" in text
        assert f"report: {reports}/" in text
    assert list(cases[str(hello)]) == []  # passed: no failure, error or skipped


def test_commands_file_json_and_timeout(tmp_path):
    commands = tmp_path / "commands"
    commands.write_text("# what the test suite runs\n\n"
                        "/bin/echo hi   # not marked: under --shstk on it runs anyway\n"
                        "/bin/false\n"
                        "'/bin/sleep' 30\n")
    reports = tmp_path / "reports"
    proc = shstk_check("--json", "--timeout", "1", "--reports", str(reports),
                       "-f", str(commands))
    assert proc.returncode == 3, proc.stderr  # no violation, but a failure and a timeout
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "shstk-check/1"
    assert doc["reports"] == str(reports) and doc["timeout"] == 1.0
    echo, false, sleep = doc["programs"]
    assert echo["command"] == "/bin/echo hi" and echo["argv"] == ["/bin/echo", "hi"]
    assert echo["origin"] == f"{commands}:3"
    assert echo["audit"]["status"] == "blocked" and echo["audit"]["marked"] is False
    assert "libc.so.6" in echo["audit"]["blockers"]
    assert echo["result"] == {**echo["result"], "status": "passed", "exit_status": 0,
                              "signal": None, "where": None}
    assert echo["report"] is None
    assert Path(echo["log"]).read_text() == "hi\n"
    assert false["result"]["status"] == "failed" and false["result"]["exit_status"] == 1
    assert sleep["argv"] == ["/bin/sleep", "30"]
    assert sleep["result"]["status"] == "timeout" and sleep["result"]["exit_status"] == 124
    assert sleep["result"]["seconds"] < 20
    assert doc["summary"] == {"programs": 3, "passed": 1, "violation": 0, "failed": 1,
                              "timeout": 1, "exit_status": 3}


def test_json_violation_fields(examples, tmp_path):
    proc = shstk_check("--json", "--reports", str(tmp_path), str(examples / "rop"))
    assert proc.returncode == 1, proc.stderr
    (rop,) = json.loads(proc.stdout)["programs"]
    assert rop["audit"] == {"status": "ready", "path": str(examples / "rop"), "marked": True,
                            "blockers": [], "reason": rop["audit"]["reason"]}
    result = rop["result"]
    assert result["status"] == "violation"
    assert result["exit_status"] == 139 and result["signal"] == "SIGSEGV"
    assert result["where"]["function"] == "vulnerable+0x2d"
    assert result["where"]["library"] == str(examples / "rop")
    report = json.loads(Path(rop["report"]).read_text())
    assert report["si_code"] == "SEGV_CPERR" and report["violation"]["kind"] == "near ret"


@pytest.mark.parametrize("argv, message", [
    ([], "shstk: error: check: no programs (give PROG... or -f COMMANDS)"),
    (["--jobs", "0", "/bin/true"], "shstk: error: --jobs must be at least 1"),
    (["--timeout", "0", "/bin/true"], "shstk: error: --timeout must be positive"),
    (["-f", "/nonexistent/commands"],
     "shstk: error: -f /nonexistent/commands: No such file or directory"),
])
def test_usage_errors_are_one_line(argv, message, capsys):
    assert main(["check", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == message + "\n"


def test_commands_file_problems(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.write_text("/bin/echo ok\n/bin/echo 'unterminated\n")
    assert main(["check", "-f", str(bad)]) == 2
    assert capsys.readouterr().err == f"shstk: error: {bad}:2: No closing quotation\n"
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n\n")
    assert main(["check", "-f", str(empty)]) == 2
    assert capsys.readouterr().err == f"shstk: error: -f {empty}: no command lines\n"
    assert main(["check", "-f", str(bad), "/bin/true"]) == 2
    assert "not both" in capsys.readouterr().err


def test_read_commands(tmp_path):
    path = tmp_path / "c"
    path.write_text("  # comment\n\nprog a 'b c' \"d\\\"e\"  # trailing\n  other\n")
    assert read_commands(str(path)) == [Command(("prog", "a", "b c", 'd"e'), f"{path}:3"),
                                        Command(("other",), f"{path}:4")]


def test_classify():
    cmd = Command(("p",))
    assert classify(cmd, 0, None, "").status == PASSED
    assert classify(cmd, 124, None, "shstk: timeout: the guest ran longer than 1.0 s\n"
                    ).status == TIMEOUT
    # a program may exit 124 itself: that is a failure, not a timeout
    assert classify(cmd, 124, None, "").status == FAILED
    killed = classify(cmd, 0, None, "", killed=True, timeout=1.0)
    assert killed.status == TIMEOUT and killed.exit_status is None
    host = classify(cmd, -9, None, "")
    assert host.status == FAILED and host.signal == "SIGKILL"
    plain = {"signal": "SIGSEGV", "si_code": "SEGV_MAPERR", "rip": 0x401000, "pid": 1000,
             "rip_symbol": "crash+0x4 (/t/p)", "instruction": "mov", "program": "p"}
    segv = classify(cmd, 139, plain, "")
    assert segv.status == FAILED and segv.where == Where("crash+0x4 (/t/p)", "crash+0x4", "/t/p")
    assert segv.summary == "killed by SIGSEGV (SEGV_MAPERR) at crash+0x4 in p"
    access = classify(cmd, 139, {**plain, "violation": {"kind": "shadow-stack access fault"}},
                      "")
    assert access.status == VIOLATION
    assert access.summary.startswith("shadow-stack violation (shadow-stack access fault)")


def test_where_without_symbol():
    where = Where.parse("(/usr/bin/dash+0x6db4)")
    assert (where.function, where.library, where.offset) == (None, "/usr/bin/dash", "0x6db4")
    assert where.short() == "dash+0x6db4"
