"""Small helpers for system-call handlers: argument conversions and guest structs."""

from __future__ import annotations

MASK64 = (1 << 64) - 1


def i32(v: int) -> int:
    """A register as a C `int`."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & (1 << 31) else v


def i64(v: int) -> int:
    """A register as a C `long`."""
    v &= MASK64
    return v - (1 << 64) if v & (1 << 63) else v


def u32(v: int) -> int:
    return v & 0xFFFFFFFF
