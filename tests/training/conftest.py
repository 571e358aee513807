import pytest
import torch

from mtlens.data.multitask import factor_task_splits, split_indices
from mtlens.data.random_mlp import RandomMLPTasks
from mtlens.data.tiny import TinyShapes


@pytest.fixture
def tiny_data():
    ds = TinyShapes(image_size=64, num_positions=8)
    tasks = RandomMLPTasks.for_dataset(ds, 3, seed=0)
    return ds, tasks, factor_task_splits(ds, tasks, split_indices(len(ds), seed=0), device="cpu")
