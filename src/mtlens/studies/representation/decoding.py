"""Decoding frozen encoders (seed 000 §4.2, App. C.2, D.2-D.3): decoder training, reconstruction error,
reconstructions and latent traversals. One cell = `decoding_cell(encoder, train, test, settings, seed)`; a stored
run's encoder comes from `sources.encoder_from_run(store, run_id)`.

A "codec" is anything with `encode(x) -> codes` and `decode(codes) -> images in [0, 1]`: a trained
DecoderProbe, or an auto-encoder model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from mtlens.errors import MtlensError
from mtlens.methods import create_method
from mtlens.models.probes import DecoderProbe
from mtlens.runs import RunStore
from mtlens.studies.representation.images import ImageSplit
from mtlens.training import TrainConfig, Trainer
from mtlens.training.schedules import StepDecay


class Codec(Protocol):
    """What reconstructions and traversals need: codes of images, and images of codes."""

    def encode(self, x: torch.Tensor) -> torch.Tensor: ...

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class DecoderSettings:
    """Decoder training; defaults are seed 000 App. C.2: 500 epochs, batches of 64, Adam from lr 2e-4 halved
    every 100 epochs (the Table 2 decoder with ReLU, as the §4.1 encoders). `output`: the MSE on the decoder's
    linear output (default) or on its sigmoid (see models/probes.py for why linear)."""

    epochs: int = 500
    lr: float = 2e-4
    halve_every: int | None = 100
    batch_size: int = 64
    eval_batch_size: int = 256
    activation: str = "relu"
    output: str = "linear"
    device: str = "auto"
    log_every: int = 50
    progress: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 0 or self.batch_size < 1 or self.eval_batch_size < 1 or not self.lr > 0:
            raise MtlensError(f"decoder settings need epochs >= 0, batch sizes >= 1 and lr > 0, got {self}")
        if self.halve_every is not None and self.halve_every < 1:
            raise MtlensError(f"halve_every must be a number of epochs >= 1 or None, got {self.halve_every}")


def train_decoder(encoder: nn.Module, train: ImageSplit, test: ImageSplit, settings: DecoderSettings = DecoderSettings(),
                  seed: int = 0, *, store: RunStore | None = None, run_id: str | None = None,
                  checkpoint_dir: str | Path | None = None, resume: bool = False) -> tuple[DecoderProbe, dict[str, float]]:
    """Returns (the trained DecoderProbe over the frozen `encoder`, the Trainer's final test values).

    The encoder's parameters and buffers are left as they were; it only moves to the settings' device. With a
    store and run id the steps are logged to that run; with a checkpoint folder the run can resume.
    """
    if train.image_shape != test.image_shape:
        raise MtlensError(f"train images {train.image_shape} and test images {test.image_shape} differ")
    torch.manual_seed(seed)  # the decoder's initialisation
    probe = DecoderProbe(encoder, train.image_shape, settings.activation, settings.output)
    steps_per_epoch = math.ceil(len(train) / settings.batch_size)
    callbacks = []
    schedule = None
    if settings.halve_every is not None:
        schedule = StepDecay(settings.lr, settings.halve_every * steps_per_epoch, 0.5)
        callbacks.append(schedule)
    config = TrainConfig(epochs=settings.epochs, lr=settings.lr, batch_size=settings.batch_size,
                         eval_batch_size=settings.eval_batch_size, seed=seed, device=settings.device,
                         log_every=settings.log_every, progress=settings.progress, checkpoint=checkpoint_dir is not None)
    trainer = Trainer(probe, create_method("ew", 1), {"train": train, "test": test}, config,  # type: ignore[dict-item]
                      store=store, run_id=run_id, checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir),
                      callbacks=callbacks)
    if schedule is not None:
        schedule.bind(trainer.optimizer)
    values = trainer.fit(resume=resume)
    probe.eval()
    return probe, values


@dataclass(frozen=True)
class ReconstructionError:
    """Test reconstruction error: `mse` per pixel value, and `sse_per_image` (summed over an image's pixels,
    the scale of seed 000 Table 4's dSprites column), over `n_images` images."""

    mse: float
    sse_per_image: float
    n_images: int

    def as_dict(self, prefix: str = "reconstruction") -> dict[str, float]:
        """Returns {"<prefix>/mse": .., "<prefix>/sse_per_image": ..}."""
        return {f"{prefix}/mse": self.mse, f"{prefix}/sse_per_image": self.sse_per_image}


def _device_of(codec: Any) -> torch.device:
    params = codec.parameters() if isinstance(codec, nn.Module) else iter(())
    return next((p.device for p in params), torch.device("cpu"))


@torch.no_grad()
def reconstruct(codec: Codec, x: torch.Tensor) -> torch.Tensor:
    """Returns decode(encode(x)) on the CPU: images [N, C, H, W] in [0, 1]."""
    dev = _device_of(codec)
    return codec.decode(codec.encode(x.to(dev))).cpu()


@torch.no_grad()
def reconstruction_error(codec: Codec, images: ImageSplit, batch_size: int = 256) -> ReconstructionError:
    """Returns the codec's mean reconstruction error over every image of the split."""
    if isinstance(codec, nn.Module):
        codec.eval()
    total, pixels = 0.0, 0
    for start in range(0, len(images), batch_size):
        x = images.x(np.arange(start, min(start + batch_size, len(images))))
        err = (reconstruct(codec, x) - x).double().pow(2)
        total += float(err.sum())
        pixels += x.numel()
    n = len(images)
    return ReconstructionError(total / pixels, total / n, n)


@dataclass(frozen=True)
class Traversal:
    """One input swept along each latent (seed 000 Fig. 7): values [d, steps], decoded images [d, steps, C, H, W]."""

    image: torch.Tensor
    reconstruction: torch.Tensor
    code: np.ndarray
    values: np.ndarray
    images: torch.Tensor


@torch.no_grad()
def traverse(codec: Codec, image: torch.Tensor, steps: int = 11, value_range: tuple[float, float] | None = None,
             observed: np.ndarray | None = None) -> Traversal:
    """Returns the traversal of one image [C, H, W]: each latent swept over `steps` values, the others fixed.

    The sweep of latent k runs over its observed range (min..max of column k of `observed` codes) unless a
    common `value_range` (lo, hi) is given (the seed swept -1..1 in steps of 0.1).
    """
    if steps < 2:
        raise MtlensError(f"a traversal needs at least 2 steps, got {steps}")
    if image.ndim != 3:
        raise MtlensError(f"traverse takes one image [C, H, W], got shape {tuple(image.shape)}")
    dev = _device_of(codec)
    z = codec.encode(image[None].to(dev))[0]
    d = z.shape[0]
    if value_range is not None:
        lo, hi = float(value_range[0]), float(value_range[1])
        if not lo < hi:
            raise MtlensError(f"value_range must be (low, high) with low < high, got {value_range}")
        values = np.tile(np.linspace(lo, hi, steps), (d, 1))
    elif observed is not None:
        obs = np.asarray(observed, dtype=np.float64)
        if obs.ndim != 2 or obs.shape[1] != d or len(obs) < 2:
            raise MtlensError(f"observed codes must be [N >= 2, {d}] to set the sweep ranges, got {obs.shape}")
        values = np.linspace(obs.min(0), obs.max(0), steps).T
    else:
        raise MtlensError("a traversal needs the observed codes (for each latent's range) or a value_range")
    grid = z.repeat(d * steps, 1).view(d, steps, d).clone()
    for k in range(d):
        grid[k, :, k] = torch.as_tensor(values[k], dtype=grid.dtype, device=dev)
    decoded = codec.decode(grid.view(d * steps, d)).cpu()
    return Traversal(image.cpu(), codec.decode(z[None])[0].cpu(), z.cpu().numpy(), values,
                     decoded.view(d, steps, *decoded.shape[1:]))


@dataclass
class DecodingResult:
    """One decoding cell: the encoder's label, its test reconstruction error and the trained probe."""

    label: str
    error: ReconstructionError
    probe: DecoderProbe
    train_values: dict[str, float] = field(default_factory=dict)

    def values(self) -> dict[str, float]:
        """Returns the cell's numbers: reconstruction/mse and reconstruction/sse_per_image."""
        return self.error.as_dict()


def decoding_cell(encoder: nn.Module, train: ImageSplit, test: ImageSplit, settings: DecoderSettings = DecoderSettings(),
                  seed: int = 0, *, label: str = "encoder", store: RunStore | None = None, run_id: str | None = None,
                  checkpoint_dir: str | Path | None = None, resume: bool = False) -> DecodingResult:
    """Returns the decoding of one frozen encoder: a decoder trained on `train`, its error on `test`.

    For a stored run's encoder, `decoding_cell_for_run(store, run_id, settings, seed)`.
    """
    probe, values = train_decoder(encoder, train, test, settings, seed, store=store, run_id=run_id,
                                  checkpoint_dir=checkpoint_dir, resume=resume)
    return DecodingResult(label, reconstruction_error(probe, test, settings.eval_batch_size), probe, values)


def example_rows(images: ImageSplit, n: int, seed: int = 0) -> np.ndarray:
    """Returns n seeded, sorted row indices of a split (the examples shown in reconstruction grids)."""
    if not 1 <= n <= len(images):
        raise MtlensError(f"cannot show {n} examples of a split of {len(images)} images")
    return np.sort(np.random.default_rng(seed).choice(len(images), n, replace=False))


__all__ = ["Codec", "DecoderSettings", "train_decoder", "ReconstructionError", "reconstruct", "reconstruction_error",
           "Traversal", "traverse", "DecodingResult", "decoding_cell", "decoding_cell_for_run", "example_rows"]



def decoding_cell_for_run(store: RunStore, run_id: str, settings: DecoderSettings = DecoderSettings(), seed: int = 0, *,
                          data_dir: str | None = None, train_limit: int | None = None,
                          cache_images: bool = True) -> DecodingResult:
    """Returns the decoding of a stored run's encoder (hard-sharing or auto-encoder run), on the run's own
    train / test split (the first `train_limit` training images when given)."""
    from mtlens.studies.representation.sources import encoder_from_run, run_split

    source = encoder_from_run(store, run_id, data_dir)
    split = run_split(source)
    train_idx = split.train if train_limit is None else split.train[:train_limit]
    train = ImageSplit(source.dataset, train_idx, cache=cache_images)
    test = ImageSplit(source.dataset, split.test, cache=cache_images)
    return decoding_cell(source.encoder, train, test, settings, seed, label=source.label)
