"""The Trainer: Adam, per-task losses combined by an MTL method, evaluation, checkpoints, run store.

One step is exactly what a user's own loop does: `losses, z = model.step_losses(batch)`,
`method.backward(losses, model.shared_parameters(), z, model.task_parameters())`, `optimizer.step()`,
`method.after_step(...)`; and `method.epoch_end()` after each epoch. A method that declares
`needs_validation_batch` (Auto-Lambda) first gets `method.validation_step(...)` with a batch of the "val"
split. The Trainer calls the method's life cycle (`mtlens.methods.base`) and nothing else of it.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import torch
from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from mtlens.data.multitask import MultiTaskDataset, make_loader
from mtlens.device import resolve_device
from mtlens.errors import MtlensError
from mtlens.methods.base import Method
from mtlens.models.hard_sharing import MultiTaskModel
from mtlens.models.method_fit import check_method_fits
from mtlens.training.checkpoint import load_checkpoint, restore, rng_state, save_checkpoint, set_rng_state
from mtlens.models.losses import score_name
from mtlens.training.progress import progress_bar


class StepCallback(Protocol):
    """Called every step before the method's backward (the graph is still whole); returns values to log or None."""

    def on_step(self, step: int, losses: torch.Tensor, shared: list[torch.Tensor], z: torch.Tensor) -> Mapping[str, float] | None: ...


class MetricSink(Protocol):
    """What the Trainer needs of a run store."""

    def log_metrics(self, run_id: str, step: int, values: Mapping[str, float]) -> None: ...

    def fail(self, run_id: str, message: str, step: int | None = None) -> None: ...


@pydantic_dataclass(config=ConfigDict(extra="forbid", validate_assignment=True))
class TrainConfig:
    """The training settings (seed 000 App. C.1 defaults: Adam, lr 1e-3, betas (0.9, 0.999), batch 256).

    The one declaration of them: the studies embed it as their `train:` section (a study sets `seed` per cell
    from its `seeds`). A validated dataclass, so `dataclasses.asdict` / `replace` work and bad values are refused.
    """

    epochs: int = Field(200, ge=0)
    lr: float = Field(1e-3, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    batch_size: int = Field(256, ge=1)
    eval_batch_size: int = Field(1024, ge=1)
    seed: int = Field(0, ge=0)
    device: str = "auto"
    log_every: int = Field(50, ge=0)
    progress: bool = True
    checkpoint: bool = True
    num_workers: Annotated[int, Field(ge=0)] | Literal["auto"] = 0


def to_device(batch: Any, device: torch.device) -> Any:
    """Returns the batch with every tensor (in dicts, lists and tuples, at any depth) moved to `device`."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


class NonFiniteLoss(MtlensError):
    """A task loss became NaN or inf; the run is marked failed at that step."""


@dataclass
class Trainer:
    """Trains a multi-task model with an MTL method; `fit()` returns the final test measures."""

    model: MultiTaskModel
    method: Method
    data: Mapping[str, MultiTaskDataset]
    config: TrainConfig = field(default_factory=TrainConfig)
    store: MetricSink | None = None
    run_id: str | None = None
    checkpoint_dir: Path | None = None
    callbacks: Sequence[StepCallback] = ()

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            if split not in self.data:
                raise MtlensError(f"the Trainer needs a {split!r} dataset; got {sorted(self.data)}")
        n_active = len(self.model.active_tasks)
        if self.method.n_tasks is not None and self.method.n_tasks != n_active:
            raise MtlensError(f"method {self.method.name} is for {self.method.n_tasks} tasks, the model trains {n_active}")
        check_method_fits(self.model, self.method)
        self.device = resolve_device(self.config.device)
        self.model.to(self.device)
        if self.method.needs_validation_batch and ("val" not in self.data or not len(self.data["val"])):
            raise MtlensError(f"method {self.method.name} needs a validation batch every step; the data has no "
                              f"'val' split (got {sorted(self.data)}): give it one")
        self._val_batches: tuple[int, int, Iterator[Any]] | None = None
        self.method.to(self.device)  # learnable method weights live beside the model
        params = [p for p in self.model.parameters() if p.requires_grad] + self.method.parameters()
        self.optimizer = torch.optim.Adam(params, lr=self.config.lr, betas=tuple(self.config.betas))
        self.epoch = 0
        self.global_step = 0
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ checkpoints
    @property
    def checkpoint_path(self) -> Path | None:
        return None if self.checkpoint_dir is None else Path(self.checkpoint_dir) / "checkpoint.pt"

    def state_dict(self) -> dict[str, Any]:
        """Returns everything needed to continue this run exactly."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "method": self.method.state_dict(),
            "rng": rng_state(),
            "epoch": self.epoch,
            "global_step": self.global_step,
            "history": self.history,
            "config": asdict(self.config),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores a state returned by `state_dict`."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.method.load_state_dict(state["method"])
        set_rng_state(state["rng"])
        self.epoch, self.global_step = int(state["epoch"]), int(state["global_step"])
        self.history = list(state["history"])

    # ------------------------------------------------------------------ training
    def _log(self, values: Mapping[str, float]) -> None:
        if self.store is not None and self.run_id is not None and values:
            self.store.log_metrics(self.run_id, self.global_step, dict(values))

    def _fail(self, losses: torch.Tensor) -> None:
        names = [self.model.tasks[t].name for t in self.model.active_tasks]
        bad = [n for n, l in zip(names, losses.detach().cpu().tolist()) if not math.isfinite(l)]
        message = f"non-finite loss at step {self.global_step} (epoch {self.epoch}) for task(s) {', '.join(bad)}"
        if self.store is not None and self.run_id is not None:
            self.store.fail(self.run_id, message, step=self.global_step)
        raise NonFiniteLoss(message + "; lower the learning rate or check the targets")

    def train_step(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Runs one optimisation step on a batch; returns the detached [T_active] losses."""
        batch = to_device(batch, self.device)
        if self.method.needs_validation_batch:
            val_batch = self._validation_batch()
            params = [p for p in self.model.parameters() if p.requires_grad]
            self.method.validation_step(lambda: self.model.step_losses(val_batch)[0],
                                        lambda: self.model.step_losses(batch)[0], params)
        self.optimizer.zero_grad(set_to_none=True)
        losses, z = self.model.step_losses(batch)
        if not bool(torch.isfinite(losses).all()):
            self._fail(losses)
        shared = list(self.model.shared_parameters())
        for cb in self.callbacks:
            logged = cb.on_step(self.global_step, losses, shared, z)
            if logged:
                self._log(logged)
        self.method.backward(losses, shared, z, list(self.model.task_parameters()))
        self.optimizer.step()
        self.method.after_step(lambda: self.model.step_losses(batch)[0])
        self.global_step += 1
        return losses.detach()

    def _validation_batch(self) -> Any:
        """Returns this step's validation batch: the "val" split in batches of batch_size, reshuffled every pass
        with seed `seed * 100_003 + pass` (the training loader's rule); pass and position follow global_step,
        so a resumed run draws the same batches."""
        val, size = self.data["val"], self.config.batch_size
        n_pass, index = divmod(self.global_step, math.ceil(len(val) / size))
        if self._val_batches is None or self._val_batches[:2] != (n_pass, index):
            loader = make_loader(val, size, shuffle=True, seed=self.config.seed * 100_003 + n_pass,
                                 num_workers=self.config.num_workers)
            self._val_batches = (n_pass, index, itertools.islice(iter(loader), index, None))
        batch = next(self._val_batches[2])
        self._val_batches = (n_pass, index + 1, self._val_batches[2])
        return to_device(batch, self.device)

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        """Returns per-task test measures on a split: '<split>/<task>/mse' or '/acc', and their mean."""
        if split not in self.data:
            raise MtlensError(f"no {split!r} data to evaluate; have {sorted(self.data)}")
        was_training = self.model.training
        self.model.eval()
        loader = make_loader(self.data[split], self.config.eval_batch_size, num_workers=self.config.num_workers)
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}
        for batch in loader:
            for name, (value, n) in self.model.score_batch(to_device(batch, self.device)).items():
                sums[name] = sums.get(name, 0) + value  # summed in the measure's dtype, as per-task totals
                counts[name] = counts.get(name, 0) + n
        self.model.train(was_training)
        out = {f"{split}/{spec.name}/{score_name(spec)}": float(sums[spec.name]) / max(counts[spec.name], 1) for spec in self.model.tasks}
        for kind in ("mse", "acc"):
            vals = [v for k, v in out.items() if k.endswith("/" + kind)]
            if vals:
                out[f"{split}/mean_{kind}"] = sum(vals) / len(vals)
        return out

    def fit(self, resume: bool = False) -> dict[str, float]:
        """Trains for the configured epochs (continuing from the checkpoint when `resume`); returns final test measures."""
        path = self.checkpoint_path
        if resume and path is not None:
            state = load_checkpoint(path)
            if state is not None:
                restore(self.load_state_dict, state, path)
        cfg = self.config
        steps_per_epoch = math.ceil(len(self.data["train"]) / cfg.batch_size)
        self.model.train()
        with progress_bar(cfg.progress, total=cfg.epochs * steps_per_epoch, done=self.epoch * steps_per_epoch,
                          description=getattr(self.model, "architecture", "train")) as advance:
            while self.epoch < cfg.epochs:
                started = time.perf_counter()
                loader = make_loader(self.data["train"], cfg.batch_size, shuffle=True,
                                     seed=cfg.seed * 100_003 + self.epoch, num_workers=cfg.num_workers)
                running = torch.zeros(len(self.model.active_tasks), device=self.device)
                count = 0
                for batch in loader:
                    losses = self.train_step(batch)
                    running += losses
                    count += 1
                    if cfg.log_every and self.global_step % cfg.log_every == 0:
                        self._log(self._loss_values("train/loss", losses))
                    advance(1)
                self.epoch += 1
                self.method.epoch_end()
                values = self._loss_values("train/epoch_loss", running / max(count, 1))
                for split in ("val", "test"):
                    if split in self.data and len(self.data[split]):
                        values.update(self.evaluate(split))
                values["epoch"] = float(self.epoch)
                values["time/epoch_s"] = time.perf_counter() - started
                self.history.append(values)
                self._log(values)
                if cfg.checkpoint and path is not None:
                    save_checkpoint(path, self.state_dict())
        if not self.history:
            final = self.evaluate("test")
            self.history.append(final)
            self._log(final)
        return {k: v for k, v in self.history[-1].items() if k.startswith("test/")}

    def _loss_values(self, prefix: str, losses: torch.Tensor) -> dict[str, float]:
        vals = losses.detach().cpu().tolist()
        names = [self.model.tasks[t].name for t in self.model.active_tasks]
        out = {f"{prefix}/{n}": v for n, v in zip(names, vals)}
        out[prefix] = float(sum(vals))
        return out
