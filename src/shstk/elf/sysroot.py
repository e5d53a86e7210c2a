"""Paths as a program inside a (possibly foreign) root file system sees them.

A "guest" path is absolute inside the root ("/usr/lib/libc.so.6"); the "host" path is
where that file is on this machine ("/srv/debian/usr/lib/libc.so.6"). Symbolic links are
resolved inside the root, the way chroot would: an absolute link target starts again at
the root, and ".." never leaves it. With the root "/" guest and host paths coincide.
"""

from __future__ import annotations

import os
import stat

_MAX_SYMLINKS = 40  # Linux's limit (MAXSYMLINKS)


class Sysroot:
    def __init__(self, root: str = "/") -> None:
        real = os.path.realpath(root)
        self.root = real.rstrip("/") or "/"
        self._prefix = "" if self.root == "/" else self.root
        self._resolved: dict[str, str | None] = {}
        self._listings: dict[str, frozenset[str] | None] = {}

    @property
    def is_host(self) -> bool:
        return self.root == "/"

    def host(self, guest: str) -> str:
        """Host path of a guest path (no symlink resolution)."""
        if not guest.startswith("/"):
            guest = "/" + guest
        return self._prefix + guest if self._prefix else guest

    def guest(self, host: str) -> str:
        """Guest path of a host path inside the root (unchanged when outside it)."""
        host = os.path.abspath(host)
        if not self._prefix:
            return host
        if host == self._prefix:
            return "/"
        if host.startswith(self._prefix + "/"):
            return host[len(self._prefix):]
        return host

    def contains(self, host: str) -> bool:
        host = os.path.abspath(host)
        return not self._prefix or host == self._prefix or host.startswith(self._prefix + "/")

    def resolve(self, guest: str) -> str | None:
        """Canonical guest path with every symlink resolved inside the root, or None
        when the path does not exist (dangling link, missing component, loop)."""
        if guest in self._resolved:
            return self._resolved[guest]
        result = self._resolve_host(guest) if self.is_host else self._resolve_rooted(guest)
        self._resolved[guest] = result
        return result

    def listdir(self, guest_dir: str) -> frozenset[str] | None:
        """Names in a guest directory (cached), None if it is not a readable directory.

        ld.so probes the same few directories for every library; one listing per
        directory turns thousands of failed open() calls into set lookups.
        """
        key = guest_dir.rstrip("/") or "/"
        if key not in self._listings:
            try:
                self._listings[key] = frozenset(os.listdir(self.host(key)))
            except OSError:
                self._listings[key] = None
        return self._listings[key]

    def _resolve_host(self, guest: str) -> str | None:
        try:
            real = os.path.realpath(guest, strict=True)
        except (OSError, RuntimeError, ValueError):
            return None
        return real

    def _resolve_rooted(self, guest: str) -> str | None:
        pending = [p for p in reversed(guest.split("/")) if p]
        done: list[str] = []
        links = 0
        while pending:
            part = pending.pop()
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            candidate = "/" + "/".join([*done, part])
            try:
                st = os.lstat(self.host(candidate))
            except (OSError, ValueError):
                return None
            if stat.S_ISLNK(st.st_mode):
                links += 1
                if links > _MAX_SYMLINKS:
                    return None
                try:
                    target = os.readlink(self.host(candidate))
                except OSError:
                    return None
                if target.startswith("/"):
                    done = []
                pending.extend(p for p in reversed(target.split("/")) if p)
                continue
            done.append(part)
        return "/" + "/".join(done)
