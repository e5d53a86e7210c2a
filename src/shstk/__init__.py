"""shstk: run, test and audit Linux user-space shadow stacks (x86 CET SHSTK).

Importing the package is cheap on purpose: the emulator (Unicorn, capstone) is only
loaded by the commands that need it.
"""

__version__ = "0.1.0"
