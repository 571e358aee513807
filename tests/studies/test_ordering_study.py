"""The ordering study (seed 003) on the engine: cells, checks, a tiny config end to end with its report in
chromium, the report's numbers from the store, Omniglot skipped without its files, the CelebA preset on a tiny
official-layout tree."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mtlens.errors import MtlensError
from mtlens.plots.ordering_analysis import group
from mtlens.runs import RunStore
from mtlens.studies import load_study_config, run_study
from mtlens.studies.ordering import cells
from mtlens.studies.reporting import collect
from mtlens.studies.runner import plan


def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DATA_TESTS = Path(__file__).parents[1] / "data"
omniglot_tree = _load("omniglot_tree", DATA_TESTS / "test_omniglot.py")
celeba_tree = _load("celeba_tree", DATA_TESTS / "test_celeba.py")

TINY = """\
study: ordering
seeds: [0]
experiments: [fitting, digit_pairs, tabular, omniglot]
variants: [parallel, permuted, soft]
fitting:
  cores: [linear]
  linear: {width: 8, n_values: [4, 8], steps: 10, lr: 0.05}
digit_pairs:
  n_tasks: [1, 2]
  n_train: 16
  model: {iterations: 6, batch_size: 4, eval_every: 3, width: 8, encoder: frozen, trace_every: 2}
tabular:
  datasets: [iris, wine]
  model: {iterations: 6, batch_size: 4, eval_every: 3, width: 8, dropout: 0.8}
omniglot:
  n_tasks: [1, 3]
  test_fractions: [0.2]
  model: {iterations: 4, batch_size: 2, eval_every: 2, depth: 3, width: 6, encoder: identity, trace_every: 2}
train: {device: cpu}
"""

# What the tiny report announces, in order: tables, figures.
EXPECTED = (
    ["The seed's claims and ours", "Training accuracy, linear core (m = 8, 10 steps)",
     "Digit pairs: mean test error by number of tasks", "Relative to parallel ordering (Fig. 4a): below 1 is better",
     "Tabular: final test error per variant", "Omniglot: test error by number of alphabets, 20% test split (Fig. 6a)",
     "Omniglot: test error with 3 alphabets by test split (Fig. 6c layout)",
     "Omniglot test error with all 50 tasks, by test split — published"],
    ["Fitting two random tasks (Fig. 2)", "Digit pairs: test error and loss relative to parallel ordering (Fig. 4a)",
     "Digit pairs: soft-ordering scales by iteration, 2 tasks, seed 0 (Fig. 4b-c)",
     "Digit pairs: learned layer usage per task, seed 0 (Fig. 4d)",
     "Tabular: mean test error over tasks by iteration (Fig. 5b)", "Tabular: learned layer usage per task, seed 0",
     "Omniglot: test error by number of alphabets, 20% test split (Fig. 6a)",
     "Omniglot: layer usage by depth across 3 alphabets, seed 0 (Fig. 6b)"],
)


@dataclass
class Tiny:
    config: Any
    result: Any
    store: Path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    folder = tmp_path_factory.mktemp("ordering")
    (folder / "c.yaml").write_text(TINY)
    tree = omniglot_tree.write_tree(folder / "omniglot")
    cfg = load_study_config(folder / "c.yaml", [f"store={folder / 's.sqlite'}", f"data_dir={tree}"])
    return Tiny(cfg, run_study(cfg, backend="serial", threads=1, display=False), folder / "s.sqlite")


def test_cells_cover_experiment_setting_variant_and_seed(tmp_path: Path) -> None:
    cfg = load_study_config("ordering/quick", [f"store={tmp_path / 's.sqlite'}"])
    planned = cells(cfg)
    by_experiment = {e: [c for c in planned if c.params["experiment"] == e] for e in cfg.experiments}
    assert len(by_experiment["fitting"]) == len(cfg.seeds) * 2 * 4 * 3  # cores x n values x 3 fitting variants
    assert len(by_experiment["digit_pairs"]) == len(cfg.seeds) * 4 * len(cfg.variants)
    assert len(by_experiment["tabular"]) == len(cfg.seeds) * len(cfg.variants)
    assert by_experiment["digit_pairs"][0].name == "seed0/digit_pairs/tasks1/single_task"
    assert by_experiment["fitting"][0].params == {"experiment": "fitting", "core": "linear", "n": 32, "variant": "parallel"}
    assert len({c.name for c in planned}) == len(planned)
    paper = load_study_config("ordering/paper", [f"store={tmp_path / 's.sqlite'}", f"data_dir={tmp_path}"])
    assert not [c for c in cells(paper) if c.params["experiment"] == "omniglot"]  # no Omniglot files: none planned


def test_checks_refuse_bad_settings_before_anything_runs(tmp_path: Path) -> None:
    tree = omniglot_tree.write_tree(tmp_path / "omni")
    base = [f"store={tmp_path / 's.sqlite'}", "experiments=[omniglot]"]
    with pytest.raises(MtlensError, match=r"alphabet\(s\) Tibetan, .* and 44 more missing"):
        plan([load_study_config("ordering/paper", [*base, f"data_dir={tree}"])])
    ok = plan([load_study_config("ordering/paper", [*base, f"data_dir={tree}", "omniglot.n_tasks=[1, 3]",
                                                    "omniglot.test_fractions=[0.2]"])])
    assert len(ok) == 5 * 2 * 4  # seeds x task counts x variants
    with pytest.raises(MtlensError, match="2 orders for up to 4 tasks"):
        plan([load_study_config("ordering/quick", [f"store={tmp_path / 's.sqlite'}",
                                                   "digit_pairs.model.permutations=[[0, 1, 2, 3], [3, 2, 1, 0]]"])])
    with pytest.raises(MtlensError, match="needs one shared representation"):
        plan([load_study_config("ordering/quick", [f"store={tmp_path / 's.sqlite'}", "method.name=pcgrad",
                                                   "method.level=feature"])])
    assert not (tmp_path / "s.sqlite").exists()


def test_tiny_config_runs_every_cell(tiny: Tiny) -> None:
    assert tiny.result.failed == 0 and tiny.result.finished == 6 + 6 + 3 + 6
    runs = collect(RunStore(tiny.store), "ordering", [(j.cell, j.hash) for j in plan([tiny.config])])
    soft = next(r for r in runs if r.params == {"experiment": "digit_pairs", "n_tasks": 2, "variant": "soft"})
    scales = soft.notes["scales"]
    assert len(scales) == 2 and all(abs(sum(col) - 1.0) < 1e-5 for task in scales for col in zip(*task))
    series = soft.series()
    assert [s for s, _ in series["scales/distance/d1"]] == [0, 2, 4, 6]  # every trace_every steps and the end
    assert [s for s, _ in series["test/mean_acc"]] == [3, 6]
    assert soft.notes["data_info"]["pairs"] and soft.notes["tasks"][0][1] == "binary"
    permuted = next(r for r in runs if r.params == {"experiment": "omniglot", "n_tasks": 3, "test_fraction": 0.2,
                                                   "variant": "permuted"})
    assert sorted(permuted.notes["permutations"][0]) == [0, 1, 2]


def test_report_numbers_come_from_the_cells(tiny: Tiny) -> None:
    runs = collect(RunStore(tiny.store), "ordering", [(j.cell, j.hash) for j in plan([tiny.config])])
    g = group(runs, "digit_pairs")
    by = {(r.params["n_tasks"], r.params["variant"]): r.summary for r in runs if r.params["experiment"] == "digit_pairs"}
    assert g.loss_ratio["soft"][2] == [pytest.approx(by[(2, "soft")]["test/mean_loss"] / by[(2, "parallel")]["test/mean_loss"])]
    md = tiny.result.report_html.with_suffix(".md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| 2 | ") and line.count("±") == 0 and "/" not in line
               and line.count("|") == 6)
    assert f"{by[(2, 'soft')]['test/mean_loss'] / by[(2, 'parallel')]['test/mean_loss']:.2f}" in row
    assert "Tables present (2 of the seed's 10): iris, wine" in md
    assert "| Soft order | 23.19 (± 0.34) | 24.11 (± 0.48) |" in md  # Fig. 6c as printed


def test_every_announced_table_and_figure_renders_in_chromium(tiny: Tiny, browser, tmp_path: Path) -> None:
    html = tiny.result.report_html
    dom = browser(html, tmp_path)
    tables, figures = EXPECTED
    assert dom.checked
    md = html.with_suffix(".md").read_text()
    for i, title in enumerate(tables):
        assert f"**Table {i + 1}. {title}**" in md
    for i, title in enumerate(figures):
        assert f"![Figure {i + 1}. {title}](figures/figure-{i + 1}.png)" in md
    assert sorted(dom.announced) == sorted([f"table-{i + 1}" for i in range(len(tables))]
                                           + [f"figure-{i + 1}" for i in range(len(figures))])
    assert dom.images == ["yes"] * len(figures)


def test_absent_omniglot_is_skipped_and_said_so(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(TINY)
    cfg = load_study_config(tmp_path / "c.yaml", [f"store={tmp_path / 's.sqlite'}", f"data_dir={tmp_path}",
                                                  "experiments=[omniglot, celeba]"])
    result = run_study(cfg, backend="serial", threads=1, display=False)
    assert result.finished == 0 and result.failed == 0
    md = result.report_html.with_suffix(".md").read_text()
    assert "Skipped: omniglot: images_background(.zip) and images_evaluation(.zip) not found" in md
    assert "Skipped: celeba: list_attr_celeba.txt not found" in md


def test_celeba_preset_on_a_tiny_official_tree(tmp_path: Path) -> None:
    celeba_tree.write_celeba(tmp_path / "celeba")
    cfg = load_study_config("ordering/celeba", [
        f"store={tmp_path / 's.sqlite'}", f"data_dir={tmp_path}", "celeba.image_size=32",
        "celeba.variants=[parallel, soft_landmarks_identity]", "train.epochs=1", "train.batch_size=2",
        "train.num_workers=0", "train.device=cpu", "train.checkpoint=false"])
    result = run_study(cfg, backend="serial", threads=1, display=False)
    assert result.finished == 2 and result.failed == 0
    runs = collect(RunStore(tmp_path / "s.sqlite"), "ordering", [(j.cell, j.hash) for j in plan([cfg])])
    soft = next(r for r in runs if r.params["variant"] == "soft_landmarks_identity")
    assert len(soft.notes["scales"]) == 41 and len(soft.notes["scales"][0]) == 5  # 40 attributes + landmarks; + identity
    assert "test/landmarks/mse" in soft.summary and 0 <= soft.summary["test/attribute_error"] <= 1
    md = result.report_html.with_suffix(".md").read_text()
    assert "**Table 2. CelebA: attribute test error (Fig. 7c layout)**" in md
    ours = f"{100 * soft.summary['test/attribute_error']:.2f}"
    assert f"| Soft Order + Landmarks + Identity | {ours} | 8.68 |" in md
    assert "| Soft Order | not run | 8.79 |" not in md  # only the requested variants are listed
