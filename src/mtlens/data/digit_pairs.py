"""Seed 003 §4.1: MNIST digit1-vs-digit2 binary tasks, each on its own inputs.

Construction (seed 003 §4.1 and Appendix A.1): each task distinguishes two distinct randomly selected digits;
digits are drawn without replacement within a task and with replacement across tasks (45 possible tasks);
a task's training and test sets are the MNIST train and test sets restricted to its two digits; pixels in
[0, 1]; one sigmoid output per task. The tasks therefore have different inputs, and the set is a
TaskGroupData (per task its own train/test data), not one shared dataset.

Pairs are stored as (a, b) with a < b; the target is 1 for digit b and 0 for digit a.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import numpy as np
import torch

from mtlens.data.base import Source
from mtlens.data.mnist import IMAGE_SIDE, DigitImages, is_digit, load_mnist
from mtlens.data.multitask import MultiTaskDataset
from mtlens.data.registry import TASK_DATA
from mtlens.data.task_groups import TaskGroupData
from mtlens.data.tasks import TaskSpec, check_n_tasks
from mtlens.errors import MtlensError


def draw_digit_pairs(n_tasks: int, seed: int = 0) -> tuple[tuple[int, int], ...]:
    """Returns n_tasks seeded pairs (a, b), a < b: distinct digits within a pair, pairs may repeat across tasks."""
    n_tasks = check_n_tasks(n_tasks, "digit_pairs")
    rng = np.random.default_rng(seed)
    pairs = [sorted(int(d) for d in rng.choice(10, size=2, replace=False)) for _ in range(n_tasks)]
    return tuple((a, b) for a, b in pairs)


def noisy_digits(digits: DigitImages, sigma: float, seed: int = 0) -> DigitImages:
    """Returns the digits with Gaussian pixel noise of standard deviation `sigma` added once (seeded), clipped to [0, 1].

    A harder version of the same images (e.g. of the 8x8 stand-in, on which every variant reaches ~0% error).
    """
    if not sigma >= 0.0:
        raise MtlensError(f"digit noise must be a standard deviation >= 0, got {sigma}")
    if sigma == 0.0:
        return digits
    gen = torch.Generator().manual_seed(int(seed))

    def add(x: torch.Tensor) -> torch.Tensor:
        return (x + sigma * torch.randn(x.shape, generator=gen)).clamp_(0.0, 1.0)

    source = Source(digits.source.kind, f"{digits.source.detail}, Gaussian pixel noise sigma={sigma:g} (seed {seed})")
    return dataclasses.replace(digits, train_x=add(digits.train_x), test_x=add(digits.test_x), source=source)


def _validate_pairs(pairs: Sequence[Sequence[int]]) -> tuple[tuple[int, int], ...]:
    if len(pairs) == 0:
        raise MtlensError("digit_pairs: give at least one pair of digits")
    out = []
    for j, pair in enumerate(pairs):
        p = tuple(pair)
        if len(p) != 2 or not all(is_digit(d) for d in p) or p[0] == p[1]:
            raise MtlensError(f"digit_pairs: pair {j} is {list(p)}; a pair is two different digits 0..9")
        out.append((min(int(p[0]), int(p[1])), max(int(p[0]), int(p[1]))))
    return tuple(out)


def _pair_dataset(
    x: torch.Tensor, y: np.ndarray, pair: tuple[int, int], spec: TaskSpec, keep: int | None, rng: np.random.Generator
) -> MultiTaskDataset:
    """Returns the one-task dataset of the images of the pair's digits (a seeded subset of `keep` when given)."""
    rows = np.flatnonzero(np.isin(y, pair))
    if keep is not None and keep < len(rows):
        rows = np.sort(rng.choice(rows, size=keep, replace=False))
    labels = y[rows]
    targets = torch.from_numpy((labels == pair[1]).astype(np.float32)[:, None])
    return MultiTaskDataset(x[rows], targets, (spec,), factors=labels[:, None])


def build_digit_pairs(
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    n_tasks: int = 2,
    pairs: Sequence[Sequence[int]] | None = None,
    n: int | None = None,
    digits: DigitImages | None = None,
) -> TaskGroupData:
    """Returns per-task binary digit-pair data: n_tasks seeded pairs (or the given `pairs`).

    n: at most this many training images per task (a seeded subset); the test sets are kept whole.
    """
    chosen = _validate_pairs(pairs) if pairs is not None else draw_digit_pairs(n_tasks, seed)
    if n is not None and n < 1:
        raise MtlensError(f"digit_pairs: n (training images per task) must be >= 1, got {n}")
    digits = digits if digits is not None else load_mnist(data_dir)
    rng = np.random.default_rng([seed, 1])
    specs, train, test = [], [], []
    for j, pair in enumerate(chosen):
        spec = TaskSpec(f"t{j}_{pair[0]}v{pair[1]}", "binary")
        tr = _pair_dataset(digits.train_x, digits.train_y, pair, spec, n, rng)
        te = _pair_dataset(digits.test_x, digits.test_y, pair, spec, None, rng)
        if len(tr) == 0 or len(te) == 0:
            raise MtlensError(
                f"digit_pairs: digits {pair[0]} and {pair[1]} have no images in the "
                f"{'training' if len(tr) == 0 else 'test'} set ({digits.source}); choose other pairs"
            )
        specs.append(spec)
        train.append(tr)
        test.append(te)
    info = {
        "pairs": [list(p) for p in chosen],
        "positive_class": "the larger digit b of (a, b)",
        "factor_names": ["digit"],
    }
    shape = (1, IMAGE_SIDE, IMAGE_SIDE)
    return TaskGroupData(
        "digit_pairs", tuple(specs), tuple(train), tuple(test), tuple(shape for _ in chosen), digits.source, info
    )


TASK_DATA.add("digit_pairs", build_digit_pairs)
