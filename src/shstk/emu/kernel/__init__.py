"""shstk.emu.kernel"""
