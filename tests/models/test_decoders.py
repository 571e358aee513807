import pytest
import torch

from mtlens import MtlensError
from mtlens.models.decoders import ConvDecoder


@pytest.mark.parametrize("channels", [1, 3])
def test_decoder_output_shapes(channels: int) -> None:
    dec = ConvDecoder(channels, latent_dim=8)
    z = torch.randn(5, 8)
    assert dec(z).shape == (5, channels, 64, 64)
    img = dec.decode(z).detach()
    assert img.shape == (5, channels, 64, 64) and float(img.min()) >= 0 and float(img.max()) <= 1
    assert dec.image_shape == (channels, 64, 64)


def test_decoder_is_table2() -> None:
    dec = ConvDecoder(3, latent_dim=6, activation_name="tanh")
    convs = [m for m in dec.net if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    assert [type(c).__name__ for c in convs] == ["Conv2d"] + ["ConvTranspose2d"] * 6
    assert [c.out_channels for c in convs] == [256, 256, 128, 128, 64, 64, 3]
    assert [c.kernel_size[0] for c in convs] == [1, 4, 4, 4, 4, 4, 3]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 2, 2, 2, 1]
    assert convs[0].in_channels == 6 and isinstance(dec.net[1], torch.nn.Tanh)
    assert all(float(c.bias.detach().abs().max()) == 0 for c in convs)


def test_bad_decoder_input() -> None:
    with pytest.raises(MtlensError, match="latent codes \\[N, 8\\], got \\(2, 4\\)"):
        ConvDecoder(1, 8)(torch.zeros(2, 4))
    with pytest.raises(MtlensError, match="64x64 images, got image_size 128"):
        ConvDecoder(1, 8, image_size=128)
    with pytest.raises(MtlensError, match="latent_dim must be >= 1"):
        ConvDecoder(1, 0)
