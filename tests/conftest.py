from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from guestbuild import compile_guest


@pytest.fixture(scope="session")
def build():
    """`build(source, flags=..., name=...)` compiles a guest program (cached)."""
    return compile_guest
