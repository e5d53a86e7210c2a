"""execve(): load an ELF program (and its interpreter) into a fresh address space.

Follows fs/binfmt_elf.c without address randomization: ET_EXEC at its addresses, a PIE
at ELF_ET_DYN_BASE, the interpreter and static PIEs top-down below the stack gap; the
initial stack laid out as create_elf_tables() does (strings, AT_RANDOM bytes, platform,
then argc/argv/envp/auxv), registers cleared as ELF_PLAT_INIT does.
"""

from __future__ import annotations

import os
import stat as st
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from shstk.abi import auxv as AT
from shstk.abi import elf as EL
from shstk.abi import errno as E
from shstk.abi import mman as M
from shstk.abi import signals as S
from shstk.elf.properties import gnu_property_segment_view
from shstk.elf.reader import ElfImage as ReadElf
from shstk.elf.reader import NotAnElf, Segment
from shstk.emu.kernel import futex, policy, posix_timers, ptrace, shstk, vdso
from shstk.emu.kernel.errors import KernelError
from shstk.emu.kernel.mm import (
    ELF_ET_DYN_BASE,
    PAGE,
    STACK_RESERVE_MAX,
    VM_GROWSDOWN,
    AddressSpace,
    FileRef,
    page_align,
    page_down,
)
from shstk.emu.kernel.process import release_mm
from shstk.emu.kernel.task import State, TaskList
from shstk.errors import BadElf

if TYPE_CHECKING:
    from shstk.emu.kernel.kernel import Kernel
    from shstk.emu.kernel.task import Task

INITIAL_STACK = 132 * 1024
MAX_INTERP_DEPTH = 4  # #! scripts may name interpreters that are scripts, up to this deep
PLATFORM = b"x86_64"

PATH_MAX = 4096


@dataclass
class Phdr:
    """One program header of the ELF file being loaded."""

    type: int
    flags: int
    offset: int
    vaddr: int
    filesz: int
    memsz: int
    align: int


@dataclass
class ExecImage:
    """What execve keeps of an ELF file (struct linux_binprm plus the load bias)."""

    guest_path: str
    host_path: str
    e_type: int
    entry: int
    phoff: int
    phnum: int
    phentsize: int
    phdrs: list[Phdr]
    interp: str | None = None
    bias: int = 0
    feature_1_and: int | None = None  # GNU_PROPERTY_X86_FEATURE_1_AND from PT_GNU_PROPERTY
    raw_head: bytes = field(default=b"", repr=False)


class ExecFormatError(KernelError):
    """ENOEXEC with the reason, for the command line's one-line error."""

    def __init__(self, why: str) -> None:
        super().__init__(E.ENOEXEC, why)


def read_elf(host_path: str, guest_path: str, fd: int) -> ExecImage:
    """load_elf_binary()'s checks, in its order, on the one ELF reader's view of the file.

    Everything is validated before it is used: an invalid program is ENOEXEC with the
    reason, never an exception from deeper down."""
    try:
        elf = ReadElf(host_path, fd=fd)
    except NotAnElf:
        raise ExecFormatError("not an ELF file") from None
    except BadElf as exc:
        raise ExecFormatError(exc.problem) from None
    with elf:
        return _exec_image(elf, host_path, guest_path)


def _exec_image(elf: ReadElf, host_path: str, guest_path: str) -> ExecImage:
    if elf.elfclass != 64:
        raise ExecFormatError("32-bit ELF (only x86-64 programs run)")
    if not elf.little_endian:
        raise ExecFormatError("big-endian ELF")
    if elf.e_machine != EL.EM_X86_64:
        raise ExecFormatError(f"ELF for another machine (e_machine {elf.e_machine})")
    if elf.e_type not in (EL.ET_EXEC, EL.ET_DYN):
        raise ExecFormatError(f"not an executable (ELF type {elf.e_type})")
    if not elf.segments:
        raise ExecFormatError("bad program header table")
    phdrs = [Phdr(g.ptype, g.flags, g.offset, g.vaddr, g.filesz, g.memsz, g.align)
             for g in elf.segments]
    img = ExecImage(guest_path, host_path, elf.e_type, elf.e_entry, elf.e_phoff, elf.e_phnum,
                    elf.e_phentsize, phdrs, raw_head=elf.head)
    _check_loads(phdrs, elf.size)
    img.interp = _interpreter(elf)
    props = [g for g in elf.segments if g.ptype == EL.PT_GNU_PROPERTY]
    if props:
        img.feature_1_and = _feature_1_and(elf, props[0])
    return img


def _check_loads(phdrs: list[Phdr], size: int) -> None:
    loads = [p for p in phdrs if p.type == EL.PT_LOAD]
    if not loads:
        raise ExecFormatError("no loadable segments")
    for p in loads:
        if p.filesz > p.memsz:
            raise ExecFormatError("bad PT_LOAD segment: p_filesz is larger than p_memsz")
        if p.offset + p.filesz > size:
            raise ExecFormatError("bad PT_LOAD segment: past the end of the file")
        if (p.vaddr - p.offset) % PAGE:
            raise ExecFormatError("bad PT_LOAD segment: p_vaddr and p_offset differ "
                                  "modulo the page size")
        if p.memsz > M.TASK_SIZE or p.vaddr >= M.TASK_SIZE or \
                p.vaddr + p.memsz >= M.TASK_SIZE:
            raise ExecFormatError("bad PT_LOAD segment: beyond the user address space")


def _interpreter(elf: ReadElf) -> str | None:
    """The first PT_INTERP, as load_elf_binary() reads it."""
    for seg in elf.segments:
        if seg.ptype != EL.PT_INTERP:
            continue
        if seg.filesz > PATH_MAX or seg.filesz < 2:
            raise ExecFormatError("bad PT_INTERP: its size is not 2 to 4096 bytes")
        try:
            raw = elf.read(seg.offset, seg.filesz, "PT_INTERP")
        except BadElf as exc:
            raise ExecFormatError(exc.problem) from None
        if not raw.endswith(b"\0"):
            raise ExecFormatError("bad PT_INTERP: not NUL-terminated")
        # the kernel opens the C string: a NUL inside ends the name there
        return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
    return None


def _feature_1_and(elf: ReadElf, seg: Segment) -> int | None:
    """GNU_PROPERTY_X86_FEATURE_1_AND of the PT_GNU_PROPERTY segment, read as ld.so does."""
    try:
        data = elf.segment_bytes(seg)
    except BadElf:
        return None
    view = gnu_property_segment_view(data, seg.align)
    return view.seen.feature_1_and if view.found else None


# ---------------------------------------------------------------------------------------

@dataclass
class Program:
    """What execve found: the image, its interpreter, and the argv after #! rewriting."""

    image: ExecImage
    interp: ExecImage | None
    argv: list[bytes]
    fd: int
    interp_fd: int
    filename: str = ""


def _open_executable(k: Kernel, t: Task, path: str) -> tuple[str, str, int]:
    node = k.vfs.resolve(t.proc.fs.cwd, path, task=t)
    if node.host is None:
        raise KernelError(E.EACCES)
    try:
        s = os.stat(node.host)
    except OSError:
        raise KernelError(E.ENOENT) from None
    if st.S_ISDIR(s.st_mode) or not st.S_ISREG(s.st_mode):
        raise KernelError(E.EACCES)
    if not os.access(node.host, os.X_OK):
        raise KernelError(E.EACCES)
    try:
        fd = os.open(node.host, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise KernelError(exc.errno or E.EACCES) from None
    return node.guest, node.host, fd


def prepare(k: Kernel, t: Task, path: str, argv: list[bytes], depth: int = 0) -> Program:
    """Everything that can still fail: after this, the old image is gone."""
    guest, host, fd = _open_executable(k, t, path)
    try:
        head = os.pread(fd, 256, 0)
        if head.startswith(b"#!"):
            if depth >= MAX_INTERP_DEPTH:
                raise KernelError(E.ELOOP)
            # binfmt_script: the first line, read as a C string
            line = head[2:].split(b"\n", 1)[0].split(b"\0", 1)[0].strip()
            if not line:
                raise KernelError(E.ENOEXEC)
            parts = line.split(None, 1)
            interp = parts[0]
            new_argv = [interp, *parts[1:], path.encode(), *argv[1:]]
            os.close(fd)
            fd = -1
            return prepare(k, t, os.fsdecode(interp), new_argv, depth + 1)
        image = read_elf(host, guest, fd)
        interp_image: ExecImage | None = None
        interp_fd = -1
        if image.interp is not None:
            ig, ih, interp_fd = _open_executable(k, t, image.interp)
            try:
                interp_image = read_elf(ih, ig, interp_fd)
            except KernelError:
                os.close(interp_fd)
                raise
            if interp_image.interp:
                os.close(interp_fd)
                raise ExecFormatError("the program interpreter has an interpreter itself")
        return Program(image, interp_image, argv, fd, interp_fd)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise


def execve(k: Kernel, t: Task, path: str, argv: list[bytes], envp: list[bytes], *,
           initial: bool = False) -> None:
    prog = prepare(k, t, path, argv)
    prog.filename = path  # bprm->filename: AT_EXECFN and the top of the stack
    try:
        _replace_image(k, t, prog, envp, initial)
    finally:
        os.close(prog.fd)
        if prog.interp_fd >= 0:
            os.close(prog.interp_fd)


def _replace_image(k: Kernel, t: Task, prog: Program, envp: list[bytes], initial: bool) -> None:
    proc = t.proc
    if not initial:
        _flush_old_exec(k, t)
    cpu = proc.cpu
    mm = proc.mm
    img = prog.image
    load_bias, brk = _map_image(k, mm, img, prog.fd, is_interp=False,
                                has_interp=prog.interp is not None)
    img.bias = load_bias
    entry = img.entry + load_bias
    interp_base = 0
    if prog.interp is not None:
        interp_base, _ = _map_image(k, mm, prog.interp, prog.interp_fd, is_interp=True,
                                    has_interp=False)
        prog.interp.bias = interp_base
        entry = prog.interp.entry + interp_base
        interp_base += min(p.vaddr for p in prog.interp.phdrs if p.type == EL.PT_LOAD) & ~0xFFF
    mm.start_brk = mm.brk = brk
    vdso_addr = vdso.map_vdso(mm)  # arch_setup_additional_pages()
    proc.exe = img.guest_path
    proc.exe_host = img.host_path
    proc.argv = list(prog.argv)
    proc.comm = os.path.basename(img.guest_path)[:15]
    t.comm = proc.comm
    sp = _setup_stack(k, t, mm, img, load_bias, interp_base, entry, prog.argv, envp,
                      prog.filename or img.guest_path, vdso_addr)
    _set_entry_registers(cpu, entry, sp)
    proc.image = img
    proc.interp_image = prog.interp
    policy.apply_loader_policy(k, t, img, prog.interp, envp)
    if not initial:
        ptrace.after_exec(k, t)


def _flush_old_exec(k: Kernel, t: Task) -> None:
    """begin_new_exec(): other threads die, the old mm goes, per-exec state resets."""
    proc = t.proc
    for other in list(proc.threads):
        if other is not t and other.state not in (State.ZOMBIE, State.DEAD):
            k.exit_thread(other, 0)
    proc.threads = TaskList([t])
    if t.tid != proc.pid:
        # the exec'ing thread takes over the thread-group leader's id
        k.tasks.pop(t.tid, None)
        t.tid = proc.pid
        k.tasks[t.tid] = t
    k.release_vfork(t)
    futex.exit_robust_list(k, t)  # exec_mm_release()
    old_cpu = proc.cpu
    old_mm = proc.mm
    cpu = k.new_cpu()
    mm = AddressSpace(cpu, stack_rlimit=min(k.rlimit_stack(t), M.TASK_SIZE))
    proc.cpu = cpu
    proc.mm = mm
    cpu.current = t
    if k.debugger is not None:
        k.debugger.new_engine(proc)  # `run --gdb` follows the exec
    t.ctx = None
    t.cet_state = (0, 0, 0, 0, 0, 0)
    shstk.reset_on_exec(t)
    release_mm(k, old_mm, old_cpu)
    # handlers go back to default; ignored signals stay ignored
    for act in proc.sighand.actions.values():
        if act.handler != S.SIG_IGN:
            act.handler = S.SIG_DFL
            act.flags = 0
            act.mask = 0
            act.restorer = 0
    t.altstack = (0, S.SS_DISABLE, 0)
    t.clear_child_tid = 0
    t.robust_list = (0, 0)
    proc.files.close_on_exec()
    posix_timers.drop_process(k, proc)  # begin_new_exec(): exit_itimers()


def _map_image(k: Kernel, mm: AddressSpace, img: ExecImage, fd: int, *, is_interp: bool,
               has_interp: bool) -> tuple[int, int]:
    """elf_map() each PT_LOAD, zero the bss; returns (load bias, end of the image)."""
    loads = [p for p in img.phdrs if p.type == EL.PT_LOAD]
    first = page_down(loads[0].vaddr)
    last = max(page_align(p.vaddr + p.memsz) for p in loads)
    bias = 0
    if img.e_type == EL.ET_DYN:
        if not is_interp and has_interp:
            bias = ELF_ET_DYN_BASE - first
        else:
            # the interpreter and a static PIE: top-down, like an mmap of the whole image
            bias = mm.get_unmapped_area(0, last - first, 0) - first
    s = os.fstat(fd)
    ref = FileRef(img.guest_path, s.st_dev, s.st_ino, img.host_path)
    end = 0
    for p in loads:
        prot = (M.PROT_READ if p.flags & EL.PF_R else 0) | \
            (M.PROT_WRITE if p.flags & EL.PF_W else 0) | (M.PROT_EXEC if p.flags & EL.PF_X else 0)
        start = page_down(p.vaddr + bias)
        file_end = p.vaddr + bias + p.filesz
        mem_end = page_align(p.vaddr + bias + p.memsz)
        map_end = page_align(file_end) if p.filesz else start
        if map_end > start:
            mm.unmap(start, map_end)
            mm.map_file(start, map_end - start, prot, fd, page_down(p.offset), shared=False,
                        fd_writable=False, file=ref, file_size=s.st_size)
            if p.memsz > p.filesz and file_end < map_end:
                # padzero(): the rest of the last file page belongs to the bss
                mm.write(file_end, bytes(map_end - file_end), force=True)
        if mem_end > map_end:
            mm.unmap(map_end, mem_end)
            mm.map_anonymous(map_end, mem_end - map_end, prot)
        end = max(end, mem_end)
    return bias, end


def _setup_stack(k: Kernel, t: Task, mm: AddressSpace, img: ExecImage, bias: int,
                 interp_base: int, entry: int, argv: list[bytes], envp: list[bytes],
                 filename: str, vdso_addr: int = 0) -> int:
    limit = k.rlimit_stack(t)
    reserve = max(INITIAL_STACK, min(limit, STACK_RESERVE_MAX))
    top = mm.stack_top
    mm.map_anonymous(top - INITIAL_STACK, INITIAL_STACK, M.PROT_READ | M.PROT_WRITE,
                     extra_flags=VM_GROWSDOWN, name="[stack]", reserve=reserve)
    p = top - 8  # bprm->p starts one pointer below the top
    execfn = os.fsencode(filename)
    p -= len(execfn) + 1
    execfn_addr = p
    mm.write(p, execfn + b"\0")
    env_ptrs = []
    env_end = p
    for s in reversed(envp):
        p -= len(s) + 1
        mm.write(p, s + b"\0")
        env_ptrs.append(p)
    env_ptrs.reverse()
    arg_ptrs = []
    arg_end = p
    for s in reversed(argv):
        p -= len(s) + 1
        mm.write(p, s + b"\0")
        arg_ptrs.append(p)
    arg_ptrs.reverse()
    mm.arg_start, mm.arg_end = p, arg_end
    mm.env_start, mm.env_end = arg_end, env_end
    p &= ~0xF
    p -= len(PLATFORM) + 1
    platform_addr = p
    mm.write(p, PLATFORM + b"\0")
    p -= 16
    random_addr = p
    mm.write(p, k.random_bytes(16))
    cpu = t.cpu
    phdr_addr = _phdr_address(img) + bias
    hwcap = cpu.cpuid(1)[3]
    auxv = [(AT.AT_SYSINFO_EHDR, vdso_addr)] if vdso_addr else []  # ARCH_DLINFO first
    auxv += [
        (AT.AT_MINSIGSTKSZ, S.MINSIGSTKSZ),
        (AT.AT_HWCAP, hwcap), (AT.AT_PAGESZ, PAGE), (AT.AT_CLKTCK, 100),
        (AT.AT_PHDR, phdr_addr), (AT.AT_PHENT, img.phentsize), (AT.AT_PHNUM, img.phnum),
        (AT.AT_BASE, interp_base), (AT.AT_FLAGS, 0), (AT.AT_ENTRY, img.entry + bias),
        (AT.AT_UID, t.proc.uid), (AT.AT_EUID, t.proc.euid), (AT.AT_GID, t.proc.gid),
        (AT.AT_EGID, t.proc.egid), (AT.AT_SECURE, 0), (AT.AT_RANDOM, random_addr),
        (AT.AT_HWCAP2, 0), (AT.AT_EXECFN, execfn_addr), (AT.AT_PLATFORM, platform_addr),
        (AT.AT_NULL, 0),
    ]
    items = 1 + len(arg_ptrs) + 1 + len(env_ptrs) + 1 + 2 * len(auxv)
    sp = (p - items * 8) & ~0xF
    words = [len(argv), *arg_ptrs, 0, *env_ptrs, 0]
    # unsigned long arithmetic: e_entry + load bias may wrap, as in Linux
    auxv = [(key, value & 0xFFFFFFFFFFFFFFFF) for key, value in auxv]
    for key, value in auxv:
        words += [key, value]
    mm.write(sp, struct.pack(f"<{len(words)}Q", *(w & 0xFFFFFFFFFFFFFFFF for w in words)))
    t.proc.auxv = struct.pack(f"<{2 * len(auxv)}Q", *(x for kv in auxv for x in kv))
    mm.start_stack = sp
    return sp


def _phdr_address(img: ExecImage) -> int:
    for p in img.phdrs:
        if p.type == EL.PT_PHDR:
            return p.vaddr
    for p in img.phdrs:
        if p.type == EL.PT_LOAD and p.offset <= img.phoff < p.offset + p.filesz:
            return p.vaddr + (img.phoff - p.offset)
    return 0


def _set_entry_registers(cpu: object, entry: int, sp: int) -> None:
    regs = {name: 0 for name in ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "r8", "r9",
                                 "r10", "r11", "r12", "r13", "r14", "r15", "fs_base",
                                 "gs_base")}
    # the FPU/SSE state of a new image is the architectural init state (fpu__clear)
    regs.update(rsp=sp, rip=entry, eflags=0x202, fpcw=0x37F, mxcsr=0x1F80, fpsw=0,
                fptag=0xFFFF)
    cpu.load_regs(regs)  # type: ignore[attr-defined]
