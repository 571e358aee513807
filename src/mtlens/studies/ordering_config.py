"""The ordering study's config (seed 003): which experiments, variants and settings; presets in configs/ordering/.

Each experiment has its own section. The per-task-batch experiments (digit pairs, tabular, Omniglot) train
with App. A's loop: every step a batch of `batch_size` samples of every task, `iterations` steps, the test
error recorded every `eval_every` steps. CelebA trains epochs over the shared images with the study's
`train` section (epochs, batch size, lr, workers); `train.device` is every experiment's device.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from mtlens.config import Section
from mtlens.errors import MtlensError
from mtlens.models.ordering import ENCODERS
from mtlens.studies.base import StudyConfig
from mtlens.studies.common import MethodConfig
from mtlens.studies.ordering_experiments import GroupSetting
from mtlens.studies.ordering_fitting import FitSetting

Experiment = Literal["fitting", "digit_pairs", "tabular", "omniglot", "celeba"]
GroupVariant = Literal["single_task", "parallel", "permuted", "soft"]
# seed 003 Fig. 7c's rows: parallel or soft order, with the landmark task (+landmarks) and the identity layer
CelebAVariant = Literal["parallel", "parallel_landmarks", "soft", "soft_landmarks", "soft_identity",
                        "soft_landmarks_identity"]


def _check_depth(depth: int) -> int:
    if depth < 1:
        raise MtlensError(f"depth D (the number of core layers) must be >= 1, got {depth}")
    return depth


class GroupModelConfig(Section):
    """One per-task-batch experiment's core and training (seed 003 App. A); `width` may list each layer's width."""

    iterations: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    eval_every: int = Field(ge=1)
    depth: int = 4
    width: int | list[int] = 64
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    encoder: str = "learned"
    lr: float = Field(1e-3, gt=0)
    trace_every: int | None = Field(None, ge=1)
    permutations: list[list[int]] | None = None  # the permuted variant's layer order per task (default: drawn per seed)

    @field_validator("depth")
    @classmethod
    def _depth(cls, depth: int) -> int:
        return _check_depth(depth)

    @field_validator("encoder")
    @classmethod
    def _encoder(cls, kind: str) -> str:
        if kind not in ENCODERS:
            raise MtlensError(f"unknown encoder kind {kind!r}; choose one of {', '.join(ENCODERS)}")
        return kind

    @model_validator(mode="after")
    def _shapes(self) -> GroupModelConfig:
        if isinstance(self.width, list):
            if len(set(self.width)) > 1:
                raise MtlensError(f"core layers must all have one shape so they can be applied in any order (seed 003 "
                                  f"eq. 7 sums their outputs); got widths {self.width}: give one width")
            if len(self.width) != self.depth:
                raise MtlensError(f"width lists {len(self.width)} core layers, depth is {self.depth}; give one width per "
                                  "layer or a single width")
            if any(w < 1 for w in self.width):
                raise MtlensError(f"core layer widths must be >= 1, got {self.width}")
        elif self.width < 1:
            raise MtlensError(f"core width must be >= 1, got {self.width}")
        if self.iterations % self.eval_every:
            raise MtlensError(f"iterations ({self.iterations}) must be a multiple of eval_every ({self.eval_every})")
        for perm in self.permutations or []:
            if sorted(perm) != list(range(self.depth)):
                raise MtlensError(f"permutation {perm} is not a permutation of the core layers 0..{self.depth - 1}; "
                                  f"give each task an order of all {self.depth} layers, e.g. {list(range(self.depth))[::-1]}")
        return self

    def setting(self, core: str) -> GroupSetting:
        """Returns the experiment function's setting for core layers of kind `core` (dense or conv)."""
        width = self.width[0] if isinstance(self.width, list) else self.width
        return GroupSetting(iterations=self.iterations, batch_size=self.batch_size, eval_every=self.eval_every,
                            depth=self.depth, width=width, core=core, dropout=self.dropout, encoder=self.encoder,
                            lr=self.lr, trace_every=self.trace_every,
                            permutations=None if self.permutations is None else tuple(map(tuple, self.permutations)))


class FitCoreConfig(Section):
    """One core of Fig. 2: width m, the samples per task n swept, and the full-batch Adam budget."""

    width: int = Field(ge=1)
    n_values: list[int] = Field(min_length=1)
    steps: int = Field(ge=1)
    lr: float = Field(0.01, gt=0)

    @field_validator("n_values")
    @classmethod
    def _n(cls, values: list[int]) -> list[int]:
        if any(n < 1 for n in values) or len(set(values)) != len(values):
            raise MtlensError(f"n_values must be distinct sample counts >= 1, got {values}")
        return values

    def setting(self, activation: str) -> FitSetting:
        """Returns the fitting function's setting for this core."""
        return FitSetting(width=self.width, activation=activation, n_values=tuple(self.n_values), steps=self.steps, lr=self.lr)


class FittingConfig(Section):
    """Seed 003 §3.2 / Fig. 2: two random tasks; linear (m = 128) and ReLU (m = 16) cores."""

    cores: list[Literal["linear", "relu"]] = Field(default_factory=lambda: ["linear", "relu"], min_length=1)
    linear: FitCoreConfig = Field(default_factory=lambda: FitCoreConfig(width=128, n_values=[32, 64, 128, 256, 512, 1024],
                                                                       steps=3000))
    relu: FitCoreConfig = Field(default_factory=lambda: FitCoreConfig(width=16, n_values=[64, 128, 256, 512, 1024, 2048],
                                                                     steps=3000))


def _task_counts(values: list[int]) -> list[int]:
    if not values or any(k < 1 for k in values) or len(set(values)) != len(values):
        raise MtlensError(f"n_tasks must list distinct task counts >= 1, got {values}")
    return values


class DigitPairsConfig(Section):
    """Seed 003 §4.1 / App. A.1: digit1-vs-digit2 tasks, frozen random 64-unit encoders, four 64-unit layers.

    n_train: training images per task (None: all); noise: the standard deviation of Gaussian pixel noise added
    once to every image (fixed by `noise_seed`, then clipped to [0, 1]), to make the stand-in digits harder.
    """

    n_tasks: list[int] = Field(default_factory=lambda: list(range(1, 11)))
    n_train: int | None = Field(None, ge=1)
    noise: float = Field(0.0, ge=0.0)
    noise_seed: int = 0
    model: GroupModelConfig = Field(default_factory=lambda: GroupModelConfig(
        iterations=20_000, batch_size=64, eval_every=1000, width=64, dropout=0.5, encoder="frozen", trace_every=250))

    @field_validator("n_tasks")
    @classmethod
    def _tasks(cls, values: list[int]) -> list[int]:
        return _task_counts(values)


class TabularConfig(Section):
    """Seed 003 §4.2 / App. A.2: the UCI tables (`datasets`: None = all ten, those present), 32-unit layers."""

    datasets: list[str] | None = None
    model: GroupModelConfig = Field(default_factory=lambda: GroupModelConfig(
        iterations=20_000, batch_size=64, eval_every=1000, width=32, dropout=0.8, encoder="learned"))


class OmniglotConfig(Section):
    """Seed 003 §4.3 / App. A.3: alphabets as tasks, identity encoders, four 53-filter conv layers."""

    n_tasks: list[int] = Field(default_factory=lambda: [1, 5, 10, 20, 30, 40, 50])
    test_fractions: list[float] = Field(default_factory=lambda: [0.2, 0.1], min_length=1)
    model: GroupModelConfig = Field(default_factory=lambda: GroupModelConfig(
        iterations=5000, batch_size=1, eval_every=500, width=53, dropout=0.5, encoder="identity", trace_every=250))

    @field_validator("n_tasks")
    @classmethod
    def _tasks(cls, values: list[int]) -> list[int]:
        _task_counts(values)
        if max(values) > 50:
            raise MtlensError(f"omniglot has 50 alphabets; n_tasks {max(values)} is too many")
        return values

    @field_validator("test_fractions")
    @classmethod
    def _fractions(cls, values: list[float]) -> list[float]:
        if any(not 0.0 < f < 1.0 for f in values):
            raise MtlensError(f"test_fractions must be in (0, 1) (seed 003 uses 0.1 and 0.2), got {values}")
        return values


class CelebAConfig(Section):
    """Seed 003 §4.4 / App. A.4: a ResNet trunk to its average pool, a linear projection, D dense core layers.

    weights: a local torchvision-keyed ResNet state dict (the seed starts from ImageNet weights; none is
    downloaded); subset: at most this many images of each split (the first in file order), for checks.
    """

    variants: list[CelebAVariant] = Field(default_factory=lambda: ["parallel", "parallel_landmarks", "soft",
                                                                   "soft_landmarks", "soft_identity",
                                                                   "soft_landmarks_identity"], min_length=1)
    backbone: Literal["resnet50", "resnet18"] = "resnet50"
    weights: str | None = None
    image_size: int = Field(224, ge=8)
    projection: int = Field(256, ge=1)
    depth: int = 4
    width: int = Field(256, ge=1)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    subset: int | None = Field(None, ge=1)

    @field_validator("depth")
    @classmethod
    def _depth(cls, depth: int) -> int:
        return _check_depth(depth)


class OrderingConfig(StudyConfig):
    """The ordering study's config (presets: mtlens/configs/ordering/*.yaml)."""

    study: Literal["ordering"] = "ordering"
    experiments: list[Experiment] = Field(default_factory=lambda: ["fitting", "digit_pairs", "tabular", "omniglot"],
                                          min_length=1)
    variants: list[GroupVariant] = Field(default_factory=lambda: ["single_task", "parallel", "permuted", "soft"],
                                         min_length=1)
    fitting: FittingConfig = Field(default_factory=FittingConfig)
    digit_pairs: DigitPairsConfig = Field(default_factory=DigitPairsConfig)
    tabular: TabularConfig = Field(default_factory=TabularConfig)
    omniglot: OmniglotConfig = Field(default_factory=OmniglotConfig)
    celeba: CelebAConfig = Field(default_factory=CelebAConfig)
    method: MethodConfig = Field(default_factory=MethodConfig)

    cell_fields: ClassVar[frozenset[str]] = frozenset({"experiments", "variants"})
