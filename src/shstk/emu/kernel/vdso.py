"""The vDSO (arch_setup_additional_pages): a small ELF shared object, linux-vdso.so.1,
mapped read+execute into every new image and named by AT_SYSINFO_EHDR, so that glibc's
clock_gettime, gettimeofday, time and getcpu call into it as on Linux.

The image (vdso/vdso.c, built by setup.py) makes the real system call in each function:
the emulated clock answers, `--virtual-time` included, and there is no data page
([vvar]). Without the image (no gcc at install time) no vDSO is mapped, as with vdso=0.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

from shstk.abi import mman as M
from shstk.emu.kernel.vma import PAGE, page_align

if TYPE_CHECKING:
    from shstk.emu.kernel.mm import AddressSpace

IMAGE_PATH = os.path.join(os.path.dirname(os.path.realpath(__file__)), "vdso", "linux-vdso.so.1")


@functools.cache
def image() -> bytes | None:
    try:
        with open(IMAGE_PATH, "rb") as f:
            data = f.read()
    except OSError:
        return None
    if data[:4] != b"\x7fELF":
        return None
    return data


def map_vdso(mm: AddressSpace) -> int:
    """Map the vDSO where the next top-down mapping goes (below the interpreter, as
    Linux places it); returns its address for AT_SYSINFO_EHDR, or 0 (none)."""
    data = image()
    if data is None:
        return 0
    size = max(2 * PAGE, page_align(len(data)))  # Linux's x86-64 vDSO is two pages
    addr = mm.get_unmapped_area(0, size, 0)
    mm.map_anonymous(addr, size, M.PROT_READ | M.PROT_EXEC, name="[vdso]")
    mm.write(addr, data, force=True)
    return addr
