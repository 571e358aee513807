"""The soft-sharing architectures as variants of the hard-sharing study: cells train, encoders are scored, and
the report puts them in the per-task MSE and Table 5 layouts beside multi-head."""

from __future__ import annotations

from pathlib import Path

from mtlens.runs import RunStore
from mtlens.studies import load_study_config, run_study

TINY = ("study: hard_sharing\nvariants: [multi_head, mtan, ltb]\ndata: {dataset: tiny, n_tasks: 2, subset: 96}\n"
        "model: {latent_dim: 4, head_hidden: [16]}\ntrain: {epochs: 1, batch_size: 32}\n"
        "metrics: {names: [mig], options: {mig: {num_train: 200}}}\n")


def test_soft_sharing_variants_run_as_cells_and_join_the_tables(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(TINY)
    cfg = load_study_config(tmp_path / "c.yaml", [f"store={tmp_path / 's.sqlite'}", f"report_dir={tmp_path / 'rep'}"])
    result = run_study(cfg, backend="serial", threads=1, display=False)
    assert (result.finished, result.failed) == (3, 0)
    runs = {r.name: r for r in RunStore(tmp_path / "s.sqlite").list_runs()}
    assert set(runs) == {"seed0/multi_head", "seed0/mtan", "seed0/ltb"}
    for run in runs.values():
        assert 0.0 <= run.summary["mig"] <= 1.0 and run.summary["test/task_0/mse"] > 0
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "| task | multi-head | mtan | ltb |" in report
    table5 = report[report.index("MIG of each encoder"):]
    assert "| mtan |" in table5 and "| ltb |" in table5 and "Soft-sharing rows score the codes" in report
