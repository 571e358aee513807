"""Disentanglement metrics for trained runs: rebuild a run's encoder from the store and score it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from mtlens.data import create_factor_dataset
from mtlens.data.base import FactorDataset
from mtlens.data.random_mlp import RandomMLPTasks
from mtlens.device import resolve_device
from mtlens.errors import MtlensError
from mtlens.measures.disentanglement import evaluate
from mtlens.models import create_model
from mtlens.models.hard_sharing import MultiTaskModel
from mtlens.runs import RunStore
from mtlens.training.checkpoint import load_checkpoint, restore


def encoder_scores(
    dataset: FactorDataset,
    model: MultiTaskModel,
    metrics: Sequence[str],
    seed: int = 0,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    device: str | torch.device = "auto",
) -> dict[str, float]:
    """Returns the flat named scores ({"mig": .., "dci/disentanglement": .., ...}) of the model's encoder."""
    dev = resolve_device(device)
    model.to(dev).eval()

    @torch.no_grad()
    def encode(x: torch.Tensor) -> torch.Tensor:
        return model.encode(x.to(dev))

    results = evaluate(dataset, encode, list(metrics), seed=seed, device=dev, settings=settings)
    out: dict[str, float] = {}
    for result in results.values():
        out.update(result.as_dict())
    return out


def check_metrics(names: Sequence[str], options: Mapping[str, Mapping[str, Any]]) -> None:
    """Raises one line for an unknown metric name, options for a metric not listed, or an option it does not take."""
    from mtlens.measures.disentanglement import METRICS

    canonical = [METRICS.canonical(n) for n in names]
    for key, opts in options.items():
        if METRICS.canonical(key) not in canonical:
            raise MtlensError(f"metrics.options names {key!r}, which is not among metrics.names ({', '.join(names)})")
        try:
            METRICS.create(key, **dict(opts))
        except TypeError as err:
            raise MtlensError(f"metrics.options.{key}: {err}") from None


def load_run_model(store: RunStore, run_id: str, data_dir: str | None = None) -> tuple[FactorDataset, MultiTaskModel]:
    """Returns the factor dataset and the trained model of a stored run (weights from its last checkpoint)."""
    run = store.get_run(run_id)
    cfg = run.config
    cell = cfg.get("cell", {})
    if "variant" not in cell or "data" not in cfg or "model" not in cfg:
        raise MtlensError(f"run {run.id} ({run.study}) has no encoder to evaluate; `mtlens eval` takes hard-sharing runs")
    data = cfg["data"]
    dataset = create_factor_dataset(data["dataset"], data_dir=data_dir if data_dir is not None else cfg.get("data_dir"),
                                    **data.get("options", {}))
    tasks = RandomMLPTasks.for_dataset(dataset, data["n_tasks"], data["task_seed"], inputs=data["inputs"]).tasks
    m = cfg["model"]
    kwargs = {"task": cell["task"]} if cell["variant"] == "single_task" else {}
    torch.manual_seed(run.seed)  # an untrained (random) encoder is its seeded initialisation
    model = create_model(cell["variant"], tasks, dataset.image_shape, latent_dim=m["latent_dim"], activation=m["activation"],
                         head_hidden=tuple(m["head_hidden"]), head_activation=m["head_activation"], **kwargs)
    path = store.artifacts_dir(run.id) / "checkpoint.pt"
    state = load_checkpoint(path)
    if state is not None:
        restore(model.load_state_dict, state["model"], path)
    elif cfg.get("train", {}).get("epochs", 0) > 0:
        raise MtlensError(f"run {run.id} has no checkpoint in {store.artifacts_dir(run.id)}; train it (or resume it) first")
    return dataset, model


def evaluate_run(store: RunStore, run_id: str, metrics: Sequence[str], seed: int = 0,
                 settings: Mapping[str, Mapping[str, Any]] | None = None, data_dir: str | None = None) -> dict[str, float]:
    """Scores a stored run's encoder, logs the scores at the run's last step, and returns them."""
    run = store.get_run(run_id)
    dataset, model = load_run_model(store, run.id, data_dir)
    scores = encoder_scores(dataset, model, metrics, seed=seed, settings=settings)
    store.log_metrics(run.id, store.last_step(run.id) or 0, scores)
    return scores
