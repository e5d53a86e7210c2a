"""The loader policy (`shstk run --shstk auto|on|off|permissive`, SPEC.md §15.1).

Debian's glibc never enables shadow stacks, so the emulator can play the part of a
CET-enabled loader: before the first instruction it does what glibc's start-up does
(ENABLE SHSTK, then LOCK all features unless permissive) when the program and every
object of its initial closure carry SHSTK, deciding exactly as `shstk audit` does. Objects
mapped later (dlopen) are checked as glibc's `_dl_cet_open_check` would.

`--glibc-tunables` is read the way a CET-enabled glibc 2.39+ reads GLIBC_TUNABLES:
SHSTK is only active with `glibc.cpu.hwcaps=SHSTK`, and `glibc.cpu.x86_shstk` picks the
control (on, off, permissive; anything else is ignored).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shstk.elf.properties import read_cet_properties
from shstk.elf.resolve import Resolver
from shstk.elf.verdict import shstk_verdict
from shstk.emu.kernel import shstk
from shstk.emu.kernel.errors import KernelError
from shstk.errors import ShstkError

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.loader import ExecImage
    from shstk.emu.kernel.task import Task

POLICIES = ("auto", "on", "off", "permissive")
CONTROL_OF = {"auto": "elf_property", "on": "on", "off": "off", "permissive": "permissive"}


@dataclass(frozen=True)
class LoaderPolicy:
    """What the emulated CET-enabled loader does at start-up and on dlopen."""

    mode: str  # "off", "force" (--shstk on), or "check" (decide from the properties)
    control: str  # glibc.cpu.x86_shstk: elf_property | on | permissive | off
    why: str  # where the policy came from, for --verbose

    @property
    def lock(self) -> bool:
        return self.control != "permissive"


def parse_tunables(text: str) -> tuple[bool, str | None]:
    """(SHSTK active through glibc.cpu.hwcaps, glibc.cpu.x86_shstk value or None)."""
    active = False
    control = None
    for item in text.split(":"):
        name, _, value = item.partition("=")
        name = name.strip()
        if name == "glibc.cpu.hwcaps":
            for cap in value.split(","):
                cap = cap.strip()
                if cap == "SHSTK":
                    active = True
                elif cap == "-SHSTK":
                    active = False
        elif name == "glibc.cpu.x86_shstk" and value in ("on", "off", "permissive"):
            control = value
    return active, control


def from_options(shstk_opt: str | None, tunables: str | None) -> LoaderPolicy:
    """--shstk wins when given; otherwise --glibc-tunables; otherwise auto."""
    if shstk_opt is not None:
        if shstk_opt == "off":
            return LoaderPolicy("off", "off", "--shstk off")
        if shstk_opt == "on":
            # forced on whatever the markings; a later dlopen is judged like the default
            return LoaderPolicy("force", "elf_property", "--shstk on")
        return LoaderPolicy("check", CONTROL_OF[shstk_opt], f"--shstk {shstk_opt}")
    if tunables is not None:
        active, control = parse_tunables(tunables)
        if not active:
            return LoaderPolicy("off", "off", "GLIBC_TUNABLES without glibc.cpu.hwcaps=SHSTK "
                                "(glibc 2.39+ leaves SHSTK inactive)")
        if control == "off":
            return LoaderPolicy("off", "off", "glibc.cpu.x86_shstk=off")
        control = control or "elf_property"
        return LoaderPolicy("check", control, f"GLIBC_TUNABLES: hwcaps=SHSTK, x86_shstk={control}")
    return LoaderPolicy("check", "elf_property", "--shstk auto (default)")


def _env(envp: list[bytes], name: str) -> str | None:
    prefix = name.encode() + b"="
    for item in envp:
        if item.startswith(prefix):
            return item[len(prefix):].decode("utf-8", "surrogateescape")
    return None


def readiness(k: Kernel, img: ExecImage, control: str, envp: list[bytes]
              ) -> tuple[bool, str, set[str]]:
    """Would a CET-enabled loader enable shadow stacks, why, and the initial objects.

    The closure is the one ld.so will load: the program's LD_LIBRARY_PATH and LD_PRELOAD
    take part, as they do in ld.so."""
    library_path = _env(envp, "LD_LIBRARY_PATH")
    preload = _env(envp, "LD_PRELOAD")
    try:
        resolver = Resolver(sysroot=k.opts.sysroot,
                            ld_library_path=[library_path] if library_path else ())
        closure = resolver.closure(img.host_path,
                                   preload=preload.replace(":", " ").split() if preload else ())
    except ShstkError as exc:
        return False, f"cannot read the program's properties: {exc}", set()
    verdict = shstk_verdict(closure, control=control)
    # the executable itself is an initial object too: a program that maps its own text
    # again (V8 remaps its embedded builtins from /proc/self/exe) is not dlopening it
    loaded = {o.path for o in closure.objects} | {closure.exe.path, img.host_path}
    if verdict.blockers and verdict.exe_marked and not verdict.enabled:
        paths = ", ".join(o.path for o in verdict.blockers[:4])
        return False, f"{verdict.reason} ({paths})", loaded
    return verdict.enabled, verdict.reason, loaded


def apply_loader_policy(k: Kernel, t: Task, img: ExecImage, interp: ExecImage | None,
                        envp: list[bytes]) -> None:
    pol: LoaderPolicy = k.loader_policy
    t.proc.initial_objects = set()
    t.proc.loader_enabled = False
    if pol.mode == "off":
        return
    enable, why, loaded = readiness(k, img, pol.control, envp)
    t.proc.initial_objects = loaded
    if pol.mode == "force":
        enable, why = True, "--shstk on"
    if not enable:
        k.event(f"shadow stack left off: {why}")
        return
    try:
        shstk.loader_enable(k, t, lock=pol.lock)
    except KernelError as exc:
        k.event(f"shadow stack could not be enabled ({why}): errno {exc.errno}")
        return
    t.proc.loader_enabled = True
    k.event(f"shadow stack enabled{'' if not pol.lock else ', locked'}: {why}")


def note_libc_shstk_call(t: Task) -> None:
    """An ARCH_SHSTK_* call from the program interpreter: a CET-enabled ld.so manages shadow
    stacks itself (_dl_cet_setup_features) and checks its own dlopens, so the emulated loader
    steps aside. Calls from the program's own code (tests, selftests) do not count."""
    interp = t.proc.interp_image
    if interp is None or t.proc.libc_manages_shstk:
        return
    vma = t.mm.find(t.cpu.rip - 2)  # the syscall instruction
    if vma is not None and vma.file is not None and vma.file.host == interp.host_path:
        t.proc.libc_manages_shstk = True


def check_late_object(k: Kernel, t: Task, host_path: str, guest_path: str) -> None:
    """_dl_cet_open_check(): an object mapped after start-up (dlopen)."""
    proc = t.proc
    if not proc.loader_enabled or not shstk.enabled(t, shstk.SHSTK):
        return
    seen = proc.initial_objects
    if host_path in seen:
        return
    seen.add(host_path)
    try:
        marked = read_cet_properties(host_path).shstk
    except ShstkError:
        return  # not an ELF object: a data file mapped executable, not a dlopen
    if marked:
        return
    control = k.loader_policy.control
    if control == "on":
        # dl_check_legacy_object: with x86_shstk=on a legacy object does not matter
        k.event(f"dlopen of {guest_path}: not marked SHSTK; loaded, and shadow stacks stay "
                "on (glibc.cpu.x86_shstk=on)", dlopen=True)
        return
    # glibc's "single-threaded" stays false once any thread was ever created
    single = not proc.ever_threaded
    if control == "permissive" and single:
        try:
            # a CET-enabled ld.so disables them itself, right after this mmap
            if not proc.libc_manages_shstk:
                shstk.shstk_disable(k, t)
        except KernelError as exc:
            k.event(f"dlopen of {guest_path}: not marked SHSTK; glibc would fail with "
                    f"\"can't disable SHSTK\" (errno {exc.errno})", dlopen=True)
            return
        k.event(f"dlopen of {guest_path}: not marked SHSTK; glibc.cpu.x86_shstk=permissive "
                "and single-threaded, so shadow stacks were disabled (ARCH_SHSTK_DISABLE)",
                dlopen=True)
        return
    why = "" if single else " (the process is multi-threaded)"
    k.event(f"dlopen of {guest_path}: not marked SHSTK; a CET-enabled glibc would fail this "
            f"dlopen here{why}: \"{guest_path}: rebuild shared object with SHSTK support "
            "enabled\"", dlopen=True)
