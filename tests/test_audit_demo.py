"""The `make demo` audit steps build what they promise: one ready program, one blocked
by its unmarked library."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from shstk.audit.scan import scan

DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo.py"


@pytest.fixture(scope="module")
def demo_module():
    spec = importlib.util.spec_from_file_location("shstk_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_demo_examples_are_one_ready_and_one_blocked(demo_module, tmp_path, capfd):
    demo = demo_module.Demo(build=tmp_path)
    demo_module.build_audit_examples(demo)
    demo_module.run_audit_examples(demo)
    assert capfd.readouterr().out.count("hello from libgreet.so") == 2
    result = scan([str(tmp_path / "ready" / "hello"), str(tmp_path / "blocked" / "hello")])
    ready, blocked = result.programs
    assert ready.verdict.status == "ready"
    assert blocked.verdict.status == "blocked"
    assert [o.path for o in blocked.verdict.blockers] == [
        str(tmp_path / "blocked" / "libgreet.so")]


def test_demo_steps_are_listed_in_order(demo_module):
    names = [step.__name__ for step in demo_module.STEPS]
    assert names.index("build_audit_examples") < names.index("audit_examples")
