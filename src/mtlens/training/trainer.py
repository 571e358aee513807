"""The Trainer: per-task losses combined by an MTL method, Adam or SGD with a linear warm-up, evaluation,
checkpoints, run store.

One step is exactly what a user's own loop does: `losses, z = model.step_losses(batch)`,
`method.backward(losses, model.shared_parameters(), z, model.task_parameters())`, `optimizer.step()`,
`method.after_step(...)`; and `method.epoch_end()` after each epoch. A method that declares
`needs_validation_batch` (Auto-Lambda) first gets `method.validation_step(...)` with a batch of the "val"
split. The Trainer calls the method's life cycle (`mtlens.methods.base`) and nothing else of it. Evaluation
is the model's own `evaluator()` (one accumulator per split; `mtlens.models.evaluation`), so a dense model
stores mIoU or angle errors where a factor model stores MSE.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import torch
from pydantic import ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from mtlens.data.multitask import MultiTaskDataset, make_loader
from mtlens.device import resolve_device
from mtlens.errors import MtlensError
from mtlens.methods.base import Method
from mtlens.models.hard_sharing import MultiTaskModel
from mtlens.models.evaluation import evaluator_of
from mtlens.models.method_fit import check_method_fits
from mtlens.training.checkpoint import load_checkpoint, restore, rng_state, save_checkpoint, set_rng_state
from mtlens.training.progress import progress_bar


class StepCallback(Protocol):
    """Called every step before the method's backward (the graph is still whole); returns values to log or None."""

    def on_step(self, step: int, losses: torch.Tensor, shared: list[torch.Tensor], z: torch.Tensor) -> Mapping[str, float] | None: ...


class MetricSink(Protocol):
    """What the Trainer needs of a run store."""

    def log_metrics(self, run_id: str, step: int, values: Mapping[str, float]) -> None: ...

    def fail(self, run_id: str, message: str, step: int | None = None) -> None: ...


ADAM_BETAS = (0.9, 0.999)


@pydantic_dataclass(config=ConfigDict(extra="forbid", validate_assignment=True))
class TrainConfig:
    """The training settings (seed 000 App. C.1 defaults: Adam, lr 1e-3, betas (0.9, 0.999), batch 256).

    The one declaration of them: the studies embed it as their `train:` section (a study sets `seed` per cell
    from its `seeds`). A validated dataclass, so `dataclasses.asdict` / `replace` work and bad values are refused.

    `optimizer` is "adam" (`betas`, None = (0.9, 0.999)) or "sgd" (`momentum`, None = 0; seed 004 App. 7 uses
    0.9); an option of the other optimizer is refused. `weight_decay` applies to both. `warmup_steps` > 0 raises
    the learning rate linearly over the first steps: step s (from 0) uses lr * min(1, (s + 1) / warmup_steps).
    `max_steps` ends the run after that many steps, in the middle of an epoch if need be (that partial epoch is
    evaluated and checkpointed as the last); `epochs` must cover it (`total_steps` refuses a budget the epochs
    cannot reach).
    """

    epochs: int = Field(200, ge=0)
    lr: float = Field(1e-3, gt=0)
    optimizer: Literal["adam", "sgd"] = "adam"
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] | None = None
    momentum: float | None = Field(None, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    warmup_steps: int = Field(0, ge=0)
    max_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(256, ge=1)
    eval_batch_size: int = Field(1024, ge=1)
    seed: int = Field(0, ge=0)
    device: str = "auto"
    log_every: int = Field(50, ge=0)
    progress: bool = True
    checkpoint: bool = True
    num_workers: Annotated[int, Field(ge=0)] | Literal["auto"] = 0

    @model_validator(mode="after")
    def _options_of_the_optimizer(self) -> "TrainConfig":
        if self.optimizer == "adam" and self.momentum is not None:
            raise MtlensError("train.momentum is an SGD option; set train.optimizer: sgd, or remove train.momentum")
        if self.optimizer == "sgd" and self.betas is not None:
            raise MtlensError("train.betas is an Adam option; set train.optimizer: adam, or remove train.betas")
        return self

    def steps_per_epoch(self, n_train: int) -> int:
        """Returns the number of optimisation steps of one epoch over `n_train` samples."""
        return math.ceil(n_train / self.batch_size)

    def total_steps(self, n_train: int) -> int:
        """Returns the run's number of steps over `n_train` samples, or raises one line on a budget that cannot hold."""
        per_epoch = self.steps_per_epoch(n_train)
        by_epochs = self.epochs * per_epoch
        if self.max_steps is not None and self.max_steps > by_epochs:
            raise MtlensError(f"train.max_steps={self.max_steps} is never reached: {self.epochs} epochs of {per_epoch} "
                              f"steps are {by_epochs}; raise train.epochs (the run stops at max_steps)")
        total = by_epochs if self.max_steps is None else self.max_steps
        if self.warmup_steps > total:
            raise MtlensError(f"train.warmup_steps={self.warmup_steps} is longer than the run ({total} steps): the "
                              "learning rate would never reach train.lr; lower train.warmup_steps")
        return total

    def lr_at(self, step: int) -> float:
        """Returns the learning rate of optimisation step `step` (0-based): linear warm-up, then `lr`."""
        if self.warmup_steps and step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        return self.lr


#: The optimisers `TrainConfig.optimizer` names, each built from the parameters and the config.
OPTIMIZERS: dict[str, Callable[[list[torch.Tensor], TrainConfig], torch.optim.Optimizer]] = {
    "adam": lambda params, c: torch.optim.Adam(params, lr=c.lr, betas=tuple(c.betas or ADAM_BETAS),
                                               weight_decay=c.weight_decay),
    "sgd": lambda params, c: torch.optim.SGD(params, lr=c.lr, momentum=c.momentum or 0.0, weight_decay=c.weight_decay),
}
#: Settings a resumed run must share with its checkpoint (the optimiser's state and the schedule depend on them).
RESUME_FIXED = {"optimizer": "adam", "warmup_steps": 0}


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
        self.optimizer = OPTIMIZERS[self.config.optimizer](params, self.config)
        self.epoch = 0
        self.global_step = 0
        self.step_offset = 0  # global_step where this run's step 0 is (fit sets it; see there)
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
        """Restores a state returned by `state_dict`; refuses one trained with another optimiser or warm-up."""
        saved = state["config"] if isinstance(state.get("config"), Mapping) else {}
        for key, default in RESUME_FIXED.items():
            if saved.get(key, default) != getattr(self.config, key):
                raise MtlensError(f"the checkpoint was trained with train.{key}={saved.get(key, default)!r}, this run "
                                  f"has {getattr(self.config, key)!r}; set it back, or remove the run to retrain it")
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
        if self.config.warmup_steps:
            for group in self.optimizer.param_groups:
                group["lr"] = self.config.lr_at(self.global_step - self.step_offset)
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
        """Returns per-task test measures on a split, '<split>/<task>/<measure>' (the model's evaluator names them:
        mse or acc, or a dense model's miou, abs_err, mean_angle, ...), and the mean of each of mse and acc."""
        if split not in self.data:
            raise MtlensError(f"no {split!r} data to evaluate; have {sorted(self.data)}")
        was_training = self.model.training
        self.model.eval()
        evaluator = evaluator_of(self.model)
        for batch in make_loader(self.data[split], self.config.eval_batch_size, num_workers=self.config.num_workers):
            evaluator.update(to_device(batch, self.device))
        self.model.train(was_training)
        out = {f"{split}/{task}/{name}": value for task, measures in evaluator.result().items()
               for name, value in measures.items()}
        for kind in ("mse", "acc"):
            vals = [v for k, v in out.items() if k.endswith("/" + kind)]
            if vals:
                out[f"{split}/mean_{kind}"] = sum(vals) / len(vals)
        return out

    def _evaluate_splits(self) -> dict[str, float]:
        """Returns the measures of val and test; where they are one dataset (NYU-v2's val is its test) it is read once."""
        values: dict[str, float] = {}
        for split in ("val", "test"):
            if split not in self.data or not len(self.data[split]):
                continue
            if split == "test" and self.data.get("val") is self.data["test"]:
                values.update({"test/" + k[len("val/"):]: v for k, v in values.items() if k.startswith("val/")})
            else:
                values.update(self.evaluate(split))
        return values

    def fit(self, resume: bool = False) -> dict[str, float]:
        """Trains for the configured epochs or step budget (continuing from the checkpoint when `resume`); returns
        the final test measures."""
        path = self.checkpoint_path
        if resume and path is not None:
            state = load_checkpoint(path)
            if state is not None:
                restore(self.load_state_dict, state, path)
        cfg = self.config
        n_train = len(self.data["train"])
        total = cfg.total_steps(n_train)
        # The budget counts this run's steps: a caller may start global_step past 0 to continue another run's
        # metric log (a two-stage filter trial). Checkpoints fall on epoch ends, so the steps done are whole epochs.
        offset = self.step_offset = self.global_step - min(self.epoch * cfg.steps_per_epoch(n_train), total)
        self.model.train()
        with progress_bar(cfg.progress, total=total, done=min(self.global_step - offset, total),
                          description=getattr(self.model, "architecture", "train")) as advance:
            while self.epoch < cfg.epochs and self.global_step - offset < total:
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
                    if self.global_step - offset >= total:  # a step budget (max_steps) may end inside an epoch
                        break
                self.epoch += 1
                self.method.epoch_end()
                values = self._loss_values("train/epoch_loss", running / max(count, 1))
                values.update(self._evaluate_splits())
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
