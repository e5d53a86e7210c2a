"""Dynamic string tokens and default directories, as ld.so expands them (elf/dl-load.c).

`$ORIGIN`, `$LIB` and `$PLATFORM` in DT_RPATH/DT_RUNPATH/DT_NEEDED, and the trusted
directories searched last.
"""

from __future__ import annotations

from shstk.elf.sysroot import Sysroot

MULTIARCH_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib", "/usr/lib")
LIB64_DIRS = ("/lib64", "/usr/lib64")
LIB_DIRS = ("/lib", "/usr/lib")


def default_directories(sysroot: Sysroot) -> tuple[str, ...]:
    """ld.so's built-in search path (SYSTEM_DIRS), guessed from the root's layout:
    Debian's multiarch directories, the upstream /lib64 + /usr/lib64 (Fedora, SUSE),
    or /lib + /usr/lib where lib64 is only a link to lib (Arch)."""
    if any(sysroot.listdir(d) is not None for d in MULTIARCH_DIRS[:2]):
        return MULTIARCH_DIRS
    lib64 = sysroot.resolve("/usr/lib64")
    if lib64 is not None and lib64 != sysroot.resolve("/usr/lib"):
        return LIB64_DIRS
    return LIB_DIRS


def lib_expansion(sysroot: Sysroot) -> str:
    """What $LIB expands to (glibc's DL_DST_LIB) for that layout."""
    return {MULTIARCH_DIRS: "lib/x86_64-linux-gnu", LIB64_DIRS: "lib64"}.get(
        default_directories(sysroot), "lib")


def expand_dst(text: str, origin: str | None, lib: str, platform: str) -> str | None:
    """Replace $ORIGIN, $LIB, $PLATFORM (also in ${...} form) as _dl_dst_substitute
    does. Returns None when $ORIGIN is needed but unknown (ld.so drops the entry)."""
    if "$" not in text:
        return text
    values = {"ORIGIN": origin, "LIB": lib, "PLATFORM": platform}
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$":
            out.append(text[i])
            i += 1
            continue
        name, length = _dst_at(text, i + 1)
        if name is None:
            out.append("$")  # not a known token: copied literally
            i += 1
            continue
        value = values[name]
        if value is None:
            return None
        out.append(value)
        i += 1 + length
    return "".join(out)


def _dst_at(text: str, start: int) -> tuple[str | None, int]:
    """glibc's is_dst: a known name, braced, or not followed by an identifier char."""
    curly = text.startswith("{", start)
    pos = start + 1 if curly else start
    for name in ("ORIGIN", "PLATFORM", "LIB"):
        if not text.startswith(name, pos):
            continue
        after = text[pos + len(name):pos + len(name) + 1]
        if curly and after != "}":
            continue
        if not curly and ((after.isalnum() and after.isascii()) or after == "_"):
            continue
        return name, len(name) + (2 if curly else 0)
    return None, 0
