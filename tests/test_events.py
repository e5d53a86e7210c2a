"""Event loops, sockets and IPC (issue 17): guest programs compared with native runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from shstkrun import native, run_guest

GUEST = Path(__file__).parent / "guest" / "events"
PY = "/usr/bin/python3"


@pytest.mark.parametrize("script", ["events.py", "sockets.py"])
def test_python_guest_matches_native(script: str) -> None:
    want = native(PY, str(GUEST / script))
    got = run_guest(PY, str(GUEST / script), timeout=120)
    assert got.returncode == want.returncode == 0, got.stderr.decode()
    assert got.stdout.decode() == want.stdout.decode()


def test_asyncio_tcp_and_subprocess() -> None:
    code = ("import asyncio\n"
            "async def h(r, w):\n"
            "    w.write((await r.readline()).upper()); await w.drain(); w.close()\n"
            "async def main():\n"
            "    srv = await asyncio.start_server(h, '127.0.0.1', 0)\n"
            "    r, w = await asyncio.open_connection(*srv.sockets[0].getsockname()[:2])\n"
            "    w.write(b'hello\\n'); print((await r.readline()).decode().strip())\n"
            "    p = await asyncio.create_subprocess_exec('echo', 'sub', stdout=-1)\n"
            "    print((await p.communicate())[0].decode().strip(), p.returncode)\n"
            "asyncio.run(main())\n")
    got = run_guest(PY, "-c", code, timeout=120)
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout == b"HELLO\nsub 0\n"


def test_timeout_kills_sleep() -> None:
    got = run_guest("/usr/bin/timeout", "1", "/usr/bin/sleep", "5", timeout=60)
    assert got.returncode == 124
    assert b"timer_create" not in got.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="no node")
def test_node_http_and_exec_sync() -> None:
    js = ("const http=require('http'),cp=require('child_process');"
          "const s=http.createServer((q,r)=>r.end('hi '+q.url));"
          "s.listen(0,'127.0.0.1',()=>http.get({port:s.address().port,host:'127.0.0.1',"
          "path:'/x'},res=>{let d='';res.on('data',c=>d+=c);res.on('end',()=>{"
          "console.log(d, 6*7, cp.execSync('echo child').toString().trim());s.close()})}))")
    got = run_guest(shutil.which("node") or "node", "-e", js, timeout=180)
    assert got.returncode == 0, got.stderr.decode()
    assert got.stdout == b"hi /x 42 child\n"


def test_no_host_network() -> None:
    code = ("import socket\ntry:\n    socket.create_connection(('10.1.2.3', 80))\n"
            "except OSError as e:\n    print(e.errno)\n")
    got = run_guest(PY, "-c", code, timeout=120)
    assert got.stdout == b"101\n"  # ENETUNREACH: only lo is up
