"""The filters study (seed 001) on the engine: its cells, its checks, resume, failures counted, and a report
that renders every table and figure it announces, with the seed's numbers beside ours."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest

from mtlens import MtlensError
from mtlens.plots.filters import Row, published_value
from mtlens.plots.report import Report
from mtlens.runs import RunStore
from mtlens.studies import load_study_config, run_study
from mtlens.studies.filters import check, cells
from mtlens.studies.reporting import published

TINY = ["seeds=[0, 1]", "train.epochs=2", "train.batch_size=32",
        "table5.n=120", "table5.betas=[0.1]",
        "sweep.n=120", "sweep.trials=1", "sweep.betas=[0.0, 0.1]",
        "sweep.layouts=[{name: fig2_left}, {name: 6x4, latent_dim: 8}]",
        "table4.n=120", "table4.n_test=40", "table4.trials=1", "table4.epochs=2", "table4.betas=[0.01]"]
TABLES = ["Clustering success per model and β (Table V layout)",
          "Ablation analysis results (clustering success) — published",
          "Clustering success and accuracy per layout and β",
          "Accuracy (%) per model and β (Table IV layout)",
          "Accuracy (%) on the MultiMNIST dataset — published"]
FIGURES = ["Task distances and noise log-variances (Fig. 2 layout)",
           "Task distances per β, layout fig2_left (Fig. 4 layout)",
           "Accuracy and clustering success vs β",
           "Clustering success rate per row with 95 % CI"]


@pytest.fixture(autouse=True)
def _stand_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MTLENS_DATA", raising=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The tiny filters study, run once serially: every part, 11 cells of 2 epochs on 120 stand-in digits."""
    folder = tmp_path_factory.mktemp("filters")
    cfg = load_study_config("filters/quick", [*TINY, f"store={folder / 's.sqlite'}"])
    result = run_study(cfg, backend="serial", threads=1, display=False)
    return SimpleNamespace(cfg=cfg, result=result, store=folder / "s.sqlite")


def test_the_quick_preset_plans_table5_sweep_and_table4_trials() -> None:
    cfg = load_study_config("filters/quick")
    planned = cells(cfg)
    parts = [c.params["part"] for c in planned]
    assert (parts.count("table5"), parts.count("sweep"), parts.count("table4")) == (6 * 20, 16 * 5, 11 * 2)
    assert len({c.name for c in planned}) == len(planned)
    t5 = [c for c in planned if c.params["part"] == "table5"]
    assert {c.seed for c in t5} == set(range(20))  # every row sees the same digit assignments
    fixed = next(c for c in t5 if c.params["variant"] == "fixed_noise")
    assert fixed.name == "table5/4x3/d4/fixed_noise/beta0.1/seed0"
    # each cell carries its whole trial setting (part values over train's), so sections only choose cells
    assert fixed.params | {"variance_epochs": None} == {
        "part": "table5", "dataset": "grouped_mnist", "layout_name": "4x3", "layout": "4x3", "clusters": None,
        "latent_dim": 4, "variant": "fixed_noise", "beta": 0.1, "epochs": 100, "lr": 0.005, "batch_size": 128,
        "n": None, "variance_epochs": None}
    t4 = [c.params for c in planned if c.params["part"] == "table4"]
    assert {(p["variant"], p["beta"]) for p in t4} >= {("no_noise", None), ("filters", 0.0), ("mtvib", 0.1)}
    assert {(p["epochs"], p["lr"], p["n"], p["n_test"]) for p in t4} == {(15, 0.002, 12000, 2000)}
    assert {c.params["latent_dim"] for c in planned if c.params.get("layout_name") == "6x4"} == {8}
    few = cells(load_study_config("filters/quick", ["seeds=[0, 1, 2]", "parts=[table5, table4]"]))
    assert len(few) == 6 * 3 + 11 * 2
    paper = load_study_config("filters/paper")
    p5 = [c.params for c in cells(paper) if c.params["part"] == "table5"]
    assert len(p5) == 6 * 50 and {(p["epochs"], p["lr"]) for p in p5} == {(25, 1e-4)}


@pytest.mark.parametrize("overrides, match", [
    (["sweep.layouts=[{name: mine, groups: [[1, 2, 2], [1, 2, 4], [5, 6, 7], [5, 6, 8]], clusters: [[0, 1], [2, 3]]}]"],
     r"group 0 is \[1, 2, 2\]; a digit may appear only once in a group"),
    (["table5.layout={name: big, clustered: {n_clusters: 3, tasks: 2, size: 3, shared: 2}}"],
     "need 12 distinct digits; there are 10"),
    (["sweep.layouts=[{name: mine, groups: [[1, 2, 3], [1, 2, 4], [5, 6, 7], [5, 6, 8]], clusters: [[0, 1], [2, 7]]}]"],
     r"cluster pair \(2, 7\) names unknown task 7; the layout has tasks 0..3"),
    (["sweep.layouts=[{name: mine, groups: [[1, 2, 3], [1, 2, 4]], clusters: [[0, 1]]}]"],
     "the criterion needs both"),
    (["sweep.layouts=[{name: mine, groups: [[1, 2, 3], [1, 2, 4]]}]"], "has no known clusters"),
    (["sweep.layouts=[{name: 4x3}, {name: 4x3, latent_dim: 6}]"], "each layout needs its own name"),
    (["table5.layout={name: 5x5}"], "unknown layout '5x5'"),
    (["method.name=pcgrad", "method.options={nope: 1}"], "nope"),
    (["train.log_every=5"], "train.log_every=5 is not used by the filters study"),
])
def test_bad_settings_are_one_line_errors_before_anything_runs(overrides: list[str], match: str) -> None:
    with pytest.raises(MtlensError, match=match) as info:
        check(load_study_config("filters/quick", overrides))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("overrides, match", [
    (["table5.betas=[0.1, -0.5]"], r"table5.betas.1.*greater than or equal to 0 \(got -0.5\)"),
    (["table4.latent_dim=0"], r"table4.latent_dim.*greater than or equal to 1 \(got 0\)"),
])
def test_bad_values_are_refused_by_the_config(overrides: list[str], match: str) -> None:
    with pytest.raises(MtlensError, match=match):
        load_study_config("filters/quick", overrides)


def test_the_report_renders_every_table_and_figure_it_announces(tiny, browser, tmp_path: Path) -> None:
    assert (tiny.result.finished, tiny.result.failed) == (11, 0)
    html = tiny.result.report_html
    dom = browser(html, tmp_path)
    assert dom.checked
    assert sorted(dom.announced) == sorted([f"table-{i + 1}" for i in range(len(TABLES))]
                                           + [f"figure-{i + 1}" for i in range(len(FIGURES))])
    assert dom.images == ["yes"] * len(FIGURES)
    md = html.with_suffix(".md").read_text()
    for i, title in enumerate(TABLES):
        assert f"**Table {i + 1}. {title}**" in md
    for i, title in enumerate(FIGURES):
        assert f"![Figure {i + 1}. {title}](figures/figure-{i + 1}.png)" in md
    assert "ran on the stand-in" in md  # the report says the digits are not MNIST
    # the seed's numbers beside ours: Table V's 96 % for filters at beta 0.1, Table IV's 86.9 / 87.0
    assert "| Ours | 0.1 | " in md and " | 96 | 0 | " in md
    assert "| Ours | 0.01 | " in md and "| 86.9 | 87.0 | 1 |" in md
    assert "| fig2_left | 4 | 0.1 | " in md and "| 6x4 | 8 | 0 | " in md


def test_a_killed_study_resumes_its_trials_and_skips_the_finished_ones(tiny) -> None:
    store = RunStore(tiny.store)
    runs = {r.name: r for r in store.list_runs(study="filters")}
    killed = runs["table5/4x3/d4/fixed_noise/beta0.1/seed1"]
    checkpoints = sorted((killed.artifacts_dir).rglob("checkpoint.pt"))
    assert [p.parent.name for p in checkpoints] == ["stage1", "stage2"]  # the trial writes into the cell's folder
    stamps = [p.stat().st_mtime_ns for p in checkpoints]
    with sqlite3.connect(tiny.store) as conn:
        conn.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", (killed.id,))
    conn.close()
    again = run_study(tiny.cfg, backend="serial", threads=1, display=False)
    assert (again.finished, again.failed, again.skipped) == (1, 0, 10)
    after = RunStore(tiny.store).get_run(killed.id)
    same = {k: v for k, v in killed.summary.items() if not k.startswith("time/")}
    assert after.status == "finished" and {k: after.summary[k] for k in same} == same
    # resumed from its final checkpoints: nothing trained again
    assert [p.stat().st_mtime_ns for p in checkpoints] == stamps


def test_a_diverged_trial_is_a_failure_in_table5_not_dropped(tmp_path: Path) -> None:
    # one step at lr 1e6 stays finite (noise log-variances land at ±1e6); the next step overflows exp
    cfg = load_study_config("filters/quick", [
        "seeds=[0]", "parts=[table5]", "table5.variants=[filters]", "table5.betas=[0.1]", "table5.n=60",
        "train.epochs=3", "table5.lr=1000000.0", f"store={tmp_path / 's.sqlite'}"])
    result = run_study(cfg, backend="serial", threads=1, display=False)
    assert (result.finished, result.failed) == (0, 1)
    md = result.report_html.with_suffix(".md").read_text()
    assert "| Ours | 0.1 | 0/1 | 0 | 0–79 | 96 | 1 | — |" in md
    assert "1 trial(s) failed (non-finite loss) and count as unsuccessful" in md
    assert "non-finite loss at step" in md.split("## Failed cells")[1]


def test_rates_count_failures_and_leave_out_trials_not_run() -> None:
    def run(status: str, success: float | None = None) -> SimpleNamespace:
        return SimpleNamespace(status=status, seed=0, summary={} if success is None else {"success": success})

    row = Row({"part": "table5"}, [run("finished", 1.0), run("finished", 0.0), run("finished", 1.0), run("failed"),
                                   run("not run")])
    rate = row.rate()
    assert (rate.successes, rate.trials, row.failed, row.not_run) == (2, 4, 1, 1)
    assert Row({"part": "sweep"}, [run("not run")]).rate() is None


def test_published_values_are_found_by_model_and_beta() -> None:
    rep = Report("t", published=published("seed001"))
    assert [published_value(rep, "table_5", v, b) for v in ("filters", "fixed_noise") for b in (0.1, 0.05, 0.01)] == \
        ["96", "88", "68", "32", "40", "56"]
    assert published_value(rep, "table_4", "no_noise", None, 1) == "86.8"
    assert published_value(rep, "table_4", "filters", 1e-4, 0) == "87.6"
    assert published_value(rep, "table_4", "mtvib", 0.1, 1) == "77.9"
    assert published_value(rep, "table_4", "filters", 0.0, 0) == "87.3"
    assert published_value(rep, "table_5", "filters", 0.5) == "—"
