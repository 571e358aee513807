"""Seed 003 §4.1-4.3 as plain functions: one call trains one variant on one task set with one seed.

Variants (App. A: "single task, parallel ordering, permuted ordering and soft ordering trained an equivalent
set of core layers"): single_task (each task its own core layers), parallel (eq. 2), permuted (eq. 3, a
permutation per task drawn from the seed), soft (eq. 7). Every variant of a seed starts from the same encoder,
core and decoder weights and sees the same task set, so the variants of one seed are paired.

- `digit_pairs_cell` (§4.1, Fig. 4): frozen random 64-unit ReLU encoders, four 64-unit dense core layers,
  one sigmoid output per task, dropout 0.5, batches of 64 per task, 20K iterations (App. A.1).
- `tabular_cell` (§4.2, Fig. 5): learned 32-unit ReLU encoders, four 32-unit dense core layers, softmax
  decoders, dropout 0.8 (App. A.2), on the ten UCI tables when their CSVs are present, else the bundled ones.
- `omniglot_cell` (§4.3, Fig. 6): identity encoders (channels zero-padded to 53), four conv 3x3 + ReLU +
  2x2 max-pool core layers of 53 filters, softmax decoders, dropout 0.5, one sample per task per step, 5000
  iterations (App. A.3).

Each returns a `CellResult`: the test error by iteration (Figs. 4a, 5b, 6a), the final error and loss per task, and for
soft ordering the final scales (layer usage, Figs. 4d, 6b) and the scales' distance / hardness over iterations
(Fig. 4b-c).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import torch

from mtlens.data.digit_pairs import build_digit_pairs
from mtlens.data.mnist import DigitImages
from mtlens.data.omniglot import build_omniglot
from mtlens.data.tabular import build_tabular
from mtlens.data.task_groups import TaskGroupData
from mtlens.errors import MtlensError
from mtlens.models.ordering import LayerOrderingModel
from mtlens.training.ordering import evaluate_losses, train_task_group

VARIANTS = ("single_task", "parallel", "permuted", "soft")


@dataclass(frozen=True)
class GroupSetting:
    """The model and training settings of one experiment (iterations and batch size are per task per step)."""

    iterations: int
    batch_size: int
    eval_every: int
    depth: int = 4
    width: int = 64
    core: str = "dense"
    dropout: float = 0.5
    encoder: str = "learned"
    lr: float = 1e-3  # App. A: Adam with default parameters
    trace_every: int | None = None
    permutations: tuple[tuple[int, ...], ...] | None = None  # permuted variant: task t's order (default: drawn per seed)

    def model_options(self) -> dict[str, Any]:
        """Returns the LayerOrderingModel options of this setting."""
        return {"depth": self.depth, "width": self.width, "core": self.core, "dropout": self.dropout, "encoder": self.encoder}


# App. A.1: 20K iterations, 64 samples per task per batch, dropout 0.5; §4.1: frozen random 64-unit encoders
DIGIT_PAIRS: dict[str, GroupSetting] = {
    "paper": GroupSetting(iterations=20_000, batch_size=64, eval_every=1000, width=64, dropout=0.5, encoder="frozen",
                          trace_every=250),
    # quick: 500 iterations; on the MNIST stand-in (~300 training, ~50 test images per pair) every variant is at
    # 0-1% test error by then, and at 1000 or 1500 iterations too
    "quick": GroupSetting(iterations=500, batch_size=64, eval_every=250, width=64, dropout=0.5, encoder="frozen",
                          trace_every=50),
}
# App. A.2: dropout 0.8; §4.2: learned 32-unit encoders, 32-unit core. The seed gives no iterations or batch size
# for this experiment; "paper" uses App. A.1's (20K x 64) and Fig. 5b's curve is read at every 1000.
TABULAR: dict[str, GroupSetting] = {
    "paper": GroupSetting(iterations=20_000, batch_size=64, eval_every=1000, width=32, dropout=0.8, encoder="learned"),
    "quick": GroupSetting(iterations=1500, batch_size=64, eval_every=250, width=32, dropout=0.8, encoder="learned"),
}
# App. A.3: 53 filters, dropout 0.5, 5000 iterations with one sample of each task per batch
OMNIGLOT: dict[str, GroupSetting] = {
    "paper": GroupSetting(iterations=5000, batch_size=1, eval_every=500, width=53, core="conv", dropout=0.5,
                          encoder="identity", trace_every=250),
    "quick": GroupSetting(iterations=500, batch_size=1, eval_every=250, width=53, core="conv", dropout=0.5,
                          encoder="identity", trace_every=50),
}


def setting_for(table: dict[str, GroupSetting], setting: str | GroupSetting, **overrides: Any) -> GroupSetting:
    """Returns the named preset of `table` (or the given setting) with `overrides` applied."""
    if isinstance(setting, str):
        if setting not in table:
            raise MtlensError(f"unknown setting {setting!r}; choose one of {', '.join(table)} or pass a GroupSetting")
        setting = table[setting]
    return replace(setting, **overrides) if overrides else setting


@dataclass
class CellResult:
    """One trained variant: test error by iteration, final per-task errors, soft-ordering scales and their trace."""

    experiment: str
    variant: str
    seed: int
    tasks: list[str]
    source: str
    iterations: list[int]
    mean_error: list[float]
    task_error: dict[str, float]
    task_loss: dict[str, float] = field(default_factory=dict)
    scales: list[list[list[float]]] | None = None
    scale_trace: dict[str, list] | None = None
    permutations: list[list[int]] | None = None
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def final_error(self) -> float:
        """Returns the final mean test error over tasks."""
        return self.mean_error[-1]

    @property
    def final_loss(self) -> float:
        """Returns the final mean test loss over tasks (the seed's validation loss divided by the task count)."""
        return sum(self.task_loss.values()) / len(self.task_loss)

    def values(self) -> dict[str, float]:
        """Returns the final numbers as flat metrics: 'test/mean_error', 'test/mean_loss', 'test/<task>/error', '/loss'."""
        out = {"test/mean_error": self.final_error, "test/mean_loss": self.final_loss}
        out.update({f"test/{name}/error": err for name, err in self.task_error.items()})
        out.update({f"test/{name}/loss": loss for name, loss in self.task_loss.items()})
        return out

    def to_dict(self) -> dict[str, Any]:
        """Returns the result as JSON-able data."""
        return asdict(self)


def run_group_cell(
    data: TaskGroupData,
    variant: str,
    seed: int,
    setting: GroupSetting,
    *,
    experiment: str = "",
    method: str = "ew",
    method_options: dict[str, Any] | None = None,
    device: str = "auto",
    progress: bool = False,
    **trainer: Any,
) -> CellResult:
    """Returns the result of training `variant` on `data` with `setting` and `seed` (App. A's training).

    trainer: passed to `train_task_group` (store, run_id, checkpoint_dir, resume: a study cell's run).
    """
    if variant not in VARIANTS:
        raise MtlensError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    started = time.perf_counter()
    options = setting.model_options()
    if variant == "permuted" and setting.permutations is not None:
        if len(setting.permutations) < data.n_tasks:
            raise MtlensError(f"{len(setting.permutations)} permutations given for {data.n_tasks} tasks; give one per task")
        options["permutations"] = [list(p) for p in setting.permutations[: data.n_tasks]]
    model = LayerOrderingModel(data.tasks, data.input_shapes, ordering=variant, seed=seed, **options)
    torch.manual_seed(seed)  # dropout masks and batch draws
    run = train_task_group(model, data, iterations=setting.iterations, batch_size=setting.batch_size,
                           eval_every=setting.eval_every, method=method, method_options=method_options, lr=setting.lr,
                           seed=seed, device=device, trace_every=setting.trace_every, progress=progress, **trainer)
    task_error = {name: 1.0 - run.final[f"test/{name}/acc"] for name in data.names}
    soft = variant == "soft"
    return CellResult(
        experiment=experiment or data.name, variant=variant, seed=seed, tasks=data.names, source=str(data.source),
        iterations=run.iterations, mean_error=run.mean_error(), task_error=task_error,
        task_loss=evaluate_losses(model, data, "test"),
        scales=model.scales().detach().cpu().tolist() if soft else None, scale_trace=run.scale_trace,
        permutations=model.layer_of.cpu().tolist() if variant == "permuted" else None,
        seconds=time.perf_counter() - started, info={"data": {k: v for k, v in data.info.items() if k != "datasets"}},
    )


def digit_pairs_cell(
    n_tasks: int,
    variant: str,
    seed: int,
    setting: str | GroupSetting = "quick",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    digits: DigitImages | None = None,
    n_train: int | None = None,
    **options: Any,
) -> CellResult:
    """Returns one §4.1 cell: n_tasks digit-pair tasks drawn from `seed`, trained as `variant`."""
    data = build_digit_pairs(data_dir, seed=seed, n_tasks=n_tasks, n=n_train, digits=digits)
    return run_group_cell(data, variant, seed, setting_for(DIGIT_PAIRS, setting), experiment="digit_pairs", **options)


def tabular_cell(
    variant: str,
    seed: int,
    setting: str | GroupSetting = "quick",
    *,
    data_dir: str | os.PathLike[str] | None = None,
    datasets: list[str] | None = None,
    **options: Any,
) -> CellResult:
    """Returns one §4.2 cell: the UCI tables (split fixed across trials, App. A.2) trained as `variant` with `seed`."""
    data = build_tabular(data_dir, seed=0, datasets=datasets)
    result = run_group_cell(data, variant, seed, setting_for(TABULAR, setting), experiment="tabular", **options)
    result.info["missing"] = list(data.info.get("missing", []))  # type: ignore[arg-type]
    return result


def omniglot_cell(
    n_tasks: int,
    variant: str,
    seed: int,
    setting: str | GroupSetting = "paper",
    *,
    test_fraction: float = 0.2,
    data_dir: str | os.PathLike[str] | None = None,
    data: TaskGroupData | None = None,
    **options: Any,
) -> CellResult:
    """Returns one §4.3 cell: the first n_tasks alphabets of App. A.3 (raises OmniglotNotFound without the files)."""
    if data is None:
        data = build_omniglot(data_dir, n_tasks=n_tasks, test_fraction=test_fraction)
    elif data.n_tasks != n_tasks:
        raise MtlensError(f"omniglot: the given data has {data.n_tasks} tasks, the cell asks for {n_tasks}")
    return run_group_cell(data, variant, seed, setting_for(OMNIGLOT, setting), experiment="omniglot", **options)


def relative_error(error: float, parallel_error: float) -> float:
    """Returns error / parallel_error: below 1 where a variant beats parallel ordering (seed 003 Fig. 4a)."""
    if parallel_error <= 0:
        raise MtlensError(f"relative error needs a positive parallel-ordering error, got {parallel_error}")
    return error / parallel_error
