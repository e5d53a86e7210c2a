"""shstk.emu"""
