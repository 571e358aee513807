"""The science under the decoding / autoencoders / geometry studies, on the tiny factor dataset."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mtlens import MtlensError
from mtlens.data.multitask import factor_task_splits, split_indices
from mtlens.data.random_mlp import RandomMLPTasks
from mtlens.data.tiny import TinyShapes
from mtlens.models import ConvEncoder, create_model
from mtlens.models.probes import DecoderProbe
from mtlens.runs import RunStore
from mtlens.studies.common import DataConfig, ModelConfig
from mtlens.studies.representation import (AutoencoderSettings, DecoderSettings, HeadSettings, ImageSplit,
                                           autoencoder_run_config, decoding_cell, decoding_cell_for_run,
                                           embedding_cell, encode_split,
                                           encoder_from_run, encoder_geometry, pairwise_similarity,
                                           reconstruction_error, run_split, table1_cell, table6_cell, traverse)
from mtlens.training.checkpoint import rng_state
from mtlens.training.checkpoint import save_checkpoint as _save


def save_checkpoint(path, payload) -> None:
    """Writes a complete checkpoint around the given model weights (as the Trainer would)."""
    _save(path, {"optimizer": {}, "method": {}, "rng": rng_state(), "epoch": 1, "global_step": 1, "history": [],
                 "config": {}, **payload})

FAST = DecoderSettings(epochs=3, lr=2e-3, halve_every=2, batch_size=8, eval_batch_size=16, device="cpu")


@pytest.fixture(scope="module")
def tiny():
    ds = TinyShapes(image_size=64, num_positions=4)  # 48 images
    split = split_indices(len(ds), (0.5, 0.1, 0.4), seed=0)
    return ds, ImageSplit(ds, split.train[:16], cache=True), ImageSplit(ds, split.test[:16], cache=True)


class BNEncoder(nn.Module):
    """A small encoder with batch-norm buffers (they must not move while a decoder trains on it)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.AvgPool2d(8), nn.Flatten(), nn.BatchNorm1d(64), nn.Linear(64, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def test_decoder_steps_lower_the_error_and_leave_the_encoder_bit_for_bit(tiny) -> None:
    _, train, test = tiny
    torch.manual_seed(0)
    encoder = BNEncoder()
    encoder(torch.rand(8, 1, 64, 64))  # non-trivial running statistics
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    torch.manual_seed(0)
    untrained = reconstruction_error(DecoderProbe(encoder, (1, 64, 64)), test)
    result = decoding_cell(encoder, train, test, FAST, seed=0, label="bn")
    assert result.error.mse < 0.97 * untrained.mse  # seeded: 0.0547 -> 0.0517 in 6 steps
    assert result.error.sse_per_image == pytest.approx(result.error.mse * 64 * 64)
    assert result.values()["reconstruction/mse"] == result.error.mse
    assert result.train_values["test/reconstruction/mse"] == pytest.approx(result.error.mse, rel=1e-5)
    after = encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not result.probe.encoder.training


def test_decoder_for_an_encoder_of_another_input_shape(tiny) -> None:
    _, train, test = tiny
    with pytest.raises(MtlensError, match=r"does not take this dataset's images \(1, 64, 64\).*\[N, 3, 64, 64\]"):
        decoding_cell(ConvEncoder(3, 4), train, test, FAST)


def test_traversal_sweeps_one_latent_at_a_time(tiny) -> None:
    _, train, _ = tiny
    torch.manual_seed(0)
    probe = DecoderProbe(ConvEncoder(1, 3), (1, 64, 64)).eval()
    codes = encode_split(probe.encoder, train, device="cpu")
    tr = traverse(probe, train.x([0])[0], steps=5, observed=codes)
    assert tr.values.shape == (3, 5) and tr.images.shape == (3, 5, 1, 64, 64)
    assert np.allclose(tr.values[:, 0], codes.min(0)) and np.allclose(tr.values[:, -1], codes.max(0))
    z = torch.as_tensor(tr.code).repeat(5, 1)
    z[:, 1] = torch.as_tensor(tr.values[1], dtype=z.dtype)
    assert torch.allclose(tr.images[1], probe.decode(z).detach(), atol=1e-6)
    fixed = traverse(probe, train.x([0])[0], steps=3, value_range=(-1.0, 1.0))
    assert np.array_equal(fixed.values, np.tile([-1.0, 0.0, 1.0], (3, 1)))
    with pytest.raises(MtlensError, match="observed codes .* or a value_range"):
        traverse(probe, train.x([0])[0])


def _hard_sharing_run(store: RunStore, state: dict) -> str:
    config = {"cell": {"variant": "multi_head", "task": None}, "train": {"epochs": 1},
              "data": DataConfig(dataset="tiny", n_tasks=2, subset=40).model_dump(mode="json"),
              "model": ModelConfig(latent_dim=4).model_dump(mode="json")}
    run_id = store.create_run("hard_sharing", config, seed=0)
    save_checkpoint(store.artifacts_dir(run_id) / "checkpoint.pt", {"model": state})
    return run_id


def test_encoders_from_the_run_store_and_their_errors(tmp_path: Path, tiny) -> None:
    ds = tiny[0]
    store = RunStore(tmp_path / "s.sqlite")
    tasks = RandomMLPTasks.for_dataset(ds, 2, 0).tasks
    torch.manual_seed(3)
    mh = create_model("multi_head", tasks, (1, 64, 64), latent_dim=4)
    run = _hard_sharing_run(store, mh.state_dict())
    source = encoder_from_run(store, run)
    x = ds.images([0, 5])
    assert torch.equal(source.encoder(x), mh.encode(x)) and source.label == "multi_head"
    split = run_split(source)
    assert len(split.train) + len(split.val) + len(split.test) == 40
    decoded = decoding_cell_for_run(store, run, DecoderSettings(epochs=1, batch_size=8, device="cpu"), train_limit=8)
    assert decoded.label == "multi_head" and decoded.error.n_images == len(split.test)
    ae = create_model("ae", (), (1, 64, 64), latent_dim=4)
    data = DataConfig(dataset="tiny").model_dump(mode="json")
    ae_run = store.create_run("autoencoders", autoencoder_run_config("ae", data, latent_dim=4), seed=0)
    save_checkpoint(store.artifacts_dir(ae_run) / "checkpoint.pt", {"model": ae.state_dict()})
    assert torch.equal(encoder_from_run(store, ae_run).encoder(x), ae.encode(x))
    with pytest.raises(MtlensError, match="no run 'nope'"):
        encoder_from_run(store, "nope")
    with pytest.raises(MtlensError, match=f"{_hard_sharing_run(store, ae.state_dict())}/checkpoint.pt does not fit "
                                          r"this run \(.*MultiHead.*\); it belongs to another model"):
        encoder_from_run(store, _last(store))
    vae_run = store.create_run("autoencoders", autoencoder_run_config("vae", data, latent_dim=4), seed=0)
    save_checkpoint(store.artifacts_dir(vae_run) / "checkpoint.pt", {"model": ae.state_dict()})
    with pytest.raises(MtlensError, match=f"run {vae_run}: its checkpoint does not hold a vae model"):
        encoder_from_run(store, vae_run)
    other = store.create_run("balancing", {"lr": 1}, seed=0)
    with pytest.raises(MtlensError, match="has no encoder to analyse"):
        encoder_from_run(store, other)


def _last(store: RunStore) -> str:
    return store.list_runs()[-1].id


@pytest.fixture(scope="module")
def tiny_tasks(tiny):
    ds = tiny[0]
    tasks = RandomMLPTasks.for_dataset(ds, 2, seed=0, inputs="unit")
    return ds, tasks, factor_task_splits(ds, tasks, split_indices(len(ds), (0.5, 0.1, 0.4), seed=0), device="cpu")


def test_table1_cells(tiny_tasks) -> None:
    ds, tasks, splits = tiny_tasks
    heads = HeadSettings(epochs=2, batch_size=8, hidden=(16,), device="cpu")
    gt = table1_cell("ground_truth", ds, tasks, splits, seed=0, heads=heads)
    raw = table1_cell("raw_factors", ds, tasks, splits, seed=0, heads=heads)
    for cell in (gt, raw):
        mse = np.array(list(cell.heads.per_task_mse.values()))
        assert cell.heads.rmse == pytest.approx(np.sqrt(mse.mean()))
        assert cell.heads.rmse_raw == pytest.approx(np.sqrt(np.mean(mse * tasks.std.numpy() ** 2)), rel=1e-5)
    ae = table1_cell("vae", ds, tasks, splits, seed=0, heads=heads,
                     autoencoder=AutoencoderSettings(epochs=1, batch_size=12, device="cpu"))
    assert ae.autoencoder is not None and np.isfinite(ae.values()["rmse"])
    assert {"autoencoder/test/reconstruction/mse", "autoencoder/test/kl/mse"} <= set(ae.values())
    scores = table6_cell(ae.autoencoder, ds, ["mig"], seed=0, settings={"mig": {"num_train": 40}}, device="cpu")
    assert 0.0 <= scores["mig"] <= 1.0
    with pytest.raises(MtlensError, match="unknown representation 'pca'"):
        table1_cell("pca", ds, tasks, splits, heads=heads)


def test_geometry_cells(tiny_tasks) -> None:
    ds, tasks, splits = tiny_tasks
    idx = splits["train"].indices
    factors = ds.factor_values(idx)
    onehot = np.eye(3)[ds.factors(idx)[:, 0]] * 3.0
    codes = np.hstack([onehot, factors[:, 1:], np.random.default_rng(0).standard_normal((len(idx), 2))])
    geo = encoder_geometry("gt", codes, ds, idx, splits["train"].targets.numpy(), ["t0", "t1"], folds=3)
    assert geo.values["decodability/factor/pos_x"] == pytest.approx(1.0)
    assert geo.values["decodability/factor/shape"] == pytest.approx(1.0)  # categorical: accuracy
    assert {"effective_dimensionality", "decodability/task/t0", "decodability/task_mean"} <= set(geo.values)
    assert geo.explained_ratio.sum() == pytest.approx(1.0)
    sims = pairwise_similarity({"a": codes, "b": codes @ np.diag([1, 2, 3, 4, 5, 6, 7.0]), "c": np.random.default_rng(1).permutation(codes)})
    assert sims["cca"][0, 1] == pytest.approx(1.0) and sims["cka"].shape == (3, 3)
    assert sims["cka"][0, 2] < 0.5 and np.allclose(np.diag(sims["svcca"]), 1.0)
    with pytest.raises(MtlensError, match="code rows for"):
        encoder_geometry("gt", codes[:-1], ds, idx)


class _FakeUMAP:
    def __init__(self, n_components: int, n_neighbors: int, min_dist: float, random_state: int) -> None:
        self.seed = random_state

    def fit_transform(self, x: np.ndarray) -> np.ndarray:
        return x[:, :2] + self.seed


def test_embeddings_with_and_without_umap(tiny, monkeypatch) -> None:
    ds, _, test = tiny
    monkeypatch.setitem(sys.modules, "umap", type(sys)("umap"))
    sys.modules["umap"].UMAP = _FakeUMAP
    torch.manual_seed(0)
    emb = embedding_cell({"a": ConvEncoder(1, 3), "b": ConvEncoder(1, 5)}, test, n_points=12, seed=1, n_neighbors=4,
                         device="cpu")
    assert [v.shape for v in emb.coords.values()] == [(12, 2), (12, 2)]
    assert emb.factor_names == ("shape", "pos_x", "pos_y") and emb.factor_values.shape == (12, 3)
    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(MtlensError, match=r"pip install mtlens\[umap\]"):
        embedding_cell({"a": ConvEncoder(1, 3)}, test)


@pytest.mark.slow
def test_real_umap_separates_clusters() -> None:
    from mtlens.studies.representation import umap_embedding

    rng = np.random.default_rng(0)
    codes = np.vstack([rng.standard_normal((60, 4)), rng.standard_normal((60, 4)) + 20])
    emb = umap_embedding(codes, seed=0)
    gap = np.linalg.norm(emb[:60].mean(0) - emb[60:].mean(0))
    assert emb.shape == (120, 2) and gap > 3 * emb[:60].std(0).max()


def test_factor_vae_run_through_the_trainer_and_back_from_the_store(tmp_path: Path, tiny) -> None:
    from mtlens.studies.representation import train_autoencoder

    ds, train, test = tiny
    store = RunStore(tmp_path / "s.sqlite")
    run = store.create_run("autoencoders", autoencoder_run_config(
        "factor_vae", DataConfig(dataset="tiny", options={"num_positions": 4}).model_dump(mode="json"),
        latent_dim=4, options={"gamma": 5.0, "discriminator_layers": 3, "discriminator_width": 16}), seed=0)
    store.start(run)
    settings = AutoencoderSettings(epochs=1, batch_size=8, latent_dim=4, gamma=5.0, discriminator_layers=3,
                                   discriminator_width=16, device="cpu")
    model, values = train_autoencoder("factor_vae", train, test, settings, seed=0, store=store, run_id=run,
                                      checkpoint_dir=store.artifacts_dir(run))
    assert all(np.isfinite(values[f"test/{t}/mse"]) for t in ("reconstruction", "kl", "tc", "discriminator"))
    assert {"train/epoch_loss/tc", "train/epoch_loss/discriminator"} <= {m.name for m in store.metrics(run)}
    source = encoder_from_run(store, run)
    x = test.x([0, 1])
    assert torch.equal(source.encoder(x), model.encode(x)) and source.label.startswith("factor_vae")
