"""`shstk status` assessments of recorded and hypothetical machines."""

from __future__ import annotations

from pathlib import Path

from shstk.host.glibc import GlibcInfo, parse_tunables
from shstk.host.procfs import cmdline_words, parse_cpuinfo, parse_status, thread_features
from shstk.host.status import Machine, assess, gather, kernel_version

DATA = Path(__file__).parent / "data" / "proc"
MARKED = type("P", (), {"shstk": True})()
PLAIN = type("P", (), {"shstk": False})()


def machine(cpuinfo="cpuinfo_amd_vm.txt", status="status_no_features.txt",
            cmdline="cmdline_plain.txt", release="6.18.44", glibc=("2.36", PLAIN),
            tunables=None) -> Machine:
    version, props = glibc
    return Machine(
        cpu=parse_cpuinfo((DATA / cpuinfo).read_text()),
        kernel_release=release,
        cmdline=tuple(cmdline_words((DATA / cmdline).read_text())),
        self_features=thread_features(parse_status((DATA / status).read_text())),
        glibc=GlibcInfo(version, "/lib/libc.so.6", props, "/lib64/ld.so", props),
        tunables=parse_tunables(tunables),
    )


def facts(status) -> dict[str, tuple[str, bool | None]]:
    return {f.key: (f.value, f.ok) for f in status.facts}


def test_this_kind_of_vm_cannot_have_shadow_stacks():
    status = assess(machine())
    assert not status.kernel_ready and not status.glibc_ready
    got = facts(status)
    assert got["user_shstk"] == ("no", False)
    assert got["kconfig"] == ("absent", False)
    assert got["glibc_cet"][1] is False
    assert "cannot give programs a shadow stack" in status.conclusion
    meaning = {f.key: f.meaning for f in status.facts}
    assert "CONFIG_X86_USER_SHADOW_STACK" in meaning["kconfig"]


def test_cet_machine_with_cet_glibc_and_tunable():
    status = assess(machine(cpuinfo="cpuinfo_intel_cet.txt", status="status_shstk_locked.txt",
                            glibc=("2.40", MARKED), tunables="glibc.cpu.hwcaps=SHSTK"))
    assert status.kernel_ready and status.glibc_ready
    assert facts(status)["self"] == ("features: shstk; locked: shstk wrss", None)
    assert "available" in status.conclusion


def test_cet_glibc_without_hwcaps_tunable_keeps_shstk_off():
    status = assess(machine(cpuinfo="cpuinfo_intel_cet.txt", status="status_shstk_wrss.txt",
                            glibc=("2.40", MARKED)))
    assert status.kernel_ready and not status.glibc_ready
    assert "hwcaps=SHSTK" in {f.key: f.meaning for f in status.facts}["tunables"]


def test_nousershstk_is_named_as_the_cause():
    status = assess(machine(cmdline="cmdline_nousershstk.txt", status="status_features_empty.txt"))
    got = {f.key: f for f in status.facts}
    assert got["nousershstk"].ok is False
    assert "nousershstk" in got["user_shstk"].meaning


def test_old_kernel():
    status = assess(machine(release="6.1.0-13-amd64"))
    assert facts(status)["kernel"] == ("6.1.0-13-amd64", False)
    assert kernel_version("6.6.0-rc1") == (6, 6)


def test_gather_reads_this_machine():
    m = gather(environ={"GLIBC_TUNABLES": "glibc.cpu.x86_shstk=on"})
    assert m.kernel_release and m.tunables.shstk_control == "on"
    status = assess(m)
    assert status.kernel_ready == (m.cpu is not None and m.cpu.user_shstk
                                   and m.self_features.reported)
