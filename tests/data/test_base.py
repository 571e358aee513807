import numpy as np
import pytest
import torch

from mtlens import MtlensError
from mtlens.data import available_datasets, create_factor_dataset
from mtlens.data.tiny import TinyShapes


def test_tiny_grid_and_round_trip() -> None:
    ds = TinyShapes(image_size=32, num_positions=4)
    assert len(ds) == 3 * 4 * 4
    idx = np.arange(len(ds))
    f = ds.factors(idx)
    assert f.shape == (48, 3) and f.dtype == np.int64
    np.testing.assert_array_equal(ds.index_of(f), idx)
    # C order: the last factor varies fastest
    np.testing.assert_array_equal(f[:5, 2], [0, 1, 2, 3, 0])
    assert ds.factor_values([0, 47]).tolist() == [[0.0, 0.0, 0.0], [2.0, 1.0, 1.0]]


def test_tiny_images_deterministic_and_in_range() -> None:
    ds = TinyShapes(image_size=32, num_positions=4)
    a, b = ds.images([0, 5, 47]), ds.images(np.array([0, 5, 47]))
    assert a.shape == (3, 1, 32, 32) and a.dtype == torch.float32
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1 and a.sum() > 0
    # different factors, different images
    assert not torch.equal(a[0], a[1])


def test_sample_factors_matches_reference_draws() -> None:
    ds = TinyShapes(image_size=32, num_positions=4)
    got = ds.sample_factors(7, np.random.RandomState(3))
    rs = np.random.RandomState(3)
    want = np.stack([rs.randint(s, size=7) for s in ds.factor_sizes], axis=1)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda d: d.images([48]), "index 48 is out of range"),
        (lambda d: d.images([-1]), "out of range"),
        (lambda d: d.images([0.5]), "must be integers"),
        (lambda d: d.index_of([[0, 4, 0]]), "'pos_x' has value index 4"),
        (lambda d: d.index_of([[0, 1]]), "factors must have shape"),
        (lambda d: d.factor_index("colour"), "unknown factor 'colour'"),
    ],
)
def test_bad_input_is_named(call, message: str) -> None:
    with pytest.raises(MtlensError, match=message):
        call(TinyShapes(image_size=32, num_positions=4))


def test_registry() -> None:
    assert "tiny" in available_datasets()
    assert isinstance(create_factor_dataset("tiny", image_size=16, num_positions=2), TinyShapes)
    with pytest.raises(MtlensError, match="unknown dataset 'nope'; factor datasets: dsprites, "):
        create_factor_dataset("nope")


def test_describe_names_categorical_values() -> None:
    desc = TinyShapes(image_size=16, num_positions=2).describe()
    assert desc["factors"][0] == {"name": "shape", "size": 3, "min": 0.0, "max": 2.0,
                                  "value_names": ["square", "cross", "disc"]}
    assert "value_names" not in desc["factors"][1]
