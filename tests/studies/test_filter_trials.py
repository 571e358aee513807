"""One trial of seed 001's experiments as a function: layouts, records, failures, resume, the two stages."""

from itertools import combinations

import numpy as np
import pytest
import torch

from mtlens import MtlensError
from mtlens.data.base import Source
from mtlens.data.mnist import DigitImages
from mtlens.methods import create_method
from mtlens.studies.filter_trials import (
    TABLE5_PRESETS,
    TABLE5_SEED,
    ClusteredLayout,
    FilterTrialSetting,
    build_trial_model,
    clustered_groups,
    run_filter_trial,
    trial_layout,
)
from mtlens.training import TrainConfig, Trainer


def _digits(n_train: int = 60, n_test: int = 20, nan: bool = False) -> DigitImages:
    g = torch.Generator().manual_seed(0)
    train_y, test_y = np.arange(n_train) % 10, np.arange(n_test) % 10
    # one bright row per digit class plus noise: learnable, tiny
    def images(y: np.ndarray) -> torch.Tensor:
        x = 0.1 * torch.rand(len(y), 1, 28, 28, generator=g)
        x[torch.arange(len(y)), 0, 2 + 2 * torch.as_tensor(y)] += 0.9
        return x

    train_x = images(train_y)
    if nan:
        train_x[:] = float("nan")
    return DigitImages(train_x, train_y, images(test_y), test_y, Source("stand-in", "tiny test digits"))


class Sink:
    def __init__(self) -> None:
        self.logged: list[tuple[str, int, dict]] = []
        self.failed: list[tuple[str, str]] = []

    def log_metrics(self, run_id: str, step: int, values: dict) -> None:
        self.logged.append((run_id, step, dict(values)))

    def fail(self, run_id: str, message: str, step: int | None = None) -> None:
        self.failed.append((run_id, message))


def _shared(a, b) -> int:
    return len(set(a) & set(b))


@pytest.mark.parametrize("layout, n_tasks, size", [("4x3", 4, 3), ("4x4", 4, 4), ("6x4", 6, 4), ("fig2_left", 4, 3)])
def test_seed_layouts_exist_with_their_clusters(layout: str, n_tasks: int, size: int) -> None:
    groups, pairs = trial_layout(FilterTrialSetting(layout=layout), seed=3)
    assert len(groups) == n_tasks and all(len(g) == size and len(set(g)) == size for g in groups)
    inside = {tuple(p) for p in pairs}
    outside = [p for p in combinations(range(n_tasks), 2) if p not in inside]
    # tasks of a cluster share at least as many digits as tasks of different clusters, and more on average
    # (the six-task chains of Fig. 3 grade the overlaps: tasks 2 and 3 share two digits across the chains)
    within = [_shared(groups[a], groups[b]) for a, b in inside]
    between = [_shared(groups[a], groups[b]) for a, b in outside]
    assert min(within) >= max(between) and np.mean(within) > np.mean(between) + 1
    if layout == "fig2_left":
        assert groups == ((2, 9, 4), (2, 9, 0), (8, 7, 3), (8, 7, 5))
    else:  # a fresh assignment of digits to groups per trial
        assert trial_layout(FilterTrialSetting(layout=layout), seed=4)[0] != groups


def test_clustered_layout_reproduces_the_authors_patterns_and_refuses_too_many_digits() -> None:
    groups, clusters = clustered_groups(ClusteredLayout(2, 2, 4, 3), seed=0)
    assert clusters == ((0, 1), (2, 3)) and sorted(d for g in groups for d in set(g)) != []
    assert _shared(groups[0], groups[1]) == 3 and _shared(groups[0], groups[2]) == 0
    assert len({d for g in groups for d in g}) == 10
    with pytest.raises(MtlensError, match="need 12 distinct digits; there are 10"):
        ClusteredLayout(3, 2, 3, 2)
    with pytest.raises(MtlensError, match="shared=3 must be below the group size 3"):
        ClusteredLayout(2, 2, 3, 3)


@pytest.mark.parametrize(
    "changes, match",
    [({"layout": ((1, 2, 2), (3, 4, 5)), "clusters": ((0, 1),)}, "a digit may appear only once"),
     ({"layout": ((1, 2, 3), (3, 4, 5)), "clusters": ((0, 7),)}, r"names unknown task 7"),
     ({"beta": -0.5}, "beta must be finite and >= 0, got -0.5"),
     ({"latent_dim": 0}, r"latent_dim \(d\) must be an integer >= 1, got 0"),
     ({"layout": ((1, 2, 3), (3, 4, 5))}, "has no known clusters"),
     ({"variant": "vae"}, "unknown variant 'vae'")],
)
def test_bad_trial_input_is_a_one_line_error_before_training(changes: dict, match: str) -> None:
    with pytest.raises(MtlensError, match=match) as info:
        run_filter_trial(FilterTrialSetting(epochs=1, **changes), 0, digits=_digits())
    assert "\n" not in str(info.value)


def test_no_noise_with_a_beta_is_refused() -> None:
    with pytest.raises(MtlensError, match="variant 'no_noise' has no KL term"):
        FilterTrialSetting(variant="no_noise", beta=0.1)


def test_a_grouped_trial_record() -> None:
    record = run_filter_trial(FilterTrialSetting(epochs=2, batch_size=16), 0, digits=_digits())
    assert record["status"] == "finished" and record["reason"] == ""
    assert len(record["groups"]) == 4 and record["tasks"][0].startswith("t0_")
    assert record["success"] in (0.0, 1.0) and record["cos/success"] in (0.0, 1.0)
    assert np.isclose(record["margin"], record["min_out"] - record["max_in"])
    log_var = np.array([[record[f"noise_log_var/{j}/{i}"] for i in range(4)] for j in range(4)])
    assert np.isclose(record["distance/0/1"], np.abs(log_var[0] - log_var[1]).sum())
    for mode in ("sample", "mean"):
        assert 0.0 <= record[f"test/mean_acc/{mode}"] <= 1.0
    assert record["steps"] == 2 * 4  # 54 training images in batches of 16, two epochs


def test_accuracy_rows_no_noise_and_mtvib_on_multimnist() -> None:
    digits = _digits()
    none = run_filter_trial(FilterTrialSetting(dataset="multimnist", variant="no_noise", beta=None, epochs=1), 1,
                            digits=digits)
    assert "success" not in none and "test/has_0/acc/mean" in none and "test/mean_acc/sample" not in none
    vib = run_filter_trial(FilterTrialSetting(dataset="multimnist", variant="mtvib", beta=1e-3, epochs=1), 1,
                           digits=digits)
    assert vib["status"] == "finished" and 0.0 <= vib["test/has_1/acc/mean"] <= 1.0


def test_a_diverging_trial_is_reported_failed_with_its_reason_not_dropped() -> None:
    sink = Sink()
    record = run_filter_trial(FilterTrialSetting(epochs=2), 0, digits=_digits(nan=True), store=sink, run_id="r1")
    assert record["status"] == "failed" and record["success"] == 0.0
    assert "non-finite loss at step 0" in record["reason"]
    assert sink.failed and sink.failed[0][0] == "r1" and "non-finite" in sink.failed[0][1]
    assert "margin" not in record and "test/mean_acc/sample" not in record


def test_fixed_noise_trial_resumes_from_its_checkpoints_without_training_again(tmp_path) -> None:
    setting = FilterTrialSetting(variant="fixed_noise", beta=0.05, epochs=2, variance_epochs=1, batch_size=32)
    sink = Sink()
    first = run_filter_trial(setting, 2, store=sink, run_id="r", checkpoint_dir=tmp_path, digits=_digits())
    assert (tmp_path / "stage1" / "checkpoint.pt").is_file() and (tmp_path / "stage2" / "checkpoint.pt").is_file()
    epochs = [v["epoch"] for _, _, v in sink.logged if "epoch" in v]
    assert epochs == [1.0, 2.0, 1.0] and first["steps"] == 3 * 2
    again = run_filter_trial(setting, 2, store=Sink(), run_id="r", checkpoint_dir=tmp_path, resume=True,
                             digits=_digits())
    numbers = [k for k, v in first.items() if isinstance(v, float) and not k.startswith("time/")]
    assert numbers and all(again[k] == first[k] for k in numbers)


def test_second_stage_learns_variances_on_a_frozen_encoder() -> None:
    from mtlens.data.digit_tasks import build_grouped_mnist

    splits = build_grouped_mnist(seed=0, layout="4x3", digits=_digits())
    torch.manual_seed(0)
    model = build_trial_model(FilterTrialSetting(variant="fixed_noise"), splits)
    data = {"train": splits.train, "test": splits.test}
    config = TrainConfig(epochs=1, batch_size=16, device="cpu", progress=False, log_every=0)
    Trainer(model, create_method("ew", 4), data, config).fit()
    assert torch.equal(model.noise_log_var, torch.ones(4, 4))  # stage 1: sigma^2 = e, fixed
    encoder = [p.detach().clone() for p in model.encoder.parameters()]
    model.learn_variances()
    Trainer(model, create_method("ew", 4), data, config).fit()
    assert all(torch.equal(a, b) for a, b in zip(encoder, model.encoder.parameters()))
    assert not torch.equal(model.noise_log_var, torch.ones(4, 4))


def test_table5_presets_make_valid_settings_for_every_cell() -> None:
    for preset in TABLE5_PRESETS.values():
        for variant, beta in TABLE5_SEED:
            setting = FilterTrialSetting(variant=variant, beta=beta, **preset["setting"])
            assert setting.layout == "4x3" and setting.latent_dim == 4
    assert TABLE5_PRESETS["quick"]["trials"] >= 20 and TABLE5_PRESETS["paper"]["trials"] == 50
