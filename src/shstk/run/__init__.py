"""shstk.run"""
