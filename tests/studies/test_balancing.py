from pathlib import Path

import pytest

from mtlens import MtlensError
from mtlens.runs import RunStore
from mtlens.studies import load_study_config, run_study
from mtlens.studies.balancing import plan


def _config(tmp_path: Path, *overrides: str):
    cfg = tmp_path / "b.yaml"
    cfg.write_text("study: balancing\nmethods: [ew, mgda, rlw]\ndata: {dataset: tiny, n_tasks: 3, subset: 64}\n"
                   "model: {latent_dim: 4}\ntrain: {epochs: 2, batch_size: 16, progress: false}\n"
                   "measures: {every: 1, last: 4}\n")
    return load_study_config(cfg, [f"store={tmp_path / 's.sqlite'}", *overrides])


def test_plan_runs_feature_level_only_for_gradient_methods(tmp_path: Path) -> None:
    cfg = _config(tmp_path, "methods=[rlw, mgda, ew, pcgrad]")
    assert plan(cfg) == [(0, "ew", "param"), (0, "rlw", "param"), (0, "mgda", "param"), (0, "mgda", "feature"),
                         (0, "pcgrad", "param"), (0, "pcgrad", "feature")]
    with pytest.raises(MtlensError, match="add 'ew'"):
        plan(_config(tmp_path, "methods=[mgda]"))


def test_balancing_study_records_measures_and_writes_the_tables(tmp_path: Path) -> None:
    result = run_study(_config(tmp_path))
    assert [(r.method, r.level, r.status) for r in result.records] == [
        ("ew", "param", "finished"), ("mgda", "param", "finished"), ("mgda", "feature", "finished"),
        ("rlw", "param", "finished")]
    # 52 training rows / batch 16 -> 4 steps per epoch, 8 steps, a value per measure at every step
    assert all(len(r.trajectories["fd"]) == 8 and len(r.trajectories["gds"]) == 8 for r in result.records)
    series = RunStore(tmp_path / "s.sqlite").series(result.records[0].run_id)
    assert [s for s, _ in series["challenge/gms"]] == list(range(8))
    report = (result.report_dir / "report.md").read_text()
    assert "| baseline (ew) |" in report and "| mgda |" in report and "| GDS |" in report and "| FD |" in report
    assert (result.report_dir / "trajectory_fd.png").exists()


def test_too_few_recorded_values_is_refused_before_training(tmp_path: Path) -> None:
    with pytest.raises(MtlensError, match="fewer than measures.last=50"):
        run_study(_config(tmp_path, "measures.last=50"))
    assert RunStore(tmp_path / "s.sqlite").list_runs() == []
