"""Everyday command lines of this machine's /usr/bin, for the differential test
(tests/test_corpus_usr_bin.py, issue 16).

Each entry is (name, script, needs, xfail): `script` runs as `bash -c SCRIPT` in a scratch
directory laid out by `lay_out_scratch`, natively and under `shstk run`, with a fixed
environment; `needs` names the programs it uses (the entry is skipped, with that reason,
when one is absent); `xfail` is the cause of a difference that stays, or "".

The lines print nothing that differs between two native runs: no pids, times, inode
numbers or absolute paths (the scratch directory's path is replaced by SCRATCH before the
comparison).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Line:
    name: str
    script: str
    needs: tuple[str, ...] = ()
    xfail: str = ""


def L(name: str, script: str, *needs: str, xfail: str = "") -> Line:
    return Line(name, script, needs, xfail)


LINES: tuple[Line, ...] = (
    # --- coreutils
    L("cat_n", "cat -n words.txt | tail -3", "cat", "tail"),
    L("cat_missing", "cat nosuchfile; echo status=$?", "cat"),
    L("sort_uniq_c", "sort words.txt | uniq -c | sort -rn | head -5", "sort", "uniq", "head"),
    L("sort_numeric", "sort -n -r numbers.txt | head -4", "sort", "head"),
    L("sort_key", "sort -t: -k3,3n passwd.txt", "sort"),
    L("wc", "wc words.txt numbers.txt", "wc"),
    L("wc_stdin", "wc -l < words.txt", "wc"),
    L("head_c", "head -c 20 words.txt; echo", "head"),
    L("tail_n_plus", "tail -n +95 numbers.txt", "tail"),
    L("cut_fields", "cut -d: -f1,3 passwd.txt", "cut"),
    L("tr_upper", "tr a-z A-Z < words.txt | head -3", "tr", "head"),
    L("tr_delete", "echo hello world | tr -d lo", "tr"),
    L("seq_fmt", "seq -f '%03g' 1 3 10", "seq"),
    L("seq_sum", "seq 1 100 | paste -sd+ | bc", "seq", "paste", "bc"),
    L("printf_builtin", "printf '%5.2f|%-4s|%x\\n' 3.14159 ab 255"),
    L("printf_bin", "/usr/bin/printf '%s=%d\\n' a 1 b 2", "printf"),
    L("date_epoch", "date -u -d @0 '+%Y-%m-%d %H:%M:%S %Z'", "date"),
    L("date_parse", "date -d '2020-02-29 12:00' +%j", "date"),
    L("od", "printf 'ab\\001\\377' | od -An -tx1", "od"),
    L("base64", "base64 words.txt | head -2; base64 -d <<< aGVsbG8K", "base64", "head"),
    L("sha256sum", "sha256sum words.txt numbers.txt", "sha256sum"),
    L("md5sum_check", "md5sum words.txt > s.md5 && md5sum -c s.md5", "md5sum"),
    L("tee", "seq 3 | tee t1 t2 > /dev/null; cat t1 t2", "seq", "tee", "cat"),
    L("paste_join", "paste -d, numbers.txt numbers.txt | head -2; join a.keys b.keys",
      "paste", "join", "head"),
    L("comm", "comm -12 a.keys b.keys", "comm"),
    L("expand_fold", "printf 'a\\tb\\n' | expand -t 4; echo abcdefghij | fold -w 3",
      "expand", "fold"),
    L("nl_rev_tac", "head -3 words.txt | nl; echo abc | rev; seq 3 | tac", "nl", "rev", "tac"),
    L("split", "split -l 40 numbers.txt part_ && ls part_* && wc -l part_ab", "split", "wc"),
    L("csplit", "csplit -s numbers.txt 50 && wc -l xx00 xx01", "csplit", "wc"),
    L("stat_fmt", "stat -c '%n %s %F %a' words.txt dir", "stat"),
    L("readlink_realpath", "ln -s words.txt lnk; readlink lnk; realpath --relative-to=. lnk",
      "readlink", "realpath", "ln"),
    L("basename_dirname", "basename /a/b/c.txt .txt; dirname /a/b/c.txt", "basename", "dirname"),
    L("mkdir_cp_mv_rm", "mkdir -p x/y/z && cp words.txt x/y/z/ && mv x/y/z/words.txt x/w && "
      "rm -r x/y && ls -R x", "mkdir", "cp", "mv", "rm", "ls"),
    L("chmod_ls", "touch f; chmod 640 f; ls -l f | cut -c1-10", "touch", "chmod", "ls", "cut"),
    L("ls_sorted", "ls -1 dir; ls -a dir | wc -l", "ls", "wc"),
    L("ls_missing", "ls nosuchdir; echo status=$?", "ls"),
    L("du", "du -s --apparent-size -b dir", "du"),
    L("expr_factor", "expr 6 \\* 7; factor 360 97", "expr", "factor"),
    L("numfmt", "numfmt --to=iec 1048576 123456789", "numfmt"),
    L("shuf_seeded", "shuf -i 1-5 --random-source=words.txt", "shuf"),
    L("env_u", "env -u HOME FOO=bar sh -c 'echo ${HOME-unset} $FOO'", "env", "sh"),
    L("true_false", "true; echo $?; false; echo $?; /usr/bin/false; echo $?", "false"),
    L("test_builtin", "[ -f words.txt ] && [ ! -e nope ] && echo ok", ),
    L("timeout_ok", "timeout 5 true; echo $?", "timeout"),
    L("nproc_uname", "uname -s; uname -m", "uname"),
    L("id", "id -u; id -g", "id"),
    L("mktemp_dir", "d=$(mktemp -d -p .) && test -d $d && rmdir $d && echo made", "mktemp"),
    L("dd", "dd if=numbers.txt bs=16 count=2 status=none", "dd"),
    L("truncate", "truncate -s 10 t && wc -c t", "truncate", "wc"),
    L("cmp", "cmp words.txt numbers.txt; echo status=$?", "cmp"),
    # --- grep, sed, awk
    L("grep_c", "grep -c o words.txt", "grep"),
    L("grep_E", "grep -nE '^(alpha|omega)' words.txt", "grep"),
    L("grep_r", "grep -rn needle dir | sort", "grep", "sort"),
    L("grep_v_i", "grep -vi A words.txt | head -3", "grep", "head"),
    L("grep_none", "grep zzz words.txt; echo status=$?", "grep"),
    L("grep_o_P", "echo 'a1b22c333' | grep -oP '\\d+'", "grep"),
    L("sed_s", "sed 's/a/A/g; 3q' words.txt", "sed"),
    L("sed_n_p", "sed -n '/^b/p' words.txt", "sed"),
    L("sed_inplace", "cp words.txt w2 && sed -i '1d' w2 && head -1 w2", "sed", "cp", "head"),
    L("awk_sum", "awk '{s+=$1} END {print s, NR}' numbers.txt", "awk"),
    L("awk_fields", "awk -F: '$3 > 100 {print $1}' passwd.txt", "awk"),
    L("awk_printf", "awk 'BEGIN {printf \"%.3f %d\\n\", atan2(1,1)*4, 2^10}'", "awk"),
    # --- find, xargs
    L("find_name", "find dir -name '*.txt' | sort", "find", "sort"),
    L("find_type", "find . -type d | sort", "find", "sort"),
    L("find_exec", "find dir -type f -exec wc -c {} + | sort", "find", "wc", "sort"),
    L("find_print0_xargs", "find dir -type f -print0 | xargs -0 cat | wc -l",
      "find", "xargs", "wc"),
    L("xargs_n", "seq 7 | xargs -n 3 echo", "seq", "xargs"),
    L("xargs_P", "seq 4 | xargs -P 2 -I{} sh -c 'echo {}' | sort", "seq", "xargs", "sort"),
    # --- archives and compressors
    L("tar_roundtrip", "tar cf a.tar dir && mkdir out && tar xf a.tar -C out && "
      "diff -r dir out/dir && tar tf a.tar | sort", "tar", "diff", "sort"),
    L("tar_gz", "tar czf a.tgz dir && tar tzf a.tgz | sort", "tar", "gzip", "sort"),
    L("gzip_roundtrip", "gzip -c words.txt | gzip -dc | cmp - words.txt && echo same",
      "gzip", "cmp"),
    L("gzip_l", "gzip -n -9 -c numbers.txt > n.gz && gzip -l n.gz | tail -1 | "
      "awk '{print $1, $2}'", "gzip", "tail", "awk"),
    L("xz_roundtrip", "xz -c words.txt | xz -dc | md5sum", "xz", "md5sum"),
    L("zstd_roundtrip", "zstd -q -c numbers.txt | zstd -dc | tail -1", "zstd", "tail"),
    L("bzip2_roundtrip", "bzip2 -c words.txt | bzip2 -dc | wc -c", "bzip2", "wc"),
    L("zcat_pipe", "seq 1000 | gzip -c | zcat | tail -1", "seq", "gzip", "zcat", "tail"),
    # --- diff, patch
    L("diff_u", "diff -u words.txt w3.txt; echo status=$?", "diff"),
    L("diff_same", "diff words.txt words.txt && echo same", "diff"),
    L("diff_patch", "diff -u words.txt w3.txt > p.diff; cp words.txt w4 && "
      "patch -s w4 p.diff && cmp w4 w3.txt && echo patched", "diff", "patch", "cmp"),
    # --- bash features
    L("pipeline_status", "false | true; echo ${PIPESTATUS[@]}; set -o pipefail; "
      "false | true; echo $?"),
    L("heredoc", "cat <<EOF\nx=$((6*7))\n$(echo sub)\nEOF", "cat"),
    L("heredoc_quoted", "cat <<'EOF'\n$HOME `x`\nEOF", "cat"),
    L("subshell_redirect", "( echo out; echo err >&2 ) 2>&1 | sort", "sort"),
    L("stderr_only", "echo to-stderr >&2; exit 3"),
    L("background_wait", "sleep 0.1 & echo started; wait; echo waited $?", "sleep"),
    L("background_jobs", "(exit 7) & wait $!; echo $?"),
    L("brace_arith", "echo {a..e} {1..10..3}; echo $((2**20 % 7))"),
    L("arrays", "a=(x y z); a+=(w); echo ${#a[@]} ${a[@]:1:2}; declare -A m=([k]=v); "
      "echo ${m[k]}"),
    L("string_ops", "s=hello-world; echo ${s^^} ${s#*-} ${s/o/0} ${#s}"),
    L("functions_trap", "f() { return 4; }; f; echo $?; trap 'echo bye' EXIT; echo body"),
    L("read_loop", "while IFS=: read -r u _ id _; do echo $u:$id; done < passwd.txt"),
    L("command_subst_nested", "echo $(echo $(echo deep))"),
    L("exit_status", "exit 42"),
    L("set_e", "set -e; true; false; echo unreachable"),
    L("unknown_command", "nosuchcommand_xyz; echo status=$?"),
    L("sh_script", "printf 'echo from sh $1\\n' > s.sh; sh s.sh arg", "sh"),
    L("process_subst", "diff <(echo a) <(echo b); echo status=$?", "diff"),
    L("process_subst_cat", "cat <(seq 3)", "cat", "seq"),
    L("dev_stdin", "echo piped | cat /dev/stdin", "cat"),
    L("dev_stderr", "echo err > /dev/stderr; echo out > /dev/stdout"),
    L("trap_exit_status", "trap 'echo EXIT $?' EXIT; false"),
    L("coproc", "coproc cat; echo hi >&${COPROC[1]}; read -u ${COPROC[0]} l; echo $l; "
      "kill $COPROC_PID"),
    L("big_pipes", "seq 200000 | sort -rn | head -2; python3 -c 'import sys; "
      "sys.stdout.write(\"x\" * 200000)' | wc -c", "seq", "sort", "head", "python3", "wc"),
    L("signal_status", "{ bash -c 'kill -SEGV $$'; } 2>/dev/null; echo $?; bash -c 'exit 300'; "
      "echo $?"),  # the shell's report names the pid: its stderr goes to /dev/null
    L("yes_head", "yes | head -2; echo ${PIPESTATUS[@]}", "yes", "head"),
    L("sigpipe_seq", "seq 100000 | head -1; echo ${PIPESTATUS[@]}", "seq", "head"),
    L("kill_self", "sh -c 'kill -TERM $$'; echo status=$?", "sh"),
    L("job_control_groups", "set -m; sleep 2 & p=$!; "
      "[ $(cut -d' ' -f5 /proc/$p/stat) = $p ] && echo own group; "
      "[ $(cut -d' ' -f5 /proc/$p/stat) != $(cut -d' ' -f5 /proc/$$/stat) ] && echo apart; "
      "kill $p; wait $p; echo status=$?; set +m; sleep 2 & p=$!; "
      "[ $(cut -d' ' -f5 /proc/$p/stat) = $(cut -d' ' -f5 /proc/$$/stat) ] && echo same; "
      "kill $p; wait $p; echo status=$?", "sleep", "cut"),
    L("kill_subshell", "(sleep 2; echo never) & p=$!; kill -TERM $p; wait $p; echo sub=$?",
      "sleep"),
    L("trap_usr1_self", "trap 'echo USR1 seen' USR1; kill -USR1 $$; echo after"),
    L("wait_n", "sleep 0.3 & sleep 0.1 & wait -n; echo one; wait; echo all", "sleep"),
    L("setsid_leader", "setsid -w sh -c '[ $(cut -d\" \" -f6 /proc/$$/stat) = $$ ] && "
      "echo session leader'", "setsid", "sh", "cut"),
    L("sigpipe_perl", "perl -e 'print qq(x\\n) while 1' | head -1; echo ${PIPESTATUS[@]}",
      "perl", "head"),
    L("sigpipe_python", "python3 -c 'while 1: print(1)' 2>/dev/null | head -1; "
      "echo ${PIPESTATUS[@]}", "python3", "head"),
    L("ulimit_umask", "umask 027; touch u; stat -c %a u; ulimit -n", "stat", "touch"),
    L("ls_proc_self_fd", "ls /proc/self/fd", "ls"),
    # --- interpreters, tools
    L("python_print", "python3 -c 'import sys; print(sys.argv[1:], 2**100)' a b", "python3"),
    L("python_json", "python3 -c 'import json,sys; print(json.dumps({\"b\":[1,2],\"a\":None},"
      " sort_keys=True))'", "python3"),
    L("python_exit", "python3 -c 'raise SystemExit(3)'; echo status=$?", "python3"),
    L("python_exception", "python3 -c '1/0' 2>&1 | tail -1", "python3", "tail"),
    L("python_subprocess", "python3 -c 'import subprocess; "
      "print(subprocess.run([\"echo\", \"hi\"], capture_output=True).stdout)'", "python3"),
    L("python_hashlib", "python3 -c 'import hashlib; "
      "print(hashlib.sha1(open(\"words.txt\",\"rb\").read()).hexdigest())'", "python3"),
    L("perl_oneliner", "perl -ne 'print if /^[abc]/' words.txt", "perl"),
    L("perl_sum", "perl -le '$s += $_ for 1..100; print $s; printf \"%.2f\\n\", 1/3'",
      "perl"),
    L("make", "printf 'all: a b\\n\\t@echo done\\na:\\n\\t@echo A\\nb:\\n\\t@echo B\\n' > "
      "Makefile && make -s", "make"),
    L("make_missing", "make -s -f /dev/null nosuch; echo status=$?", "make"),
    L("git_init", "git init -q repo && cd repo && git config user.email a@b && "
      "git config user.name n && echo x > f && git add f && "
      "GIT_AUTHOR_DATE='2000-01-01T00:00:00Z' GIT_COMMITTER_DATE='2000-01-01T00:00:00Z' "
      "git commit -qm init && git log --format='%H %s'", "git"),
    L("nm_plugin", "nm -D /usr/bin/nm | tail -2", "nm"),  # loads the LLVM gold plugin
    L("ldd", "ldd /bin/ls | sed 's/ (0x[0-9a-f]*)//'", "ldd", "sed"),
    L("bc_scale", "echo 'scale=10; 4*a(1)' | bc -l", "bc"),
    L("file_magic", "file words.txt a.keys", "file"),
    L("strings", "printf 'abcd\\0\\001efghij\\0' > bin && strings bin", "strings"),
    L("readelf_h", "readelf -h /bin/true | grep -E 'Class|Type'", "readelf", "grep"),
    L("sqlite3", "sqlite3 :memory: 'select 6*7, upper(\"x\")'", "sqlite3"),
    L("jq", "echo '{\"a\":[1,2,3]}' | jq -c '.a | map(.*2)'", "jq"),
    L("openssl_dgst", "openssl dgst -sha256 -r words.txt", "openssl"),
)


WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
         "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo",
         "sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu", "omega",
         "bravo", "alpha", "alpha")


def lay_out_scratch(d: Path) -> None:
    """The files each command line finds in its working directory."""
    d.mkdir(parents=True, exist_ok=True)
    (d / "words.txt").write_text("".join(w + "\n" for w in WORDS))
    w3 = list(WORDS)
    w3[3] = "DELTA"
    del w3[10]
    (d / "w3.txt").write_text("".join(w + "\n" for w in w3))
    (d / "numbers.txt").write_text("".join(f"{(i * 37) % 101}\n" for i in range(100)))
    (d / "passwd.txt").write_text("root:x:0:0\nbin:x:2:2\nann:x:1000:1000\nbob:x:1001:100\n"
                                  "daemon:x:1:1\n")
    (d / "a.keys").write_text("a 1\nb 2\nc 3\n")
    (d / "b.keys").write_text("b x\nc y\nd z\n")
    sub = d / "dir" / "sub"
    sub.mkdir(parents=True, exist_ok=True)
    (d / "dir" / "one.txt").write_text("needle one\nhay\n")
    (d / "dir" / "two.dat").write_text("hay\n" * 5)
    (sub / "three.txt").write_text("more hay\nneedle three\n")
    for path in [d, *d.rglob("*")]:  # diff -u, tar and ls -l print times
        os.utime(path, (MTIME, MTIME))


MTIME = 946684800  # 2000-01-01 00:00:00 UTC
PATH = "/usr/local/bin:/usr/bin:/bin"


def environment(scratch: Path) -> dict[str, str]:
    return {"PATH": PATH, "LC_ALL": "C", "TZ": "UTC", "HOME": str(scratch), "USER": "user",
            "LOGNAME": "user", "SHELL": "/bin/bash", "TERM": "dumb", "PWD": str(scratch),
            "TMPDIR": str(scratch)}


def missing(line: Line) -> list[str]:
    return [p for p in line.needs if shutil.which(p, path=PATH) is None]


@dataclass
class Outcome:
    stdout: bytes
    stderr: bytes
    status: int
    seconds: float

    def key(self) -> tuple[bytes, bytes, int]:
        return (self.stdout, self.stderr, self.status)


def _run(cmd: list[str], scratch: Path, timeout: float) -> Outcome:
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=scratch, env=environment(scratch),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        out, err, status = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out, err, status = exc.stdout or b"", (exc.stderr or b"") + b"<timeout>", -999
    seconds = time.monotonic() - t0
    root = str(scratch).encode()
    return Outcome(out.replace(root, b"SCRATCH"), err.replace(root, b"SCRATCH"), status,
                   seconds)


def run_native(line: Line, base: Path, timeout: float = 30) -> Outcome:
    scratch = base / "native" / line.name
    lay_out_scratch(scratch)
    return _run(["/bin/bash", "-c", line.script], scratch, timeout)


def run_emulated(line: Line, base: Path, timeout: float = 120) -> Outcome:
    scratch = base / "emu" / line.name
    lay_out_scratch(scratch)
    cmd = [sys.executable, "-m", "shstk", "run", "--shstk", "off", "--rw", str(scratch),
           "/bin/bash", "-c", line.script]
    return _run(cmd, scratch, timeout)
