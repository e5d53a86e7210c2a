"""Parsers for /proc text: cpuinfo, the kernel command line, /proc/PID/status.

Pure functions over text (so tests feed them recorded files) plus thin readers.
Formats: SPEC.md §10 and the kernel sources it cites.
"""

from __future__ import annotations

from dataclasses import dataclass

FEATURES_KEY = "x86_Thread_features"
LOCKED_KEY = "x86_Thread_features_locked"


@dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo says of this machine's CPU, shadow-stack flags included."""

    vendor: str | None
    model_name: str | None
    family: int | None
    model: int | None
    stepping: int | None
    flags: frozenset[str]

    @property
    def user_shstk(self) -> bool:
        """Linux prints user_shstk iff the CPU has CET_SS, the kernel was built with
        CONFIG_X86_USER_SHADOW_STACK and nousershstk was not given."""
        return "user_shstk" in self.flags

    @property
    def ibt(self) -> bool:
        return "ibt" in self.flags


def parse_cpuinfo(text: str) -> CpuInfo:
    """The first processor block of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return CpuInfo(
        vendor=fields.get("vendor_id"),
        model_name=fields.get("model name"),
        family=_int(fields.get("cpu family")),
        model=_int(fields.get("model")),
        stepping=_int(fields.get("stepping")),
        flags=frozenset(fields.get("flags", "").split()),
    )


def _int(text: str | None) -> int | None:
    try:
        return int(text, 0) if text is not None else None
    except ValueError:
        return None


def cmdline_words(text: str) -> list[str]:
    return text.replace("\0", " ").split()


def parse_status(text: str) -> dict[str, str]:
    """/proc/PID/status as key -> value (value with its tabs stripped, not its spaces)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key] = value.lstrip("\t")
    return out


@dataclass(frozen=True)
class ThreadFeatures:
    """x86_Thread_features and x86_Thread_features_locked of one thread.

    None means the line is absent: a kernel older than 6.6 or built without
    CONFIG_X86_USER_SHADOW_STACK. The kernel prints each set bit as a word followed by
    one space ("shstk wrss "), so an empty tuple means "nothing enabled".
    """

    features: tuple[str, ...] | None
    locked: tuple[str, ...] | None

    @property
    def reported(self) -> bool:
        return self.features is not None

    @property
    def shstk(self) -> bool:
        return bool(self.features and "shstk" in self.features)

    @property
    def wrss(self) -> bool:
        return bool(self.features and "wrss" in self.features)


def thread_features(status: dict[str, str]) -> ThreadFeatures:
    return ThreadFeatures(_words(status.get(FEATURES_KEY)), _words(status.get(LOCKED_KEY)))


def _words(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value.split())
