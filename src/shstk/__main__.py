from shstk.cli import entry

entry()
