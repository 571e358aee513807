"""The model registry: `create_model(name, tasks, input_shape, **options)`.

Architectures (seed 000 §4.1): multi_head, one_head, single_task (the multi-head model trained on one task's
loss: `task=i`), random (the untrained encoder, frozen; its heads may still be fitted as a probe).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError
from mtlens.models.encoders import ConvEncoder, MLPEncoder
from mtlens.models.hard_sharing import MultiHead, MultiTaskModel, OneHead
from mtlens.registry import Registry

MODELS: Registry[MultiTaskModel] = Registry("model")


def build_encoder(input_shape: Sequence[int], latent_dim: int = 8, activation_name: str = "relu",
                  mlp_hidden: Sequence[int] = (256, 256)) -> nn.Module:
    """Returns the conv encoder for square images of 64k pixels (C, H, W), else an MLP encoder on the flattened input."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3 and shape[1] == shape[2] and shape[1] % 64 == 0:
        return ConvEncoder(shape[0], latent_dim, activation_name, image_size=shape[1])
    if len(shape) in (1, 2, 3):
        # Vectors, and images the Table-2 encoder cannot take (MNIST's 28 or MultiMNIST's 36 pixels), flattened.
        return MLPEncoder(int(np.prod(shape)), latent_dim, mlp_hidden, activation_name)
    raise MtlensError(f"input shape must be (C, H, W), (H, W) or (D,), got {shape}")


def _common(tasks: Sequence[TaskSpec], input_shape: Sequence[int], latent_dim: int, activation: str,
            head_hidden: Sequence[int], head_activation: str, mlp_hidden: Sequence[int]) -> tuple[nn.Module, dict]:
    encoder = build_encoder(input_shape, latent_dim, activation, mlp_hidden)
    return encoder, {"latent_dim": latent_dim, "head_hidden": tuple(head_hidden), "activation_name": head_activation}


@MODELS.register("multi_head", aliases=("multihead", "multi-head"))
def multi_head(tasks: Sequence[TaskSpec], input_shape: Sequence[int], latent_dim: int = 8, activation: str = "relu",
               head_hidden: Sequence[int] = (300, 300, 300), head_activation: str = "relu",
               mlp_hidden: Sequence[int] = (256, 256)) -> MultiTaskModel:
    """Returns a multi-head model: a head per task on the shared latent."""
    encoder, kw = _common(tasks, input_shape, latent_dim, activation, head_hidden, head_activation, mlp_hidden)
    return MultiHead(encoder, tasks, **kw)


@MODELS.register("one_head", aliases=("onehead", "one-head"))
def one_head(tasks: Sequence[TaskSpec], input_shape: Sequence[int], latent_dim: int = 8, activation: str = "relu",
             head_hidden: Sequence[int] = (300, 300, 300), head_activation: str = "relu",
             mlp_hidden: Sequence[int] = (256, 256)) -> MultiTaskModel:
    """Returns a one-head model: one head with every task's outputs."""
    encoder, kw = _common(tasks, input_shape, latent_dim, activation, head_hidden, head_activation, mlp_hidden)
    return OneHead(encoder, tasks, **kw)


@MODELS.register("single_task", aliases=("single-task", "singletask"))
def single_task(tasks: Sequence[TaskSpec], input_shape: Sequence[int], task: int = 0, latent_dim: int = 8,
                activation: str = "relu", head_hidden: Sequence[int] = (300, 300, 300), head_activation: str = "relu",
                mlp_hidden: Sequence[int] = (256, 256)) -> MultiTaskModel:
    """Returns a multi-head model that trains only task `task` (its other heads receive no gradient)."""
    encoder, kw = _common(tasks, input_shape, latent_dim, activation, head_hidden, head_activation, mlp_hidden)
    model = MultiHead(encoder, tasks, active_tasks=(task,), **kw)
    model.architecture = "single_task"
    return model


@MODELS.register("random", aliases=("untrained",))
def random(tasks: Sequence[TaskSpec], input_shape: Sequence[int], latent_dim: int = 8, activation: str = "relu",
           head_hidden: Sequence[int] = (300, 300, 300), head_activation: str = "relu",
           mlp_hidden: Sequence[int] = (256, 256)) -> MultiTaskModel:
    """Returns a multi-head model whose encoder stays at its initialisation (frozen: no shared parameters)."""
    encoder, kw = _common(tasks, input_shape, latent_dim, activation, head_hidden, head_activation, mlp_hidden)
    encoder.requires_grad_(False)
    model = MultiHead(encoder, tasks, **kw)
    model.architecture = "random"
    return model
