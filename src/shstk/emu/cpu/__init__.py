"""shstk.emu.cpu"""
