"""Checkpoints load with the weights-only unpickler: nothing in a file runs, and bad files give one-line errors."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlens.data.multitask import factor_task_splits, split_indices
from mtlens.data.random_mlp import RandomMLPTasks
from mtlens.data.tiny import TinyShapes
from mtlens.errors import MtlensError
from mtlens.methods import available_methods, create_method
from mtlens.models import create_model
from mtlens.training import TrainConfig, Trainer
from mtlens.training.checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state


class Planted:
    """A pickle whose loading creates a file: what a hostile checkpoint.pt in a shared store could hold."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def plant(path: Path, marker: Path, *, with_torch_save: bool = True) -> None:
    """Writes a checkpoint-looking file whose unpickling would create `marker`."""
    payload = {"format": 2, "model": Planted(marker)}
    if with_torch_save:
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))


def test_rng_state_is_plain_and_restores_every_generator_bit_for_bit(tmp_path: Path) -> None:
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.normal()  # leaves a cached gaussian in numpy's state
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"rng": rng_state()})
    expected = (random.random(), np.random.normal(), np.random.randint(0, 2**31, 5).tolist(), torch.rand(3))
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    set_rng_state(torch.load(path, weights_only=True)["rng"])
    got = (random.random(), np.random.normal(), np.random.randint(0, 2**31, 5).tolist(), torch.rand(3))
    assert got[:3] == expected[:3] and torch.equal(got[3], expected[3])


@pytest.mark.parametrize("pickler", ["torch.save", "pickle"])
def test_a_planted_pickle_runs_nothing_and_is_one_line(tmp_path: Path, pickler: str) -> None:
    marker, path = tmp_path / "pwned", tmp_path / "checkpoint.pt"
    plant(path, marker, with_torch_save=pickler == "torch.save")
    with pytest.raises(MtlensError) as err:
        load_checkpoint(path)
    assert not marker.exists()
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "nothing in it was run" in message


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "is empty or truncated"),
        (b"\x00garbage" * 50, "is not an mtlens checkpoint"),
        ("list", "holds a list"),
        ("no-keys", "lacks 'optimizer'"),
        ("old-format", "has format None"),
        ("numpy", "written by an mtlens before weights-only checkpoints"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path: Path, content, expected: str) -> None:
    path = tmp_path / "checkpoint.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "list":
        torch.save([1, 2], path)
    elif content == "no-keys":
        torch.save({"format": 2, "model": {}}, path)
    elif content == "old-format":
        torch.save({"model": {}}, path)
    else:  # a checkpoint as mtlens wrote them before format 2: numpy's RNG state pickled as an array
        torch.save({"model": {}, "rng": {"numpy": np.random.get_state()}}, path)
    with pytest.raises(MtlensError) as err:
        load_checkpoint(path)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_malformed_rng_state_is_one_line() -> None:
    with pytest.raises(MtlensError, match="random state is malformed"):
        set_rng_state({"python": [3, [1, 2], None], "numpy": {}, "torch": torch.get_rng_state()})


@pytest.fixture(scope="module")
def small_data():
    ds = TinyShapes(image_size=64, num_positions=8)
    tasks = RandomMLPTasks.for_dataset(ds, 3, seed=0)
    return ds, tasks, factor_task_splits(ds, tasks, split_indices(len(ds), seed=0, subset=60), device="cpu")


@pytest.mark.parametrize("name", available_methods())
def test_every_method_state_round_trips_through_weights_only_loading(small_data, tmp_path: Path, name: str) -> None:
    ds, tasks, data = small_data
    torch.manual_seed(0)
    model = create_model("multi_head", tasks.tasks, ds.image_shape, latent_dim=4)
    method = create_method(name, len(model.active_tasks))
    trainer = Trainer(model, method, data, TrainConfig(epochs=1, batch_size=64, progress=False, device="cpu"),
                      checkpoint_dir=tmp_path)
    trainer.fit()
    state = load_checkpoint(tmp_path / "checkpoint.pt")  # raises if anything needs the full unpickler
    fresh = Trainer(create_model("multi_head", tasks.tasks, ds.image_shape, latent_dim=4),
                    create_method(name, len(model.active_tasks)), data,
                    TrainConfig(epochs=1, batch_size=64, progress=False, device="cpu"))
    fresh.load_state_dict(state)
    assert fresh.global_step == trainer.global_step
    assert all(torch.equal(a, b) for a, b in zip(fresh.model.state_dict().values(), trainer.model.state_dict().values()))


def test_resume_from_a_checkpoint_of_another_model_is_one_line(tiny_data, tmp_path: Path) -> None:
    ds, tasks, data = tiny_data
    small = Trainer(create_model("multi_head", tasks.tasks, ds.image_shape, latent_dim=4), create_method("ew", 3), data,
                    TrainConfig(epochs=1, batch_size=64, progress=False, device="cpu"), checkpoint_dir=tmp_path)
    small.fit()
    other = Trainer(create_model("multi_head", tasks.tasks, ds.image_shape, latent_dim=6), create_method("ew", 3), data,
                    TrainConfig(epochs=2, batch_size=32, progress=False, device="cpu"), checkpoint_dir=tmp_path)
    with pytest.raises(MtlensError) as err:
        other.fit(resume=True)
    assert "does not fit this run" in str(err.value) and "\n" not in str(err.value)
    assert os.path.exists(tmp_path / "checkpoint.pt")
