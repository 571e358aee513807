from pathlib import Path

import pytest

from mtlens import MtlensError
from mtlens.methods import available_methods
from mtlens.runs import RunStore
from mtlens.studies import load_study_config
from mtlens.studies.balancing import cells
from mtlens.studies.runner import plan


def _config(tmp_path: Path, *overrides: str):
    cfg = tmp_path / "b.yaml"
    cfg.write_text("study: balancing\nmethods: {names: [ew, mgda, rlw]}\ndata: {dataset: tiny, n_tasks: 3, subset: 64}\n"
                   "model: {latent_dim: 4}\ntrain: {epochs: 2, batch_size: 16}\nmeasures: {every: 1, last: 4}\n")
    return load_study_config(cfg, [f"store={tmp_path / 's.sqlite'}", *overrides])


def test_cells_run_feature_level_only_for_gradient_methods(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "methods.names=[rlw, mgda, ew, pcgrad]", "methods.options={mgda: {max_iter: 50}}")
    assert [c.name for c in cells(cfg)] == ["seed0/ew/param", "seed0/rlw/param", "seed0/mgda/param",
                                            "seed0/mgda/feature", "seed0/pcgrad/param", "seed0/pcgrad/feature"]
    assert [c.params["options"] for c in cells(cfg)][2:4] == [{"max_iter": 50}] * 2
    with pytest.raises(MtlensError, match="add 'ew'"):
        plan([_config(tmp_path, "methods.names=[mgda]")])


def test_exclude_removes_methods_from_the_names(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "methods.names=[ew, mgda, rlw]", "methods.exclude=[MGDA]", "methods.levels=[param]")
    assert [c.name for c in cells(cfg)] == ["seed0/ew/param", "seed0/rlw/param"]
    with pytest.raises(MtlensError, match=r"^methods.exclude names 'pcgrad', which is not among methods.names"):
        cells(_config(tmp_path, "methods.exclude=[pcgrad]"))
    with pytest.raises(MtlensError, match="add 'ew'"):
        cells(_config(tmp_path, "methods.exclude=[ew]"))
    # the shipped MultiMNIST preset: every registered method but the two that need three tasks
    mm = load_study_config("balancing/multimnist", [f"store={tmp_path / 'm.sqlite'}"])
    names = {c.params["method"] for c in cells(mm)}
    assert names == set(available_methods()) - {"krum", "trimmed_mean"}


def test_the_series_and_tables_come_from_the_store(ported) -> None:
    run = ported["balancing"]
    store = RunStore(run.store)
    runs = {r.name: r for r in store.list_runs()}
    # 52 training rows / batch 16 -> 4 steps per epoch, 8 steps, a value per measure at every step
    for r in runs.values():
        series = store.series(r.id)
        assert [s for s, _ in series["challenge/gms"]] == list(range(8)) and len(series["challenge/fd"]) == 8
    report = run.result.report_html.with_suffix(".md").read_text()
    assert "| baseline (ew) |" in report and "| mgda |" in report and "| GDS |" in report and "| FD |" in report
    assert "| Baseline | 0.383 |" in report  # seed 004 Table 1 beside ours


def test_too_few_recorded_values_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(MtlensError, match="fewer than measures.last=50"):
        plan([_config(tmp_path, "measures.last=50")])
    assert not (tmp_path / "s.sqlite").exists()
