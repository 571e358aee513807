"""The decoding, autoencoders and geometry studies on the engine, on the tiny factor dataset: cells, resume,
reports with the seed's tables beside ours and every announced figure, and bad input before anything is written."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mtlens import MtlensError
from mtlens.measures.geometry import linear_cka
from mtlens.runs import RunStore
from mtlens.studies import load_study_config, run_study
from mtlens.studies.engine import CellContext, MetricBuffer
from mtlens.studies.registry import STUDIES

DATA = "data: {dataset: tiny, n_tasks: 2, subset: 96}\n"
DECODING = ("study: decoding\nseeds: [0]\nencoders: [random, single_task, multi_head]\nsingle_tasks: [1]\n" + DATA +
            "model: {latent_dim: 4, head_hidden: [16]}\ntrain: {epochs: 1, batch_size: 16, log_every: 2, device: cpu}\n"
            "decoder: {epochs: 1, batch_size: 16, lr: 0.002, halve_every: null, train_images: 32, log_every: 1}\n"
            "figures: {examples: 3, traversal_steps: 3}\nembeddings: {points: 0}\n")
AUTOENCODERS = ("study: autoencoders\nseeds: [0]\nrepresentations: [ground_truth, raw_factors, vae]\n" + DATA +
                "autoencoder: {epochs: 1, batch_size: 16, latent_dim: 4, activation: relu, train_images: 32}\n"
                "train: {epochs: 1, batch_size: 16, log_every: 2, device: cpu}\nheads: {hidden: [16]}\n"
                "metrics: {names: [mig], options: {mig: {num_train: 100}}}\nexamples: 3\n")
GEOMETRY = ("study: geometry\nseeds: [0, 1]\nencoders: [random, multi_head, ae]\n" + DATA +
            "model: {latent_dim: 4, head_hidden: [16]}\ntrain: {epochs: 1, batch_size: 16, log_every: 2, device: cpu}\n"
            "autoencoder: {epochs: 1, batch_size: 16, latent_dim: 4, activation: relu, train_images: 32}\nfolds: 3\n")


def _config(tmp_path: Path, text: str, *overrides: str):
    (tmp_path / "c.yaml").write_text(text)
    return load_study_config(tmp_path / "c.yaml", [f"store={tmp_path / 's.sqlite'}", *overrides])


def _run(cfg):
    return run_study(cfg, backend="serial", threads=1, display=False)


@pytest.fixture(scope="module")
def decoding(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("decoding")
    cfg = _config(folder, DECODING)
    return cfg, _run(cfg)


def test_decoding_cells_report_and_resume(decoding) -> None:
    cfg, result = decoding
    assert (result.finished, result.failed) == (3, 0)
    assert set(result.run_ids) == {"seed0/random", "seed0/single_task/task_1", "seed0/multi_head"}
    store = RunStore(cfg.store)
    for label, run_id in result.run_ids.items():
        run = store.get_run(run_id)
        assert run.status == "finished" and 0 < run.summary["reconstruction/mse"] < 1
        assert run.summary["reconstruction/sse_per_image"] == pytest.approx(run.summary["reconstruction/mse"] * 64 * 64)
        names = {m.name for m in store.metrics(run_id)}
        assert "decoder/test/reconstruction/mse" in names  # each trainer logs under its prefix
        trained = label != "seed0/random"  # the random encoder is its seeded initialisation, never trained
        assert ("encoder/test/mean_mse" in names) == trained
        assert (run.artifacts_dir / "encoder" / "checkpoint.pt").is_file() == trained
        with np.load(run.artifacts_dir / "arrays.npz", allow_pickle=False) as a:
            assert a["inputs"].shape == (3, 1, 64, 64) and a["inputs"].dtype == np.uint8
            assert a["traversal_images"].shape == (4, 3, 1, 64, 64) and a["traversal_values"].shape == (4, 3)
    md = (result.report_html.parent / "report.md").read_text()
    assert "| random |" in md and "| single-task |" in md and "| multi-task |" in md
    assert "| dSprites | 308.04 | 326.30 | 35.97 |" in md  # Table 4 as published
    figures = sorted((result.report_html.parent / "figures").glob("*.png"))
    assert len(figures) == 4  # the reconstruction grid and one traversal per encoder (no embeddings asked)
    again = _run(cfg)
    assert (again.finished, again.skipped) == (0, 3)


def test_a_decoding_cell_resumes_from_its_checkpoints_to_the_same_numbers(decoding, tmp_path: Path) -> None:
    cfg, result = decoding
    store = RunStore(cfg.store)
    run = store.get_run(result.run_ids["seed0/multi_head"])
    cell = next(c for c in STUDIES.get("decoding").cells(cfg) if c.name == "seed0/multi_head")
    sink = MetricBuffer(None, resume=True)
    ctx = CellContext(run.id, run.artifacts_dir, sink, "cpu", 1, resume=True)
    values = STUDIES.get("decoding").run_cell(cfg, cell, ctx)  # both trainers load their final checkpoints
    assert values["reconstruction/mse"] == pytest.approx(run.summary["reconstruction/mse"], rel=1e-6)
    assert not any(name.endswith("train/loss") for name, _ in sink.rows)  # no training step was taken again


def test_autoencoders_tables_1_and_6(tmp_path: Path) -> None:
    result = _run(_config(tmp_path, AUTOENCODERS))
    assert (result.finished, result.failed) == (3, 0)
    store = RunStore(tmp_path / "s.sqlite")
    vae = store.get_run(result.run_ids["seed0/vae"])
    assert 0 <= vae.summary["mig"] <= 1 and np.isfinite(vae.summary["rmse"])
    assert np.isfinite(vae.summary["autoencoder/test/kl/mse"])
    gt = store.get_run(result.run_ids["seed0/ground_truth"])
    assert "mig" not in gt.summary and gt.summary["rmse_raw"] > gt.summary["rmse"] > 0
    md = (result.report_html.parent / "report.md").read_text()
    assert "| Ground Truth |" in md and "| raw factors (upper bound) |" in md and "| VAE |" in md
    assert "| Ground Truth | 150.235 ± 3.754 | 72.979 ± 0.193 | 108.568 ± 0.285 |" in md  # Table 1 as published
    assert "| representation | MIG | paper |" in md  # Table 6 layout (no published column for tiny)
    assert len(list((result.report_html.parent / "figures").glob("*.png"))) == 1  # the AE reconstructions


def test_geometry_similarities_from_the_cells_codes(tmp_path: Path) -> None:
    result = _run(_config(tmp_path, GEOMETRY))
    assert (result.finished, result.failed) == (6, 0)
    store = RunStore(tmp_path / "s.sqlite")
    cka = []
    for seed in (0, 1):
        codes = {}
        for enc in ("random", "multi_head"):
            run = store.get_run(result.run_ids[f"seed{seed}/{enc}"])
            with np.load(run.artifacts_dir / "arrays.npz", allow_pickle=False) as a:
                codes[enc] = a["codes"]
            assert 0 < run.summary["effective_dimensionality"] <= 4
        cka.append(linear_cka(codes["random"], codes["multi_head"]).score)
    md = (result.report_html.parent / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| random |") and "CKA" not in line
               and md.index(line) > md.index("CKA between"))
    assert f"{np.mean(cka):.3f} ± {np.std(cka):.3f}" in row
    assert "effective dimensionality" in md and "shape" in md
    assert len(list((result.report_html.parent / "figures").glob("*.png"))) == 4  # PCA spectra + 3 similarity maps


@pytest.mark.parametrize("study, text, override, message", [
    ("decoding", DECODING, "single_tasks=[2]", "single_tasks [2] are not task indices 0..1"),
    ("decoding", DECODING, "decoder.train_images=500", "decoder.train_images=500 but the training split holds"),
    ("decoding", DECODING, "embeddings.points=5", "embeddings.points=5 must exceed embeddings.n_neighbors=15"),
    ("geometry", GEOMETRY, "points=100", "points=100 but the test split holds"),
    ("autoencoders", AUTOENCODERS, "metrics.names=[nosuch]", "unknown metric 'nosuch'"),
])
def test_bad_config_is_one_line_and_writes_nothing(tmp_path: Path, study, text, override, message) -> None:
    with pytest.raises(MtlensError, match=message.replace("[", r"\[").replace("]", r"\]")):
        _run(_config(tmp_path, text, override))
    assert not (tmp_path / "s.sqlite").exists()


def test_embeddings_without_umap_say_how_to_install_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(MtlensError, match=r"pip install mtlens\[umap\]"):
        _run(_config(tmp_path, DECODING, "embeddings.points=8", "embeddings.n_neighbors=4"))
    assert not (tmp_path / "s.sqlite").exists()
