"""Our reading of property notes against binutils' readelf, on this machine's files
and on the marked/unmarked test libraries."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from test_elf_guests import IBT_ONLY, library, marked_greet, plain_greet

from shstk.elf.properties import read_cet_properties
from shstk.elf.reader import NotAnElf
from shstk.errors import BadElf

pytestmark = pytest.mark.skipif(shutil.which("readelf") is None, reason="needs readelf")


def readelf_properties(path: str) -> tuple[str, list[str]]:
    out = subprocess.run(["readelf", "-n", "-W", path], capture_output=True, text=True,
                         env={"LC_ALL": "C"}).stdout
    feature = re.search(r"x86 feature: (.*)", out)
    isa = re.search(r"x86 ISA needed: (.*)", out)
    return (feature.group(1).strip() if feature else "not marked",
            [s.strip() for s in isa.group(1).split(",")] if isa else [])


def sample_files() -> list[str]:
    files = []
    for directory in ("/usr/bin", "/usr/lib/x86_64-linux-gnu", "/lib64"):
        if os.path.isdir(directory):
            names = sorted(os.listdir(directory))
            files += [os.path.join(directory, n) for n in names[:: max(1, len(names) // 40)]]
    return files


def test_built_libraries_match_readelf():
    ibt = library("libgreet.c", "libgreet.so", mark=IBT_ONLY)
    for lib in (marked_greet(), plain_greet(), ibt):
        props = read_cet_properties(str(lib))
        assert (props.marking, props.isa_needed_names) == readelf_properties(str(lib))


def test_this_machines_files_match_readelf():
    compared = 0
    for path in sample_files():
        try:
            props = read_cet_properties(path)
        except (NotAnElf, BadElf):
            continue
        assert (props.marking, props.isa_needed_names) == readelf_properties(path), path
        compared += 1
    assert compared >= 20
