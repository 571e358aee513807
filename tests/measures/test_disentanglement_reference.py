"""Equality with disentanglement_lib 1.5 (test-only reference, imported without tensorflow via dlib_shim).

Arrays: the same codes / factors into both implementations. Dataset level: the same dataset, encoder and
seed into disentanglement_lib's compute_* functions (with a ground-truth-data wrapper built on its own
SplitDiscreteStateSpace) and into mtlens' evaluator; the scores must be equal, not close.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlens.data.base import FactorDataset, Source
from mtlens.data.tiny import TinyShapes
from mtlens.measures import disentanglement as D

pytest.importorskip("disentanglement_lib")


def _shim():
    if "dlib_shim" not in sys.modules:
        spec = importlib.util.spec_from_file_location("dlib_shim", Path(__file__).with_name("dlib_shim.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules["dlib_shim"] = module
        spec.loader.exec_module(module)
    return sys.modules["dlib_shim"]


def ref(name: str):
    return _shim().load(name)


def _arrays(n: int, rs: np.random.RandomState, sizes=(3, 6, 8, 5)) -> tuple[np.ndarray, np.ndarray]:
    ys = np.stack([rs.randint(s, size=n) for s in sizes], axis=1)
    mix = ys[:, [0, 1, 2, 3, 0, 1]] * np.array([0.9, 0.4, 0.3, 0.5, 0.1, 0.05])
    mus = (rs.randn(n, 6) * 0.7 + mix).astype(np.float32)
    return mus, ys


@pytest.fixture(scope="module")
def data():
    rs = np.random.RandomState(7)
    m, y = _arrays(1500, rs)
    mt, yt = _arrays(700, rs)
    return m, y, mt, yt


# ----------------------------------------------------------------------------------------------- on arrays
def test_mig_equals_reference(data):
    m, y, _, _ = data
    mine = D.mig(m, y)
    assert mine.score == ref("mig")._compute_mig(m.T, y.T)["discrete_mig"]
    utils = ref("utils")
    np.testing.assert_array_equal(mine.mutual_info, utils.discrete_mutual_info(utils.make_discretizer(m.T), y.T))
    np.testing.assert_array_equal(D.histogram_discretize(m, 20), utils.make_discretizer(m.T).T)


def test_mig_equals_reference_float64_codes_and_10_bins(data):
    m, y, _, _ = data
    m64 = m.astype(np.float64) ** 3
    utils = ref("utils")
    theirs = utils.discrete_mutual_info(utils._histogram_discretize(m64.T, 10), y.T)
    np.testing.assert_array_equal(D.mig(m64, y, num_bins=10).mutual_info, theirs)


@pytest.mark.parametrize("continuous", [False, True])
def test_sap_equals_reference(data, continuous):
    m, y, mt, yt = data
    np.random.seed(1)
    theirs = ref("sap_score")._compute_sap(m.T, y.T, mt.T, yt.T, continuous)["SAP_score"]
    np.random.seed(1)
    assert D.sap(m, y, mt, yt, continuous_factors=continuous).score == theirs


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_dci_equals_reference_with_the_same_global_seed(data, n_jobs):
    m, y, mt, yt = data
    # a binary factor (one tree per stage) and a 3-class one (one tree per class and stage), kept small
    m, mt = m[:300], mt[:150]
    y = np.stack([y[:300, 0] % 2, y[:300, 0]], axis=1)
    yt = np.stack([yt[:150, 0] % 2, yt[:150, 0]], axis=1)
    np.random.seed(5)
    theirs = ref("dci")._compute_dci(m.T, y.T, mt.T, yt.T)
    after_reference = np.random.randint(1 << 30)
    np.random.seed(5)
    mine = D.dci(m, y, mt, yt, n_jobs=n_jobs)  # random_state=None: the global RNG, like the reference
    assert np.random.randint(1 << 30) == after_reference  # and it leaves the global RNG where the reference does
    assert mine.disentanglement == theirs["disentanglement"]
    assert mine.completeness == theirs["completeness"]
    assert mine.informativeness_train == theirs["informativeness_train"]
    assert mine.informativeness_test == theirs["informativeness_test"]
    assert D.dci(m, y, mt, yt, random_state=np.random.RandomState(5), n_jobs=n_jobs).as_dict() == mine.as_dict()


def test_modularity_explicitness_equals_reference(data):
    m, y, mt, yt = data
    module, utils = ref("modularity_explicitness"), ref("utils")
    mine = D.modularity_explicitness(m, y, mt, yt)
    mi = utils.discrete_mutual_info(utils.make_discretizer(m.T), y.T)
    assert mine.modularity == module.modularity(mi)
    norm_train, mean, std = utils.normalize_data(m.T)
    norm_test, _, _ = utils.normalize_data(mt.T, mean, std)
    per_factor = [module.explicitness_per_factor(norm_train, y.T[i], norm_test, yt.T[i]) for i in range(y.shape[1])]
    assert mine.explicitness_train == np.mean([p[0] for p in per_factor])
    assert mine.explicitness_test == np.mean([p[1] for p in per_factor])


def test_irs_equals_reference(data):
    m, y, _, _ = data
    module, utils = ref("irs"), ref("utils")
    active = module._drop_constant_dims(m.T)
    theirs = module.scalable_disentanglement_score(utils.make_discretizer(y.T).T, active.T, 0.99)
    mine = D.irs(m, y)
    assert mine.score == theirs["avg_score"]
    np.testing.assert_array_equal(mine.irs_matrix, theirs["IRS_matrix"])
    assert mine.num_active_dims == np.sum(active)  # the reference's quirk: a sum of code values, kept


def test_unsupervised_equals_reference(data):
    m, _, _, _ = data
    module, utils = ref("unsupervised_metrics"), ref("utils")
    cov = np.cov(m.T)
    mine = D.unsupervised(m)
    assert mine.gaussian_total_correlation == module.gaussian_total_correlation(cov)
    assert mine.gaussian_wasserstein_correlation == module.gaussian_wasserstein_correlation(cov)
    disc = utils.make_discretizer(m.T)
    mi = utils.discrete_mutual_info(disc, disc)
    np.fill_diagonal(mi, 0)
    assert mine.mutual_info_score == np.sum(mi) / (m.shape[1] ** 2 - m.shape[1])


# ------------------------------------------------------------------------------------- on a dataset + encoder
class ColouredTiny(FactorDataset):
    """TinyShapes with a leading single-valued "colour" factor, laid out like dSprites (colour first)."""

    name = "coloured_tiny"

    def __init__(self) -> None:
        self.inner = TinyShapes(image_size=16, num_positions=4)
        self.factor_names = ("color", "shape", "pos_x", "pos_y")
        self.factor_sizes = (1, 3, 4, 4)
        self.image_shape = self.inner.image_shape
        self.source = Source("renderer", "tiny shapes with a constant colour factor (test)")

    @property
    def factor_value_table(self):
        return (np.zeros(1), *self.inner.factor_value_table)

    def _render(self, indices):
        return self.inner.images(indices)  # colour has one value, so the flat indices coincide


class RowwiseEncoder:
    """Deterministic codes that do not depend on the batch an image is in (per-row numpy sums)."""

    def __init__(self, hw: int, dim: int = 5) -> None:
        rs = np.random.RandomState(3)
        self.w = rs.randn(dim - 2, hw * hw)
        grid = np.arange(hw, dtype=np.float64)
        self.xs = np.tile(grid, hw)
        self.ys = np.repeat(grid, hw)

    def __call__(self, images) -> np.ndarray:
        x = np.asarray(images.cpu().numpy() if isinstance(images, torch.Tensor) else images, dtype=np.float64)
        flat = x.reshape(x.shape[0], -1)
        mass = flat.sum(axis=1)
        cx = (flat * self.xs).sum(axis=1) / mass
        cy = (flat * self.ys).sum(axis=1) / mass
        proj = np.tanh((flat[:, None, :] * self.w[None]).sum(axis=2) / 8.0)
        return np.concatenate([cx[:, None], cy[:, None], proj], axis=1).astype(np.float32)


def _reference_data(dataset: FactorDataset):
    """Returns a disentanglement_lib GroundTruthData over `dataset` (see dlib_shim.ground_truth_data)."""
    return _shim().ground_truth_data(dataset)


SETTINGS = {
    "mig": {"num_train": 600},
    "sap": {"num_train": 300, "num_test": 200},
    "dci": {"num_train": 200, "num_test": 100},
    "modularity_explicitness": {"num_train": 400, "num_test": 300},
    "irs": {"num_train": 400},
    "unsupervised": {"num_train": 400},
    "factor_vae": {"batch_size": 16, "num_train": 150, "num_eval": 80, "num_variance_estimate": 300},
    "beta_vae": {"batch_size": 16, "num_train": 150, "num_eval": 80},
}


@pytest.fixture(scope="module")
def evaluated():
    dataset = ColouredTiny()
    encoder = RowwiseEncoder(16)
    results = D.evaluate(dataset, encoder, metrics=list(SETTINGS), seed=0, batch_size=97, device="cpu", settings=SETTINGS)
    return dataset, encoder, results


def _reference_scores(dataset, encoder, name):
    gt = _reference_data(dataset)
    rs = np.random.RandomState(0)
    s = SETTINGS[name]
    np.random.seed(0)  # the global RNG that the reference's classifiers draw from
    if name == "mig":
        return ref("mig").compute_mig(gt, encoder, rs, num_train=s["num_train"], batch_size=16)["discrete_mig"]
    if name == "sap":
        return ref("sap_score").compute_sap(gt, encoder, rs, num_train=s["num_train"], num_test=s["num_test"], batch_size=16, continuous_factors=False)["SAP_score"]
    if name == "dci":
        return ref("dci").compute_dci(gt, encoder, rs, num_train=s["num_train"], num_test=s["num_test"], batch_size=16)
    if name == "modularity_explicitness":
        return ref("modularity_explicitness").compute_modularity_explicitness(gt, encoder, rs, num_train=s["num_train"], num_test=s["num_test"], batch_size=16)
    if name == "irs":
        return ref("irs").compute_irs(gt, encoder, rs, num_train=s["num_train"], batch_size=16)
    if name == "unsupervised":
        return ref("unsupervised_metrics").unsupervised_metrics(gt, encoder, rs, num_train=s["num_train"], batch_size=16)
    if name == "factor_vae":
        return ref("factor_vae").compute_factor_vae(gt, encoder, rs, **s)
    return ref("beta_vae").compute_beta_vae_sklearn(gt, encoder, rs, **s)


def test_evaluator_excludes_the_single_valued_factor(evaluated):
    _, _, results = evaluated
    assert results["mig"].factor_names == ("shape", "pos_x", "pos_y")
    assert results["mig"].mutual_info.shape == (5, 3)


def test_evaluator_mig_sap_equal_reference(evaluated):
    dataset, encoder, results = evaluated
    assert results["mig"].score == _reference_scores(dataset, encoder, "mig")
    assert results["sap"].score == _reference_scores(dataset, encoder, "sap")


def test_evaluator_factor_vae_equals_reference(evaluated):
    dataset, encoder, results = evaluated
    theirs = _reference_scores(dataset, encoder, "factor_vae")
    mine = results["factor_vae"]
    assert (mine.train_accuracy, mine.eval_accuracy) == (theirs["train_accuracy"], theirs["eval_accuracy"])
    assert mine.num_active_dims == theirs["num_active_dims"]  # the reference's count (all dims), kept
    assert 0.3 < mine.score <= 1.0


def test_evaluator_beta_vae_equals_reference(evaluated):
    dataset, encoder, results = evaluated
    theirs = _reference_scores(dataset, encoder, "beta_vae")
    mine = results["beta_vae"]
    assert (mine.train_accuracy, mine.eval_accuracy) == (theirs["train_accuracy"], theirs["eval_accuracy"])


def test_evaluator_dci_modularity_irs_unsupervised_equal_reference(evaluated):
    dataset, encoder, results = evaluated
    dci_ref = _reference_scores(dataset, encoder, "dci")
    assert results["dci"].disentanglement == dci_ref["disentanglement"]
    assert results["dci"].completeness == dci_ref["completeness"]
    assert results["dci"].informativeness_test == dci_ref["informativeness_test"]
    mod_ref = _reference_scores(dataset, encoder, "modularity_explicitness")
    assert results["modularity_explicitness"].modularity == mod_ref["modularity_score"]
    assert results["modularity_explicitness"].explicitness_test == mod_ref["explicitness_score_test"]
    irs_ref = _reference_scores(dataset, encoder, "irs")
    assert results["irs"].score == irs_ref["IRS"]
    assert results["irs"].num_active_dims == irs_ref["num_active_dims"]
    uns_ref = _reference_scores(dataset, encoder, "unsupervised")
    assert results["unsupervised"].gaussian_total_correlation == uns_ref["gaussian_total_correlation"]
    assert results["unsupervised"].mutual_info_score == uns_ref["mutual_info_score"]
