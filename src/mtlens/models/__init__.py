"""Encoders, heads and the multi-task architectures built from them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mtlens.data.tasks import TaskSpec
from mtlens.models.encoders import ConvEncoder, MLPEncoder
from mtlens.models.hard_sharing import MultiHead, MultiTaskModel, OneHead
from mtlens.models.heads import MLPHead
from mtlens.models.registry import MODELS, build_encoder
from mtlens.models import dense, filters, mtvib, ordering, ordering_trunk, soft_registry  # noqa: F401, E402  (register their models)
from mtlens.models.dense import DenseMultiTaskModel  # noqa: E402
from mtlens.models.resnet import ResNet, available_backbones, create_backbone  # noqa: E402
from mtlens.models.method_fit import check_method_fits  # noqa: E402
from mtlens.models.soft_sharing import SoftSharingModel  # noqa: E402


def create_model(name: str, tasks: Sequence[TaskSpec], input_shape: Sequence[int], **options: Any) -> MultiTaskModel:
    """Returns a new multi-task model of architecture `name` for `tasks` on inputs of `input_shape`."""
    return MODELS.create(name, tasks, input_shape, **options)


def available_models() -> list[str]:
    """Returns the registered architecture names."""
    return MODELS.available()


__all__ = ["DenseMultiTaskModel", "ResNet", "available_backbones", "create_backbone", "ConvEncoder", "MLPEncoder", "MLPHead", "MultiTaskModel", "MultiHead", "OneHead", "MODELS",
           "create_model", "available_models", "build_encoder", "SoftSharingModel", "check_method_fits"]
