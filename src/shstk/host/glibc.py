"""The C library of this machine: version, whether it was built with CET, and the
shadow-stack tunables of GLIBC_TUNABLES (SPEC.md §15.1)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from shstk.elf.ldcache import LdCache, LdCacheError
from shstk.elf.properties import CetProperties, read_cet_properties
from shstk.errors import BadElf

RTLD = "/lib64/ld-linux-x86-64.so.2"
CONTROL_VALUES = {"on", "off", "permissive"}  # cpu-tunables.c: anything else is ignored


@dataclass(frozen=True)
class GlibcInfo:
    """This machine's glibc: its version and the CET properties of libc and ld.so."""

    version: str | None  # "2.36"
    libc_path: str | None
    libc: CetProperties | None
    rtld_path: str | None
    rtld: CetProperties | None

    @property
    def version_tuple(self) -> tuple[int, ...]:
        try:
            return tuple(int(p) for p in (self.version or "").split(".")[:2])
        except ValueError:
            return ()

    @property
    def cet_enabled(self) -> bool:
        """A --enable-cet build marks libc.so.6 and ld.so with SHSTK; Debian's does not."""
        return bool(self.libc and self.libc.shstk and self.rtld and self.rtld.shstk)

    @property
    def has_linux_shstk_api(self) -> bool:
        """glibc 2.39 adopted the Linux 6.6 interface (NEWS 2.39)."""
        return self.version_tuple >= (2, 39)


def glibc_info() -> GlibcInfo:
    version = None
    try:
        text = os.confstr("CS_GNU_LIBC_VERSION") or ""
        version = text.split()[-1] if text.startswith("glibc") else None
    except (ValueError, OSError):
        pass
    libc_path = _libc_path()
    rtld_path = RTLD if os.path.exists(RTLD) else None
    return GlibcInfo(version, libc_path, _props(libc_path), rtld_path, _props(rtld_path))


def _libc_path() -> str | None:
    try:
        return LdCache.load("/etc/ld.so.cache").lookup("libc.so.6")
    except LdCacheError:
        for directory in ("/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/usr/lib"):
            if os.path.exists(f"{directory}/libc.so.6"):
                return f"{directory}/libc.so.6"
    return None


def _props(path: str | None) -> CetProperties | None:
    if path is None:
        return None
    try:
        return read_cet_properties(path)
    except BadElf:
        return None


@dataclass(frozen=True)
class Tunables:
    """The shadow-stack part of GLIBC_TUNABLES."""

    raw: str | None
    x86_shstk: str | None = None  # as written
    x86_ibt: str | None = None
    hwcaps: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default=())

    @property
    def shstk_control(self) -> str:
        """The control glibc will use: elf_property unless a valid value is given."""
        return self.x86_shstk if self.x86_shstk in CONTROL_VALUES else "elf_property"

    @property
    def hwcaps_shstk(self) -> bool | None:
        """True: SHSTK made active (needed since glibc 2.39); False: -SHSTK; None: unset."""
        state = None
        for item in self.hwcaps:
            if item == "SHSTK":
                state = True
            elif item == "-SHSTK":
                state = False
        return state


def parse_tunables(text: str | None) -> Tunables:
    """GLIBC_TUNABLES is name=value pairs separated by colons; hwcaps is a comma list."""
    if not text:
        return Tunables(text)
    values: dict[str, str] = {}
    problems = []
    for item in text.split(":"):
        name, sep, value = item.partition("=")
        if not sep:
            problems.append(f"{item!r} has no '=' (glibc ignores it)")
            continue
        values[name] = value
    shstk = values.get("glibc.cpu.x86_shstk")
    if shstk is not None and shstk not in CONTROL_VALUES:
        problems.append(f"glibc.cpu.x86_shstk={shstk} is not on, off or permissive:"
                        " glibc ignores it")
    hwcaps = tuple(h.strip() for h in values.get("glibc.cpu.hwcaps", "").split(",")
                   if h.strip())
    return Tunables(text, shstk, values.get("glibc.cpu.x86_ibt"), hwcaps, tuple(problems))
