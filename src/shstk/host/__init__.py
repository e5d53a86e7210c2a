"""shstk.host"""
