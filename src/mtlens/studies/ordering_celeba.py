"""Seed 003 §4.4 / App. A.4 in the ordering study: CelebA's 40 attributes on a ResNet trunk, Fig. 7c's models.

Each cell trains one row of Fig. 7c for one seed: parallel or soft ordering of four 256-unit core layers
behind a ResNet-50 truncated at its average pool and a 256-unit projection, with the landmark regression task
(`_landmarks`) and, for soft ordering, the identity layer (`_identity`). The official splits; the Trainer
runs the study's `train` section (App. A.4: batch 32, Adam with default parameters) and evaluates val and
test each epoch. The seed then fine-tunes with RMSProp at lr 1e-5 once the validation loss converged; we
train with Adam only. The target metric is the attribute error (1 - mean accuracy over the 40 attributes),
with or without the landmark task.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Subset

from mtlens.data import create_benchmark, resolve_data_dir
from mtlens.data.celeba import ATTR_FILE, IMAGE_DIR, LANDMARKS, PARTITION_FILE
from mtlens.data.paths import where
from mtlens.models.ordering_trunk import TrunkOrderingModel
from mtlens.studies.common import build_method, cell_train_config
from mtlens.studies.engine import Cell, CellContext
from mtlens.training import Trainer

SPLITS = ("train", "val", "test")


def celeba_missing(cfg: Any) -> str | None:
    """Returns why the CelebA cells cannot run (the official files are absent), or None when they are there."""
    root = resolve_data_dir(cfg.data_dir)
    if root is not None and any((r / ATTR_FILE).is_file() for r in (root, root / "celeba")):
        return None
    return (f"celeba: {ATTR_FILE} not found {where(root)}; place the official {IMAGE_DIR}/ (or .zip), {ATTR_FILE}, "
            f"{PARTITION_FILE} and list_landmarks_align_celeba.txt there (or in a celeba/ folder) and pass --data-dir")


def _landmarks(variant: str) -> bool:
    return "landmarks" in variant


def celeba_cells(cfg: Any, seed: int) -> list[Cell]:
    """Returns one cell per Fig. 7c model (`celeba.variants`) for one seed."""
    return [Cell(seed, {"experiment": "celeba", "variant": v}, f"seed{seed}/celeba/{v}") for v in cfg.celeba.variants]


def build_celeba(cfg: Any, landmarks: bool) -> dict[str, Any]:
    """Returns {"train", "val", "test"} CelebA splits (the first `celeba.subset` images of each, when set)."""
    section = cfg.celeba
    out = {}
    for split in SPLITS:
        data = create_benchmark("celeba", split, data_dir=cfg.data_dir, landmarks=landmarks, image_size=section.image_size)
        out[split] = Subset(data, range(min(section.subset, len(data)))) if section.subset is not None else data
    return out


def check_celeba(cfg: Any) -> None:
    """Raises one line when the CelebA files are present but incomplete or malformed (every split is parsed)."""
    build_celeba(cfg, landmarks=any(_landmarks(v) for v in cfg.celeba.variants))


def _tasks(splits: dict[str, Any]) -> tuple[Any, ...]:
    data = splits["train"]
    return (data.dataset if isinstance(data, Subset) else data).tasks


def run_celeba_cell(cfg: Any, cell: Cell, ctx: CellContext) -> dict[str, float]:
    """Trains one Fig. 7c model for one seed; returns the final test values and the attribute error."""
    variant = cell.params["variant"]
    landmarks = _landmarks(variant)
    section = cfg.celeba
    splits = ctx.cached(["celeba", cfg.data_dir, section.image_size, section.subset, landmarks],
                        lambda: build_celeba(cfg, landmarks))
    tasks = _tasks(splits)
    base = splits["train"].dataset if isinstance(splits["train"], Subset) else splits["train"]
    ctx.note("data_source", f"celeba: {base.source}")
    ctx.note("tasks", [[t.name, t.kind] for t in tasks])
    ctx.note("data_info", {"sizes": {s: len(d) for s, d in splits.items()}, "image_size": section.image_size,
                           "weights": section.weights or "random initialisation"})
    model = TrunkOrderingModel(tasks, ordering=variant.split("_")[0], backbone=section.backbone, weights=section.weights,
                               projection=section.projection, depth=section.depth, width=section.width,
                               dropout=section.dropout, identity_layer="identity" in variant,
                               output_dims=[len(LANDMARKS) if t.kind == "regression" else 1 for t in tasks],
                               seed=cell.seed)
    method = build_method(cfg.method.name, len(tasks), cfg.method.level, dict(cfg.method.options))
    trainer = Trainer(model, method, splits, cell_train_config(cfg.train, cell.seed), store=ctx.sink, run_id=ctx.run_id,
                      checkpoint_dir=ctx.artifacts)
    values = trainer.fit(resume=ctx.resume)
    values["test/attribute_error"] = 1.0 - values["test/mean_acc"]
    if model.ordering == "soft":
        with torch.no_grad():
            ctx.note("scales", model.scales().detach().cpu().tolist())
    return values
