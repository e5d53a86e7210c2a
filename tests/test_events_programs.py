"""Real programs on the event-loop/socket/IPC layer (issue 17), compared with native runs.

Each is skipped when the program is not installed; every one is a separate test, so
`pytest -n 2` runs them concurrently."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from shstkrun import native, run_guest

PY = "/usr/bin/python3"
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")

MP = """
import multiprocessing as mp
def sq(x): return x * x
if __name__ == '__main__':
    if {manager}:
        with mp.Manager() as m:
            d = m.dict(); lst = m.list([1, 2])
            d['k'] = 'v'; lst.append(3)
            print(dict(d), list(lst))
    else:
        with mp.get_context('forkserver').Pool(2) as p:
            print(p.map(sq, range(5)))
"""

SQLITE = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute('create table t(a integer, b text)')
db.executemany('insert into t values(?,?)', [(i, str(i) * 2) for i in range(5)])
db.commit()
print(db.execute('select count(*), sum(a), group_concat(b) from t').fetchone())
print(sqlite3.connect(':memory:').execute('select 6*7, upper("x")').fetchone())
"""

PERL = r"""
use IO::Socket::INET;
my $s = IO::Socket::INET->new(Listen => 5, LocalAddr => '127.0.0.1', LocalPort => 0,
                              Proto => 'tcp', ReuseAddr => 1) or die "listen: $!";
my $port = $s->sockport;
my $pid = fork();
if ($pid == 0) {
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp') or die "connect: $!";
    print $c "ping\n"; my $r = <$c>; print "child got $r"; exit 3;
}
my $a = $s->accept; my $l = <$a>; chomp $l; print $a uc($l) . "\n"; close $a;
waitpid($pid, 0); print "parent got $l, child exit ", $? >> 8, "\n";
"""


@needs_node
def test_node_e_matches_native() -> None:
    js = "console.log(6*7, [1,2,3].map(x=>x*2).join(), typeof process.pid)"
    want = native(NODE or "node", "-e", js)
    got = run_guest(NODE or "node", "-e", js, timeout=120)
    assert got.returncode == want.returncode == 0, got.stderr.decode()
    assert got.stdout == want.stdout


@needs_node
def test_node_shstk_on_without_osr_passes() -> None:
    # V8 maps its embedded builtins again from /usr/bin/node: that is no dlopen
    got = run_guest(NODE or "node", "-e", "console.log(6*7)", options=["--shstk", "on"],
                    timeout=120)
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout == b"42\n"
    assert b"dlopen" not in got.stderr


@needs_node
def test_node_shstk_on_osr_names_the_frame() -> None:
    # A hot loop makes V8 tier up on-stack from Ignition to Sparkplug: the builtin
    # InterpreterOnStackReplacement_ToBaseline overwrites its return address and RETs into
    # the baseline code. On a CET machine that RET is a #CP (node is not CET-marked, so only
    # a forced policy gets here); node's own SIGSEGV handler re-raises it.
    js = "let s=0;for(let i=0;i<1e5;i++)s+=i;console.log(s)"
    got = run_guest(NODE or "node", "-e", js, options=["--shstk", "on"], timeout=120)
    err = got.stderr.decode()
    assert got.returncode == 128 + 11, err
    assert "shadow-stack violation" in err and "SEGV_CPERR" in err
    assert "Builtins_InterpreterOnStackReplacement_ToBaseline" in err
    assert "(/usr/bin/node): ret" in err


def test_http_server_and_curl(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("hello from http.server\n")
    fetch = ("curl -s --retry 60 --retry-connrefused --retry-delay 1 "
             "http://127.0.0.1:8000/a.txt" if shutil.which("curl") else
             f"{PY} -c 'import time,urllib.request as u\nfor i in range(60):\n"
             " try: print(u.urlopen(\"http://127.0.0.1:8000/a.txt\").read().decode(),end=\"\")"
             ";break\n except OSError: time.sleep(1)'")
    # `cd X; server &` (not `cd X && server &`, whose subshell would be $! and outlive kill)
    script = (f"cd {tmp_path}; {PY} -m http.server 8000 --bind 127.0.0.1 >/dev/null 2>&1 &"
              f" {fetch}; kill $!; wait $!; echo status $?")
    got = run_guest("/usr/bin/bash", "-c", script, timeout=180)
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout == b"hello from http.server\nstatus 143\n"


@pytest.mark.parametrize("manager", [True, False], ids=["manager", "forkserver"])
def test_multiprocessing(tmp_path: Path, manager: bool) -> None:
    script = tmp_path / "mp.py"  # forkserver children import __main__ from its file
    script.write_text(MP.format(manager=manager))
    want = native(PY, str(script), env={"TMPDIR": str(tmp_path)})
    got = run_guest(PY, str(script), options=["--rw", str(tmp_path), "--env",
                                              f"TMPDIR={tmp_path}"], timeout=180)
    assert got.returncode == want.returncode == 0, got.stderr.decode()
    assert got.stdout == want.stdout


def test_sqlite3_module(tmp_path: Path) -> None:
    want = native(PY, "-c", SQLITE, str(tmp_path / "native.db"))
    got = run_guest(PY, "-c", SQLITE, str(tmp_path / "guest.db"),
                    options=["--rw", str(tmp_path)], timeout=120)
    assert got.returncode == want.returncode == 0, got.stderr.decode()
    assert got.stdout == want.stdout


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 CLI is not installed")
def test_sqlite3_cli(tmp_path: Path) -> None:
    sql = "create table t(a); insert into t values (1), (2), (39); select sum(a) from t;"
    want = native("sqlite3", str(tmp_path / "native.db"), sql)
    got = run_guest(shutil.which("sqlite3") or "sqlite3", str(tmp_path / "guest.db"), sql,
                    options=["--rw", str(tmp_path)], timeout=120)
    assert got.returncode == want.returncode == 0, got.stderr.decode()
    assert got.stdout == want.stdout == b"42\n"


@pytest.mark.skipif(shutil.which("perl") is None, reason="perl is not installed")
def test_perl_io_socket_inet() -> None:
    want = native("/usr/bin/perl", "-e", PERL)
    got = run_guest("/usr/bin/perl", "-e", PERL, timeout=120)
    assert got.returncode == want.returncode == 0, got.stderr.decode()
    assert got.stdout == want.stdout


def test_epoll_pwait_swaps_the_signal_mask(build) -> None:
    prog = build(Path(__file__).parent / "guest" / "events" / "epoll_pwait.c")
    want = native(prog)
    got = run_guest(prog, timeout=120)
    assert got.returncode == want.returncode == 0, got.stderr.decode()
    assert got.stdout == want.stdout
    assert b"pwait: -1 Interrupted system call handler=1 usr1-blocked=1" in got.stdout


def test_socket_timeouts_match_native() -> None:
    script = str(Path(__file__).parent / "guest" / "events" / "sockopt_timeo.py")
    want = native(PY, script)
    got = run_guest(PY, script, timeout=120)
    assert got.returncode == want.returncode == 0, got.stderr.decode()
    assert got.stdout == want.stdout
    assert b"recv EAGAIN True\n" in got.stdout


def test_posix_timers_checks_and_exec(build) -> None:
    prog = build(Path(__file__).parent / "guest" / "events" / "posix_timer_exec.c")
    want = native(prog)
    got = run_guest(prog, timeout=120)
    assert got.returncode == want.returncode == 0, got.stderr.decode()
    assert got.stdout == want.stdout
    assert b"still alive" in got.stdout


def test_proc_fdinfo_of_event_files(build) -> None:
    prog = build(Path(__file__).parent / "guest" / "events" / "fdinfo.c")
    want = native(prog)
    got = run_guest(prog, timeout=120)
    assert got.returncode == want.returncode == 0, got.stderr.decode()
    assert got.stdout.decode() == want.stdout.decode()
