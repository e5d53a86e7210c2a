"""Linux fidelity details real programs rely on (issue 16): MAP_FIXED over part of a
mapping, /proc/self/fd listing the descriptor being read."""

from __future__ import annotations

import subprocess

from shstkrun import run_guest


def test_map_fixed_splits_and_replaces(build, tmp_path):
    """ld.so maps a library's zero-filled tail MAP_FIXED over the pages past the end of
    the file (nm -D on ld.gold died there loading libLLVM); the maps lines and the bytes
    are as on Linux."""
    prog = build("fidelity/mapfixed.c", name="mapfixed")
    nat = subprocess.run([str(prog), str(tmp_path / "native.data")], capture_output=True)
    emu = run_guest(prog, str(tmp_path / "emu.data"),
                    options=["--shstk", "off", "--rw", str(tmp_path)])
    assert nat.returncode == 0, nat.stderr
    assert emu.returncode == 0, emu.stderr.decode()
    assert emu.stdout.decode() == nat.stdout.decode().replace("native.data", "emu.data")
    assert b"+6-+8 rw-p 0 \n" in emu.stdout


def test_proc_self_fd_lists_the_descriptor_being_read():
    proc = run_guest("/bin/ls", "/proc/self/fd", options=["--shstk", "off"])
    assert proc.stdout == b"0\n1\n2\n3\n", proc.stderr


def test_process_shared_futexes_across_fork(build, tmp_path):
    """pthread mutex/condvar/barrier and sem_t with PTHREAD_PROCESS_SHARED in MAP_SHARED
    anonymous memory and a shared file mapping: Linux keys these futexes by (object,
    offset); keyed by one process's address, the children never woke (deadlock)."""
    prog = build("fidelity/pshared.c", flags=("-O2", "-pthread"), name="pshared")
    proc = run_guest(prog, str(tmp_path / "pshared.data"),
                     options=["--shstk", "off", "--rw", str(tmp_path)], timeout=120)
    assert proc.stdout == (b"anonymous: counter 400, children ok\n"
                           b"file: counter 400, children ok\n"), proc.stderr.decode()
    assert proc.returncode == 0


def test_vdso_mapped_as_on_linux(build):
    """AT_SYSINFO_EHDR names an ELF image mapped r-x as [vdso], exporting the LINUX_2.6
    functions; glibc's clock_gettime and time work through it (static and dynamic)."""
    for flags, name in ((("-O2",), "vdso"), (("-O2", "-static"), "vdso-static")):
        prog = build("fidelity/vdso.c", flags=flags, name=name)
        nat = subprocess.run([str(prog)], capture_output=True)
        emu = run_guest(prog, options=["--shstk", "off"])
        assert emu.returncode == 0, emu.stderr.decode()
        assert emu.stdout == nat.stdout
        assert b"maps: r-xp [vdso]\n" in emu.stdout


def test_ldd_lists_the_vdso():
    nat = subprocess.run(["ldd", "/bin/true"], capture_output=True)
    emu = run_guest("/usr/bin/ldd", "/bin/true", options=["--shstk", "off"])

    def names(out: bytes) -> list[str]:
        return [line.split(" (0x")[0] for line in out.decode().splitlines()]
    assert names(emu.stdout) == names(nat.stdout)
    assert names(emu.stdout)[0] == "\tlinux-vdso.so.1"


def test_statfs_fills_the_whole_struct(build, tmp_path):
    """struct statfs is 120 bytes on x86-64: the kernel writes all of it (f_spare too).
    shstk's was 112, which left the guest's tail unwritten and overflowed the host-side
    buffer of the f_type query by 8 bytes (heap corruption: `du` and `grep -r` under shstk
    crashed at exit)."""
    prog = build("fidelity/statfs.c", name="statfs")
    nat = subprocess.run([str(prog), str(tmp_path)], capture_output=True)
    emu = run_guest(prog, str(tmp_path), options=["--shstk", "off", "--rw", str(tmp_path)])
    assert nat.returncode == 0 and emu.returncode == 0, emu.stderr.decode()
    assert emu.stdout == nat.stdout
    assert b"bytes written 120" in emu.stdout
