"""Shared-input digit task sets of seed 001 (§V): MultiMNIST and Grouped-MNIST, on MNIST or its stand-in.

MultiMNIST (seed 001 §V-A, after Sabour et al. 2017, "Dynamic Routing between Capsules", §6): each image
overlays two digits of different classes from the same MNIST part, each shifted independently by up to
`max_shift` pixels in each direction on a larger canvas. Sabour's generator pads 28x28 digits by 4 px to
36x36, draws integer shifts uniformly in [-4, 4] and merges the pair as the sum clipped at 255 (preset
"sabour2017"; tasks "ordered": "digit_1" the base digit, "digit_2" the one laid over it, 10 classes each).

Preset "ijcnn2022" is seed 001's own MultiMNIST (Table II's 784 inputs, i.e. 28x28 images; its authors'
code shrinks each digit (scale 0.5-0.7), translates it by up to 20 % and merges by the pixel-wise maximum --
approximated here with 18x18 digits shifted by up to 5 px on 28x28, max merge) with its tasks ("presence"):
binary "has_0" and "has_1", whether a 0 / a 1 is one of the two digits. Both digits are drawn and placed
alike and merged symmetrically, so which one is "first" is not in the image: a 10-class "digit 1 / digit 2"
pair of tasks is capped near 50 % accuracy. The authors' code labels each image with the 10-dim multi-hot
vector of its two digits and trains its two heads ("Digit 1", "Digit 2", two classes each) on entries 0
and 1 of that vector. Table IV confirms it: MTVIB at beta 1e-2 and 1e-1 prints 80.5 / 77.9 % twice, a
collapsed model's accuracy, and predicting "absent" scores P(no 0) = 80.4 % and P(no 1) = 77.5 % on MNIST
test pairs (class counts 980 and 1135 of 10000, second digit of another class), where a collapsed 10-class
classifier would score about 11 %. (Sener & Koltun 2018's top-left / bottom-right layout would make the
ordered tasks learnable, but it is not seed 001's, and its chance level is not Table IV's.)

Grouped-MNIST (seed 001 §V-B): task j asks which digit of group j the image shows, or none of them; class
i < |group j| is the digit at position i of group j, class |group j| is "none".
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mtlens.data.mnist import IMAGE_SIDE, DigitImages, is_digit, load_mnist
from mtlens.data.multitask import MultiTaskDataset, split_indices
from mtlens.data.registry import TASK_DATA
from mtlens.data.task_groups import TaskSplits
from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError

OVERLAYS = ("clip_sum", "max")
MULTIMNIST_TASKS = ("ordered", "presence")
MULTIMNIST_PRESETS: dict[str, dict[str, object]] = {
    # Sabour et al. 2017 §6 and their generator: pad 4 -> 36x36, shifts in [-4, 4], sum clipped at 255
    "sabour2017": {"canvas": 36, "digit_size": 28, "max_shift": 4, "overlay": "clip_sum", "tasks": "ordered"},
    # seed 001 Table II (784 inputs); its authors' code: scale 0.5-0.7, translate 0.2, pixel-wise max; Table IV's
    # "Digit 1" / "Digit 2" are the presence of a 0 / a 1 (module doc)
    "ijcnn2022": {"canvas": 28, "digit_size": 18, "max_shift": 5, "overlay": "max", "tasks": "presence",
                  "present": (0, 1)},
}
CHUNK = 8192  # images composed at once: bounds the temporary layers' memory

# Seed 001 §V-B. "fig2_left": the four tasks the Results paragraph reads off Fig. 2 (first column).
# "fig3_middle": six tasks of 4 digits; the text names [7,3,8,0], [7,3,8,5] and [2,9,1,6] of Fig. 3 (middle),
# and the authors' 6-group pattern (GROUP_PATTERNS["6x4"]) admits exactly one completion of those three.
# "text_example": the tasks T1, T2, T3 the section uses to explain the construction.
GROUP_PRESETS: dict[str, tuple[tuple[int, ...], ...]] = {
    "fig2_left": ((2, 9, 4), (2, 9, 0), (8, 7, 3), (8, 7, 5)),
    "fig3_middle": ((2, 9, 4, 0), (2, 9, 4, 5), (2, 9, 1, 6), (7, 3, 1, 6), (7, 3, 8, 0), (7, 3, 8, 5)),
    "text_example": ((2, 6, 0), (2, 6, 9), (4, 8, 3)),
}
# The group structures of the authors' code (jmachadofreitas/multitask-ijcnn2022, create_subgroups): positions
# into a seeded permutation of the ten digits. "4x3" and "4x4" pair tasks sharing two / three digits (Fig. 2,
# the Table V ablation); "6x4" chains six tasks with graded overlaps (Fig. 3).
GROUP_PATTERNS: dict[str, tuple[tuple[int, ...], ...]] = {
    "4x3": ((0, 1, 2), (0, 1, 3), (5, 6, 7), (5, 6, 8)),
    "4x4": ((0, 1, 2, 3), (0, 1, 2, 4), (5, 6, 7, 8), (5, 6, 7, 9)),
    "6x4": ((1, 2, 0, 3), (1, 2, 0, 8), (1, 2, 4, 9), (5, 6, 4, 9), (5, 6, 7, 3), (5, 6, 7, 8)),
}


# ---------------------------------------------------------------------------------------------- MultiMNIST
@dataclass(frozen=True)
class OverlayPairs:
    """Overlaid digit pairs: images [n,1,C,C], labels [n,2], source indices [n,2], digit top-left corners [n,2,2]."""

    x: torch.Tensor
    labels: np.ndarray
    sources: np.ndarray
    corners: np.ndarray


def _check_geometry(canvas: int, digit_size: int, max_shift: int, overlay: str) -> None:
    if overlay not in OVERLAYS:
        raise MtlensError(f"multimnist: unknown overlay {overlay!r}; choose one of {', '.join(OVERLAYS)}")
    if digit_size < 4 or max_shift < 0:
        raise MtlensError(f"multimnist: need digit_size >= 4 and max_shift >= 0, got {digit_size}, {max_shift}")
    if canvas < digit_size + 2 * max_shift:
        raise MtlensError(
            f"multimnist: a {digit_size}px digit shifted by up to {max_shift}px needs a canvas of at least "
            f"{digit_size + 2 * max_shift}px, got {canvas}; enlarge the canvas or reduce max_shift"
        )


def overlay_pairs(
    images: torch.Tensor,
    labels: np.ndarray,
    n: int,
    seed: int,
    *,
    canvas: int = 36,
    digit_size: int = 28,
    max_shift: int = 4,
    overlay: str = "clip_sum",
) -> OverlayPairs:
    """Returns n seeded overlays of two digits of different classes, each shifted by up to max_shift px.

    Base digits run through seeded permutations of the images (each used once per pass, as in Sabour's
    generator); the second digit is drawn uniformly among images of another class.
    """
    _check_geometry(canvas, digit_size, max_shift, overlay)
    labels = np.asarray(labels, dtype=np.int64)
    count = len(labels)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise MtlensError(f"multimnist: the number of images must be an integer >= 1, got {n!r}")
    if count == 0 or len(np.unique(labels)) < 2:
        raise MtlensError("multimnist: the source images must hold at least two digit classes")
    rng = np.random.default_rng(seed)
    passes = -(-n // count)
    base = np.concatenate([rng.permutation(count) for _ in range(passes)])[:n]
    top = rng.integers(count, size=n)
    same = labels[top] == labels[base]
    while same.any():  # redraw (Sabour discards same-class candidates)
        top[same] = rng.integers(count, size=int(same.sum()))
        same = labels[top] == labels[base]
    sources = np.stack([base, top], axis=1)
    corners = (canvas - digit_size) // 2 + rng.integers(-max_shift, max_shift + 1, size=(n, 2, 2))

    digits = images.float()
    if digit_size != digits.shape[-1]:
        digits = F.interpolate(digits, size=(digit_size, digit_size), mode="bilinear", antialias=True).clamp_(0, 1)
    digits = digits[:, 0]
    out = torch.empty((n, 1, canvas, canvas), dtype=torch.float32)
    for start in range(0, n, CHUNK):
        rows = slice(start, min(n, start + CHUNK))
        layers = [_place(digits, sources[rows, k], corners[rows, k], canvas) for k in (0, 1)]
        merged = (layers[0] + layers[1]).clamp_(max=1.0) if overlay == "clip_sum" else torch.maximum(*layers)
        out[rows, 0] = merged
    return OverlayPairs(out, labels[sources], sources, corners)


def _place(digits: torch.Tensor, src: np.ndarray, corners: np.ndarray, canvas: int) -> torch.Tensor:
    """Returns canvases [m, C, C] with digit src[i] pasted with its top-left corner at corners[i]."""
    size = digits.shape[-1]
    layer = torch.zeros((len(src), canvas, canvas), dtype=torch.float32)
    # one slice assignment per distinct corner: at most (2 * max_shift + 1)^2 of them
    unique, inverse = np.unique(corners, axis=0, return_inverse=True)
    for k, (r, c) in enumerate(unique):
        rows = np.flatnonzero(inverse.reshape(-1) == k)
        layer[rows, r : r + size, c : c + size] = digits[src[rows]]
    return layer


def _resolve_multimnist_options(preset: str, overrides: dict[str, object]) -> dict[str, object]:
    if preset not in MULTIMNIST_PRESETS:
        raise MtlensError(f"multimnist: unknown preset {preset!r}; choose one of {', '.join(MULTIMNIST_PRESETS)}")
    options = dict(MULTIMNIST_PRESETS[preset])
    options.update({k: v for k, v in overrides.items() if v is not None})
    return options


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise MtlensError(f"{name}: val_fraction must be in [0, 1), got {value}")


def multimnist_tasks(kind: str, present: Sequence[int] = (0, 1)) -> tuple[TaskSpec, ...]:
    """Returns the MultiMNIST tasks: "ordered" (digit_1, digit_2: 10 classes) or "presence" (binary has_<k>)."""
    if kind not in MULTIMNIST_TASKS:
        raise MtlensError(f"multimnist: unknown tasks {kind!r}; choose one of {', '.join(MULTIMNIST_TASKS)}")
    if kind == "ordered":
        return (TaskSpec("digit_1", "multiclass", 10), TaskSpec("digit_2", "multiclass", 10))
    digits = list(present)
    if not digits or not all(is_digit(d) for d in digits) or len(set(digits)) != len(digits):
        raise MtlensError(f"multimnist: present must list distinct digits 0..9, got {digits!r}")
    return tuple(TaskSpec(f"has_{int(d)}", "binary") for d in digits)


def multimnist_targets(labels: np.ndarray, kind: str, present: Sequence[int] = (0, 1)) -> np.ndarray:
    """Returns targets [n, T] (float32) of overlay labels [n, 2]: the labels, or 1.0 where digit k is among them."""
    labels = np.asarray(labels, dtype=np.int64)
    if kind == "ordered":
        return labels.astype(np.float32)
    return np.stack([(labels == int(d)).any(axis=1) for d in present], axis=1).astype(np.float32)


def build_multimnist(
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    n: int | None = None,
    n_test: int | None = None,
    val_fraction: float = 0.1,
    preset: str = "sabour2017",
    canvas: int | None = None,
    digit_size: int | None = None,
    max_shift: int | None = None,
    overlay: str | None = None,
    tasks: str | None = None,
    present: Sequence[int] | None = None,
    digits: DigitImages | None = None,
) -> TaskSplits:
    """Returns MultiMNIST train/val/test splits: train and val overlay MNIST-train digits, test MNIST-test digits.

    n / n_test: overlays generated (default: one per source image); val_fraction of the n goes to val.
    tasks: "ordered" or "presence" of the digits in `present` (default: the preset's; see the module doc).
    `digits` replaces the images loaded from `data_dir` (for callers holding them already).
    """
    _check_fraction("multimnist", val_fraction)
    options = _resolve_multimnist_options(
        preset, {"canvas": canvas, "digit_size": digit_size, "max_shift": max_shift, "overlay": overlay,
                 "tasks": tasks, "present": None if present is None else tuple(present)}
    )
    kind, wanted = str(options.pop("tasks")), tuple(options.pop("present", (0, 1)))  # type: ignore[arg-type]
    specs = multimnist_tasks(kind, wanted)
    digits = digits if digits is not None else load_mnist(data_dir)
    parts = {}
    for k, (name, count) in enumerate((("train", n), ("test", n_test))):
        x, y = digits.split(name)
        size = len(y) if count is None else count
        parts[name] = overlay_pairs(x, y, size, seed * 2 + k, **options)  # type: ignore[arg-type]
    train = parts["train"]
    split = split_indices(len(train.labels), (1.0 - val_fraction, val_fraction, 0.0), seed=seed)

    def dataset(p: OverlayPairs, rows: np.ndarray | slice) -> MultiTaskDataset:
        lab = p.labels[rows]
        return MultiTaskDataset(p.x[rows], torch.from_numpy(multimnist_targets(lab, kind, wanted)), specs, factors=lab)

    info = {"preset": preset, **options, "task_kind": kind, "factor_names": ["digit_1", "digit_2"]}
    if kind == "presence":
        info["present"] = list(wanted)
    return TaskSplits(
        "multimnist", specs, dataset(train, split.train), dataset(train, split.val),
        dataset(parts["test"], slice(None)), tuple(train.x.shape[1:]), digits.source, info,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------ Grouped-MNIST
def _validate_groups(groups: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    out = []
    if len(groups) == 0:
        raise MtlensError("grouped_mnist: a layout needs at least one group of digits")
    for j, group in enumerate(groups):
        g = tuple(group)
        if len(g) == 0 or not all(is_digit(d) for d in g):
            raise MtlensError(f"grouped_mnist: group {j} is {list(g)}; a group is a non-empty list of digits 0..9")
        if len(set(g)) != len(g):
            raise MtlensError(f"grouped_mnist: group {j} is {list(g)}; a digit may appear only once in a group")
        out.append(tuple(int(d) for d in g))
    return tuple(out)


def group_layout(layout: str | Sequence[Sequence[int]], layout_seed: int = 0) -> tuple[tuple[int, ...], ...]:
    """Returns the digit groups of a preset name, a pattern name (digits from a seeded permutation), or a list."""
    if isinstance(layout, str):
        if layout in GROUP_PRESETS:
            return GROUP_PRESETS[layout]
        if layout in GROUP_PATTERNS:
            perm = np.random.default_rng(layout_seed).permutation(10)
            return tuple(tuple(int(perm[p]) for p in g) for g in GROUP_PATTERNS[layout])
        names = ", ".join([*GROUP_PRESETS, *GROUP_PATTERNS])
        raise MtlensError(f"grouped_mnist: unknown layout {layout!r}; choose one of {names}, or give a list of groups")
    return _validate_groups(layout)


def group_targets(labels: np.ndarray, groups: Sequence[Sequence[int]]) -> np.ndarray:
    """Returns targets [N, T] (int64): the position of the digit in group j, or len(group j) ("none")."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.empty((len(labels), len(groups)), dtype=np.int64)
    for j, group in enumerate(groups):
        lookup = np.full(10, len(group), dtype=np.int64)
        lookup[list(group)] = np.arange(len(group))
        out[:, j] = lookup[labels]
    return out


def grouped_tasks(groups: Sequence[Sequence[int]]) -> tuple[TaskSpec, ...]:
    """Returns one multiclass TaskSpec per group, with |group| + 1 classes, named like "t0_294"."""
    return tuple(
        TaskSpec(f"t{j}_{''.join(map(str, g))}", "multiclass", len(g) + 1) for j, g in enumerate(groups)
    )


def build_grouped_mnist(
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = 0,
    layout: str | Sequence[Sequence[int]] = "fig2_left",
    layout_seed: int = 0,
    n: int | None = None,
    val_fraction: float = 0.1,
    digits: DigitImages | None = None,
) -> TaskSplits:
    """Returns Grouped-MNIST splits: train/val from MNIST train (a seeded subset of n when given), test = MNIST test."""
    _check_fraction("grouped_mnist", val_fraction)
    groups = group_layout(layout, layout_seed)
    tasks = grouped_tasks(groups)
    digits = digits if digits is not None else load_mnist(data_dir)
    split = split_indices(len(digits.train_y), (1.0 - val_fraction, val_fraction, 0.0), seed=seed, subset=n)

    def dataset(x: torch.Tensor, y: np.ndarray) -> MultiTaskDataset:
        targets = torch.from_numpy(group_targets(y, groups).astype(np.float32))
        return MultiTaskDataset(x, targets, tasks, factors=y[:, None])

    info = {"layout": layout if isinstance(layout, str) else "custom", "groups": [list(g) for g in groups],
            "none_class": "index len(group)", "factor_names": ["digit"]}  # fmt: skip
    return TaskSplits(
        "grouped_mnist", tasks,
        dataset(digits.train_x[split.train], digits.train_y[split.train]),
        dataset(digits.train_x[split.val], digits.train_y[split.val]),
        dataset(digits.test_x, digits.test_y),
        (1, IMAGE_SIDE, IMAGE_SIDE), digits.source, info,
    )  # fmt: skip


TASK_DATA.add("multimnist", build_multimnist)
TASK_DATA.add("grouped_mnist", build_grouped_mnist)
