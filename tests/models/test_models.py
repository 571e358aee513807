import pytest
import torch

from mtlens import MtlensError
from mtlens.data.tasks import TaskSpec
from mtlens.models import ConvEncoder, available_models, create_model

TASKS = [TaskSpec("r0", "regression"), TaskSpec("r1", "regression"), TaskSpec("b", "binary"), TaskSpec("m", "multiclass", 5)]


@pytest.mark.parametrize("arch", ["multi_head", "one_head", "single_task", "random"])
def test_every_architecture_output_shapes(arch: str) -> None:
    model = create_model(arch, TASKS, (1, 64, 64), latent_dim=6)
    x = torch.rand(3, 1, 64, 64)
    assert model.encode(x).shape == (3, 6)
    out = model(x)
    assert list(out) == ["r0", "r1", "b", "m"]
    assert [tuple(v.shape) for v in out.values()] == [(3,), (3,), (3,), (3, 5)]


def test_vector_inputs_use_mlp_encoder() -> None:
    model = create_model("multi_head", TASKS[:2], (13,), latent_dim=4)
    assert model.encode(torch.rand(5, 13)).shape == (5, 4)


def test_conv_encoder_table2_layout_and_init() -> None:
    enc = ConvEncoder(3, 8, "tanh")
    convs = [m for m in enc.convs if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 32, 64, 128, 256, 256]
    assert all(c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    assert isinstance(enc.convs[1], torch.nn.Tanh)
    assert enc.dense.in_features == 256 and enc.dense.out_features == 8
    # Xavier-normal conv weights: std = gain * sqrt(2 / (fan_in + fan_out))
    w = convs[-1].weight
    expected = (2.0 / (256 * 16 + 256 * 16)) ** 0.5
    assert abs(w.std().item() - expected) / expected < 0.05


def test_shared_and_task_parameters_partition_the_model() -> None:
    model = create_model("multi_head", TASKS, (1, 64, 64))
    shared = {id(p) for p in model.shared_parameters()}
    task = {id(p) for p in model.task_parameters()}
    assert shared and task and not shared & task
    assert shared | task == {id(p) for p in model.parameters()}
    rand = create_model("random", TASKS, (1, 64, 64))
    assert list(rand.shared_parameters()) == [] and len(list(rand.task_parameters())) > 0


def test_bad_model_input() -> None:
    with pytest.raises(MtlensError, match="unknown model"):
        create_model("two_head", TASKS, (1, 64, 64))
    with pytest.raises(MtlensError, match="expects images"):
        create_model("multi_head", TASKS, (1, 64, 64)).encode(torch.rand(2, 3, 64, 64))
    with pytest.raises(MtlensError, match="active tasks"):
        create_model("single_task", TASKS, (1, 64, 64), task=9)
    assert {"multi_head", "one_head", "single_task", "random"} <= set(available_models())
