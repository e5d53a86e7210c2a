"""Numbers and layouts of the Linux x86-64 ABI. Constants only; no logic."""
