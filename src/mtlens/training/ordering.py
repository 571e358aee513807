"""Training layer-ordering models with the Trainer (seed 003 App. A) and tracing their soft-ordering scales.

Each step draws a batch of every task and combines the task losses into one update: equal weighting (the
seed's sum) or any method of mtlens.methods at level "param" (the shared parameters are the core layers;
there is no single shared representation, so feature-level methods are refused). An "epoch" of the Trainer is
`eval_every` iterations, after which the test split is evaluated: the history is the error-by-iteration curve.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mtlens.data.task_batches import AlignedTaskBatches, FullTaskBatches, task_batch_splits
from mtlens.data.task_groups import TaskGroupData
from mtlens.errors import MtlensError
from mtlens.methods import create_method
from mtlens.methods.base import Method
from mtlens.models.losses import task_loss
from mtlens.models.ordering import LayerOrderingModel
from mtlens.training.trainer import MetricSink, StepCallback, TrainConfig, Trainer


def scale_distances(scales: torch.Tensor) -> torch.Tensor:
    """Returns per depth the mean Euclidean distance between two tasks' scale vectors s(t, :, k): [D] (0 for one task).

    Seed 003 Fig. 4b: "the layer-wise distance between scalings of the tasks increases by iteration".
    """
    T = scales.shape[0]
    if T < 2:
        return torch.zeros(scales.shape[2])
    per_depth = scales.permute(2, 0, 1)  # [D, T, L]
    dist = torch.cdist(per_depth, per_depth)  # [D, T, T]
    return dist.sum((1, 2)) / (T * (T - 1))


def scale_hardness(scales: torch.Tensor) -> torch.Tensor:
    """Returns per depth the mean over tasks of the largest scale max_j s(t, j, k): [D] (1 = a hard ordering, Fig. 4c)."""
    return scales.max(dim=1).values.mean(0)


class ScaleTrace:
    """A Trainer callback recording, every `every` steps, the scales' distance and hardness per depth (Fig. 4b-c).

    Each record is also returned to the Trainer, which logs it as `scales/distance/d<k>` and `scales/hardness/d<k>`
    (k = 1..D) into the run's metric sink, so a study reads the trace from the store.
    """

    def __init__(self, model: LayerOrderingModel, every: int) -> None:
        if every < 1:
            raise MtlensError(f"scale trace interval must be >= 1 step, got {every}")
        self.model, self.every = model, int(every)
        self.steps: list[int] = []
        self.distance: list[list[float]] = []
        self.hardness: list[list[float]] = []

    def record(self, step: int) -> dict[str, float]:
        """Stores the current distance and hardness per depth at `step`; returns them as metric values."""
        with torch.no_grad():
            s = self.model.scales().detach().float().cpu()
        self.steps.append(int(step))
        self.distance.append(scale_distances(s).tolist())
        self.hardness.append(scale_hardness(s).tolist())
        return trace_values(self.distance[-1], self.hardness[-1])

    def on_step(self, step: int, losses: torch.Tensor, shared: list[torch.Tensor], z: torch.Tensor | None) -> dict[str, float] | None:
        return self.record(step) if step % self.every == 0 else None

    def as_dict(self) -> dict[str, list]:
        """Returns {"step": [...], "distance": [[per depth]...], "hardness": [[per depth]...]}."""
        return {"step": list(self.steps), "distance": [list(d) for d in self.distance], "hardness": [list(h) for h in self.hardness]}


def trace_values(distance: Sequence[float], hardness: Sequence[float]) -> dict[str, float]:
    """Returns {"scales/distance/d1": ..., "scales/hardness/d1": ...} for per-depth values (depths from 1)."""
    out = {f"scales/distance/d{k + 1}": float(v) for k, v in enumerate(distance)}
    out.update({f"scales/hardness/d{k + 1}": float(v) for k, v in enumerate(hardness)})
    return out


def check_method(method: Method, model: LayerOrderingModel) -> None:
    """Raises unless `method` can train `model`: parameter-level, and gradient methods need shared parameters."""
    if method.n_tasks != len(model.tasks):
        raise MtlensError(f"method {method.name} is for {method.n_tasks} tasks, the model has {len(model.tasks)}")
    if method.uses_gradients and method.level == "feature":
        raise MtlensError(
            f"method {method.name} at level='feature' needs one shared representation; a {model.architecture} model "
            "has none (each task mixes the core layers its own way): use level='param'"
        )
    if method.uses_gradients and not any(True for _ in model.shared_parameters()):
        raise MtlensError(f"method {method.name} combines gradients of shared parameters; a {model.architecture} model "
                          "shares none: use 'ew'")


@torch.no_grad()
def evaluate_losses(model: LayerOrderingModel, data: TaskGroupData, split: str = "test", batch_size: int = 1024) -> dict[str, float]:
    """Returns each task's mean loss over a split (the seed's validation loss, App. A), in evaluation mode."""
    from mtlens.data.multitask import make_loader
    from mtlens.data.task_batches import AlignedTaskBatches
    from mtlens.training.trainer import to_device

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    totals = torch.zeros(len(model.tasks), dtype=torch.float64)
    counts = torch.zeros(len(model.tasks), dtype=torch.float64)
    for batch in make_loader(AlignedTaskBatches(data.train if split == "train" else data.test), batch_size):
        batch = to_device(batch, device)
        preds = model(batch["x"])
        for t, (spec, y) in enumerate(zip(model.tasks, batch["targets"])):
            if len(y):
                totals[t] += float(task_loss(spec, preds[spec.name], y.reshape(-1))) * len(y)
                counts[t] += len(y)
    model.train(was_training)
    return {spec.name: float(totals[t] / counts[t]) for t, spec in enumerate(model.tasks)}


@dataclass
class OrderingRun:
    """A finished training: per evaluation the iteration and test measures, final measures, the trained model."""

    model: LayerOrderingModel
    iterations: list[int]
    history: list[dict[str, float]]
    final: dict[str, float]
    scale_trace: dict[str, list] | None = None
    steps_done: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def mean_error(self) -> list[float]:
        """Returns the mean over tasks of the test error (1 - accuracy) at each evaluation."""
        return [1.0 - h["test/mean_acc"] for h in self.history]


def train_task_group(
    model: LayerOrderingModel,
    data: TaskGroupData,
    *,
    iterations: int,
    batch_size: int,
    eval_every: int,
    method: str | Method = "ew",
    method_options: Mapping[str, Any] | None = None,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "auto",
    eval_split: str = "test",
    trace_every: int | None = None,
    store: MetricSink | None = None,
    run_id: str | None = None,
    checkpoint_dir: Path | None = None,
    resume: bool = False,
    progress: bool = False,
    callbacks: Sequence[StepCallback] = (),
) -> OrderingRun:
    """Returns the trained run: Adam (lr, default betas) for `iterations` steps of `batch_size` samples per task."""
    if iterations < 1 or eval_every < 1 or iterations % eval_every:
        raise MtlensError(f"iterations ({iterations}) must be a positive multiple of eval_every ({eval_every})")
    if [t.name for t in model.tasks] != data.names:
        raise MtlensError(f"the model's tasks {model.task_names} are not the data's {data.names}")
    if isinstance(method, str):
        method = create_method(method, len(model.tasks), **dict(method_options or {}))
    check_method(method, model)
    splits = task_batch_splits(data, batch_size, eval_every, eval_split)
    config = TrainConfig(epochs=iterations // eval_every, lr=lr, batch_size=batch_size, eval_batch_size=1024, seed=seed,
                         device=device, log_every=0, progress=progress, checkpoint=checkpoint_dir is not None)
    trace = ScaleTrace(model, trace_every) if trace_every and model.ordering == "soft" else None
    trainer = Trainer(model, method, splits, config, store=store, run_id=run_id, checkpoint_dir=checkpoint_dir,  # type: ignore[arg-type]
                      callbacks=[*callbacks, *([trace] if trace else [])])
    final = trainer.fit(resume=resume)
    if trace is not None and (not trace.steps or trace.steps[-1] != trainer.global_step):
        values = trace.record(trainer.global_step)  # the trained model's scales close the trace
        if store is not None and run_id is not None:
            store.log_metrics(run_id, trainer.global_step, values)
    history = [h for h in trainer.history if "test/mean_acc" in h]
    iters = [int(h["epoch"]) * eval_every for h in history]
    return OrderingRun(model, iters, history, final, trace.as_dict() if trace else None, trainer.global_step)


def fit_full_batch(
    model: LayerOrderingModel,
    data: TaskGroupData,
    *,
    steps: int,
    lr: float = 1e-3,
    method: str | Method = "ew",
    seed: int = 0,
    device: str = "cpu",
    checkpoint_dir: Path | None = None,
    resume: bool = False,
) -> dict[str, float]:
    """Returns the training accuracy per task ('train/<task>/acc') and their mean ('train/mean_acc') after `steps`
    full-batch Adam steps on every training sample of every task (seed 003 §3.2: how well the tasks can be fitted).

    The Trainer takes the steps (batch_size 1 over `FullTaskBatches`: one row is the whole training set), then
    evaluates on the training samples.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise MtlensError(f"steps must be an integer >= 1, got {steps!r}")
    if isinstance(method, str):
        method = create_method(method, len(model.tasks))
    check_method(method, model)
    splits = {"train": FullTaskBatches(data.train, steps), "test": AlignedTaskBatches(data.train)}
    largest = max(len(d) for d in data.train)
    config = TrainConfig(epochs=1, lr=lr, batch_size=1, eval_batch_size=largest, seed=seed, device=device, log_every=0,
                         progress=False, checkpoint=checkpoint_dir is not None)
    trainer = Trainer(model, method, splits, config, checkpoint_dir=checkpoint_dir)  # type: ignore[arg-type]
    scores = trainer.fit(resume=resume)
    out = {f"train/{name.split('/', 1)[1]}": v for name, v in scores.items() if name.endswith("/acc") and name != "test/mean_acc"}
    out["train/mean_acc"] = scores["test/mean_acc"]
    return out
