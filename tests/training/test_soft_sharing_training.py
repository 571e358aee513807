"""Every soft-sharing architecture trains with the Trainer under a representative set of methods, and the
architectures whose assumptions a method breaks are refused before training, in one line naming both."""

from __future__ import annotations

import pytest
import torch

from mtlens import MtlensError
from mtlens.data.multitask import factor_task_splits, split_indices
from mtlens.data.random_mlp import RandomMLPTasks
from mtlens.data.tiny import TinyShapes
from mtlens.methods import create_method
from mtlens.models import create_model
from mtlens.models.soft_registry import ARCHITECTURES
from mtlens.training import TrainConfig, Trainer

ARCHS = list(ARCHITECTURES)
# a loss weighting, one with state (learned log-variances), a gradient method at parameter level, and the
# feature-level surrogate
METHODS = [("ew", "param"), ("uncertainty", "param"), ("pcgrad", "param"), ("mgda", "feature")]
SMALL = {"mmoe": {"num_experts": 2}, "dselect_k": {"num_experts": 2, "k": 1}}


@pytest.fixture(scope="module")
def data():  # type: ignore[no-untyped-def]
    # 16-pixel images take the MLP backbone (fast); the conv encoder's forward and losses are in
    # tests/models/test_soft_sharing.py, and it trains in the hard-sharing study
    ds = TinyShapes(image_size=16, num_positions=8)
    tasks = RandomMLPTasks.for_dataset(ds, 3, seed=0)
    return ds, tasks, factor_task_splits(ds, tasks, split_indices(len(ds), seed=0, subset=40), device="cpu")


def _trainer(data, arch: str, method: str, level: str) -> Trainer:  # type: ignore[no-untyped-def]
    ds, tasks, splits = data
    torch.manual_seed(0)
    model = create_model(arch, tasks.tasks, ds.image_shape, latent_dim=4, head_hidden=(16,), mlp_hidden=(32, 32),
                         **SMALL.get(arch, {}))
    return Trainer(model, create_method(method, 3, level=level), splits,
                   TrainConfig(epochs=2, batch_size=16, lr=3e-3, progress=False, device="cpu", checkpoint=False))


# MTAN refuses the feature level (test_feature_level_is_refused_where_there_is_no_cut)
PAIRS = [(a, m, l) for a in ARCHS for m, l in METHODS if not (a == "mtan" and l == "feature")]


@pytest.mark.parametrize(("arch", "method", "level"), PAIRS)
def test_every_architecture_trains_with_every_kind_of_method(data, arch: str, method: str, level: str) -> None:  # type: ignore[no-untyped-def]
    t = _trainer(data, arch, method, level)
    batch = t.data["train"].__getitems__(list(range(len(t.data["train"]))))

    def loss() -> float:
        t.model.eval()  # the same function before and after (LTB: the argmax tree; BatchNorm: running stats)
        with torch.no_grad():
            return float(t.model.step_losses(batch)[0].sum())

    before = loss()
    t.model.train()
    final = t.fit()
    assert loss() < before
    assert set(final) == {"test/task_0/mse", "test/task_1/mse", "test/task_2/mse", "test/mean_mse"}
    assert all(torch.isfinite(torch.tensor(v)) for v in final.values())


def test_feature_level_is_refused_where_there_is_no_cut(data) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MtlensError) as err:
        _trainer(data, "mtan", "mgda", "feature")
    message = str(err.value)
    assert "\n" not in message and "mgda" in message and "mtan" in message and "use level='param'" in message
    _trainer(data, "mtan", "ew", "feature")  # a loss weighting takes no gradients: its level changes nothing


def test_gradnorm_at_parameter_level_is_refused_without_one_last_shared_layer(data) -> None:  # type: ignore[no-untyped-def]
    for arch in ("cross_stitch", "mmoe", "ple", "dselect_k", "ltb"):
        with pytest.raises(MtlensError, match=rf"method gradnorm at level 'param' needs one last shared layer.*architecture {arch}"):
            _trainer(data, arch, "gradnorm", "param")
        _trainer(data, arch, "gradnorm", "feature")
    _trainer(data, "mtan", "gradnorm", "param")  # the backbone's last layer
    _trainer(data, "cgc", "gradnorm", "param")  # one shared expert
