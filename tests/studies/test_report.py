"""Reports: every table and figure they announce is on the page and every image decodes in a real browser
(Debian's chromium, headless); tables hold mean ± std over seeds and the published numbers beside ours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mtlens.plots.balancing import smooth
from mtlens.plots.hard_sharing import metric_by_row
from mtlens.plots.report import Report, mean_std


# What each tiny study's report announces: tables, figures.
EXPECTED = {
    "hard_sharing": (["Per-task test MSE per variant (mean ± std over seeds; single-task: each task's own model)",
                      "MIG of each encoder", "SAP score of each encoder"],
                     ["Per-task test MSE per variant", "Disentanglement metrics per encoder"]),
    "balancing": (["Test performance per method",
                   "Test performance relative to the baseline on MetaGraspNet (ResNet-18) — published",
                   "Feature level relative to parameter level",
                   "Feature-level relative to parameter-level gradients on MetaGraspNet — published",
                   "Ranking similarity S (|S − 0.5|)",
                   "Ranking similarity of each measure with test performance on MetaGraspNet — published"],
                  ["GDS relative to equal weighting", "GMS relative to equal weighting", "FD relative to equal weighting"]),
}


@pytest.mark.parametrize("study", ["hard_sharing", "balancing"])
def test_every_announced_table_and_figure_renders_in_chromium(study: str, ported, browser, tmp_path: Path) -> None:
    html = ported[study].result.report_html
    dom = browser(html, tmp_path)
    assert dom.checked, "the page's load handler did not run"
    tables, figures = EXPECTED[study]
    assert sorted(dom.announced) == sorted([f"table-{i + 1}" for i in range(len(tables))]
                                           + [f"figure-{i + 1}" for i in range(len(figures))])
    assert all(dom.ids[key] == ("table" if key.startswith("table") else "figure") for key in dom.announced)
    assert dom.images == ["yes"] * len(figures)  # one embedded PNG per figure, each decoded (naturalWidth > 0)
    md = html.with_suffix(".md").read_text()
    for i, title in enumerate(tables):
        assert f"**Table {i + 1}. {title}**" in md
    for i, title in enumerate(figures):
        assert f"![Figure {i + 1}. {title}](figures/figure-{i + 1}.png)" in md
        assert (html.parent / "figures" / f"figure-{i + 1}.png").stat().st_size > 1000
    assert "src=\"http" not in html.read_text() and "href=\"http" not in html.read_text()  # self-contained
    for what in ("data source", "seeds", "package versions", "commit", "wall time", "device"):
        assert f"- **{what}**: " in md


def test_mean_std_over_seeds() -> None:
    assert mean_std([1.0, 2.0, 3.0]) == "2.000 ± 0.816"
    assert mean_std([0.5]) == "0.500"
    assert mean_std([]) == "—"
    assert mean_std([0.1, 0.3], 4) == "0.2000 ± 0.1000"


def test_table5_rows_take_single_task_mean_max_min_per_seed_then_mean_std_over_seeds() -> None:
    class R:
        def __init__(self, seed: int, variant: str, mig: float) -> None:
            self.seed, self.params, self.summary = seed, {"variant": variant}, {"mig": mig}

    runs = [R(0, "multi_head", 0.3), R(1, "multi_head", 0.5), R(0, "single_task", 0.1), R(0, "single_task", 0.3),
            R(1, "single_task", 0.2), R(1, "single_task", 0.6)]
    rows = metric_by_row(runs, "mig")
    assert rows["multi-head"] == [0.3, 0.5]
    assert rows["single-mean"] == pytest.approx([0.2, 0.4])
    assert rows["single-max"] == [0.3, 0.6] and rows["single-min"] == [0.1, 0.2]
    assert mean_std(rows["single-max"]) == "0.450 ± 0.150"


def test_hard_sharing_table5_shows_the_published_column_of_the_same_dataset(ported) -> None:
    from mtlens.plots.hard_sharing import fill_report
    from mtlens.studies.reporting import collect, published
    from mtlens.runs import RunStore
    from mtlens.studies.runner import plan

    run = ported["hard_sharing"]
    cfg = run.config.model_copy(update={"data": run.config.data.model_copy(update={"dataset": "dsprites"})})
    store = RunStore(run.store)
    runs = collect(store, "hard_sharing", [(j.cell, j.hash) for j in plan([run.config])])
    rep = Report("t", published=published("seed000"))
    fill_report(cfg, runs, rep)
    mig = next(b for kind, b in rep.blocks if kind == "table" and b.title == "MIG of each encoder")
    assert mig.header == ["model", "ours (dsprites)", "paper (dSprites)"]
    assert [r[0] for r in mig.rows] == ["random", "single-mean", "single-max", "single-min", "multi-head", "one-head"]
    assert [r[2] for r in mig.rows] == ["0.01 ± 0.01", "0.01 ± 0.01", "0.02 ± 0.00", "0.01 ± 0.00", "0.04 ± 0.02",
                                        "0.02 ± 0.01"]
    assert "seed 000 Table 5(a)" in mig.note


def test_trajectories_are_smoothed_over_a_tenth_of_the_run() -> None:
    y = [float(i % 2) for i in range(40)]  # window 4: every average of 4 alternating values is 0.5
    assert list(smooth(np.array(y))) == [0.5] * 37
