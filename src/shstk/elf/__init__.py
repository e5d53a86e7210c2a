"""shstk.elf"""
