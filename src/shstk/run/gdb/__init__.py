"""`shstk run --gdb`: a GDB remote-serial-protocol stub for the emulated machine."""
