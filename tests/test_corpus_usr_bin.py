"""Differential test of everyday /usr/bin command lines (issue 16): each line of
tests/usrbin_corpus.py and of the second, independently written set
tests/usrbin_corpus2.py runs as `bash -c LINE` natively and as `shstk run --shstk off --rw
SCRATCH bash -c LINE`, in a scratch directory with a fixed environment (LC_ALL=C, TZ=UTC,
HOME=TMPDIR=SCRATCH), and stdout, stderr and exit status must be identical byte for byte.

A difference that stays is an xfail with its cause beside the line (strict: a line that
starts to pass shows as XPASS). All lines run concurrently on two threads in one xdist
worker (the module is one xdist group; `make test` uses --dist loadgroup): about 300 lines
take some 200 CPU-seconds (under two minutes on two idle cores).

Run this file with `-s` to see the summary: identical / differing / internal errors and the
median slowdown.
"""

from __future__ import annotations

import shutil
import statistics
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from usrbin_corpus import LINES as LINES1
from usrbin_corpus import Line, Outcome, missing, run_emulated, run_native
from usrbin_corpus2 import LINES2

LINES = LINES1 + LINES2
SECOND = {line.name for line in LINES2}

pytestmark = pytest.mark.xdist_group("usrbin_corpus")

Pair = tuple[Outcome, Outcome]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """Every runnable line's (native, emulated) outcome, as futures."""
    base: Path = tmp_path_factory.mktemp("usrbin")
    pool = ThreadPoolExecutor(max_workers=2)

    def both(line: Line) -> Pair:
        return run_native(line, base), run_emulated(line, base)

    futures: dict[str, Future[Pair]] = {
        line.name: pool.submit(both, line) for line in LINES if not missing(line)}
    yield futures
    pool.shutdown(wait=True, cancel_futures=True)
    shutil.rmtree(base, ignore_errors=True)


def _params() -> list:
    return list(_params_iter())


def _params_iter():
    for line in LINES:
        marks = [pytest.mark.xfail(reason=line.xfail, strict=True)] if line.xfail else []
        yield pytest.param(line, id=line.name, marks=marks)


def _describe(nat: Outcome, emu: Outcome) -> str:
    out = []
    for what, a, b in (("stdout", nat.stdout, emu.stdout), ("stderr", nat.stderr, emu.stderr)):
        if a != b:
            out.append(f"{what}:\n  native: {a[:2000]!r}\n  shstk:  {b[:2000]!r}")
    if nat.status != emu.status:
        out.append(f"status: native {nat.status}, shstk {emu.status}")
    return "\n".join(out)


@pytest.mark.parametrize("line", _params())
def test_same_as_native(line: Line, outcomes) -> None:
    absent = missing(line)
    if absent:
        pytest.skip(f"not installed on this machine: {', '.join(absent)}")
    nat, emu = outcomes[line.name].result()
    assert emu.status != 125, f"internal error in shstk:\n{emu.stderr.decode(errors='replace')}"
    assert nat.key() == emu.key(), f"`{line.script}` differs:\n{_describe(nat, emu)}"


def test_corpus_summary(outcomes) -> None:
    """At least 80 lines ran; none ended in an internal error. Prints the numbers."""
    pairs = {name: f.result() for name, f in outcomes.items()}
    internal = [name for name, (_, emu) in pairs.items() if emu.status == 125]
    for title, names in (("first set", set(pairs) - SECOND), ("second set", SECOND & set(pairs)),
                         ("both", set(pairs))):
        same = sum(1 for n in names if pairs[n][0].key() == pairs[n][1].key())
        slowdown = statistics.median(pairs[n][1].seconds / max(pairs[n][0].seconds, 1e-3)
                                     for n in names)
        print(f"\nusr/bin corpus, {title}: {len(names)} lines, {same} identical, "
              f"{len(names) - same} differing, median slowdown {slowdown:.0f}x")
    print(f"internal errors: {internal}")
    assert len(pairs) >= 80
    assert not internal
