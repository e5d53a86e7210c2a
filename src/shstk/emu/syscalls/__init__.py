"""shstk.emu.syscalls"""
