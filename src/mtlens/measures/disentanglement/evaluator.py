"""`evaluate(dataset, encode, metrics)`: samples a factor dataset with disentanglement_lib's protocol, encodes,
and scores.

Why it is fast and still exact: every metric's RandomState draws are made first (they never depend on codes),
so all image indices are known before any encoding. The factor grid is finite, so with a deterministic
encoder (`cache_codes=True`) each distinct image is encoded once, in large batches on the device, and every
metric reads its codes from that table; the reference encodes ~3 million dSprites images 16 or 64 at a time
for the default suite, of 737,280 distinct ones. A stochastic encoder (sampled codes, dropout in train mode)
must pass `cache_codes=False`: then every sampled point is encoded separately, as the reference does.

Exactness needs the encoder to give each image the same codes whatever batch it is in; most are (CPU conv
kernels can differ in the last bit between batch sizes, which moves a code only if it sits on a bin edge).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch

from mtlens.device import resolve_device
from mtlens.errors import MtlensError
from mtlens.measures.disentanglement.protocols import METRICS, Protocol
from mtlens.measures.disentanglement.results import MetricResult
from mtlens.measures.disentanglement.sampling import ReferenceSampler

DEFAULT_METRICS = ("mig", "factor_vae", "sap", "dci")


def auto_batch_size(device: torch.device) -> int:
    """Returns the encoding batch size: 64 on a CPU, 1024 on an accelerator.

    On the CPU small batches are the fast ones (the Table-2 conv encoder on 2 cores: 6,800 images/s at 64,
    3,400/s at 1024: the activations of a large batch leave the cache), and 64 is also the batch the
    reference encodes with, so codes match it to the last bit where a conv kernel depends on the batch size.
    """
    return 64 if device.type == "cpu" else 1024


class CodeSource:
    """Codes of dataset images: a table of unique indices encoded once (cache), or fresh encodings per call."""

    def __init__(
        self, dataset: Any, encode: Callable[[torch.Tensor], Any], batch_size: int, device: torch.device, cache: bool
    ) -> None:
        self.dataset, self.encode, self.batch_size, self.device, self.cache = dataset, encode, batch_size, device, cache
        self._keys = np.zeros(0, dtype=np.int64)
        self._codes: np.ndarray | None = None
        self.num_encoded = 0

    def _encode(self, indices: np.ndarray) -> np.ndarray:
        """Returns the encoder's codes [len(indices), d] in its own dtype, in batches of `batch_size`."""
        parts = []
        for start in range(0, len(indices), self.batch_size):
            images = self.dataset.images(indices[start : start + self.batch_size]).to(self.device)
            with torch.no_grad():
                out = self.encode(images)
            if isinstance(out, torch.Tensor):
                out = out.detach().cpu().numpy()
            out = np.asarray(out)
            if out.ndim != 2 or out.shape[0] != images.shape[0]:
                raise MtlensError(
                    f"encode returned shape {out.shape} for {images.shape[0]} images; it must return codes [N, d]"
                )
            if not np.isfinite(out).all():
                raise MtlensError("encode returned NaN or inf codes; the metrics need finite codes")
            parts.append(out)
        self.num_encoded += len(indices)
        return np.concatenate(parts, axis=0)

    def prefetch(self, index_arrays: Iterable[np.ndarray]) -> None:
        """Encodes every distinct index of `index_arrays` not yet in the table (cache mode only)."""
        if not self.cache:
            return
        arrays = [np.asarray(a).reshape(-1) for a in index_arrays]
        wanted = np.unique(np.concatenate(arrays)) if arrays else np.zeros(0, dtype=np.int64)
        missing = np.setdiff1d(wanted, self._keys, assume_unique=True)
        if missing.size == 0:
            return
        new_codes = self._encode(missing)
        if self._codes is None:
            keys, codes = missing, new_codes
        else:
            if new_codes.shape[1] != self._codes.shape[1]:
                raise MtlensError("encode returned codes of a different width for different images")
            keys = np.concatenate([self._keys, missing])
            codes = np.concatenate([self._codes, new_codes.astype(self._codes.dtype, copy=False)])
        order = np.argsort(keys, kind="stable")
        self._keys, self._codes = keys[order], codes[order]

    def __call__(self, indices: np.ndarray) -> np.ndarray:
        """Returns the codes [len(indices), d] (C-ordered, the encoder's dtype) of the images at `indices`."""
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        if not self.cache:
            return self._encode(indices)
        self.prefetch([indices])
        return self._codes[np.searchsorted(self._keys, indices)]


def encoder_device(encode: Callable[..., Any]) -> torch.device | None:
    """Returns the device of the module behind `encode` (a module, or a bound method of one), None if unknown.

    The device of its first parameter (else first buffer); None for a plain function or a module that holds
    no tensors, whose device cannot be read.
    """
    owner = encode if isinstance(encode, torch.nn.Module) else getattr(encode, "__self__", None)
    if not isinstance(owner, torch.nn.Module):
        return None
    for tensor in itertools.chain(owner.parameters(), owner.buffers()):
        return tensor.device
    return None


def _images_device(encode: Callable[..., Any], device: str | torch.device) -> torch.device:
    """Returns where images go: the encoder module's device, else `device` resolved ("auto": CUDA when present)."""
    own = encoder_device(encode)
    if own is None:
        return resolve_device(device)
    if not (isinstance(device, str) and device == "auto"):
        asked = resolve_device(device)
        if asked.type != own.type or (asked.index is not None and own.index is not None and asked.index != own.index):
            raise MtlensError(
                f"encode's module is on {own} but device={str(device)!r} was asked; pass device='auto' (follow the "
                f"encoder) or move the encoder with .to({str(asked)!r}) first"
            )
    return own


def _protocols(metrics: Iterable[str] | str, settings: Mapping[str, Mapping[str, Any]] | None) -> list[Protocol]:
    names = [m.strip() for m in metrics.split(",")] if isinstance(metrics, str) else list(metrics)
    if not names:
        raise MtlensError(f"no metrics asked for; choose from: {', '.join(METRICS.available())}")
    canonical = [METRICS.canonical(n) for n in names]
    settings = dict(settings or {})
    for key in settings:
        if METRICS.canonical(key) not in canonical:
            raise MtlensError(f"settings given for metric {key!r}, which is not among the metrics asked for")
    by_name = {METRICS.canonical(k): v for k, v in settings.items()}
    return [METRICS.create(name, **dict(by_name.get(name, {}))) for name in dict.fromkeys(canonical)]


def evaluate(
    dataset: Any,
    encode: Callable[[torch.Tensor], Any],
    metrics: Iterable[str] | str = DEFAULT_METRICS,
    seed: int = 0,
    batch_size: int | str = "auto",
    cache_codes: bool = True,
    device: str | torch.device = "auto",
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, MetricResult]:
    """Returns {metric name: result} for `encode` on `dataset`, sampled as disentanglement_lib samples.

    `dataset` is a FactorDataset (factor_sizes, index_of, images); single-valued factors are not latent
    factors (dSprites' colour, as in disentanglement_lib's dsprites_full). `encode` maps float images
    [N, C, H, W] to codes [N, d] (torch or numpy) and must be deterministic unless `cache_codes=False`.
    Images are put where the encoder is: on the device of its parameters when `encode` is a module or a bound
    method of one (`model.encode`; an explicit `device` that differs is an error), else on `device`
    ("auto": CUDA when present), so a plain function must accept images there. Each metric draws from RandomState(seed) with the reference configs' sizes;
    `settings={"mig": {"num_train": 1000}}` overrides them per metric.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise MtlensError(f"seed must be a non-negative integer, got {seed!r}")
    if not callable(encode):
        raise MtlensError("encode must be a callable mapping images [N, C, H, W] to codes [N, d]")
    dev = _images_device(encode, device)
    if batch_size == "auto":
        batch_size = auto_batch_size(dev)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise MtlensError(f"batch_size must be a positive integer or 'auto', got {batch_size!r}")
    protocols = _protocols(metrics, settings)
    sampler = ReferenceSampler(dataset)
    plans = [p.plan(sampler, np.random.RandomState(seed)) for p in protocols]
    source = CodeSource(dataset, encode, int(batch_size), dev, cache_codes)
    source.prefetch(a for p, plan in zip(protocols, plans) for a in p.needed(plan))
    return {p.name: p.compute(plan, source, sampler, int(seed)) for p, plan in zip(protocols, plans)}
