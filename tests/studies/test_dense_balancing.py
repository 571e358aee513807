"""The balancing study on the dense benchmarks (issue 15, seed 004 §3.2, App. 7): the presets' settings, the
procedural benchmark end to end through the engine (cells, stored dense metrics, every announced table, Δm%),
and the nyuv2 preset on a tiny tree in the official preprocessed layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mtlens.errors import MtlensError
from mtlens.measures.dense import DENSE_METRICS, delta_m
from mtlens.plots.balancing import HIGHER, TaskSpec, columns, performance_rows, zero_baselines
from mtlens.runs import RunStore
from mtlens.studies import load_study_config, run_study
from mtlens.studies.balancing import cells, check

SEED_004 = ["ew", "pcgrad", "gradvac", "graddrop", "rgw", "mgda", "cagrad", "nash_mtl", "aligned_mtl", "uncertainty",
            "gradnorm", "imtl", "famo", "rlw", "dwa", "cosreg"]
TINY = ["methods.names=[ew, mgda]", "data.options={image_size: 16, sizes: [8, 4, 4], seed: 0}",
        "model.head_options={width: 8}", "train.epochs=1", "train.batch_size=4", "train.eval_batch_size=4",
        "measures.every=1", "measures.last=1"]
TASKS = {"segmentation": "segmentation", "depth": "depth", "normal": "normal"}


def write_tree(root: Path, name: str, sizes: dict[str, int], size: tuple[int, int] = (6, 8), seed: int = 0) -> Path:
    """Writes a tiny tree in the MTAN / LibMTL preprocessed layout: images, class labels with -1 (13 classes on
    NYU-v2, 7 on CityScapes), depth with 0s, and on NYU-v2 unit normals (0 where missing)."""
    rng = np.random.default_rng(seed)
    h, w = size
    for split, n in sizes.items():
        for i in range(n):
            files = {"image": rng.random((h, w, 3), dtype=np.float32),
                     "label": rng.integers(-1, 13 if name == "nyuv2" else 7, (h, w)).astype(np.float32),
                     "depth": (rng.random((h, w, 1)) * 4 * (rng.random((h, w, 1)) > 0.2)).astype(np.float32)}
            if name == "nyuv2":
                normal = rng.normal(size=(h, w, 3))
                normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
                normal[0, :2] = 0.0
                files["normal"] = normal.astype(np.float32)
            for folder, arr in files.items():
                (root / split / folder).mkdir(parents=True, exist_ok=True)
                np.save(root / split / folder / f"{i}.npy", arr)
    return root


@pytest.mark.parametrize("name,n_train,epochs", [("nyuv2", 795, 120), ("cityscapes", 2975, 33)])
def test_the_real_benchmark_presets_hold_seed_004_app_7(name: str, n_train: int, epochs: int) -> None:
    cfg = load_study_config(f"balancing/{name}")
    t = cfg.train
    assert (t.optimizer, t.lr, t.momentum, t.batch_size, t.warmup_steps > 0) == ("sgd", 1e-4, 0.9, 32, True)
    assert cfg.data.dataset == name and cfg.data.options["resize"] == [512, 512] and cfg.model.backbone == "resnet18"
    assert (cfg.seeds, cfg.measures.every, cfg.methods.names, cfg.methods.single_task) == ([0, 1, 2], 10, SEED_004, True)
    assert t.epochs == epochs and t.total_steps(n_train) == 3000  # the step budget ends the run
    tasks = ["segmentation", "depth", "normal"][: 3 if name == "nyuv2" else 2]
    # planned without reading any file: every method (both levels where they use gradients) and one run per task
    assert [c.name for c in cells(cfg)][-len(tasks):] == [f"seed2/single_task/{t}" for t in tasks]
    assert len(cells(cfg)) == 3 * (26 + len(tasks))


def test_dense_quick_preset() -> None:
    cfg = load_study_config("balancing/dense_quick")
    names = [c.name for c in cells(cfg)]
    assert len(names) == 29 and names[0] == "seed0/ew/param" and "seed0/mgda/feature" in names
    assert names[-3:] == ["seed0/single_task/segmentation", "seed0/single_task/depth", "seed0/single_task/normal"]
    assert cfg.data.dataset == "shapes3d_dense" and cfg.train.total_steps(160) == 80 and cfg.measures.every == 20
    assert (cfg.model.backbone, cfg.model.output_stride, cfg.model.head) == ("resnet18", 8, "light")


@pytest.mark.parametrize("override,message", [
    ("model.latent_dim=4", "model.latent_dim is not read here: shapes3d_dense trains a dense ResNet model"),
    ("data.n_tasks=3", "data.n_tasks is not read here: shapes3d_dense is a benchmark"),
    ("model.head_options={depth: 3}", "model.head_options: "),
    ("model.head=fpn", "unknown dense head 'fpn'"),
    ("data.dataset=celeba", "has no per-pixel tasks"),
])
def test_keys_the_dense_data_does_not_read_are_refused(tmp_path: Path, override: str, message: str) -> None:
    cfg = load_study_config("balancing/dense_quick", [*TINY, override, f"store={tmp_path / 's.sqlite'}"])
    with pytest.raises(MtlensError, match=message.replace("(", r"\(")):
        check(cfg)


def test_dense_fields_on_factor_data_are_refused() -> None:
    with pytest.raises(MtlensError, match="model.backbone is not read here: tiny trains the MLP multi-head model"):
        check(load_study_config("balancing/quick", ["data.dataset=tiny", "data.subset=64", "model.backbone=resnet50"]))


@pytest.fixture(scope="module")
def procedural(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("dense")
    cfg = load_study_config("balancing/dense_quick", [*TINY, f"store={folder / 's.sqlite'}"])
    return cfg, run_study(cfg, backend="serial", threads=1, display=False)


def test_procedural_study_end_to_end(procedural) -> None:
    cfg, result = procedural
    assert (result.finished, result.failed) == (6, 0)
    store = RunStore(cfg.store)
    runs = {r.name: r for r in store.list_runs()}
    assert sorted(runs) == sorted(["seed0/ew/param", "seed0/mgda/param", "seed0/mgda/feature",
                                   "seed0/single_task/segmentation", "seed0/single_task/depth", "seed0/single_task/normal"])
    # the dense metric names, from the model's evaluator
    expected = {f"test/{t}/{m}" for t, kind in TASKS.items() for m in DENSE_METRICS[kind]}
    assert all(set(r.summary) == expected for n, r in runs.items() if "single_task" not in n)
    for task, kind in TASKS.items():  # a single-task run is scored on its own task only
        assert set(runs[f"seed0/single_task/{task}"].summary) == {f"test/{task}/{m}" for m in DENSE_METRICS[kind]}
    assert 0 <= runs["seed0/ew/param"].summary["test/segmentation/miou"] <= 1
    # 8 images / batch 4: 2 steps, a challenge value per step on the multi-task cells only
    assert [s for s, _ in store.series(runs["seed0/mgda/feature"].id)["challenge/fd"]] == [0, 1]
    assert not any(k.startswith("challenge/") for k in store.series(runs["seed0/single_task/depth"].id))

    md = result.report_html.with_suffix(".md").read_text()
    tables = [line for line in md.splitlines() if line.startswith("**Table ")]
    assert tables == ["**Table 1. Test performance per method**", "**Table 2. Feature level relative to parameter level**",
                      "**Table 3. Ranking similarity S (|S − 0.5|)**"]  # no published table beside the procedural one
    assert "No published numbers: shapes3d_dense is mtlens's procedural dense benchmark" in md
    assert "NYU-v2 (ResNet-18) — published" not in md and md.count("![Figure") == 3
    assert ("| method | segmentation miou (↑) | segmentation pixel_acc (↑) | depth abs_err (↓) | depth rel_err (↓) | "
            "normal mean_angle (↓) | normal median_angle (↓) | normal within_11.25 (↑) | normal within_22.5 (↑) | "
            "normal within_30 (↑) | Δm% |") in md
    assert "| measure | segmentation miou | depth abs_err | normal mean_angle | mean |" in md
    # Δm% of mgda against the three single-task runs, every metric weighed equally
    base = {t: {m: runs[f"seed0/single_task/{t}"].summary[f"test/{t}/{m}"] for m in DENSE_METRICS[k]}
            for t, k in TASKS.items()}
    mgda = {t: {m: runs["seed0/mgda/param"].summary[f"test/{t}/{m}"] for m in DENSE_METRICS[k]} for t, k in TASKS.items()}
    row = next(line for line in md.splitlines() if line.startswith("| mgda |"))
    zero = [f"{t} {m}" for t, ms in base.items() for m, v in ms.items() if v == 0]
    if zero:  # two steps: the single-task normal head may have no pixel within 11.25 degrees
        assert row.endswith("| — |") and f"where a single-task baseline is 0 (it divides by it): {', '.join(zero)}." in md
    else:
        assert row.endswith(f"| {delta_m(mgda, base, HIGHER):+.2f} |")
    single = next(line for line in md.splitlines() if line.startswith("| single task |"))
    assert f"| {base['depth']['abs_err']:.4f} |" in single


@pytest.mark.parametrize("name,tasks,published", [
    ("nyuv2", ["segmentation", "depth", "normal"], ("| Baseline | 1.116 | 44.227 | 2.7% |",
                                                     "Test performance per method on NYU-v2 (ResNet-18) — published",
                                                     "Ranking similarity of each measure with test performance on NYU-v2 — published")),
    ("cityscapes", ["segmentation", "depth"], ("| Baseline | 1.453 | 15.0% | 0.131 |",
                                               "Test performance per method on CityScapes (ResNet-18) — published",
                                               "Ranking similarity of each measure with test performance on CityScapes — published")),
])
def test_real_benchmark_preset_on_a_tiny_official_tree(tmp_path: Path, name: str, tasks: list[str],
                                                        published: tuple[str, ...]) -> None:
    root = write_tree(tmp_path / name, name, {"train": 2, "val": 2})
    cfg = load_study_config(f"balancing/{name}", [
        f"store={tmp_path / 's.sqlite'}", f"data_dir={root}", "data.options={resize: [16, 16]}", "seeds=[0]",
        "methods.names=[ew]", "model.head_options={width: 8, rates: [1, 2, 3]}", "train.epochs=2",
        "train.max_steps=2", "train.warmup_steps=2", "train.batch_size=2", "train.eval_batch_size=2",
        "train.device=cpu", "measures.every=1", "measures.last=1", "measures.which=[fd]"])
    result = run_study(cfg, backend="serial", threads=1, display=False)
    assert (result.finished, result.failed) == (1 + len(tasks), 0)
    store = RunStore(cfg.store)
    runs = {r.name: r for r in store.list_runs()}
    assert sorted(runs) == sorted(["seed0/ew/param"] + [f"seed0/single_task/{t}" for t in tasks])
    ew = store.series(runs["seed0/ew/param"].id)
    last = "test/normal/median_angle" if name == "nyuv2" else "test/depth/rel_err"
    assert [s for s, _ in ew[last]] == [1, 2] and "val/segmentation/miou" in ew  # one step per epoch, two epochs
    assert set(runs["seed0/single_task/depth"].summary) == {"test/depth/abs_err", "test/depth/rel_err"}
    md = result.report_html.with_suffix(".md").read_text()
    assert all(line in md for line in published)
    assert f"Dataset {name}; 1 seed(s); 2 steps per cell" in md and "SGD (momentum 0.9), lr 0.0001, linear warm-up over 2" in md
    assert "| method | segmentation miou (↑) | segmentation pixel_acc (↑) | depth abs_err (↓) | depth rel_err (↓) |" in md

def test_delta_m_column_against_the_formula() -> None:
    """Δm% of the performance table: seed means, every metric weighed equally, sign by direction (hand values)."""
    tasks = [TaskSpec("segmentation", "segmentation"), TaskSpec("depth", "depth")]
    cols = columns(tasks)  # miou, pixel_acc (higher better); abs_err, rel_err (lower better)
    single = {"test/segmentation/miou": [0.4], "test/segmentation/pixel_acc": [0.8],
              "test/depth/abs_err": [0.5], "test/depth/rel_err": [0.2]}
    ew = {"test/segmentation/miou": [0.42, 0.46], "test/segmentation/pixel_acc": [0.8, 0.8],
          "test/depth/abs_err": [0.6, 0.6], "test/depth/rel_err": [0.19, 0.21]}
    rows = performance_rows({("ew", "param"): ew}, cols, single)
    expected = 100 * (0.44 / 0.4 - 1 + 0.0 - (0.6 / 0.5 - 1) - 0.0) / 4  # +10%, 0, -20%, 0 -> -2.5%
    assert rows[0][0] == "baseline (ew)" and rows[0][-1] == f"{expected:+.2f}" == "-2.50"
    assert rows[-1] == ["single task", "0.4000", "0.8000", "0.5000", "0.2000", "0 (reference)"]
    single["test/depth/rel_err"] = [0.0]
    assert performance_rows({("ew", "param"): ew}, cols, single)[0][-1] == "—"
    assert zero_baselines(single, cols) == ["depth rel_err"]
