# shstk: `make demo` and `make test` set everything up on a fresh machine.
# Prerequisites: Python 3.11+, gcc, make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: all bytecode demo test lint bench fuzz cet-glibc clean

all: $(STAMP)

# The virtualenv and the package (with its native fast path, built by pip).
$(STAMP): pyproject.toml setup.py src/shstk/emu/cpu/fastpath.c $(wildcard src/shstk/emu/kernel/vdso/*.c src/shstk/emu/kernel/vdso/*.lds)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

# Byte-compile once, so that start-up never recompiles (PYTHONDONTWRITEBYTECODE may be
# set, and then the interpreter never writes .pyc files itself); the same for the methods
# @dataclass compiles.
bytecode: $(STAMP)
	@$(PY) -m compileall -q src
	@$(PY) -c 'import shstk.cli, shstk.run.runner, shstk.audit'  # dataclass code (cli/dccache.py)

demo: bytecode
	$(PY) examples/demo.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

# ruff, the layer contract (import-linter), the type checker, then every test.
test: bytecode
	command -v gdb >/dev/null || (apt-get install -y gdb >/dev/null 2>&1 || true)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest -n 2 --dist loadgroup -q -rs

# Long fuzzing runs with a random seed (FUZZ_SEED, FUZZ_ITERATIONS, ELF_MUTANTS to
# choose): every system call in the table with hostile arguments, then ELF mutants of a
# static and a dynamic program and a shared object. An internal error prints a reproducer.
fuzz: bytecode
	cd tests && ../$(PY) test_fuzz_syscalls.py
	seed=$${FUZZ_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; echo "ELF mutants: FUZZ_SEED=$$seed"; \
	FUZZ_SEED=$$seed ELF_MUTANTS=$${ELF_MUTANTS:-1000} $(VENV)/bin/pytest -q tests/test_fuzz_elf_run.py

bench: bytecode
	$(PY) -m pip install -q 'matplotlib>=3.7'
	$(PY) bench/run_all.py
	$(PY) bench/bench_hostmem.py

# A glibc built with --enable-cet, from Debian's source package (only needed when
# ../shared/glibc-cet/glibc-cet-2.41.tar.xz is absent; the CET-glibc tests skip otherwise).
cet-glibc:
	scripts/build-cet-glibc.sh

clean:
	rm -rf $(VENV) build src/*.egg-info src/shstk/emu/cpu/*.so
