"""The soft-sharing architectures in the model registry, as LibMTL names them: cross_stitch, mmoe, mtan, cgc,
ple, dselect_k, ltb.

`create_model(name, tasks, input_shape, backbone="auto", ...)` builds one on
- the tasks of a factor dataset or task data (`TaskSpec`s): seed 000's conv encoder for square images of 64k
  pixels (else an MLP encoder, or `backbone="resnet18"`) with Table 3's MLP heads, the latent d per copy of
  the encoder (`latent_dim`), as the hard-sharing models take them;
- the tasks of a dense benchmark (`DenseTask`s): a dilated ResNet-18 / 50 (`output_stride`, `weights`) with
  dense heads (`head`, `head_options`), as `dense_resnet`.
Options of each architecture: cross_stitch `alpha_self`; mmoe `num_experts`; cgc and ple `shared_experts`,
`task_experts`; dselect_k `num_experts`, `k`, `gamma`, `entropy_reg`; ltb `branches`, `tau`, `tau_steps`,
`warmup_steps`, `seed`. Defaults are in each trunk's module docstring, with what they follow.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from mtlens.data.dense import DenseTask
from mtlens.errors import MtlensError
from mtlens.models.cross_stitch import CrossStitchTrunk
from mtlens.models.experts import CGCTrunk, DSelectKTrunk, MMoETrunk
from mtlens.models.ltb import LTBTrunk
from mtlens.models.mtan import MTANTrunk
from mtlens.models.ple import PLETrunk
from mtlens.models.registry import MODELS
from mtlens.models.soft_sharing import SoftSharingModel, Trunk
from mtlens.models.stages import create_stages

#: name -> (trunk class, aliases)
ARCHITECTURES: dict[str, tuple[type[Trunk], tuple[str, ...]]] = {
    "cross_stitch": (CrossStitchTrunk, ("cross-stitch", "crossstitch")),
    "mmoe": (MMoETrunk, ()),
    "mtan": (MTANTrunk, ()),
    "cgc": (CGCTrunk, ()),
    "ple": (PLETrunk, ()),
    "dselect_k": (DSelectKTrunk, ("dselect-k", "dselectk")),
    "ltb": (LTBTrunk, ("learning_to_branch",)),
}


def _factory(name: str, trunk_cls: type[Trunk]) -> Callable[..., SoftSharingModel]:
    def build(tasks: Sequence[Any], input_shape: Sequence[int], backbone: str = "auto", latent_dim: int = 8,
              activation: str = "relu", head_hidden: Sequence[int] = (300, 300, 300), head_activation: str = "relu",
              mlp_hidden: Sequence[int] = (256, 256), output_stride: int = 8, head: str = "aspp",
              head_options: Mapping[str, Any] | None = None, weights: str | os.PathLike[str] | None = None,
              active_tasks: Sequence[int] | None = None, **options: Any) -> SoftSharingModel:
        tasks = tuple(tasks)
        dense = bool(tasks) and all(isinstance(t, DenseTask) for t in tasks)
        stages = create_stages(backbone, input_shape, latent_dim, activation, mlp_hidden, output_stride, weights, dense)
        if trunk_cls is MTANTrunk:
            options = {"activation_name": activation, **options}
        trunk = _make_trunk(name, trunk_cls, stages, len(tasks), options)
        return SoftSharingModel(trunk, tasks, tuple(head_hidden), head_activation, head, head_options, active_tasks)

    build.__name__ = name
    build.__doc__ = f"Returns a {name} model (see mtlens.models.{trunk_cls.__module__.rsplit('.', 1)[-1]})."
    return build


def _make_trunk(name: str, trunk_cls: type[Trunk], stages: Any, n_tasks: int, options: dict[str, Any]) -> Trunk:
    accepted = [p for p in inspect.signature(trunk_cls.__init__).parameters if p not in ("self", "backbone", "n_tasks")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        shown = [p for p in accepted if p != "activation_name"]
        raise MtlensError(f"{name} has no option {', '.join(unknown)}; its options are {', '.join(shown) or 'none'}")
    return trunk_cls(stages, n_tasks, **options)


for _name, (_cls, _aliases) in ARCHITECTURES.items():
    MODELS.add(_name, _factory(_name, _cls), aliases=_aliases)
