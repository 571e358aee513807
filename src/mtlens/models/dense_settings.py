"""The dense balancing settings: seed 004's NYU-v2 and CityScapes set-ups (for a GPU) and `dense_quick` (CPU).

Seed 004 App. 7: ResNet-18 backbone (ImageNet weights), PyTorch SGD with lr 1e-4 and momentum 0.9, a linear
warm-up of the learning rate, images resized to 512 x 512, batch 32 on NYU-v2 and CityScapes; every method
repeated 3 times (§3 "General Setup"); the challenge measures every 10 iterations (App. 8). The seed does not
give the heads, the warm-up length or the number of iterations ("the early stage of training", about 3k
iterations on MetaGraspNet, App. 8): the heads here are LibMTL's (DeepLab-v3 ASPP on the dilated backbone),
the warm-up 500 steps and 3,000 steps, both choices. Seed 004's CityScapes table also has an instance task;
the preprocessed CityScapes of the literature has only segmentation (7 classes) and depth, so this set-up
has those two. ImageNet weights are a local file (`weights`, torchvision's keys); without one the backbone
is random and the runs are not the seed's.

`dense_quick` is the procedural dense benchmark (`shapes3d_dense`, not NYU-v2) at 32 x 32 with the dilated
ResNet-18 (a 4 x 4 feature map) and light heads, sized so that the balancing study (seed 004's methods, at
both levels where they use gradients: 26 runs) fits in 15 minutes on 2 CPU cores; it trains with the
Trainer's Adam. A parameter-level step costs ~1 s of CPU whatever the resolution (the [T, 11.2M] Jacobian),
so the budget sets the number of steps: 80, as 4 epochs of 160 images (DWA and GradNorm work per epoch: with
one epoch they would be equal weighting), with the challenge measures every 20 steps (each record is a
parameter-level Jacobian, ~1.7 s). `benchmarks/bench_dense_quick.py` measures it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from mtlens.data.benchmarks import benchmark_splits
from mtlens.errors import MtlensError
from mtlens.models.dense import DenseMultiTaskModel, dense_resnet

#: Seed 004 §3 "Selected Methods" (8 gradient manipulation, 6 balancing, 1 regularisation) and the EW baseline.
SEED_004_METHODS = ("ew", "pcgrad", "gradvac", "graddrop", "rgw", "mgda", "cagrad", "nash_mtl", "aligned_mtl",
                    "uncertainty", "gradnorm", "imtl", "famo", "rlw", "dwa", "cosreg")


@dataclass(frozen=True)
class DenseSetting:
    """One dense benchmark set-up: data, model, optimiser and schedule (what a study preset holds)."""

    benchmark: str
    data_options: dict[str, Any]
    backbone: str
    output_stride: int
    head: str
    head_options: dict[str, Any]
    optimizer: str  # "sgd" or "adam"
    lr: float
    momentum: float | None
    warmup_steps: int  # linear warm-up from lr / warmup_steps to lr (0: none)
    batch_size: int
    eval_batch_size: int
    steps: int
    measures_every: int
    seeds: tuple[int, ...]
    device: str
    methods: tuple[str, ...] = ()  # the methods of seed 004 §3 (and EW); () = every registered method
    notes: str = ""
    weights: str | None = field(default=None)

    def epochs(self, n_train: int) -> int:
        """Returns the whole number of epochs that covers `steps` steps over `n_train` images (at least 1)."""
        per_epoch = -(-n_train // self.batch_size)
        return max(1, -(-self.steps // per_epoch))


DENSE_SETTINGS: dict[str, DenseSetting] = {
    "nyuv2": DenseSetting(
        "nyuv2", {"resize": (512, 512)}, "resnet18", 8, "aspp", {}, "sgd", 1e-4, 0.9, 500, 32, 32, 3000, 10,
        (0, 1, 2), "cuda", SEED_004_METHODS,
        "seed 004 App. 7; 795 train / 654 val images (val is the test split, as in the literature)"),
    "cityscapes": DenseSetting(
        "cityscapes", {"resize": (512, 512)}, "resnet18", 8, "aspp", {}, "sgd", 1e-4, 0.9, 500, 32, 32, 3000, 10,
        (0, 1, 2), "cuda", SEED_004_METHODS,
        "seed 004 App. 7; 2975 train / 500 val images; no instance task in the preprocessed set"),
    "dense_quick": DenseSetting(
        "shapes3d_dense", {"image_size": 32, "sizes": (160, 100, 200), "seed": 0}, "resnet18", 8, "light",
        {"width": 64}, "adam", 1e-3, None, 0, 8, 50, 80, 20, (0,), "cpu", SEED_004_METHODS,
        "procedural dense benchmark; 4 epochs of 20 steps (DWA and GradNorm act from epochs 2 and 1), measures "
        "every 20 steps (the seed: 10); under 15 min on 2 CPU cores by bench_dense_quick.py"),
}


def dense_setting(name: str) -> DenseSetting:
    """Returns the dense setting called `name` (nyuv2, cityscapes, dense_quick)."""
    if name not in DENSE_SETTINGS:
        raise MtlensError(f"unknown dense setting {name!r}; choose one of {', '.join(DENSE_SETTINGS)}")
    return DENSE_SETTINGS[name]


def build_dense_data(setting: DenseSetting, data_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Returns the {"train", "val", "test"} splits of a setting's benchmark."""
    options = dict(setting.data_options)
    if data_dir is not None:
        options["data_dir"] = data_dir
    return benchmark_splits(setting.benchmark, **options)


def build_dense_model(setting: DenseSetting, tasks: Any, image_size: tuple[int, int],
                      active_tasks: tuple[int, ...] | None = None) -> DenseMultiTaskModel:
    """Returns the setting's model for a dataset's dense tasks and (H, W); `active_tasks` for single-task baselines."""
    return dense_resnet(tasks, (3, *image_size), backbone=setting.backbone, output_stride=setting.output_stride,
                        head=setting.head, head_options=setting.head_options, weights=setting.weights,
                        active_tasks=active_tasks)
