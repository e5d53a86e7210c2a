"""shstk.audit"""
