"""Auto-encoder representations as inputs to multi-task heads (seed 000 §4.3, App. C.3, F; Tables 1 and 6).

Table 1 rows, one representation each, every one feeding the same multi-task heads (Table 3 with tanh)
trained on the random-MLP targets:
- "ae", "vae", "factor_vae": the frozen encoder of an auto-encoder trained on the images (VAE: the mean);
- "ground_truth": the true factors, as a perfectly disentangled code would hold them: each varying factor's
  value, standardised on the training split (the seed's "Ground Truth" row);
- "raw_factors": exactly the numbers the task networks take (physical or unit-scaled factor values, all
  factors), unstandardised: the targets are a deterministic function of them, so this is the upper bound.
One cell = `table1_cell(representation, dataset, tasks, splits, seed)` -> RMSE; `table6_cell` scores an
auto-encoder's codes with the disentanglement metrics (Table 6) through the evaluator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mtlens.data.base import FactorDataset
from mtlens.data.multitask import MultiTaskDataset
from mtlens.data.random_mlp import RandomMLPTasks
from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError
from mtlens.methods import create_method
from mtlens.models import autoencoders as _autoencoders  # noqa: F401  (registers ae, vae, factor_vae)
from mtlens.models import create_model
from mtlens.models.autoencoders import AUTOENCODER_KINDS, AutoEncoderModel
from mtlens.models.hard_sharing import MultiHead
from mtlens.models.probes import as_encoder
from mtlens.runs import RunStore
from mtlens.studies.evaluation import encoder_scores
from mtlens.studies.representation.images import ImageSplit, encode_split
from mtlens.training import TrainConfig, Trainer

FACTOR_REPRESENTATIONS = ("ground_truth", "raw_factors")
REPRESENTATIONS = FACTOR_REPRESENTATIONS + AUTOENCODER_KINDS


@dataclass(frozen=True)
class AutoencoderSettings:
    """Auto-encoder training; defaults are seed 000 App. C.3: 100 epochs, batches of 64, Adam lr 1e-4, latent
    size 8, tanh; beta = 1 (VAE), gamma = 1 (the reference's FactorVAE weight)."""

    epochs: int = 100
    lr: float = 1e-4
    batch_size: int = 64
    eval_batch_size: int = 256
    latent_dim: int = 8
    activation: str = "tanh"
    beta: float = 1.0
    gamma: float = 1.0
    discriminator_layers: int = 6
    discriminator_width: int = 1000
    device: str = "auto"
    log_every: int = 50
    progress: bool = False

    def model_options(self, kind: str) -> dict[str, Any]:
        """Returns the create_model options of auto-encoder `kind`."""
        extra = {"vae": {"beta": self.beta},
                 "factor_vae": {"beta": self.beta, "gamma": self.gamma, "discriminator_layers": self.discriminator_layers,
                                "discriminator_width": self.discriminator_width}}
        return {"latent_dim": self.latent_dim, "activation": self.activation, **extra.get(kind, {})}


@dataclass(frozen=True)
class HeadSettings:
    """The multi-task heads on a frozen representation; defaults are seed 000 App. C.3 (30 epochs, batches of
    64, Adam lr 1e-4) with the Table 3 heads (300-300-300) and tanh."""

    epochs: int = 30
    lr: float = 1e-4
    batch_size: int = 64
    eval_batch_size: int = 1024
    hidden: tuple[int, ...] = (300, 300, 300)
    activation: str = "tanh"
    device: str = "auto"
    log_every: int = 50
    progress: bool = False


def train_autoencoder(kind: str, train: ImageSplit, test: ImageSplit, settings: AutoencoderSettings = AutoencoderSettings(),
                      seed: int = 0, *, store: RunStore | None = None, run_id: str | None = None,
                      checkpoint_dir: str | Path | None = None, resume: bool = False) -> tuple[AutoEncoderModel, dict[str, float]]:
    """Returns (auto-encoder `kind` trained on the train images, the Trainer's final test values)."""
    if kind not in AUTOENCODER_KINDS:
        raise MtlensError(f"unknown auto-encoder {kind!r}; choose one of {', '.join(AUTOENCODER_KINDS)}")
    torch.manual_seed(seed)
    model = create_model(kind, (), train.image_shape, **settings.model_options(kind))
    config = TrainConfig(epochs=settings.epochs, lr=settings.lr, batch_size=settings.batch_size,
                         eval_batch_size=settings.eval_batch_size, seed=seed, device=settings.device,
                         log_every=settings.log_every, progress=settings.progress, checkpoint=checkpoint_dir is not None)
    trainer = Trainer(model, create_method("ew", len(model.active_tasks)), {"train": train, "test": test},  # type: ignore[dict-item]
                      config, store=store, run_id=run_id,
                      checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir))
    values = trainer.fit(resume=resume)
    model.eval()
    return model, values  # type: ignore[return-value]


def representation_features(representation: str, dataset: FactorDataset, task_set: RandomMLPTasks,
                            splits: Mapping[str, MultiTaskDataset], encoder: nn.Module | None = None,
                            batch_size: int = 64, device: str = "auto") -> dict[str, np.ndarray]:
    """Returns per split the inputs [N, d] the heads see for one Table 1 representation (see the module doc)."""
    if representation not in REPRESENTATIONS:
        raise MtlensError(f"unknown representation {representation!r}; choose one of {', '.join(REPRESENTATIONS)}")
    indices = {name: split.indices for name, split in splits.items() if split.indices is not None and len(split)}
    if representation in AUTOENCODER_KINDS:
        if encoder is None:
            raise MtlensError(f"representation {representation!r} needs the trained auto-encoder (encoder=...)")
        return {name: encode_split(encoder, ImageSplit(dataset, idx), batch_size, device) for name, idx in indices.items()}
    if representation == "raw_factors":
        # The task networks' own input transform (physical values, or unit-scaled ones).
        return {name: task_set._prepare(dataset.factor_values(idx), torch.device("cpu")).double().numpy()
                for name, idx in indices.items()}
    varying = [k for k, size in enumerate(dataset.factor_sizes) if size > 1]
    values = {name: dataset.factor_values(idx)[:, varying] for name, idx in indices.items()}
    mean, std = values["train"].mean(0), values["train"].std(0)
    std = np.where(std > 0, std, 1.0)
    return {name: (v - mean) / std for name, v in values.items()}


@dataclass
class HeadsResult:
    """Multi-task heads on a frozen representation: test RMSE (standardised targets), in raw task units, per task."""

    rmse: float
    rmse_raw: float | None
    per_task_mse: dict[str, float]

    def values(self) -> dict[str, float]:
        """Returns {"rmse", "rmse_raw" (when known), "mse/<task>"}."""
        out = {"rmse": self.rmse, **{f"mse/{k}": v for k, v in self.per_task_mse.items()}}
        if self.rmse_raw is not None:
            out["rmse_raw"] = self.rmse_raw
        return out


def fit_heads(features: Mapping[str, np.ndarray], targets: Mapping[str, torch.Tensor], tasks: Sequence[TaskSpec],
              settings: HeadSettings = HeadSettings(), seed: int = 0, target_std: torch.Tensor | None = None) -> HeadsResult:
    """Returns the test RMSE of one head per task (Table 3) trained on fixed inputs `features[split]` [N, d].

    RMSE = sqrt(mean over tasks of the test MSE); `rmse_raw` undoes the targets' standardisation (x std per task).
    """
    for split in ("train", "test"):
        if split not in features or split not in targets:
            raise MtlensError(f"fit_heads needs {split!r} features and targets")
    data = {s: MultiTaskDataset(torch.as_tensor(features[s], dtype=torch.float32), targets[s], tasks)
            for s in ("train", "test")}
    width = int(np.asarray(features["train"]).shape[1])
    torch.manual_seed(seed)
    model = MultiHead(nn.Identity(), tasks, latent_dim=width, head_hidden=settings.hidden,
                      activation_name=settings.activation)
    config = TrainConfig(epochs=settings.epochs, lr=settings.lr, batch_size=settings.batch_size,
                         eval_batch_size=settings.eval_batch_size, seed=seed, device=settings.device,
                         log_every=settings.log_every, progress=settings.progress, checkpoint=False)
    values = Trainer(model, create_method("ew", len(tasks)), data, config).fit()  # type: ignore[arg-type]
    mse = {t.name: float(values[f"test/{t.name}/mse"]) for t in tasks}
    mse_arr = np.array(list(mse.values()))
    raw = None
    if target_std is not None:
        raw = math.sqrt(float(np.mean(mse_arr * np.asarray(target_std, dtype=np.float64) ** 2)))
    return HeadsResult(math.sqrt(float(mse_arr.mean())), raw, mse)


@dataclass
class Table1Cell:
    """One cell of Table 1: a representation's heads RMSE for one seed (and its auto-encoder, when trained)."""

    representation: str
    seed: int
    heads: HeadsResult
    autoencoder: AutoEncoderModel | None = None
    autoencoder_values: dict[str, float] = field(default_factory=dict)

    def values(self) -> dict[str, float]:
        """Returns the heads' values and the auto-encoder's final test values (prefixed "autoencoder/")."""
        return {**self.heads.values(), **{f"autoencoder/{k}": v for k, v in self.autoencoder_values.items()}}


def table1_cell(representation: str, dataset: FactorDataset, task_set: RandomMLPTasks,
                splits: Mapping[str, MultiTaskDataset], seed: int = 0, *, heads: HeadSettings = HeadSettings(),
                autoencoder: AutoencoderSettings = AutoencoderSettings(), encoder: nn.Module | None = None,
                cache_images: bool = True, store: RunStore | None = None, run_id: str | None = None,
                checkpoint_dir: str | Path | None = None) -> Table1Cell:
    """Returns the Table 1 cell (representation, dataset, seed): heads trained on that representation's inputs.

    For an auto-encoder row without `encoder`, the auto-encoder is trained first (seed `seed`, logged to the
    store run when given) and returned in the cell, so its Table 6 metrics can be scored from it.
    """
    model, ae_values = None, {}
    if representation in AUTOENCODER_KINDS and encoder is None:
        train = ImageSplit.of(splits["train"], cache=cache_images)
        test = ImageSplit.of(splits["test"], cache=cache_images)
        model, ae_values = train_autoencoder(representation, train, test, autoencoder, seed, store=store,
                                             run_id=run_id, checkpoint_dir=checkpoint_dir)
        encoder = model
    if encoder is not None:
        encoder = as_encoder(encoder)  # an auto-encoder model gives its codes through encode()
    feats = representation_features(representation, dataset, task_set, splits, encoder, device=heads.device)
    targets = {s: splits[s].targets for s in ("train", "test")}
    std = task_set.std if task_set.standardize else None
    result = fit_heads(feats, targets, task_set.tasks, heads, seed, target_std=std)
    return Table1Cell(representation, seed, result, model, ae_values)


def table6_cell(model: nn.Module, dataset: FactorDataset, metrics: Sequence[str] = ("mig", "factor_vae", "sap", "dci"),
                seed: int = 0, settings: Mapping[str, Mapping[str, Any]] | None = None,
                device: str = "auto") -> dict[str, float]:
    """Returns the disentanglement metrics of a trained auto-encoder's codes (VAE: the mean), seed 000 Table 6."""
    if not callable(getattr(model, "encode", None)):
        raise MtlensError("table6_cell needs a model with encode(x) (an auto-encoder, or a multi-task model)")
    return encoder_scores(dataset, model, list(metrics), seed=seed, settings=settings, device=device)  # type: ignore[arg-type]
