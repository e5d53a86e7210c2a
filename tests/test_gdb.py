"""`shstk run --gdb`: the system's gdb attaches over the remote protocol (issue 19).

Drives the real gdb in batch mode against the stub: break at main, step over a call,
read $pl3_ssp, continue to the #CP of a stack smash (seen as SIGSEGV at the RET, before
delivery), back-trace through the smashed function, then let the signal kill it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GDB = shutil.which("gdb")
pytestmark = pytest.mark.skipif(GDB is None, reason="gdb is not installed "
                                "(apt-get install gdb; `make test` tries to)")
CET = ("-g", "-static", "-O0", "-fno-stack-protector", "-fcf-protection=full",
       "-Wl,-z,shstk", "-Wl,-z,ibt")
TIMEOUT = 120  # generous: the machine may be loaded


def _start(prog: Path, *options: str,
           env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """`shstk run --gdb 0 PROG` in the background; the port it printed."""
    proc = subprocess.Popen([sys.executable, "-m", "shstk", "run", "--gdb", "0",
                             *options, str(prog)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    line = proc.stderr.readline().decode()
    m = re.search(r"127\.0\.0\.1:(\d+)", line)
    assert m, line
    return proc, int(m.group(1))


def _gdb(prog: Path, port: int, *commands: str) -> str:
    args = [GDB or "gdb", "-batch", "-nx", "-ex", "set confirm off",
            "-ex", "set pagination off", "-ex", f"target remote 127.0.0.1:{port}"]
    for c in commands:
        args += ["-ex", c]
    args.append(str(prog))
    done = subprocess.run(args, capture_output=True, timeout=TIMEOUT,
                          env={**os.environ, "LC_ALL": "C"})
    return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")


def _finish(proc: subprocess.Popen[bytes]) -> tuple[int, str]:
    try:
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err.decode(errors="replace")


def test_violation_in_gdb(build):
    prog = build(ROOT / "examples" / "run" / "rop.c", flags=CET, name="rop-gdb")
    proc, port = _start(prog)
    out = _gdb(prog, port, "break main", "continue", "next", "next",
               "p/x $pl3_ssp", "continue", "bt", "echo si_code=",
               "output $_siginfo.si_code", "echo \\n", "p/x $pc", "x/i $pc",
               "x/2gx $pl3_ssp", "continue")
    status, err = _finish(proc)
    assert "Breakpoint 1, main ()" in out, out
    # `next` stepped over memset(): the line after it
    assert re.search(r"^34\s+uintptr_t target", out, re.M), out
    ssp = re.search(r"^\$1 = (0x[0-9a-f]+)", out, re.M)
    assert ssp and int(ssp.group(1), 16) != 0, out
    # the #CP, before delivery, at vulnerable()'s RET
    assert "Program received signal SIGSEGV" in out, out
    assert re.search(r"^#0 .* in vulnerable \(", out, re.M), out
    assert re.search(r"=> 0x[0-9a-f]+ <vulnerable\+\d+>:\s+ret", out), out
    # $_siginfo (qXfer:siginfo): the #CP's SEGV_CPERR
    assert "si_code=10\n" in out, out
    # the shadow stack's top is main's return address, not win's
    top = re.search(r"^0x[0-9a-f]+:\s+(0x[0-9a-f]+)", out, re.M)
    assert top, out
    # continuing delivers it: the program dies of SIGSEGV, as gdb and shstk say
    assert "Program terminated with signal SIGSEGV" in out, out
    assert status == 128 + 11, err
    assert "SEGV_CPERR" in err


def test_ctrl_c_and_exit_status(build, tmp_path):
    src = tmp_path / "spin.c"
    src.write_text("#include <stdio.h>\nvolatile unsigned long n;\n"
                   "int main(void){ puts(\"spinning\"); fflush(stdout);"
                   " for (unsigned long i = 0; i < 400000000UL; i++) n++;"
                   " return 3; }\n")
    prog = build(src, flags=("-g", "-static", "-O0"), name="spin")
    proc, port = _start(prog)
    # gdb cannot send Ctrl-C in batch mode: interrupt from a timer, then set n to end
    gdb = subprocess.Popen(
        [GDB or "gdb", "-batch", "-nx", "-ex", f"target remote 127.0.0.1:{port}",
         "-ex", "continue", "-ex", "info threads", "-ex", "set var i = 400000000UL",
         "-ex", "continue", str(prog)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "LC_ALL": "C"})
    assert proc.stdout is not None
    # the program's first line: gdb attached and continued, the guest spins
    assert proc.stdout.readline() == b"spinning\n"
    gdb.send_signal(2)
    out, _ = gdb.communicate(timeout=TIMEOUT)
    text = out.decode(errors="replace")
    status, err = _finish(proc)
    assert "SIGINT" in text, text
    assert "exited with code 03" in text, text
    assert status == 3, err


def test_dynamic_program_libc_symbols(build, tmp_path):
    src = tmp_path / "dyn.c"
    src.write_text('#include <stdio.h>\nint main(void){ puts("hi"); return 0; }\n')
    prog = build(src, flags=("-g", "-O0"), name="dyn")
    proc, port = _start(prog)
    out = _gdb(prog, port, "break main", "continue", "break puts", "continue", "bt",
               "info sharedlibrary", "continue")
    status, err = _finish(proc)
    # gdb found libc through the auxv and the loader's r_debug: puts resolves in it
    assert re.search(r"^Breakpoint 2, .*puts", out, re.M), out
    assert re.search(r"^#1 .* in main \(\)", out, re.M), out
    assert "libc.so.6" in out, out
    assert "exited normally" in out, out
    assert status == 0, err


NESTED = r"""
#include <stdio.h>
__attribute__((noinline)) int leaf(int x) { return x * 3 + 1; }
__attribute__((noinline)) int inner(int x) {
    int r = leaf(x);
    return r + leaf(r);
}
__attribute__((noinline)) int mid(int x) { return inner(x); }
__attribute__((noinline)) int outer(int x) {
    int s = 0;
    for (int i = 0; i < 3; i++) s += mid(x + i);
    return s;
}
__attribute__((noinline)) int run(int x) { return outer(x); }
int main(void) {
    int a = run(1);
    printf("a=%d\n", a);
    int b = run(a);
    printf("b=%d\n", b);
    return (a + b) & 0x7f;
}
"""
# run(1) == 87, so inner(87) calls leaf(87), then leaf(262): one dynamic stop, with
# exactly 8 return addresses on the shadow stack (5 in the program, 3 in glibc's start).
STEPPED = """
break main
continue
next
next
break inner
continue
while *(unsigned char *)$pc != 0xe8
  stepi
end
stepi
finish
break leaf if x == 262
continue
"""
PLAIN = """
break leaf if x == 262
continue
"""
LOOK = """
echo SSP-BEGIN\\n
p/x $pl3_ssp
x/8gx $pl3_ssp
echo SSP-END\\n
bt
delete
continue
"""


def _gdb_script(prog: Path, port: int, script: Path, text: str) -> str:
    script.write_text(f"set confirm off\nset pagination off\ntarget remote 127.0.0.1:{port}\n"
                      + text)
    done = subprocess.run([GDB or "gdb", "-batch", "-nx", "-x", str(script), str(prog)],
                          capture_output=True, timeout=TIMEOUT,
                          env={**os.environ, "LC_ALL": "C"})
    return done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")


@pytest.mark.parametrize("engine", ["native", "python"])
def test_stepping_keeps_the_shadow_stack_exact(build, tmp_path, engine):
    """Steps, breakpoints and `finish` around CALLs must not change the shadow stack:
    after them, the stack at a breakpoint equals what a plain `continue` there shows
    (each CALL pushed once), and the program ends as it does without gdb."""
    prog = build_nested(build, tmp_path)
    env = {**os.environ, "SHSTK_ENGINE": engine}
    stacks = {}
    for kind, text in (("stepped", STEPPED), ("plain", PLAIN)):
        proc, port = _start(prog, env=env)
        out = _gdb_script(prog, port, tmp_path / f"{kind}.gdb", text + LOOK)
        try:
            stdout, err = proc.communicate(timeout=TIMEOUT)
        finally:
            if proc.poll() is None:
                proc.kill()
        m = re.search(r"SSP-BEGIN\n(.*?)SSP-END", out, re.S)
        assert m and "Cannot access" not in m.group(1), out
        assert re.search(r"^#0 .*leaf \(x=262\)", out, re.M), out
        ssp_and_stack = re.sub(r"\$\d+ = ", "", m.group(1))  # no value-history number
        stacks[kind] = (ssp_and_stack, out, proc.returncode, stdout, err)
    stepped, plain = stacks["stepped"], stacks["plain"]
    assert stepped[0] == plain[0], f"stepped:\n{stepped[1]}\nplain:\n{plain[1]}"
    # the entries are the back-trace's return addresses: inner, mid, outer, run, main
    words = [int(w, 16) for w in re.findall(r"0x[0-9a-f]{16}", stepped[0])]
    frames = [int(a, 16) for a in re.findall(r"^#[1-5]\s+(0x[0-9a-f]+) in", stepped[1], re.M)]
    assert len(frames) == 5 and words[:5] == frames, stepped[1]
    alone = subprocess.run([sys.executable, "-m", "shstk", "run", str(prog)],
                           capture_output=True, timeout=TIMEOUT, env=env)
    assert (alone.returncode, alone.stdout) == (70, b"a=87\nb=3183\n"), alone
    for _text, out, status, stdout, err in (stepped, plain):
        assert "exited with code" in out, out
        assert (status, stdout) == (alone.returncode, alone.stdout), err.decode()


def build_nested(build, tmp_path: Path) -> Path:
    src = tmp_path / "nested.c"
    src.write_text(NESTED)
    return build(src, flags=CET, name="nested-gdb")


THREADS = r"""
#include <pthread.h>
#include <stdio.h>
volatile int go;
__attribute__((noinline)) void worker_leaf(int id) { go += id; }
__attribute__((noinline)) void *worker(void *arg) { worker_leaf((int)(long)arg); return 0; }
int main(void) {
    pthread_t t;
    pthread_create(&t, 0, worker, (void *)5L);
    pthread_join(t, 0);
    printf("go=%d\n", go);
    return go;
}
"""


def test_threads(build, tmp_path):
    """A breakpoint in a second thread reports that thread; `thread N` shows thread N's
    registers (from its saved context), its stack and its own shadow stack."""
    src = tmp_path / "threads.c"
    src.write_text(THREADS)
    prog = build(src, flags=(*CET, "-pthread"), name="threads-gdb")
    proc, port = _start(prog)
    out = _gdb(prog, port, "break worker_leaf", "continue", "info threads",
               "echo SSP2=", "output/x $pl3_ssp", "echo \\n", "x/2gx $pl3_ssp", "bt",
               "thread 1", "echo SSP1=", "output/x $pl3_ssp", "echo \\n", "bt",
               "thread 2", "bt", "continue")
    status, err = _finish(proc)
    assert re.search(r"^Thread 2 hit Breakpoint 1, worker_leaf \(id=5\)", out, re.M), out
    assert re.search(r"^  1\s+Thread \d+ .*\n\* 2\s+Thread \d+ .*worker_leaf", out, re.M), out
    ssp1 = re.search(r"SSP1=(0x[0-9a-f]+)", out)
    ssp2 = re.search(r"SSP2=(0x[0-9a-f]+)", out)
    assert ssp1 and ssp2 and ssp1.group(1) != ssp2.group(1), out
    # thread 2's shadow stack holds its own return addresses: worker_leaf's into worker
    top = re.search(r"^0x[0-9a-f]+:\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)", out, re.M)
    ret = re.findall(r"^#1\s+(0x[0-9a-f]+) in (\w+)", out, re.M)
    assert top and ret and ret[0][1] == "worker", out
    assert int(top.group(1), 16) == int(ret[0][0], 16), out
    # thread 1 waits in pthread_join, called from main
    assert ret[1][1] != "worker" and re.search(r" in main \(\) at ", out), out
    assert "exited with code 05" in out, out
    assert status == 5, err


EXEC = r"""
#include <stdio.h>
#include <unistd.h>
__attribute__((noinline)) int second(int n) { return n + 4; }
int main(int argc, char **argv) {
    if (argc == 1) {
        printf("first\n");
        fflush(stdout);
        execl(argv[0], argv[0], "again", (char *)0);
        return 1;
    }
    return second(3);
}
"""


def test_exec_keeps_the_debugger(build, tmp_path):
    """An exec is reported to gdb (exec stop reason), which reloads the program and
    re-inserts its breakpoints in the new image."""
    src = tmp_path / "exec.c"
    src.write_text(EXEC)
    prog = build(src, flags=("-g", "-static", "-O0"), name="exec-gdb")
    proc, port = _start(prog)
    out = _gdb(prog, port, "break second", "continue", "bt", "continue")
    status, err = _finish(proc)
    assert "is executing new program" in out, out
    assert re.search(r"^Breakpoint 1, second \(n=3\)", out, re.M), out
    assert re.search(r"^#1 .* in main \(argc=2,", out, re.M), out
    assert "exited with code 07" in out, out
    assert status == 7, err
