"""qXfer objects built from the guest's memory: libraries-svr4 (the dynamic loader's link
map, as gdbserver's linux-low reads it) and siginfo (the stop signal's struct siginfo)."""

from __future__ import annotations

import struct
from collections.abc import Callable

from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.task import Task

_ATTR = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\n": "&#10;", "\r": "&#13;",
                       "\t": "&#9;"})


def quoteattr(data: str) -> str:
    """xml.sax.saxutils.quoteattr, without importing xml.sax (which pulls in urllib,
    http.client and ssl: about 17 ms of every `shstk run`'s start-up)."""
    data = data.translate(_ATTR)
    if '"' in data:
        if "'" in data:
            data = data.replace('"', "&quot;")
            return f'"{data}"'
        return f"'{data}'"
    return f'"{data}"'


AT_PHDR, AT_PHNUM = 3, 5
PT_DYNAMIC, PT_PHDR = 2, 6
DT_NULL, DT_DEBUG = 0, 21
EMPTY = b'<library-list-svr4 version="1.0"/>'
MAX_LIBRARIES = 4096  # a loop in a corrupt link map ends here


def _auxv(raw: bytes) -> dict[int, int]:
    out: dict[int, int] = {}
    for i in range(0, len(raw) - 15, 16):
        key, value = struct.unpack_from("<QQ", raw, i)
        if key == 0:
            break
        out.setdefault(key, value)
    return out


def r_debug(task: Task, auxv: bytes) -> int:
    """The address of the loader's `struct r_debug` (the executable's DT_DEBUG), 0 when
    there is none (a static program, or the loader has not filled it in yet)."""
    aux = _auxv(auxv)
    phdr, phnum = aux.get(AT_PHDR, 0), aux.get(AT_PHNUM, 0)
    if not phdr or not phnum:
        return 0
    read = task.mm.read
    headers = [struct.unpack_from("<IIQQQQQQ", read(phdr + 56 * i, 56)) for i in range(phnum)]
    bias = next((phdr - h[3] for h in headers if h[0] == PT_PHDR), None)
    dynamic = next((h for h in headers if h[0] == PT_DYNAMIC), None)
    if dynamic is None:
        return 0
    if bias is None:  # no PT_PHDR: the headers follow the ELF header of a PIE at 0
        bias = phdr - 64
    pos, end = dynamic[3] + bias, dynamic[3] + bias + dynamic[5]
    while pos + 16 <= end:
        tag, value = struct.unpack("<qQ", read(pos, 16))
        if tag == DT_NULL:
            break
        if tag == DT_DEBUG:
            return value
        pos += 16
    return 0


def libraries_svr4(task: Task, auxv: bytes, host_path: Callable[[str], str]) -> bytes:
    """<library-list-svr4>: each link_map after the first (the executable, `main-lm`) as
    name, lm, l_addr, l_ld."""
    try:
        debug = r_debug(task, auxv)
        if not debug:
            return EMPTY
        read = task.mm.read
        lm = struct.unpack("<Q", read(debug + 8, 8))[0]  # r_map
        parts: list[str] = []
        main = 0
        seen: set[int] = set()
        while lm and lm not in seen and len(seen) < MAX_LIBRARIES:
            seen.add(lm)
            l_addr, l_name, l_ld, l_next = struct.unpack("<QQQQ", read(lm, 32))
            if not main:
                main = lm
            else:
                name = _string(task, l_name)
                if name:
                    parts.append(f"<library name={quoteattr(host_path(name))} "
                                 f'lm="{lm:#x}" l_addr="{l_addr:#x}" l_ld="{l_ld:#x}"/>')
            lm = l_next
    except KernelError:
        return EMPTY
    return (f'<library-list-svr4 version="1.0" main-lm="{main:#x}">'
            + "".join(parts) + "</library-list-svr4>").encode("utf-8", "surrogateescape")


def _string(task: Task, addr: int, limit: int = 4096) -> str:
    if not addr:
        return ""
    out = bytearray()
    while len(out) < limit:
        chunk = task.mm.read(addr + len(out), 64 - (addr + len(out)) % 64)
        nul = chunk.find(b"\0")
        if nul >= 0:
            out += chunk[:nul]
            break
        out += chunk
    return out.decode("utf-8", "surrogateescape")
