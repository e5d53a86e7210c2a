"""The synthetic /sys: only what the emulated kernel implements, never the host's.

- /sys/bus/event_source/devices/uprobe/{type, format/retprobe, format/ref_ctr_offset}:
  the uprobe PMU of perf.py (the only PMU this kernel has);
- /sys/devices/system/cpu/{online, possible, present}: the emulated CPUs (glibc's
  get_nprocs reads `online`), matching /proc/cpuinfo and sched_getaffinity.

Anything else under /sys does not exist (ENOENT), as on a kernel without it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from shstk.abi import fs as F
from shstk.emu.kernel.vfs import ProcEntry

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel

UPROBE_PMU_TYPE = 7  # the first dynamic PMU type after PERF_TYPE_MAX (6): "uprobe"
UPROBE_RETPROBE_BIT = 0


def _ino(path: str) -> int:
    import zlib  # only /sys lookups need it: not at every start-up

    return 0x5F000000 + (zlib.crc32(path.encode()) & 0xFFFFFF)


class SysFs:
    def __init__(self, kernel: Kernel) -> None:
        self.k = kernel

    def _tree(self) -> dict[str, bytes | None]:
        """Guest path below /sys -> file content (None: a directory)."""
        cpus = f"0-{self.k.ncpus - 1}\n" if self.k.ncpus > 1 else "0\n"
        uprobe = "bus/event_source/devices/uprobe"
        return {
            "": None,
            "bus": None,
            "bus/event_source": None,
            "bus/event_source/devices": None,
            uprobe: None,
            f"{uprobe}/type": f"{UPROBE_PMU_TYPE}\n".encode(),
            f"{uprobe}/format": None,
            f"{uprobe}/format/retprobe": f"config:{UPROBE_RETPROBE_BIT}\n".encode(),
            f"{uprobe}/format/ref_ctr_offset": b"config:32-63\n",
            "devices": None,
            "devices/system": None,
            "devices/system/cpu": None,
            "devices/system/cpu/online": cpus.encode(),
            "devices/system/cpu/possible": cpus.encode(),
            "devices/system/cpu/present": cpus.encode(),
        }

    def lookup(self, comps: list[str], task: object) -> ProcEntry | None:
        tree = self._tree()
        path = "/".join(comps)
        if path not in tree:
            return None
        content = tree[path]
        if content is None:
            return ProcEntry("dir", entries=self._lister(tree, path), ino=_ino(path))
        data = content
        return ProcEntry("file", content=lambda: data, ino=_ino(path))

    @staticmethod
    def _lister(tree: dict[str, bytes | None], path: str
                ) -> Callable[[], list[tuple[int, int, str]]]:
        def entries() -> list[tuple[int, int, str]]:
            prefix = path + "/" if path else ""
            out = [(_ino(path), F.DT_DIR, "."), (_ino(path), F.DT_DIR, "..")]
            for p, c in sorted(tree.items()):
                if p.startswith(prefix) and p != path and "/" not in p[len(prefix):]:
                    out.append((_ino(p), F.DT_DIR if c is None else F.DT_REG,
                                p[len(prefix):]))
            return out
        return entries


__all__ = ["UPROBE_PMU_TYPE", "UPROBE_RETPROBE_BIT", "SysFs"]
