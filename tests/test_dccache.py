"""The start-up cache of @dataclass's compiled methods (shstk/cli/dccache.py).

What a user relies on: classes made through the cache behave exactly as without it
(construction, defaults, repr, equality, frozen), and a second start-up compiles
nothing the first one did (that is the whole point: ~1/5 of a static hello's start-up).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from shstk.cli import dccache


def _define():
    @dataclasses.dataclass
    class Point:
        x: int
        y: int = 2
        tags: list = dataclasses.field(default_factory=list)

    @dataclasses.dataclass(frozen=True)
    class Frozen:
        a: str

    return Point, Frozen


@pytest.fixture
def scratch_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(dccache, "_PATH", str(tmp_path / "__pycache__" / "dc.marshal"))
    monkeypatch.setattr(dccache, "_cache", {})
    monkeypatch.setattr(dccache, "_used", {})
    monkeypatch.setattr(dccache, "_state", {"new": False})
    monkeypatch.setattr(dataclasses, "exec", dccache._exec, raising=False)
    return tmp_path


def _behaviour(point, frozen):
    p = point(1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        frozen("a").a = "b"  # type: ignore[misc]
    return (repr(p), p == point(1), p == point(1, 3), p.tags is point(1).tags,
            repr(frozen("a")), hash(frozen("a")) == hash(frozen("a")))


def test_classes_behave_as_without_the_cache(scratch_cache, monkeypatch):
    cached = _behaviour(*_define())
    first = dict(dccache._cache)
    assert first and dccache._state["new"]
    dccache._save()
    dccache._cache.clear()
    dccache._state["new"] = False
    dccache._load()
    assert dccache._cache.keys() == first.keys()
    again = _behaviour(*_define())  # from the file this time
    assert not dccache._state["new"]
    monkeypatch.delattr(dataclasses, "exec")
    plain = _behaviour(*_define())
    assert cached == again == plain
    assert plain[:3] == ("_define.<locals>.Point(x=1, y=2, tags=[])", True, False)


def test_an_unreadable_cache_only_means_compiling(scratch_cache):
    path = scratch_cache / "__pycache__" / "dc.marshal"
    path.parent.mkdir()
    path.write_bytes(b"not marshal data")
    dccache._load()
    assert dccache._cache == {}
    point, _ = _define()
    assert point(5).y == 2 and dccache._state["new"]


def test_a_second_start_compiles_nothing():
    # importing shstk.cli installs the cache, as `shstk run` does
    code = ("from shstk.cli import dccache\n"
            "import shstk.run.runner\n"
            "print(len(dccache._used), dccache._state['new'])\n")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True,
                           text=True, check=True).stdout.split() for _ in range(2)]
    assert int(runs[0][0]) > 50  # the methods of the dataclasses on run's import path
    assert runs[1] == [runs[0][0], "False"]


_IMPORT_ALL = """
import importlib, os, sys
import shstk.cli, shstk  # first: as `shstk` does
import dataclasses
root = os.path.dirname(shstk.__file__)
names = sorted(os.path.relpath(os.path.join(d, f), os.path.dirname(root))[:-3]
               .replace("/", ".").removesuffix(".__init__")
               for d, _, files in os.walk(root) for f in files
               if f.endswith(".py") and f != "__main__.py")
modules = [importlib.import_module(n) for n in names]
print("inspect imported" if "inspect" in sys.modules else "inspect not imported")
for m in modules:
    for v in vars(m).values():
        if (isinstance(v, type) and dataclasses.is_dataclass(v) and v.__module__ == m.__name__
                and (v.__doc__ or "").startswith(v.__name__ + "(")):  # written by dataclasses
            print(f"no docstring: {m.__name__}.{v.__name__}")
"""


def test_no_module_of_shstk_makes_dataclasses_import_inspect():
    # dataclasses imports inspect only to write a docstring for a class without one; with
    # one everywhere, start-up never pays for inspect, ast, dis and tokenize (~6 ms)
    out = subprocess.run([sys.executable, "-c", _IMPORT_ALL], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    assert out == ["inspect not imported"]
