"""`shstk run --sysroot DIR` (issue 6): dynamic programs out of another root.

The tests make a small root in a temporary directory the way a distribution root is
laid out: programs in /usr/bin, the interpreter in /lib64, the libraries `ldd` lists in
/lib/x86_64-linux-gnu, one more library in /opt/srlib that only the root's
/etc/ld.so.cache knows (made with `ldconfig -r ROOT` from the root's /etc/ld.so.conf).
A library with the same soname but different behaviour sits outside the root, where a
leak to the host would find it (LD_LIBRARY_PATH, DT_RUNPATH): it must never be used.

Guests: tests/guest/dynamic/srprobe.c (libc + libsr.so), libsr.c, and the libc-free
closure of test_dynamic.py for the loader policy inside a root.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from shstkrun import shstk
from test_dynamic import closure, dyn_build, emu, shared_lib, text

LDCONFIG = shutil.which("ldconfig") or ("/sbin/ldconfig" if os.path.exists("/sbin/ldconfig")
                                        else None)
pytestmark = [
    pytest.mark.skipif(LDCONFIG is None, reason="needs ldconfig"),
    pytest.mark.skipif(shutil.which("ldd") is None, reason="needs ldd"),
]
LIBDIR = "lib/x86_64-linux-gnu"
INTERP = "/lib64/ld-linux-x86-64.so.2"


def _ldd(prog: Path) -> list[Path]:
    out = subprocess.run(["ldd", str(prog)], capture_output=True, text=True).stdout
    return [Path(m) for m in re.findall(r"=> (/\S+) \(", out)]


def install(root: Path, prog: Path, dest: str = "usr/bin") -> str:
    """Copy PROG into ROOT/DEST with every library ldd finds for it (by soname, into
    /lib/x86_64-linux-gnu) and the interpreter; returns the program's guest path."""
    (root / dest).mkdir(parents=True, exist_ok=True)
    (root / LIBDIR).mkdir(parents=True, exist_ok=True)
    (root / "lib64").mkdir(exist_ok=True)
    shutil.copy2(prog, root / dest / prog.name)
    for lib in _ldd(prog):
        target = root / LIBDIR / lib.name
        if not target.exists():
            shutil.copy2(lib.resolve(), target)
    if not (root / INTERP[1:]).exists():
        shutil.copy2(Path(INTERP).resolve(), root / INTERP[1:])
    return f"/{dest}/{prog.name}"


def ldconfig(root: Path) -> None:
    (root / "var/cache/ldconfig").mkdir(parents=True, exist_ok=True)
    subprocess.run([LDCONFIG, "-r", str(root)], check=True, capture_output=True)
    assert (root / "etc/ld.so.cache").exists()


# A host directory named by srprobe's DT_RUNPATH (a fixed path, so the build is cached):
# it holds the wrong libsr.so. Inside a root the directory does not exist.
HOSTLIB = Path(__file__).resolve().parent.parent / "build" / "dynamic-sysroot-hostlib"


@pytest.fixture(scope="module")
def libsr():
    inside = shared_lib("libsr.c", "libsr.so", marked=False,
                        flags=['-DSR_WHERE="inside the root"'])
    outside = shared_lib("libsr.c", "libsr.so", marked=False,
                         flags=['-DSR_WHERE="outside the root (WRONG)"'])
    HOSTLIB.mkdir(parents=True, exist_ok=True)
    tmp = HOSTLIB / f".libsr.so.{os.getpid()}"
    shutil.copy2(outside, tmp)
    os.replace(tmp, HOSTLIB / "libsr.so")
    return inside, HOSTLIB / "libsr.so"


@pytest.fixture(scope="module")
def root(tmp_path_factory, libsr):
    """A root with srprobe (+ libsr.so in /opt/srlib, known only to the root's cache),
    ls and cat from this machine; and the host directory holding the wrong libsr.so."""
    inside, outside = libsr
    # Linked against the outside copy (same soname); its DT_RUNPATH names HOSTLIB, which
    # does not exist inside the root, so ld.so goes on to the root's cache there.
    probe = dyn_build("srprobe.c", flags=["-O2", f"-Wl,-rpath,{HOSTLIB}"], name="srprobe",
                      extra_sources=[outside])
    native = subprocess.run([str(probe)], capture_output=True, text=True)
    assert native.stdout.startswith("libsr.so: outside the root (WRONG)"), native
    r = tmp_path_factory.mktemp("sysroot") / "root"
    (r / "etc").mkdir(parents=True)
    (r / "opt/srlib").mkdir(parents=True)
    shutil.copy2(inside, r / "opt/srlib/libsr.so")
    (r / "etc/ld.so.conf").write_text("/opt/srlib\n")
    (r / "etc/sr-marker").write_text("marker of the root\n")
    install(r, probe)
    for tool in ("/usr/bin/ls", "/usr/bin/cat"):
        install(r, Path(tool))
    ldconfig(r)
    return r, HOSTLIB


def test_program_runs_from_the_root(root):
    r, _host = root
    proc = emu("/usr/bin/srprobe", options=["--sysroot", str(r)])
    assert proc.returncode == 0, text(proc.stderr)
    assert text(proc.stdout).splitlines() == [
        "libsr.so: inside the root",
        "argv[0]: /usr/bin/srprobe",
        "/proc/self/exe: /usr/bin/srprobe",
        f"mapped: /{LIBDIR}/libc.so.6",
        "mapped: /opt/srlib/libsr.so",
        f"mapped: {INTERP}",
        "/etc/sr-marker: marker of the root",
    ]


def test_program_found_in_the_roots_path(root):
    """A name without a slash is searched in PATH inside the root (not the host's)."""
    r, _host = root
    proc = emu("srprobe", options=["--sysroot", str(r), "--env", "PATH=/usr/bin:/bin"])
    assert proc.returncode == 0, text(proc.stderr)
    assert "/proc/self/exe: /usr/bin/srprobe" in text(proc.stdout)


def test_library_search_stays_in_the_root(root):
    """LD_LIBRARY_PATH naming a host directory that holds a libsr.so: inside the root
    that directory does not exist, so the root's cache still decides."""
    r, host = root
    proc = emu("/usr/bin/srprobe", options=["--sysroot", str(r), "--env",
                                            f"LD_LIBRARY_PATH={host}"])
    assert proc.returncode == 0, text(proc.stderr)
    assert text(proc.stdout).splitlines()[0] == "libsr.so: inside the root"


def test_roots_cache_and_interpreter_are_used(root):
    """--strace: ld.so tries the DT_RUNPATH directory (absent inside the root), then opens
    the root's /etc/ld.so.cache and finds /opt/srlib/libsr.so through it (a path the
    host's cache does not have). The root's host path never shows."""
    r, host = root
    proc = emu("/usr/bin/srprobe", options=["--sysroot", str(r), "--strace"])
    trace = text(proc.stderr)
    assert proc.returncode == 0, trace
    opened = re.findall(r'openat\(AT_FDCWD, "([^"]+)", [^)]*\)\s+= (-?\d+)', trace)
    ok = [path for path, fd in opened if int(fd) >= 0]
    assert ok[:3] == ["/etc/ld.so.cache", "/opt/srlib/libsr.so", f"/{LIBDIR}/libc.so.6"], trace
    assert str(r) not in trace
    tried = [(path, int(fd)) for path, fd in opened if path.startswith(str(host))]
    assert tried and all(fd == -1 for _p, fd in tried), tried


def test_usr_bin_programs_from_the_root(root):
    """ls and cat copied into the root: `ls /` lists the root; cat reads its files."""
    r, _host = root
    ls = emu("/usr/bin/ls", "/", options=["--sysroot", str(r)])
    assert ls.returncode == 0, text(ls.stderr)
    assert text(ls.stdout).split() == sorted(p.name for p in r.iterdir())
    cat = emu("/usr/bin/cat", "/etc/sr-marker", "/etc/ld.so.conf", options=["--sysroot", str(r)])
    assert (cat.returncode, text(cat.stdout)) == (0, "marker of the root\n/opt/srlib\n")


def test_missing_interpreter_in_the_root(root, tmp_path):
    """The interpreter comes from the root: without it the program cannot start (the
    host's ld.so is not used instead)."""
    r, _host = root
    bare = tmp_path / "bare"
    shutil.copytree(r, bare, symlinks=True)
    (bare / INTERP[1:]).unlink()
    proc = emu("/usr/bin/srprobe", options=["--sysroot", str(bare)])
    assert proc.returncode != 0
    assert proc.stdout == b""
    assert "No such file or directory" in text(proc.stderr), text(proc.stderr)


def test_loader_policy_resolves_in_the_root(tmp_path):
    """A libc-free program whose libraries the root's cache finds: marked in the root,
    unmarked next to the program on the host ($ORIGIN/../hostlib, its DT_RUNPATH). -v
    decides on the root's copies (enabled), and the program sees shadow stacks on."""
    build = tmp_path / "build"
    prog = closure(build / "bin", rpath="$ORIGIN/../hostlib")
    closure(build / "marked")
    closure(build / "hostlib", dyn_marked=False, inner_marked=False)
    r = tmp_path / "root"
    for d in ("usr/bin", "opt/lib", "etc", "lib64"):
        (r / d).mkdir(parents=True)
    shutil.copy2(prog, r / "usr/bin/ready")
    for lib in ("libdyn.so", "libinner.so"):
        shutil.copy2(build / "marked" / lib, r / "opt/lib" / lib)
    shutil.copy2(Path(INTERP).resolve(), r / INTERP[1:])
    (r / "etc/ld.so.conf").write_text("/opt/lib\n")
    ldconfig(r)
    audit = shstk("audit", "--json", "--sysroot", str(r), "/usr/bin/ready")
    verdict = json.loads(audit.stdout)["programs"][0]
    assert (audit.returncode, verdict["status"]) == (0, "ready"), text(audit.stdout)
    proc = emu("/usr/bin/ready", options=["--sysroot", str(r), "-v"])
    err = text(proc.stderr)
    assert proc.returncode == 0, err
    assert f"shadow stack enabled, locked: {verdict['reason']}" in err, err
    assert text(proc.stdout).splitlines()[:4] == [
        "library: libdyn", "sum of squares: 385", "ARCH_SHSTK_STATUS: 1",
        "RDSSP: shadow stack"], text(proc.stdout)
    # the same program on the host: DT_RUNPATH finds the unmarked copies
    host = emu(build / "bin" / "ready", options=["-v"])
    assert re.search(r"shadow stack left off: .*libdyn\.so", text(host.stderr)), \
        text(host.stderr)
    assert "ARCH_SHSTK_STATUS: 0" in text(host.stdout)


def test_debian_layout_with_absolute_symlinks(root, tmp_path):
    """A merged-/usr root as Debian lays it out: /lib -> usr/lib, /lib64 -> usr/lib64, and
    the interpreter reached through an *absolute* symlink, which must resolve inside the
    root (its target name exists only there)."""
    r0, _host = root
    r = tmp_path / "debian"
    lib = r / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    (r / "usr/lib64").mkdir()
    (r / "usr/bin").mkdir()
    (r / "etc").mkdir()
    for name, link in (("lib", "usr/lib"), ("lib64", "usr/lib64"), ("bin", "usr/bin")):
        (r / name).symlink_to(link)
    for f in (r0 / LIBDIR).iterdir():
        shutil.copy2(f, lib / f.name)
    shutil.copy2(r0 / INTERP[1:], lib / "ld-root-only.so.2")
    (r / "usr/lib64/ld-linux-x86-64.so.2").symlink_to(
        "/lib/x86_64-linux-gnu/ld-root-only.so.2")
    assert not Path("/lib/x86_64-linux-gnu/ld-root-only.so.2").exists()
    shutil.copytree(r0 / "opt", r / "opt")
    shutil.copy2(r0 / "usr/bin/srprobe", r / "usr/bin/srprobe")
    for f in ("ld.so.conf", "sr-marker"):
        shutil.copy2(r0 / "etc" / f, r / "etc" / f)
    ldconfig(r)
    proc = emu("/bin/srprobe", options=["--sysroot", str(r), "-v"])
    err = text(proc.stderr)
    assert proc.returncode == 0, err
    assert "cannot read" not in err, err
    out = text(proc.stdout).splitlines()
    assert out[:3] == ["libsr.so: inside the root", "argv[0]: /bin/srprobe",
                       "/proc/self/exe: /usr/bin/srprobe"], out
    assert "mapped: /usr/lib/x86_64-linux-gnu/ld-root-only.so.2" in out, out
    assert "/etc/sr-marker: marker of the root" in out
