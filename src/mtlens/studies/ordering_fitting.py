"""Seed 003 §3.2 (Fig. 2) as a plain function: how well two random tasks of n samples can be fitted jointly.

Model (eq. 4): the inputs x in [0, 1]^m enter the core directly, two shared layers W_1, W_2: R^m -> R^m with
phi after each, and a final shared classification layer O. Parallel ordering applies W_1 then W_2 for both
tasks, which is one function fitting all 2n samples; permuted ordering applies W_1 then W_2 for task 1 and
W_2 then W_1 for task 2. The seed's reference for "parallel with n per task" is a single task with 2n samples.
Two cores: linear (m = 128, phi = I) and ReLU (m = 16).

Training is not specified by the seed; we fit with full-batch Adam (`FitSetting.steps`, lr; the Trainer takes
the steps) and report the training accuracy.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from mtlens.data.random_patterns import build_random_patterns
from mtlens.errors import MtlensError
from mtlens.models.ordering import LayerOrderingModel
from mtlens.training.ordering import fit_full_batch

FIT_VARIANTS = ("parallel", "permuted", "single_task")  # single_task: one task of 2n samples
PERMUTED = [[0, 1], [1, 0]]  # eq. 4: task 2 applies the two layers in the reverse order


@dataclass(frozen=True)
class FitSetting:
    """One core of Fig. 2: its width m, nonlinearity, the n values swept and the fitting budget."""

    width: int
    activation: str
    n_values: tuple[int, ...]
    steps: int
    lr: float = 0.01


FITTING: dict[str, dict[str, FitSetting]] = {
    "linear": {
        "paper": FitSetting(width=128, activation="linear", n_values=(32, 64, 128, 256, 512, 1024), steps=3000),
        # quick: m = 64 instead of 128 (an m = 128 fit of 1024 samples takes 10x longer on CPU); 300 steps at lr
        # 0.05 give the accuracies of 1000 steps at lr 0.01 there
        "quick": FitSetting(width=64, activation="linear", n_values=(32, 64, 128, 256), steps=300, lr=0.05),
    },
    "relu": {
        "paper": FitSetting(width=16, activation="relu", n_values=(64, 128, 256, 512, 1024, 2048), steps=3000),
        "quick": FitSetting(width=16, activation="relu", n_values=(128, 256, 512, 1024), steps=1000),
    },
}


@dataclass
class FitResult:
    """One fit: the core, variant, samples per task n, seed, training accuracy (mean and per task), time."""

    core: str
    variant: str
    n: int
    seed: int
    train_acc: float
    task_acc: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def values(self) -> dict[str, float]:
        """Returns the numbers as flat metrics: 'train/mean_acc' and 'train/<task>/acc'."""
        return {"train/mean_acc": self.train_acc, **{f"train/{k}/acc": v for k, v in self.task_acc.items()}}

    def to_dict(self) -> dict[str, Any]:
        """Returns the result as JSON-able data."""
        return asdict(self)


def fit_setting(core: str, setting: str | FitSetting = "quick", **overrides: Any) -> FitSetting:
    """Returns the named preset of `core` (or the given setting) with `overrides` applied."""
    if core not in FITTING:
        raise MtlensError(f"unknown random-task core {core!r}; choose one of {', '.join(FITTING)}")
    if isinstance(setting, str):
        if setting not in FITTING[core]:
            raise MtlensError(f"unknown setting {setting!r}; choose one of {', '.join(FITTING[core])} or pass a FitSetting")
        setting = FITTING[core][setting]
    return replace(setting, **overrides) if overrides else setting


def random_fit_cell(n: int, variant: str, core: str = "linear", seed: int = 0, setting: str | FitSetting = "quick",
                    *, device: str = "cpu", checkpoint_dir: Path | None = None, resume: bool = False,
                    **overrides: Any) -> FitResult:
    """Returns the training accuracy of `variant` fitted to two random tasks of n samples (single_task: one of 2n).

    checkpoint_dir / resume: a study cell's checkpoint folder, and whether to continue from it.
    """
    if variant not in FIT_VARIANTS:
        raise MtlensError(f"unknown variant {variant!r}; choose one of {', '.join(FIT_VARIANTS)}")
    s = fit_setting(core, setting, **overrides)
    started = time.perf_counter()
    single = variant == "single_task"
    data = build_random_patterns(2 * n if single else n, s.width, 1 if single else 2, seed)
    model = LayerOrderingModel(data.tasks, data.input_shapes, ordering="permuted" if variant == "permuted" else "parallel",
                               depth=2, width=s.width, activation=s.activation, encoder="identity", decoder="shared",
                               permutations=PERMUTED if variant == "permuted" else None, seed=seed)
    torch.manual_seed(seed)
    scores = fit_full_batch(model, data, steps=s.steps, lr=s.lr, seed=seed, device=device, checkpoint_dir=checkpoint_dir,
                            resume=resume)
    task_acc = {k.split("/")[1]: v for k, v in scores.items() if k != "train/mean_acc"}
    return FitResult(core, variant, n, seed, scores["train/mean_acc"], task_acc, time.perf_counter() - started)
