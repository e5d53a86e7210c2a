"""The target description gdb reads (qXfer:features:read:target.xml) and the register
file behind `g`/`p`/`P`: x86-64 general, segment, x87, SSE and Linux registers,
fs_base/gs_base and the shadow-stack pointer `pl3_ssp` (org.gnu.gdb.i386.pl3_ssp, as
gdb 15+ describes Linux CET; older gdb shows it by name)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from shstk.emu.cpu.interface import RegDump

GPRS = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp",
        "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
# user-mode selectors of a 64-bit Linux process
SELECTORS = {"cs": 0x33, "ss": 0x2B, "ds": 0, "es": 0, "fs": 0, "gs": 0}
X87_CONTROL = ("fctrl", "fstat", "ftag", "fiseg", "fioff", "foseg", "fooff", "fop")


@dataclass(frozen=True)
class Reg:
    """One register of the target description gdb is given."""

    name: str
    bits: int
    type: str
    feature: str


def _table() -> list[Reg]:
    core, sse = "org.gnu.gdb.i386.core", "org.gnu.gdb.i386.sse"
    regs = [Reg(n, 64, "int64", core) for n in GPRS]
    regs[6] = Reg("rbp", 64, "data_ptr", core)
    regs[7] = Reg("rsp", 64, "data_ptr", core)
    regs.append(Reg("rip", 64, "code_ptr", core))
    regs.append(Reg("eflags", 32, "i386_eflags", core))
    regs += [Reg(n, 32, "int32", core) for n in SELECTORS]
    regs += [Reg(f"st{i}", 80, "i387_ext", core) for i in range(8)]
    regs += [Reg(n, 32, "int", core) for n in X87_CONTROL]
    regs += [Reg(f"xmm{i}", 128, "vec128", sse) for i in range(16)]
    regs.append(Reg("mxcsr", 32, "i386_mxcsr", sse))
    regs.append(Reg("orig_rax", 64, "int", "org.gnu.gdb.i386.linux"))
    regs.append(Reg("fs_base", 64, "int", "org.gnu.gdb.i386.segments"))
    regs.append(Reg("gs_base", 64, "int", "org.gnu.gdb.i386.segments"))
    regs.append(Reg("pl3_ssp", 64, "data_ptr", "org.gnu.gdb.i386.pl3_ssp"))
    return regs


REGS = _table()
INDEX = {r.name: i for i, r in enumerate(REGS)}

_TYPES = {
    "org.gnu.gdb.i386.core": """
  <flags id="i386_eflags" size="4">
    <field name="CF" start="0" end="0"/><field name="" start="1" end="1"/>
    <field name="PF" start="2" end="2"/><field name="AF" start="4" end="4"/>
    <field name="ZF" start="6" end="6"/><field name="SF" start="7" end="7"/>
    <field name="TF" start="8" end="8"/><field name="IF" start="9" end="9"/>
    <field name="DF" start="10" end="10"/><field name="OF" start="11" end="11"/>
    <field name="AC" start="18" end="18"/><field name="ID" start="21" end="21"/>
  </flags>""",
    "org.gnu.gdb.i386.sse": """
  <vector id="v8bf16" type="bfloat16" count="8"/>
  <vector id="v4f" type="ieee_single" count="4"/>
  <vector id="v2d" type="ieee_double" count="2"/>
  <vector id="v16i8" type="int8" count="16"/>
  <vector id="v8i16" type="int16" count="8"/>
  <vector id="v4i32" type="int32" count="4"/>
  <vector id="v2i64" type="int64" count="2"/>
  <union id="vec128">
    <field name="v4_float" type="v4f"/><field name="v2_double" type="v2d"/>
    <field name="v16_int8" type="v16i8"/><field name="v8_int16" type="v8i16"/>
    <field name="v4_int32" type="v4i32"/><field name="v2_int64" type="v2i64"/>
    <field name="uint128" type="uint128"/>
  </union>
  <flags id="i386_mxcsr" size="4">
    <field name="IE" start="0" end="0"/><field name="DE" start="1" end="1"/>
    <field name="ZE" start="2" end="2"/><field name="OE" start="3" end="3"/>
    <field name="UE" start="4" end="4"/><field name="PE" start="5" end="5"/>
    <field name="DAZ" start="6" end="6"/><field name="IM" start="7" end="7"/>
    <field name="DM" start="8" end="8"/><field name="ZM" start="9" end="9"/>
    <field name="OM" start="10" end="10"/><field name="UM" start="11" end="11"/>
    <field name="PM" start="12" end="12"/><field name="FZ" start="15" end="15"/>
  </flags>""",
}


def target_xml() -> bytes:
    parts = ['<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n<target>\n'
             "  <architecture>i386:x86-64</architecture>\n  <osabi>GNU/Linux</osabi>\n"]
    feature = None
    for i, r in enumerate(REGS):
        if r.feature != feature:
            if feature is not None:
                parts.append("</feature>\n")
            feature = r.feature
            parts.append(f'<feature name="{feature}">{_TYPES.get(feature, "")}\n')
        group = ' group="float"' if r.name.startswith("st") or r.name in X87_CONTROL else ""
        group = ' group="vector"' if r.name.startswith("xmm") else group
        parts.append(f'  <reg name="{r.name}" bitsize="{r.bits}" type="{r.type}" '
                     f'regnum="{i}"{group}/>\n')
    parts.append("</feature>\n</target>\n")
    return "".join(parts).encode()


def read_all(d: RegDump, ssp: int) -> list[bytes]:
    """Every register of one thread (`d` its RegDump, `ssp` its shadow-stack pointer),
    in REGS order, as target bytes."""
    out: list[int] = [cast(int, d[name]) for name in GPRS]
    out += [cast(int, d["rip"]), cast(int, d["eflags"])]
    out += list(SELECTORS.values())
    vals: list[bytes] = [v.to_bytes(8 if i < 17 else 4, "little")
                         for i, v in enumerate(out)]
    for mant, exp in cast(list[tuple[int, int]], d["fp"]):
        vals.append(mant.to_bytes(8, "little") + (exp & 0xFFFF).to_bytes(2, "little"))
    ctl = [cast(int, d.get(k, v)) for k, v in (("fpcw", 0x37F), ("fpsw", 0),
                                                ("fptag", 0xFFFF))] + [0] * 5
    vals += [v.to_bytes(4, "little") for v in ctl]
    vals += [x.to_bytes(16, "little") for x in cast(list[int], d["xmm"])]
    vals.append(cast(int, d.get("mxcsr", 0x1F80)).to_bytes(4, "little"))
    vals.append((-1 & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"))  # orig_rax
    vals.append(cast(int, d["fs_base"]).to_bytes(8, "little"))
    vals.append(cast(int, d["gs_base"]).to_bytes(8, "little"))
    vals.append(ssp.to_bytes(8, "little"))
    return vals


def update(d: RegDump, index: int, raw: bytes) -> RegDump | None:
    """What setting register `index` (not pl3_ssp) from target bytes changes in a
    thread's RegDump `d`: the keys to load; None when it cannot be changed (gdb's
    writes to the fixed selectors and orig_rax are accepted and ignored: {})."""
    name = REGS[index].name
    value = int.from_bytes(raw, "little")
    if name in GPRS or name in ("rip", "eflags", "fs_base", "gs_base", "mxcsr"):
        return {name: value}
    if name.startswith("xmm"):
        xmm = list(cast(list[int], d["xmm"]))
        xmm[int(name[3:])] = value
        return {"xmm": xmm}
    if name.startswith("st"):
        fp = list(cast(list[tuple[int, int]], d["fp"]))
        fp[int(name[2:])] = (int.from_bytes(raw[:8], "little"),
                             int.from_bytes(raw[8:10], "little"))
        return {"fp": fp}
    if name in ("fctrl", "fstat", "ftag"):
        return {{"fctrl": "fpcw", "fstat": "fpsw", "ftag": "fptag"}[name]: value}
    if name in SELECTORS or name == "orig_rax" or name in X87_CONTROL:
        return {}
    return None
