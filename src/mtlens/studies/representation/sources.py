"""Encoders to analyse: from Python (any module mapping images to codes) or from the run store by run id.

Stored runs come in two kinds, told apart by their config: a hard-sharing run (`cell.variant`, `data`, `model`;
rebuilt by `studies.evaluation.load_run_model`) or an auto-encoder run (`autoencoder` = {kind, latent_dim,
activation, options}, and `data`), whose checkpoint the Trainer wrote to `<artifacts>/checkpoint.pt`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from mtlens.data import create_factor_dataset
from mtlens.data.base import FactorDataset
from mtlens.data.multitask import Split, split_indices
from mtlens.errors import MtlensError
from mtlens.models import create_model
from mtlens.models.probes import as_encoder
from mtlens.runs import RunStore
from mtlens.studies.evaluation import load_run_model
from mtlens.training.checkpoint import load_checkpoint


@dataclass
class RunEncoder:
    """A stored run's dataset, its trained model (eval mode) and the module giving its codes."""

    run_id: str
    label: str
    dataset: FactorDataset
    model: nn.Module
    encoder: nn.Module
    data: dict[str, Any]


def autoencoder_run_config(kind: str, data: dict[str, Any], latent_dim: int = 8, activation: str = "tanh",
                           options: dict[str, Any] | None = None, train: dict[str, Any] | None = None) -> dict[str, Any]:
    """Returns the config to store with an auto-encoder run: what rebuilds its model and its data."""
    return {"autoencoder": {"kind": kind, "latent_dim": int(latent_dim), "activation": activation,
                            "options": dict(options or {})},
            "data": dict(data), "train": dict(train or {})}


def _load_weights(model: nn.Module, state: dict[str, Any], run_id: str, kind: str) -> None:
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError) as err:
        first = str(err).strip().splitlines()[0]
        raise MtlensError(f"run {run_id}: its checkpoint does not hold a {kind} model ({first}); "
                          "it was written by another model kind") from None


def _autoencoder_run(store: RunStore, run_id: str, data_dir: str | None) -> RunEncoder:
    run = store.get_run(run_id)
    spec, data = run.config["autoencoder"], run.config.get("data", {})
    if "dataset" not in data:
        raise MtlensError(f"run {run.id}: its config names no dataset (data.dataset)")
    dataset = create_factor_dataset(data["dataset"], data_dir=data_dir if data_dir is not None else data.get("data_dir"),
                             **data.get("options", {}))
    if not isinstance(dataset, FactorDataset):
        raise MtlensError(f"run {run.id}: dataset {data['dataset']!r} has no generative factors")
    model = create_model(spec["kind"], (), dataset.image_shape, latent_dim=spec["latent_dim"],
                         activation=spec["activation"], **spec.get("options", {}))
    state = load_checkpoint(store.artifacts_dir(run.id) / "checkpoint.pt")
    if state is None:
        raise MtlensError(f"run {run.id} has no checkpoint in {store.artifacts_dir(run.id)}; train it (or resume it) first")
    _load_weights(model, state, run.id, spec["kind"])
    model.eval()
    return RunEncoder(run.id, f"{spec['kind']} ({run.id})", dataset, model, as_encoder(model), dict(data))


def _hard_sharing_run(store: RunStore, run_id: str, data_dir: str | None) -> RunEncoder:
    run = store.get_run(run_id)
    variant = run.config["cell"]["variant"]
    dataset, model = load_run_model(store, run.id, data_dir)  # another model's checkpoint: one line from restore
    model.eval()
    task = run.config["cell"].get("task")
    label = variant if task is None else f"{variant} (task {task})"
    return RunEncoder(run.id, label, dataset, model, model.encoder, dict(run.config["data"]))


def encoder_from_run(store: RunStore, run_id: str, data_dir: str | None = None) -> RunEncoder:
    """Returns a stored run's dataset, model and encoder module (hard-sharing or auto-encoder runs)."""
    run = store.get_run(run_id)
    if "autoencoder" in run.config:
        return _autoencoder_run(store, run.id, data_dir)
    if "variant" in run.config.get("cell", {}):
        return _hard_sharing_run(store, run.id, data_dir)
    raise MtlensError(f"run {run.id} ({run.study}) has no encoder to analyse; pass a hard-sharing or auto-encoder run")


def run_split(source: RunEncoder) -> Split:
    """Returns the train/val/test indices the run was trained on (its data config's subset, fractions, split seed)."""
    data = source.data
    return split_indices(len(source.dataset), tuple(data.get("fractions", (0.8, 0.1, 0.1))),
                         seed=int(data.get("split_seed", 0)), subset=data.get("subset"))
