"""`shstk status`: does this machine give user programs shadow stacks, and why not?

`gather()` reads the machine; `assess()` turns the readings into facts, each with what
it means for the user. Both are separate so tests can assess recorded machines.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from shstk.host.glibc import GlibcInfo, Tunables, glibc_info, parse_tunables
from shstk.host.procfs import (
    CpuInfo,
    ThreadFeatures,
    cmdline_words,
    parse_cpuinfo,
    parse_status,
    thread_features,
)

MIN_KERNEL = (6, 6)


@dataclass(frozen=True)
class Machine:
    """Raw readings."""

    cpu: CpuInfo | None
    kernel_release: str
    cmdline: tuple[str, ...]
    self_features: ThreadFeatures
    glibc: GlibcInfo
    tunables: Tunables


@dataclass(frozen=True)
class Fact:
    """One line of `shstk status`: what was found and what it means for shadow stacks."""

    key: str
    label: str
    value: str
    ok: bool | None  # good for shadow stacks, bad, or neither
    meaning: str  # what follows for the user


@dataclass(frozen=True)
class Status:
    """`shstk status`: the facts and the conclusion drawn from them."""

    facts: tuple[Fact, ...]
    kernel_ready: bool  # the kernel would enable a shadow stack on request
    glibc_ready: bool  # glibc would enable it for marked programs
    conclusion: str


def gather(proc: str = "/proc", environ: Mapping[str, str] | None = None) -> Machine:
    environ = os.environ if environ is None else environ
    return Machine(
        cpu=parse_cpuinfo(text) if (text := _read(f"{proc}/cpuinfo")) else None,
        kernel_release=os.uname().release,
        cmdline=tuple(cmdline_words(_read(f"{proc}/cmdline") or "")),
        self_features=thread_features(parse_status(_read(f"{proc}/self/status") or "")),
        glibc=glibc_info(),
        tunables=parse_tunables(environ.get("GLIBC_TUNABLES")),
    )


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def kernel_version(release: str) -> tuple[int, int]:
    parts = release.split("-", 1)[0].split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return (0, 0)


def assess(m: Machine) -> Status:
    kconfig = m.self_features.reported
    nouser = "nousershstk" in m.cmdline
    user_shstk = bool(m.cpu and m.cpu.user_shstk)
    new_kernel = kernel_version(m.kernel_release) >= MIN_KERNEL
    facts = [
        _cpu_fact(m.cpu),
        _user_shstk_fact(user_shstk, nouser, kconfig, new_kernel),
        Fact("kernel", "Linux kernel", m.kernel_release, new_kernel,
             "user shadow stacks exist since Linux 6.6" if new_kernel
             else "too old: Linux 6.6 added user shadow stacks"),
        Fact("nousershstk", "nousershstk on the command line", "yes" if nouser else "no",
             not nouser,
             "shadow stacks are disabled at boot: remove nousershstk" if nouser
             else "not disabled at boot"),
        Fact("kconfig", "x86_Thread_features in /proc/self/status",
             "present" if kconfig else "absent", kconfig,
             "CONFIG_X86_USER_SHADOW_STACK is built in" if kconfig
             else "the kernel was built without CONFIG_X86_USER_SHADOW_STACK (or is"
                  " older than 6.6): no process here can have a shadow stack, and"
                  " `shstk ps` has nothing to show"),
        *_glibc_facts(m.glibc),
        _tunables_fact(m.tunables, m.glibc),
        *_self_facts(m.self_features),
    ]
    kernel_ready = user_shstk and kconfig and new_kernel and not nouser
    glibc_ready = (m.glibc.cet_enabled and m.glibc.has_linux_shstk_api
                   and m.tunables.hwcaps_shstk is True
                   and m.tunables.shstk_control != "off")
    return Status(tuple(facts), kernel_ready, glibc_ready, _conclusion(kernel_ready,
                                                                         glibc_ready))


def _cpu_fact(cpu: CpuInfo | None) -> Fact:
    if cpu is None:
        return Fact("cpu", "CPU", "unknown (/proc/cpuinfo unreadable)", None, "")
    ident = f"{cpu.vendor}, family {cpu.family}, model {cpu.model}"
    return Fact("cpu", "CPU", f"{cpu.model_name} ({ident})", None,
                "CET shadow stacks need Intel Tiger Lake (11th gen) or AMD Zen 3 or later;"
                " a hypervisor may hide them")


def _user_shstk_fact(user_shstk: bool, nouser: bool, kconfig: bool, new: bool) -> Fact:
    if user_shstk:
        meaning = "the kernel enables shadow stacks for programs that ask for them"
    elif nouser:
        meaning = "absent because of nousershstk"
    elif not new or not kconfig:
        meaning = "absent: the kernel has no user shadow-stack support built in"
    else:
        meaning = ("absent: the CPU (or the hypervisor) does not offer CET shadow stacks;"
                   " ARCH_SHSTK_ENABLE fails with EINVAL. `shstk run` emulates them")
    return Fact("user_shstk", "user_shstk in /proc/cpuinfo", "yes" if user_shstk else "no",
                user_shstk, meaning)


def _glibc_facts(glibc: GlibcInfo) -> list[Fact]:
    version = glibc.version or "unknown"
    api = glibc.has_linux_shstk_api
    facts = [Fact("glibc", "glibc version", version, api,
                  "speaks the Linux 6.6 shadow-stack interface" if api
                  else "older than 2.39, the first glibc to enable shadow stacks with the"
                       " Linux 6.6 interface")]
    marks = f"libc.so.6 {_marking(glibc.libc)}, ld.so {_marking(glibc.rtld)}"
    if glibc.cet_enabled:
        meaning = ("built with --enable-cet: it enables shadow stacks at start-up for"
                   " marked programs (see `shstk audit`)")
    else:
        meaning = ("built without CET: it never enables shadow stacks itself, and its"
                   " unmarked libc.so.6 blocks every dynamic program (`shstk audit`);"
                   " a program can still enable them with arch_prctl")
    facts.append(Fact("glibc_cet", "glibc built with CET",
                      f"{'yes' if glibc.cet_enabled else 'no'} ({marks})",
                      glibc.cet_enabled, meaning))
    return facts


def _marking(props) -> str:
    if props is None:
        return "not found"
    return "marked SHSTK" if props.shstk else "not marked"


def _tunables_fact(t: Tunables, glibc: GlibcInfo) -> Fact:
    if not t.raw:
        meaning = ("unset: glibc ≥ 2.39 keeps SHSTK inactive unless"
                   " GLIBC_TUNABLES=glibc.cpu.hwcaps=SHSTK")
        return Fact("tunables", "GLIBC_TUNABLES", "(unset)", None, meaning)
    parts = []
    if t.hwcaps_shstk is True:
        parts.append("glibc.cpu.hwcaps=SHSTK activates SHSTK")
    elif t.hwcaps_shstk is False:
        parts.append("glibc.cpu.hwcaps=-SHSTK deactivates SHSTK")
    else:
        parts.append("SHSTK not activated (no glibc.cpu.hwcaps=SHSTK)")
    meanings = {"on": "x86_shstk=on: enabled for marked executables even with unmarked"
                      " libraries",
                "off": "x86_shstk=off: never enabled by the dynamic loader",
                "permissive": "x86_shstk=permissive: not locked; dlopen of an unmarked"
                              " library turns it off"}
    if t.shstk_control in meanings:
        parts.append(meanings[t.shstk_control])
    parts.extend(t.problems)
    if not glibc.cet_enabled:
        parts.append("(no effect: this glibc is built without CET)")
    return Fact("tunables", "GLIBC_TUNABLES", t.raw, None, "; ".join(parts))


def _self_facts(features: ThreadFeatures) -> list[Fact]:
    if not features.reported:
        return []
    value = " ".join(features.features or ()) or "none"
    locked = " ".join(features.locked or ()) or "none"
    return [Fact("self", "this process (shstk)", f"features: {value}; locked: {locked}",
                 None, "what the kernel reports for the shstk command itself")]


def _conclusion(kernel_ready: bool, glibc_ready: bool) -> str:
    if kernel_ready and glibc_ready:
        return ("shadow stacks are available: marked programs started with this"
                " environment get one (check them with `shstk audit`)")
    if kernel_ready:
        return ("the kernel offers shadow stacks, but glibc will not enable them here"
                " (see above); programs can enable them with arch_prctl")
    return ("this machine cannot give programs a shadow stack; `shstk run` runs a"
            " program with an emulated one")
