"""Both landed studies give the same numbers through the engine as before it (recorded on commit 10c6c2c by
reference/record_pre_engine.py, 1 torch thread): every stored metric row and summary value of every cell."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from mtlens.runs import RunStore

REFERENCE = json.loads((Path(__file__).parent / "reference" / "pre_engine_numbers.json").read_text())


def _same(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("study", ["hard_sharing", "balancing"])
def test_engine_gives_the_pre_engine_numbers(study: str, ported) -> None:
    run = ported[study]
    expected = {n: r for n, r in REFERENCE[study]["runs"].items() if r["seed"] in run.config.seeds}
    assert (run.result.finished, run.result.failed) == (len(expected), 0)
    store = RunStore(run.store)
    runs = {r.name: r for r in store.list_runs()}
    assert runs.keys() == expected.keys()
    for name, ref in expected.items():
        stored = runs[name]
        assert stored.summary.keys() == ref["summary"].keys(), name
        assert all(_same(stored.summary[k], v) for k, v in ref["summary"].items()), name
        series = {k: v for k, v in store.series(stored.id).items() if not k.startswith("time/")}
        assert series.keys() == ref["series"].keys(), name
        for key, rows in ref["series"].items():
            assert [s for s, _ in series[key]] == [s for s, _ in rows], (name, key)
            assert all(_same(a, b) for (_, a), (_, b) in zip(series[key], rows)), (name, key)
