"""Where the engines' native libraries are, and loading them on a second core at start-up.

Mapping and relocating Unicorn's library (24 MB: every architecture) takes about 6 ms,
capstone's about 2 ms: a tenth of a static hello world's start-up (issue 18). ctypes'
dlopen holds the GIL, so the fast path's `ss_preload` starts a thread of its own to
load them while Python imports the kernel; the ctypes.CDLL of the same paths later
finds them loaded (or waits for the dynamic loader's lock until they are), with the
same result either way. A failure here is ignored: the real load reports it.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys

UNICORN_NAMES = ("libunicorn.so.2", "libunicorn.so")
CAPSTONE_NAMES = ("libcapstone.so", "libcapstone.so.5")
# The standard library's extension modules a run imports: each import is a dlopen, which
# would wait for the dynamic loader's lock (holding the GIL) while Unicorn loads, so
# they are imported first. A module missing here costs time, never correctness.
_EXTENSIONS = ("_bisect", "_heapq", "fcntl", "resource", "select", "termios")


def _package_library(package: str, names: tuple[str, ...],
                     first: str | None = None) -> str | None:
    """The library a wheel installed in `package/lib`, found on sys.path as the packages
    themselves find it; the folder `first` before that."""
    dirs = ([first] if first else []) + [os.path.join(p or ".", package, "lib")
                                         for p in sys.path]
    for d in dirs:
        for name in names:
            path = os.path.join(d, name)
            if os.path.isfile(path):
                return path
    return None


@functools.cache  # asked at start-up (to preload) and again to load
def unicorn_library() -> str:
    """The installed `unicorn` package's library, LIBUNICORN_PATH first (as the package
    honours it); the dynamic linker's search as a last resort."""
    return (_package_library("unicorn", UNICORN_NAMES, os.environ.get("LIBUNICORN_PATH"))
            or UNICORN_NAMES[0])


@functools.cache  # asked at start-up (to preload) and again to load
def capstone_library() -> str | None:
    """The installed `capstone` package's library, or None."""
    return _package_library("capstone", CAPSTONE_NAMES)


@functools.cache  # asked at start-up (to preload) and again to load
def fastpath_library() -> str | None:
    """The built fast path (fastpath.c) beside this file, or None (os.listdir, not
    pathlib: pathlib's import is a few ms of every start-up)."""
    here = os.path.dirname(os.path.realpath(__file__))
    for name in sorted(os.listdir(here)):
        if name.startswith("_fastpath") and name.endswith(".so"):
            return os.path.join(here, name)
    return None


def start() -> None:
    """Begin loading Unicorn's and capstone's libraries on another thread (nothing
    without the fast path)."""
    fastpath = fastpath_library()
    if fastpath is None:
        return
    for name in _EXTENSIONS:
        __import__(name)
    paths = [unicorn_library(), capstone_library() or ""]
    packed = b"".join(os.fsencode(p) + b"\0" for p in paths if p)
    try:
        lib = ctypes.CDLL(fastpath)
        lib.ss_preload.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.ss_preload(packed, len(packed))
    except (OSError, AttributeError):
        pass  # an older build without ss_preload: the libraries load when used
