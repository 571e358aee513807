"""`evaluate(..., device="auto")` puts images where the encoder is, not on an accelerator the encoder is not on.

The accelerator is faked on CPU: `resolve_device` answers the "meta" device, as "auto" answers "cuda" on a GPU
machine. An image moved there by mistake reaches the encoder as a meta tensor.
"""

from __future__ import annotations

import pytest
import torch

import mtlens.measures.disentanglement.evaluator as evaluator
from mtlens.data.tiny import TinyShapes
from mtlens.errors import MtlensError
from mtlens.measures.disentanglement import evaluate

SMALL = {"mig": {"num_train": 200}}


class Encoder(torch.nn.Module):
    """Centre of mass of the image (a disentangled code of the position), recording where images arrive."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.devices: set[str] = set()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode(images)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        self.devices.add(images.device.type)
        flat = images.flatten(1)
        grid = torch.arange(images.shape[-1], dtype=images.dtype, device=images.device)
        rows = flat.view(-1, images.shape[-2], images.shape[-1]).sum(1)
        mass = rows.sum(1).clamp_min(1e-6)
        x = (rows * grid).sum(1) / mass
        y = (flat.view(-1, images.shape[-2], images.shape[-1]).sum(2) * grid).sum(1) / mass
        return torch.stack([x, y], 1) * self.scale


@pytest.fixture()
def fake_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    real = evaluator.resolve_device
    monkeypatch.setattr(evaluator, "resolve_device", lambda d="auto": torch.device("meta") if d == "auto" else real(d))


@pytest.mark.parametrize("how", ["module", "bound method"])
def test_auto_follows_the_encoder_module(fake_accelerator: None, how: str) -> None:
    dataset = TinyShapes(image_size=16, num_positions=4)
    model = Encoder()
    encode = model if how == "module" else model.encode
    result = evaluate(dataset, encode, ["mig"], device="auto", settings=SMALL)
    assert model.devices == {"cpu"} and 0.0 < result["mig"].score <= 1.0
    assert evaluator.encoder_device(encode) == torch.device("cpu")


def test_a_plain_function_gets_the_device_asked_for(fake_accelerator: None) -> None:
    dataset = TinyShapes(image_size=16, num_positions=4)
    model = Encoder()
    assert evaluator.encoder_device(lambda x: model(x)) is None
    evaluate(dataset, lambda x: model(x), ["mig"], device="cpu", settings=SMALL)
    assert model.devices == {"cpu"}


def test_an_explicit_device_that_differs_from_the_encoder_is_one_line() -> None:
    dataset = TinyShapes(image_size=16, num_positions=4)
    with pytest.raises(MtlensError, match="encode's module is on cpu but device='meta' was asked") as err:
        evaluate(dataset, Encoder(), ["mig"], device="meta", settings=SMALL)
    assert "\n" not in str(err.value)
