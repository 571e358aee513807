import numpy as np
import pytest
import torch

from mtlens import MtlensError
from mtlens.data import create_task_data
from mtlens.data.digit_pairs import build_digit_pairs, draw_digit_pairs
from mtlens.data.digit_tasks import (
    GROUP_PATTERNS,
    GROUP_PRESETS,
    build_grouped_mnist,
    build_multimnist,
    group_layout,
    group_targets,
    overlay_pairs,
)
from mtlens.data.mnist import stand_in_digits


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MTLENS_DATA", raising=False)


def _toy_digits(n: int = 40, size: int = 28) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(5)
    x = torch.from_numpy(rng.uniform(0, 1, size=(n, 1, size, size)).astype(np.float32))
    return x, (np.arange(n) % 4).astype(np.int64)


def _expected_overlay(x: torch.Tensor, p, canvas: int, merge) -> torch.Tensor:
    out = []
    for i in range(len(p.labels)):
        layers = []
        for k in (0, 1):
            layer = torch.zeros(canvas, canvas)
            r, c = p.corners[i, k]
            layer[r : r + 28, c : c + 28] = x[p.sources[i, k], 0]
            layers.append(layer)
        out.append(merge(*layers))
    return torch.stack(out)[:, None]


def test_overlay_is_clipped_sum_of_shifted_digits_of_different_classes() -> None:
    x, y = _toy_digits()
    p = overlay_pairs(x, y, 120, seed=3)  # Sabour: 36x36, shifts up to 4 px, sum clipped at 1
    assert p.x.shape == (120, 1, 36, 36) and p.x.dtype == torch.float32
    assert (p.labels[:, 0] != p.labels[:, 1]).all()
    np.testing.assert_array_equal(p.labels, y[p.sources])
    # each digit's corner is the centred one (4) shifted by -4..4
    assert p.corners.min() == 0 and p.corners.max() == 8
    # base digits: each source image once per pass (120 = 3 passes over 40)
    assert np.bincount(p.sources[:, 0], minlength=40).tolist() == [3] * 40
    torch.testing.assert_close(p.x, _expected_overlay(x, p, 36, lambda a, b: (a + b).clamp(max=1)), rtol=0, atol=1e-6)
    assert float(p.x.max()) == 1.0  # clipping happened somewhere
    q = overlay_pairs(x, y, 30, seed=3, overlay="max")
    torch.testing.assert_close(q.x, _expected_overlay(x, q, 36, torch.maximum), rtol=0, atol=0)


def test_overlay_is_seeded() -> None:
    x, y = _toy_digits()
    a, b, c = (overlay_pairs(x, y, 50, seed=s) for s in (1, 1, 2))
    assert torch.equal(a.x, b.x) and np.array_equal(a.sources, b.sources)
    assert not np.array_equal(a.sources, c.sources)


def test_overlay_rejects_bad_geometry() -> None:
    x, y = _toy_digits()
    with pytest.raises(MtlensError, match="canvas of at least 36px, got 34"):
        overlay_pairs(x, y, 5, 0, canvas=34)
    with pytest.raises(MtlensError, match="unknown overlay 'mean'"):
        overlay_pairs(x, y, 5, 0, overlay="mean")
    with pytest.raises(MtlensError, match="at least two digit classes"):
        overlay_pairs(x, np.zeros(40, dtype=np.int64), 5, 0)
    with pytest.raises(MtlensError, match="integer >= 1, got 2.5"):
        overlay_pairs(x, y, 2.5, 0)
    with pytest.raises(MtlensError, match="unknown preset"):
        build_multimnist(preset="capsnet")


def test_multimnist_splits_on_stand_in() -> None:
    s = build_multimnist(seed=0)
    assert s.source.kind == "stand-in"
    assert (len(s.train), len(s.val), len(s.test)) == (1386, 154, 257)
    assert s.input_shape == (1, 36, 36) and [t.num_classes for t in s.tasks] == [10, 10]
    batch = s.train.__getitems__([0, 5, 9])
    assert batch["x"].shape == (3, 1, 36, 36) and batch["factors"].shape == (3, 2)
    np.testing.assert_array_equal(batch["targets"].numpy(), batch["factors"].numpy())
    assert (s.test.targets[:, 0] != s.test.targets[:, 1]).all()
    desc = s.describe()
    assert (desc["num_images"], desc["image_shape"], desc["canvas"]) == (1797, [1, 36, 36], 36)
    assert desc["factor_names"] == ["digit_1", "digit_2"] and desc["source"].startswith("stand-in")
    again = create_task_data("multimnist", seed=0, n=200, n_test=50)
    assert (len(again.train), len(again.val), len(again.test)) == (180, 20, 50)
    small = build_multimnist(seed=1, n=40, n_test=10, preset="ijcnn2022", val_fraction=0.0)
    assert small.input_shape == (1, 28, 28) and len(small.val) == 0 and len(small.train) == 40
    assert small.describe()["overlay"] == "max" and small.describe()["digit_size"] == 18


def test_ijcnn2022_tasks_are_the_presence_of_a_0_and_a_1_and_sabour_keeps_ordered_digits() -> None:
    # seed 001 Table IV: "Digit 1" / "Digit 2" are entries 0 and 1 of the authors' multi-hot label
    s = build_multimnist(seed=2, n=300, n_test=200, preset="ijcnn2022")
    assert [(t.name, t.kind) for t in s.tasks] == [("has_0", "binary"), ("has_1", "binary")]
    for part in (s.train, s.test):
        labels = np.asarray(part.factors)
        expected = np.stack([(labels == 0).any(1), (labels == 1).any(1)], 1).astype(np.float32)
        np.testing.assert_array_equal(part.targets.numpy(), expected)
        assert 0 < expected[:, 0].sum() < len(expected)  # both classes occur
    desc = s.describe()
    assert desc["task_kind"] == "presence" and desc["present"] == [0, 1] and desc["tasks"][0]["name"] == "has_0"
    other = build_multimnist(seed=2, n=50, n_test=10, preset="ijcnn2022", present=[3, 7, 9])
    assert [t.name for t in other.tasks] == ["has_3", "has_7", "has_9"]
    sabour = build_multimnist(seed=2, n=50, n_test=10)
    assert [(t.name, t.num_classes) for t in sabour.tasks] == [("digit_1", 10), ("digit_2", 10)]
    np.testing.assert_array_equal(sabour.test.targets.numpy(), np.asarray(sabour.test.factors, dtype=np.float32))
    with pytest.raises(MtlensError, match="present must list distinct digits 0..9, got \\[1, 1\\]"):
        build_multimnist(n=10, n_test=5, preset="ijcnn2022", present=[1, 1])
    with pytest.raises(MtlensError, match="unknown tasks 'which'"):
        build_multimnist(n=10, n_test=5, tasks="which")


def test_grouped_presets_from_seed_001() -> None:
    # seed 001 §V-B, Results: Fig. 2 (left) tasks [2,9,4], [2,9,0], [8,7,3], [8,7,5]
    assert GROUP_PRESETS["fig2_left"] == ((2, 9, 4), (2, 9, 0), (8, 7, 3), (8, 7, 5))
    # Fig. 3 (middle): the text names [7,3,8,0], [7,3,8,5], [2,9,1,6]; the authors' 6x4 pattern completes them
    fig3 = GROUP_PRESETS["fig3_middle"]
    assert fig3 == ((2, 9, 4, 0), (2, 9, 4, 5), (2, 9, 1, 6), (7, 3, 1, 6), (7, 3, 8, 0), (7, 3, 8, 5))
    perm = (4, 2, 9, 0, 1, 7, 3, 8, 5, 6)  # digit at each pattern position
    assert tuple(tuple(perm[p] for p in g) for g in GROUP_PATTERNS["6x4"]) == fig3
    assert GROUP_PRESETS["text_example"] == ((2, 6, 0), (2, 6, 9), (4, 8, 3))
    assert group_layout("fig2_left") == GROUP_PRESETS["fig2_left"]
    # the 4x3 pattern: two pairs of tasks, each pair sharing its first two digits, nothing shared across pairs
    g = group_layout("4x3", layout_seed=7)
    assert g[0][:2] == g[1][:2] and g[2][:2] == g[3][:2] and len({d for t in g for d in t}) == 8
    assert group_layout("4x3", layout_seed=7) == g and group_layout("4x3", layout_seed=8) != g
    assert len({d for t in group_layout("6x4", layout_seed=1) for d in t}) == 10


def test_group_target_mapping() -> None:
    t = group_targets(np.arange(10), GROUP_PRESETS["fig2_left"])
    # position in the group, 3 = "none"
    expected = {2: [0, 0, 3, 3], 9: [1, 1, 3, 3], 4: [2, 3, 3, 3], 0: [3, 2, 3, 3], 8: [3, 3, 0, 0],
                7: [3, 3, 1, 1], 3: [3, 3, 2, 3], 5: [3, 3, 3, 2], 1: [3, 3, 3, 3], 6: [3, 3, 3, 3]}  # fmt: skip
    for digit, row in expected.items():
        assert t[digit].tolist() == row
    mixed = group_targets(np.array([5, 1]), [(1,), (5, 1, 0)])
    assert mixed.tolist() == [[1, 0], [0, 1]]


def test_grouped_mnist_dataset_and_bad_layouts() -> None:
    s = build_grouped_mnist(seed=0, layout="fig3_middle", n=300)
    assert [t.num_classes for t in s.tasks] == [5] * 6 and s.tasks[0].name == "t0_2940"
    assert (len(s.train), len(s.val), len(s.test)) == (270, 30, 257)
    np.testing.assert_array_equal(s.train.targets.numpy(), group_targets(s.train.factors[:, 0], GROUP_PRESETS["fig3_middle"]))
    custom = create_task_data("grouped_mnist", layout=[[1, 2], [3]], val_fraction=0.2)
    assert [t.num_classes for t in custom.tasks] == [3, 2] and custom.describe()["groups"] == [[1, 2], [3]]
    for bad, msg in (("fig9", "unknown layout"), ([[1, 1]], "only once"), ([[10]], "digits 0..9"), ([], "at least one"),
                     ([[]], "non-empty")):  # fmt: skip
        with pytest.raises(MtlensError, match=msg):
            build_grouped_mnist(layout=bad)
    with pytest.raises(MtlensError, match="val_fraction"):
        build_grouped_mnist(val_fraction=1.0)


def test_digit_pairs_construction() -> None:
    pairs = draw_digit_pairs(300, seed=4)
    assert pairs == draw_digit_pairs(300, seed=4) and all(0 <= a < b <= 9 for a, b in pairs)
    # with replacement across tasks: among 45 possible pairs, 300 tasks repeat some
    assert len(set(pairs)) <= 45 and len(set(pairs)) > 30
    d = build_digit_pairs(seed=0, pairs=[(3, 8), (8, 3), (0, 1)])
    digits = stand_in_digits()
    assert d.names == ["t0_3v8", "t1_3v8", "t2_0v1"] and all(t.kind == "binary" for t in d.tasks)
    assert d.input_shapes == ((1, 28, 28),) * 3
    train, test = d.task("t0_3v8")
    # the MNIST train/test sets restricted to the two digits, target 1 for the larger digit
    assert len(train) == int(np.isin(digits.train_y, (3, 8)).sum()) and len(test) == int(np.isin(digits.test_y, (3, 8)).sum())
    assert set(train.factors[:, 0].tolist()) == {3, 8}
    np.testing.assert_array_equal(train.targets[:, 0].numpy(), (train.factors[:, 0] == 8).astype(np.float32))
    rows = np.flatnonzero(np.isin(digits.train_y, (3, 8)))
    assert torch.equal(train.x, digits.train_x[rows])
    capped = create_task_data("digit_pairs", n_tasks=4, seed=2, n=50)
    assert capped.n_tasks == 4 and all(len(tr) == 50 for tr in capped.train)
    loaders = capped.loaders("train", 16, shuffle=True, seed=0)
    batch = next(iter(loaders[1]))
    assert batch["x"].shape == (16, 1, 28, 28) and batch["targets"].shape == (16, 1)
    for kw, msg in (({"n_tasks": 0}, "n_tasks must be >= 1"), ({"n_tasks": 2.0}, "whole number"), ({"pairs": [(2, 2)]}, "two different digits"),
                    ({"pairs": [(1, 2, 3)]}, "two different digits"), ({"n": 0}, "n .training images")):  # fmt: skip
        with pytest.raises(MtlensError, match=msg):
            build_digit_pairs(**kw)
