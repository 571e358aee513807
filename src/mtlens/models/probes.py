"""A frozen encoder with a Table-2 decoder trained on its codes (seed 000 §4.2): what an encoder keeps of its images.

`DecoderProbe` is a MultiTaskModel with one task, "reconstruction": `step_losses` encodes without gradient and
returns the decoder's MSE to the images, so the Trainer (equal weighting) trains the decoder alone. The MSE is
taken on the decoder's linear output by default (`output="linear"`; images are that output clipped to [0, 1]):
under MSE a sigmoid output saturates on dSprites' mostly black images, and every decoder we trained that way
(random, single-task and multi-head codes alike) froze at an all-black output within 100 steps. The encoder
is never in the optimiser's reach: no gradient reaches it and it stays in eval mode (batch-norm statistics and
dropout of a user's encoder stay as they were), so its parameters and buffers are unchanged bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError
from mtlens.models.decoders import ConvDecoder
from mtlens.models.hard_sharing import MultiTaskModel

RECONSTRUCTION = TaskSpec("reconstruction", "regression")
OUTPUTS = ("linear", "sigmoid")


class EncodeOf(nn.Module):
    """A module whose forward is `model.encode` (a multi-task or auto-encoder model's deterministic codes)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns `model.encode(x)`."""
        return self.model.encode(x)  # type: ignore[operator]


def as_encoder(encoder: nn.Module) -> nn.Module:
    """Returns a module mapping images to codes: a model's `encode` when it has one, else the module itself."""
    if not isinstance(encoder, nn.Module):
        raise MtlensError(f"an encoder must be a torch.nn.Module mapping images to codes, got {type(encoder).__name__}")
    return EncodeOf(encoder) if callable(getattr(encoder, "encode", None)) else encoder


@torch.no_grad()
def code_width(encoder: nn.Module, image_shape: Sequence[int]) -> int:
    """Returns the width d of the codes [N, d] that `encoder` gives for images of `image_shape`, or raises."""
    shape = tuple(int(s) for s in image_shape)
    device = next((p.device for p in encoder.parameters()), torch.device("cpu"))
    was_training = encoder.training
    encoder.eval()
    try:
        out = encoder(torch.zeros((2, *shape), device=device))
    except (MtlensError, RuntimeError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise MtlensError(f"the encoder does not take this dataset's images {shape}: {first}") from None
    finally:
        encoder.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise MtlensError(f"the encoder must return codes [N, d] for images {shape}, got {got}")
    return int(out.shape[1])


class DecoderProbe(MultiTaskModel):
    """A frozen encoder and a Table-2 decoder trained by MSE to reconstruct the images from its codes."""

    architecture = "decoder_probe"

    def __init__(self, encoder: nn.Module, image_shape: Sequence[int], activation_name: str = "relu",
                 output: str = "linear") -> None:
        if output not in OUTPUTS:
            raise MtlensError(f"unknown decoder output {output!r}; choose one of {', '.join(OUTPUTS)}")
        encoder = as_encoder(encoder)
        shape = tuple(int(s) for s in image_shape)
        latent_dim = code_width(encoder, shape)
        super().__init__(encoder, (RECONSTRUCTION,))
        self.image_shape = shape
        self.latent_dim = latent_dim
        self.decoder = ConvDecoder(shape[0], latent_dim, activation_name, image_size=shape[-1])
        self.output = output
        self.encoder.eval()

    def train(self, mode: bool = True) -> DecoderProbe:
        """Sets the decoder's mode; the encoder stays in eval mode."""
        super().train(mode)
        self.encoder.eval()
        return self

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the frozen encoder's codes [N, d] (no gradient)."""
        with torch.no_grad():
            return self.encoder(x)

    def raw(self, z: torch.Tensor) -> torch.Tensor:
        """Returns the decoder's output [N, C, 64, 64] that the MSE is trained on (linear, or squashed by a sigmoid)."""
        return self.decoder(z) if self.output == "linear" else self.decoder.decode(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Returns images [N, C, 64, 64] in [0, 1] decoded from codes [N, d] (the output clipped to [0, 1])."""
        return self.raw(z).clamp(0.0, 1.0)

    def heads_forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns {"reconstruction": the decoded images}."""
        return {RECONSTRUCTION.name: self.decode(z)}

    def step_losses(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns ([the mean squared error of the decoder's output], the codes)."""
        x = batch["x"]
        z = self.encode(x)
        return F.mse_loss(self.raw(z), x).reshape(1), z

    def score_batch(self, batch: Mapping[str, Any]) -> dict[str, tuple[torch.Tensor, int]]:
        """Returns {"reconstruction": (summed squared error of the decoded images, number of pixel values)}."""
        x = batch["x"]
        return {RECONSTRUCTION.name: (((self.decode(self.encode(x)) - x) ** 2).sum(), x.numel())}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Returns nothing: the encoder is frozen."""
        return iter(())

    def task_parameters(self) -> Iterator[nn.Parameter]:
        """Returns the decoder's parameters."""
        return (p for p in self.decoder.parameters() if p.requires_grad)
