"""A second set of everyday command lines for the differential test
(tests/test_corpus_usr_bin.py, issue 16), written without looking at the first set's
results: other programs and other features of the same ones (sort keys, join/paste/column,
od/xxd/hexdump, checksums, split/csplit, find -printf/-newer/-delete, xargs -0/-P, tar with
every compressor, cpio, dd, stat, date, seq/shuf, expr/bc, bash arrays, traps, coproc,
wait -n, pipefail, dash, env -i, timeout, nice, nohup, flock, mktemp, install, iconv,
python3 threads/sqlite3/multiprocessing, perl, make, git).

Same conventions as tests/usrbin_corpus.py (whose scratch layout and runners it reuses):
each line prints nothing that differs between two native runs.
"""

from __future__ import annotations

from usrbin_corpus import L, Line

_GIT = ("export GIT_AUTHOR_NAME=n GIT_AUTHOR_EMAIL=a@b GIT_COMMITTER_NAME=n "
        "GIT_COMMITTER_EMAIL=a@b GIT_AUTHOR_DATE=2000-01-01T00:00:00Z "
        "GIT_COMMITTER_DATE=2000-01-01T00:00:00Z GIT_CONFIG_NOSYSTEM=1; ")

LINES2: tuple[Line, ...] = (
    # --- sort, uniq, join, paste, column, cut, tr
    L("sort_k_multi", "sort -t: -k2,2 -k1,1r passwd.txt", "sort"),
    L("sort_u_count", "sort -u words.txt | wc -l", "sort", "wc"),
    L("sort_check", "sort -c words.txt; echo status=$?", "sort"),
    L("sort_merge", "sort -n numbers.txt > s1; sort -m -n s1 s1 | head -3", "sort", "head"),
    L("sort_V_h_g", "printf 'v1.10\\nv1.2\\nv1.9\\n' | sort -V; printf '1K\\n2M\\n512\\n' | "
      "sort -h; printf '10\\n9\\n1e2\\n' | sort -g", "sort"),
    L("sort_f_R", "printf 'b\\nB\\na\\n' | sort -f; sort -R --random-source=words.txt a.keys",
      "sort"),
    L("uniq_d_u", "sort words.txt | uniq -d; sort words.txt | uniq -u | wc -l",
      "sort", "uniq", "wc"),
    L("uniq_ci", "printf 'a\\nA\\nb\\n' | uniq -ci", "uniq"),
    L("join_outer", "join -a1 -a2 -e NA -o 0,1.2,2.2 a.keys b.keys", "join"),
    L("paste_serial", "paste -s -d' ' a.keys; seq 6 | paste - - -", "paste", "seq"),
    L("column_t", "column -t -s: passwd.txt", "column"),
    L("cut_chars", "cut -c2-4 words.txt | head -3; cut -d: -f2- --output-delimiter=/ "
      "passwd.txt | head -2", "cut", "head"),
    L("tr_squeeze", "echo 'aaa   bbb' | tr -s ' a'; echo hello | tr -c 'a-z\\n' X", "tr"),
    L("tr_classes", "echo 'Hello World 123' | tr '[:lower:]' '[:upper:]' | tr -d '[:digit:]'",
      "tr"),
    L("fold_fmt", "fold -s -w 20 <<< 'the quick brown fox jumps over the lazy dog'; "
      "fmt -w 30 words.txt | head -3", "fold", "fmt", "head"),
    L("nl_opts", "nl -ba -w3 -s'| ' a.keys", "nl"),
    L("tsort_pr", "printf 'a b\\nb c\\na c\\n' | tsort; pr -2 -t -w 40 a.keys", "tsort", "pr"),
    L("head_tail_neg", "head -n -27 words.txt; tail -c 12 words.txt", "head", "tail"),
    L("wc_L", "wc -L -w words.txt; printf 'x y\\nz' | wc", "wc"),
    L("tac_s_cat_A", "printf 'a,b,c,' | tac -s,; echo; printf 'a\\tb\\r\\n' | cat -A",
      "tac", "cat"),
    L("expand_unexpand", "printf '        x\\n' | unexpand -a | od -c | head -1", "unexpand",
      "od", "head"),
    # --- dumps and checksums
    L("od_c", "printf 'hi\\tthere\\n' | od -c", "od"),
    L("od_formats", "printf '\\001\\002\\003\\004' | od -An -tu2 -td4 -to1", "od"),
    L("xxd", "printf 'xyz\\000\\001' | xxd; echo 78797a | xxd -r -p; echo", "xxd"),
    L("hexdump_C", "head -c 32 words.txt | hexdump -C", "hexdump", "head"),
    L("base64_w_base32", "seq 20 | base64 -w 16 | head -3; echo hi | base32",
      "seq", "base64", "head", "base32"),
    L("sha1_sha512", "sha1sum words.txt; sha512sum numbers.txt | cut -c1-32",
      "sha1sum", "sha512sum", "cut"),
    L("cksum_sum", "cksum words.txt; sum words.txt; b2sum -l 128 words.txt",
      "cksum", "sum", "b2sum"),
    L("md5_tag", "md5sum --tag words.txt; md5sum /dev/null | cut -c1-8", "md5sum", "cut"),
    # --- split, find, xargs
    L("split_b_d", "split -b 100 -d words.txt chunk && ls chunk* && cat chunk* | "
      "cmp - words.txt && echo ok", "split", "ls", "cmp"),
    L("csplit_regex", "csplit -s -f sec words.txt '/^mike/' '/^tango/' && wc -l sec*",
      "csplit", "wc"),
    L("find_printf", "find dir -type f -printf '%P %s %m\\n' | sort", "find", "sort"),
    L("find_newer", "touch -d 2001-01-01 ref; touch -d 2002-01-01 dir/one.txt; "
      "find dir -newer ref -type f", "find", "touch"),
    L("find_exec_each", "find dir -name '*.txt' -exec grep -l needle {} \\; | sort",
      "find", "grep", "sort"),
    L("find_depth_empty", "mkdir emp; find . -maxdepth 1 -empty; find dir -mindepth 2 | sort",
      "find", "sort"),
    L("find_delete", "cp -r dir d2 && find d2 -name '*.dat' -delete && find d2 | sort",
      "find", "cp", "sort"),
    L("xargs_0_P", "printf 'a\\0b\\0c\\0' | xargs -0 -P 3 -n 1 echo | sort", "xargs", "sort"),
    L("xargs_I", "cut -d: -f1 passwd.txt | xargs -I@ echo user=@", "cut", "xargs"),
    L("xargs_255", "echo x | xargs sh -c 'exit 255'; echo status=$?", "xargs", "sh"),
    # --- archives
    L("tar_xz", "mkdir o && tar cJf a.txz dir && tar xJf a.txz -C o && diff -r dir o/dir && "
      "echo same", "tar", "xz", "diff"),
    L("tar_zstd", "tar --zstd -cf a.tzst dir && tar --zstd -tf a.tzst | sort", "tar", "zstd",
      "sort"),
    L("tar_bz2_v", "tar cjvf a.tbz dir | sort; bzip2 -t a.tbz && echo intact", "tar", "bzip2",
      "sort"),
    L("tar_tv", "tar cf a.tar --owner=0 --group=0 --numeric-owner dir && tar tvf a.tar | "
      "sort -k6", "tar", "sort"),
    L("gzip_9_t", "cp words.txt w.txt && gzip -9 w.txt && gzip -t w.txt.gz && ls w.txt*; "
      "gunzip w.txt.gz && cmp w.txt words.txt && echo ok", "gzip", "gunzip", "cmp"),
    L("xz_9e", "xz -9e -c words.txt > w.xz && xz -t w.xz && xz -dc w.xz | wc -l", "xz", "wc"),
    L("zstd_level", "zstd -q -19 words.txt -o w.zst && zstd -q -t w.zst && zstd -dc w.zst | "
      "head -1", "zstd", "head"),
    L("cpio", "find dir | sort | cpio -o --quiet -H newc > a.cpio && mkdir c && cd c && "
      "cpio -id --quiet < ../a.cpio && find . | sort", "cpio", "find", "sort"),
    # --- files
    L("dd_conv", "echo hello | dd conv=ucase status=none; "
      "dd if=/dev/zero bs=1k count=4 status=none | wc -c", "dd", "wc"),
    L("dd_skip", "dd if=words.txt bs=1 skip=6 count=5 status=none; echo", "dd"),
    L("truncate_grow", "printf abc > t; truncate -s +5 t; od -c t | head -1; truncate -s 1 t; "
      "cat t; echo", "truncate", "od", "head"),
    L("stat_more", "stat -c '%s %A %h' words.txt; stat -L -c %F /dev/null; "
      "stat -c %F dir; stat -f -c %T . /proc /dev/shm /sys", "stat"),
    L("date_fmt", "date -d @1234567890 '+%A %d %B %Y %T %s %U %j'", "date"),
    L("date_relative", "date -u -d '2000-01-31 +1 month' +%F; date -u -d @86400 +%F; "
      "TZ=Asia/Tokyo date -d @0 +%H", "date"),
    L("seq_w_s", "seq -w 8 12; seq -s, 5; seq 1 0.5 3", "seq"),
    L("shuf_n", "shuf -n 3 --random-source=numbers.txt words.txt", "shuf"),
    L("expr_str", "expr length hello; expr substr hello 2 3; expr index hello l; "
      "expr 10 % 3; expr abc : 'a\\(.\\)'; expr 1 = 2; echo status=$?", "expr"),
    L("bc_bases", "echo 'obase=16; 255; ibase=2; 1010' | bc; echo '2^64' | bc; "
      "echo 'e(1); l(10)' | bc -l", "bc"),
    L("mkfifo", "mkfifo p; (echo through > p &); cat p", "mkfifo", "cat"),
    L("mktemp_file", "f=$(mktemp) && [ -f \"$f\" ] && echo made && rm \"$f\"; "
      "mktemp -u XXXX | wc -c", "mktemp", "wc"),
    L("ln_readlink_f", "mkdir -p a/b && ln -s ../../words.txt a/b/l && readlink -f a/b/l; "
      "ln words.txt hard && stat -c %h words.txt", "ln", "readlink", "stat"),
    L("realpath_e_m", "realpath -e nosuch; echo status=$?; realpath -m a/../b/./c",
      "realpath"),
    L("install_D", "install -m 750 -D words.txt dest/sub/w && stat -c '%a %s' dest/sub/w",
      "install", "stat"),
    L("chmod_sym", "touch f; chmod u=rwx,g=rx,o= f; stat -c %A f; chmod -R go-rwx dir; "
      "stat -c %a dir/one.txt", "touch", "chmod", "stat"),
    L("touch_d_ls", "touch -d '2010-05-05 10:00' f && stat -c %Y f && "
      "ls -l --time-style=+%F f | cut -d' ' -f6-", "touch", "stat", "ls", "cut"),
    L("test_nt", "touch -d 2001-01-01 old; touch new; [ new -nt old ] && echo newer",
      "touch"),
    L("cp_a", "cp -a dir d3 && stat -c '%Y %a %n' d3/one.txt", "cp", "stat"),
    L("du_ab", "du -ab dir | sort -k2", "du", "sort"),
    L("cmp_l_diff_y", "cmp -l words.txt w3.txt | head -3; diff -y -W 30 a.keys b.keys; "
      "echo status=$?", "cmp", "head", "diff"),
    L("file_types", "file /bin/true | cut -d, -f1; file -b --mime-type words.txt dir",
      "file", "cut"),
    L("iconv", "printf 'caf\\303\\251\\n' | iconv -f UTF-8 -t LATIN1 | od -An -tx1; "
      "echo x | iconv -f ascii -t UTF-16LE | od -An -tx1", "iconv", "od"),
    # --- system-ish
    L("env_i", "env -i /usr/bin/env; env -i A=1 sh -c 'echo $A'", "env", "sh"),
    L("env_sorted", "env | sort", "env", "sort"),
    L("timeout_kill", "timeout 0.2 sleep 5; echo status=$?; { timeout -s KILL 0.2 sleep 5; } "
      "2>/dev/null; echo status=$?; timeout 5 sh -c 'exit 7'; echo status=$?",
      "timeout", "sleep", "sh"),  # bash's "Killed" report names the pid: to /dev/null
    L("nice", "nice -n 5 nice; nice", "nice"),
    L("nohup", "nohup echo hi > out.txt 2> err.txt; cat out.txt err.txt", "nohup", "cat"),
    L("flock", "flock lk -c 'echo locked'; exec 9> lk2; flock 9; flock -n lk2 true; "
      "echo status=$?; flock -s 9; flock -s -n lk2 true; echo shared=$?; exec 9>&-; "
      "flock -n lk2 true; echo closed=$?; flock lk2 sleep 0.5 & sleep 0.2; "
      "flock lk2 echo waited; wait", "flock", "sleep"),
    L("hostname", "hostname; uname -n; cat /proc/sys/kernel/hostname", "hostname", "uname"),
    L("tty_getconf", "tty; echo status=$?; getconf PAGESIZE; getconf LONG_BIT", "tty",
      "getconf"),
    L("whoami_getent", "whoami; id -un; getent passwd root | cut -d: -f1,3",
      "whoami", "id", "getent", "cut"),
    L("kill_l", "kill -l 9; kill -l TERM; trap -l | head -1", "head"),
    L("stdbuf", "stdbuf -oL sh -c 'echo line-buffered'", "stdbuf", "sh"),
    L("locale", "locale | head -3", "locale", "head"),
    L("nproc", "nproc; grep -c ^processor /proc/cpuinfo", "nproc", "grep"),
    # --- awk, sed, grep
    L("awk_assoc", "awk '{c[$1]++} END {for (k in c) if (c[k]>1) print k, c[k]}' words.txt | "
      "sort", "awk", "sort"),
    L("awk_strings", "awk 'BEGIN{s=\"a-b-c\"; n=split(s,p,\"-\"); gsub(/-/,\"+\",s); "
      "print n, s, toupper(p[2]), substr(s,3), index(s,\"c\"), length(s)}'", "awk"),
    L("awk_getline_cmd", "awk 'BEGIN{while ((\"seq 3\" | getline x) > 0) s+=x; print s}'",
      "awk", "seq"),
    L("awk_ofs_nr_fnr", "awk -F: -v OFS=, '{$1=$1; print}' passwd.txt | head -2; "
      "awk 'NR==FNR{a[$1];next} $1 in a' a.keys b.keys", "awk", "head"),
    L("awk_system", "awk 'BEGIN{r=system(\"exit 3\"); print r; print ENVIRON[\"TZ\"]}'",
      "awk"),
    L("sed_E_groups", "echo 2020-01-31 | sed -E 's/([0-9]+)-([0-9]+)-([0-9]+)/\\3.\\2.\\1/'",
      "sed"),
    L("sed_hold", "sed -n '1!G;h;$p' a.keys; sed -e '/^a/{s//A/;n}' -e 's/$/!/' a.keys",
      "sed"),
    L("sed_range_w", "sed -n '3,5p;5q' numbers.txt; sed '2,$d' words.txt; "
      "sed -n '/delta/,/golf/w out' words.txt; cat out", "sed", "cat"),
    L("sed_y_i_a", "sed -e 'y/abc/ABC/' -e '1i TOP' -e '$a END' a.keys", "sed"),
    L("grep_w_x_m", "grep -w alpha words.txt | wc -l; grep -x 'al.*' words.txt; "
      "grep -m2 -o 'a[a-z]' words.txt", "grep", "wc"),
    L("grep_context", "grep -n -A1 -B1 mike words.txt", "grep"),
    L("grep_f_F", "printf 'golf\\nzulu\\n' > pats; grep -Ff pats words.txt; "
      "grep -oF 'a.b' <<< 'a.b axb'", "grep"),
    L("grep_l_L", "grep -rL needle dir | sort; grep -rl --include='*.txt' hay dir | sort",
      "grep", "sort"),
    L("grep_q_s", "grep -qs x nosuch; echo $?; grep -q alpha words.txt; echo $?; "
      "grep x nosuch; echo $?", "grep"),
    # --- bash
    L("bash_assoc", "declare -A h; h[one]=1; h[two]=2; for k in $(printf '%s\\n' "
      "\"${!h[@]}\" | sort); do echo $k=${h[$k]}; done; unset 'h[one]'; echo ${#h[@]}",
      "sort"),
    L("bash_printf_v_q", "printf -v x '%04d' 42; echo $x; printf '%q\\n' 'a b\"c'; "
      "printf '%(%Y-%m-%d)T\\n' 0; printf '%b' 'a\\tb\\n'"),
    L("bash_mapfile", "mapfile -t arr < a.keys; echo ${#arr[@]} \"${arr[1]}\"; "
      "readarray -s1 -n1 l < words.txt; echo $l"),
    L("bash_read_t", "read -t 0.2 x < <(sleep 1); echo status=$?", "sleep"),
    L("bash_trap_err", "set -E; trap 'echo ERR' ERR; false; echo next"),
    L("bash_subshell_vars", "x=1; (x=2; echo in $x); echo out $x; { x=3; }; echo $x; "
      "echo $BASH_SUBSHELL $(echo $BASH_SUBSHELL)"),
    L("bash_wait_n_status", "(exit 3) & (sleep 1; exit 4) & wait -n; echo first=$?; wait; "
      "echo done", "sleep"),
    L("bash_pipefail_e", "set -eo pipefail; echo a | grep -q b | cat; echo unreachable",
      "grep", "cat"),
    L("bash_here_string", "read a b <<< 'one two three'; echo $b; "
      "IFS=, read -ra parts <<< 'x,y,z'; echo ${parts[2]} ${#parts[@]}"),
    L("bash_paste_procsubst", "paste <(seq 3) <(seq 4 6)", "paste", "seq"),
    L("bash_coproc_bc", "coproc BC { bc; }; echo '6*7' >&${BC[1]}; read -u ${BC[0]} r; "
      "echo $r", "bc"),
    L("bash_recursion", "fact() { local n=$1; ((n<=1)) && echo 1 && return; "
      "echo $(( n * $(fact $((n-1))) )); }; fact 10"),
    L("bash_regex", "[[ abc123 =~ ^([a-z]+)([0-9]+)$ ]] && echo ${BASH_REMATCH[2]}; "
      "[[ foo == f* ]] && echo glob"),
    L("bash_extglob", "shopt -s extglob nullglob; echo dir/!(*.dat); echo nomatch*"),
    L("bash_getopts", "f() { while getopts ab: o; do echo $o=$OPTARG; done; }; f -a -b x"),
    L("bash_indirect_eval", "v=x; x=42; echo ${!v}; eval 'y=$((x+1))'; echo $y"),
    L("bash_exec_fds", "exec 3> fd3.txt; echo via3 >&3; exec 3>&-; cat fd3.txt; "
      "exec 4<a.keys; read -u4 l; echo $l", "cat"),
    L("bash_noclobber", "set -C; echo a > nc; echo b > nc; echo status=$?; echo c >| nc; "
      "cat nc", "cat"),
    L("bash_lastpipe", "shopt -s lastpipe; echo v | read x; echo $x"),
    L("bash_trap_term_sub", "trap 'echo TERM caught' TERM; (kill -TERM $$); echo after"),
    L("bash_ulimit_s", "ulimit -s; ulimit -c; ulimit -v"),
    L("dash_script", "sh -c 'set -- a b c; shift; echo $# $*; i=0; while [ $i -lt 5 ]; do "
      "i=$((i+1)); done; case $i in 5) echo five;; esac; echo ${1:-d}'", "sh"),
    # --- interpreters and tools
    L("py_threading", "python3 -c 'import threading; r=[]; ts=[threading.Thread("
      "target=r.append, args=(i,)) for i in range(8)]; [t.start() for t in ts]; "
      "[t.join() for t in ts]; print(sorted(r))'", "python3"),
    L("py_sqlite3", "python3 -c 'import sqlite3; c=sqlite3.connect(\"t.db\"); "
      "c.execute(\"create table t(x)\"); c.executemany(\"insert into t values(?)\", "
      "[(i,) for i in range(100)]); c.commit(); "
      "print(c.execute(\"select sum(x) from t\").fetchone())'", "python3"),
    L("py_pool", "python3 -c 'from multiprocessing import Pool\nif __name__ == \"__main__\":"
      "\n    with Pool(2) as p: print(p.map(abs, [-1, -2, 3]))'", "python3"),
    L("py_popen_pipe", "python3 -c 'import subprocess as s; p=s.Popen([\"sort\"], "
      "stdin=s.PIPE, stdout=s.PIPE); print(p.communicate(b\"b\\na\\n\")[0], p.returncode)'",
      "python3", "sort"),
    L("py_signal_socketpair", "python3 -c 'import signal, os, socket; "
      "signal.signal(signal.SIGUSR1, lambda *a: print(\"usr1\")); "
      "os.kill(os.getpid(), signal.SIGUSR1); a,b=socket.socketpair(); a.sendall(b\"ping\"); "
      "print(b.recv(4))'", "python3"),
    L("py_tempfile_zlib", "python3 -c 'import os, tempfile, zlib, re; "
      "d=tempfile.mkdtemp(dir=\".\"); open(os.path.join(d,\"f\"),\"w\").write(\"x\"); "
      "print(os.listdir(d), zlib.crc32(b\"abc\"), re.findall(r\"\\d+\", \"a1b22\"))'",
      "python3"),
    L("perl_F_lane", "perl -F: -lane 'print $F[0] if $F[2] > 1' passwd.txt", "perl"),
    L("perl_hash_pack", "perl -e 'my %h=(b=>2,a=>1); print join(\",\", map {\"$_=$h{$_}\"} "
      "sort keys %h), \"\\n\"; printf \"%08.3f %s\\n\", 3.14159, unpack(\"H*\", pack(\"N\", "
      "258))'", "perl"),
    L("perl_inplace", "cp a.keys k && perl -pi -e 's/(\\d)/<$1>/' k && cat k", "perl", "cp"),
    L("make_pattern", "printf 'SRC=a.in b.in\\nall: $(SRC:.in=.out)\\n%%.out: %%.in\\n"
      "\\tcp $< $@\\n' > Makefile; touch a.in b.in; make; make", "make", "touch"),
    L("make_j_error", "printf 'all: x y\\nx:\\n\\t@echo x\\ny: x\\n\\t@false\\n' > Makefile; "
      "make -j2 -s; echo status=$?", "make"),  # y after x: no "Waiting for unfinished jobs" race
    L("git_two_commits", _GIT + "git init -q -b main r && cd r && echo a > f && git add f && "
      "git commit -qm one && echo b >> f && git commit -qam two && git log --format=%s && "
      "git diff HEAD~1 --stat && git status --short && git branch --show-current", "git"),
    L("openssl_enc", "echo secret | openssl enc -aes-128-cbc -K 000102030405060708090a0b0c0d0e0f"
      " -iv 00000000000000000000000000000000 | od -An -tx1 | head -1", "openssl", "od",
      "head"),
    L("sqlite3_file", "sqlite3 d.db 'create table t(a); insert into t values(1),(2);' && "
      "sqlite3 -csv d.db 'select count(*), sum(a) from t'", "sqlite3"),
    # --- a second round, written after the first fixes
    L("id_full", "id", "id"),
    L("py_mp_queue", "python3 -c 'import multiprocessing as m\nif __name__ == \"__main__\":\n"
      " q=m.Queue(); p=m.Process(target=q.put, args=(5,)); p.start(); print(q.get()); "
      "p.join(); print(p.exitcode)'", "python3"),
    L("py_asyncio_subprocess", "python3 -c 'import asyncio\nasync def main():\n"
      " p = await asyncio.create_subprocess_exec(\"echo\", \"hi\", "
      "stdout=asyncio.subprocess.PIPE)\n print((await p.communicate())[0], p.returncode)\n"
      "asyncio.run(main())'", "python3"),
    L("py_lockf_fork", "python3 -c 'import fcntl, os\nf=open(\"l\",\"w\"); "
      "fcntl.lockf(f, fcntl.LOCK_EX)\nif os.fork()==0:\n g=open(\"l\",\"w\")\n"
      " try: fcntl.lockf(g, fcntl.LOCK_EX|fcntl.LOCK_NB); print(\"child got it\")\n"
      " except OSError as e: print(\"child blocked\", e.errno)\n os._exit(0)\nos.wait()'",
      "python3"),
    L("perl_posix_fork", "perl -MPOSIX -e 'print strftime(\"%F\", gmtime(0)), \"\\n\"; "
      "fork or exit 3; wait; print $?>>8, \"\\n\"'", "perl"),
    L("sort_parallel", "seq 50000 | sort --parallel=2 -S 1M -R --random-source=words.txt | "
      "sort -n | md5sum", "seq", "sort", "md5sum"),
    L("tail_f_inotify", "timeout 1 tail -f words.txt | head -2", "timeout", "tail", "head"),
    L("find_newermt_regex", "find . -newermt '2000-01-02' | sort; find dir -perm -u+r -size -1k "
      "-type f | sort; find dir -regex '.*t[a-z]*\\.txt' | sort", "find", "sort"),
    L("ln_sr_touch_r", "mkdir -p x/y && ln -sr words.txt x/y/w && readlink x/y/w && "
      "touch -r words.txt n && stat -c %Y n", "ln", "readlink", "touch", "stat"),
    L("chown_self", "touch f && chown $(id -u):$(id -g) f && echo ok", "chown", "id"),
    L("split_n_shred", "split -n 3 words.txt sp && wc -c sp*; shred -n1 -u spaa && ls sp*",
      "split", "wc", "shred", "ls"),
    L("sha_check", "sha256sum words.txt > s && sha256sum -c s; echo x >> words.txt; "
      "sha256sum -c s; echo $?", "sha256sum"),
    L("bash_fd_var", "exec {fd}>dyn.txt; echo $fd; echo hi >&$fd; exec {fd}>&-; cat dyn.txt",
      "cat"),
    L("bash_read_n_d", "read -n 3 x <<< abcdef; echo $x; read -d , y <<< 'p,q'; echo $y"),
    L("bash_stop_cont", "sleep 0.3 & kill -STOP $!; kill -CONT $!; wait $!; echo $?", "sleep"),
    L("dev_zero_urandom_full", "dd if=/dev/urandom bs=1 count=16 status=none | wc -c; "
      "head -c 100 /dev/zero | tr '\\0' x | wc -c; od -N 4 -tx1 /dev/zero; seq 3 > /dev/full; "
      "echo $?; echo x > /dev/tty; echo $?", "dd", "wc", "head", "tr", "od", "seq"),
    L("git_tag_stash_archive", _GIT + "git init -q -b main r && cd r && echo a > f && "
      "git add f && git commit -qm one && git tag v1 && echo b > f && git stash -q && "
      "git stash list | wc -l && git rev-list --count HEAD && git archive HEAD | tar t && "
      "git describe --tags", "git", "tar", "wc"),
    L("make_recursive_shell", "mkdir sub && printf 'all:\\n\\t@echo in sub $(MAKELEVEL)\\n' > "
      "sub/Makefile && printf 'X := $(shell echo shelled)\\nall:\\n\\t@echo $(X)\\n"
      "\\t@$(MAKE) -s -C sub\\n' > Makefile && make -s && make -n", "make"),
    L("tar_reproducible", "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner "
      "-cf - dir | sha256sum; gzip -n -c words.txt | sha256sum", "tar", "sha256sum", "gzip"),
    L("xz_zstd_threads", "seq 100000 | xz -T2 -c | xz -dc | wc -l; "
      "seq 100000 | zstd -q -T2 -c | zstd -dc | tail -1", "seq", "xz", "zstd", "wc", "tail"),
    L("zip_unzip", "zip -q -X a.zip words.txt dir/one.txt && unzip -l a.zip | tail -1 && "
      "mkdir u && cd u && unzip -q ../a.zip && cat dir/one.txt", "zip", "unzip", "tail"),
    L("sqlite3_wal", "sqlite3 w.db 'pragma journal_mode=wal; create table t(x); "
      "insert into t values(1),(2); select sum(x) from t;'", "sqlite3"),
    L("ls_la", "ls -la --time-style=+%F dir | awk '{print $1, $6, $7}'", "ls", "awk"),
    L("ps_pgrep", "sleep 10 & ps -o comm= -p $! ; pgrep -x sleep >/dev/null && echo found; "
      "kill $!", "sleep", "ps", "pgrep"),
    L("tclsh", "echo 'puts [expr {6*7}]; puts [string toupper abc]' | tclsh", "tclsh"),
    L("nohup_background", "nohup sh -c 'echo bg > bg.txt' >/dev/null 2>&1 & wait; cat bg.txt",
      "nohup", "sh", "cat"),
    L("ulimit_n_fds", "ulimit -n 64; ls /proc/self/fd | wc -l; ulimit -n", "ls", "wc"),
    L("mkfifo_timeout", "mkfifo q; timeout 0.3 cat q; echo status=$?", "mkfifo", "timeout",
      "cat"),
    L("diff_rq", "cp -r dir d2 && echo z >> d2/one.txt && diff -rq dir d2; echo $?",
      "cp", "diff"),
    L("cut_complement_z", "cut -d: --complement -f2 passwd.txt | head -2; "
      "cut -b1-3 -z <<< abcdef | tr '\\0' '\\n'", "cut", "head", "tr"),
    L("script_pty", "script -qc 'tty >/dev/null && echo has-tty' /dev/null", "script",
      xfail="no pseudo-terminals: /dev/ptmx and devpts are not emulated (opening /dev/ptmx "
      "for writing is EROFS, the sysroot's read-only node), so script(1) cannot make one"),
)
