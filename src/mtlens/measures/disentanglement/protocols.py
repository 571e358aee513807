"""Each metric's sampling protocol and settings, and the registry of metric names (`METRICS`).

Defaults are those of disentanglement_lib's config/unsupervised_study_v1/metric_configs/*.gin (and the
functions' own defaults where a gin file leaves a value out, e.g. batch_size=16; irs from
config/sample/irs/irs.gin and compute_irs' diff_quantile=0.99). A protocol draws from a fresh
RandomState(seed) per metric, as the reference's `evaluate` does for every metric config.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from mtlens.errors import MtlensError
from mtlens.measures.disentanglement._beta_vae import beta_vae_score, fit_beta_vae_classifier, pair_features
from mtlens.measures.disentanglement._dci import dci
from mtlens.measures.disentanglement._factor_vae import PRUNE_THRESHOLD, factor_vae_score
from mtlens.measures.disentanglement._irs import irs
from mtlens.measures.disentanglement._mig import mig
from mtlens.measures.disentanglement._modularity import modularity_explicitness
from mtlens.measures.disentanglement.results import MetricResult
from mtlens.measures.disentanglement.sampling import ReferenceSampler
from mtlens.measures.disentanglement._sap import sap
from mtlens.measures.disentanglement._unsupervised import unsupervised
from mtlens.registry import Registry

CodeGetter = Callable[[np.ndarray], np.ndarray]


class Protocol(ABC):
    """A metric's settings, the indices it samples (`plan`), and how it scores their codes (`compute`)."""

    name: str = ""
    defaults: dict[str, Any] = {}

    def __init__(self, **settings: Any) -> None:
        unknown = sorted(set(settings) - set(self.defaults))
        if unknown:
            raise MtlensError(
                f"{self.name}: unknown setting {unknown[0]!r}; its settings are: {', '.join(sorted(self.defaults))}"
            )
        self.settings = {**self.defaults, **settings}
        for key in ("num_train", "num_test", "num_eval", "num_variance_estimate", "batch_size"):
            value = self.settings.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2):
                raise MtlensError(f"{self.name}: {key} must be an integer >= 2, got {value!r}")

    @abstractmethod
    def plan(self, sampler: ReferenceSampler, rs: np.random.RandomState) -> dict[str, Any]:
        """Returns the sampled image indices (and factors) in the reference's draw order."""

    def needed(self, plan: dict[str, Any]) -> list[np.ndarray]:
        """Returns the image-index arrays whose codes `compute` will ask for."""
        return [v for k, v in plan.items() if k.startswith("idx")]

    @abstractmethod
    def compute(self, plan: dict[str, Any], codes: CodeGetter, sampler: ReferenceSampler, seed: int) -> MetricResult:
        """Returns the metric's result from the codes of the planned indices."""


class _TrainTest(Protocol):
    """Metrics on `generate_batch_factor_code` samples: a train split, and a test split when `num_test` is set."""

    def plan(self, sampler: ReferenceSampler, rs: np.random.RandomState) -> dict[str, Any]:
        s = self.settings
        out: dict[str, Any] = {}
        out["idx_train"], out["y_train"] = sampler.batch_factor_code(s["num_train"], rs, s["batch_size"])
        if "num_test" in s:
            out["idx_test"], out["y_test"] = sampler.batch_factor_code(s["num_test"], rs, s["batch_size"])
        return out


class MIGProtocol(_TrainTest):
    name = "mig"
    defaults = {"num_train": 10000, "batch_size": 16, "num_bins": 20}

    def compute(self, plan, codes, sampler, seed):
        return mig(codes(plan["idx_train"]), plan["y_train"], self.settings["num_bins"], sampler.latent_names)


class SAPProtocol(_TrainTest):
    name = "sap"
    defaults = {"num_train": 10000, "num_test": 5000, "batch_size": 16, "continuous_factors": False}

    def compute(self, plan, codes, sampler, seed):
        return sap(
            codes(plan["idx_train"]), plan["y_train"], codes(plan["idx_test"]), plan["y_test"],
            continuous_factors=self.settings["continuous_factors"], random_state=np.random.RandomState(seed),
            factor_names=sampler.latent_names,
        )


class DCIProtocol(_TrainTest):
    name = "dci"
    defaults = {"num_train": 10000, "num_test": 5000, "batch_size": 16, "n_jobs": -1}
    fast = False

    def compute(self, plan, codes, sampler, seed):
        # The reference's trees draw from numpy's global RNG; here from RandomState(seed): equal to the
        # reference run right after np.random.seed(seed).
        return dci(
            codes(plan["idx_train"]), plan["y_train"], codes(plan["idx_test"]), plan["y_test"],
            random_state=np.random.RandomState(seed), n_jobs=self.settings["n_jobs"], fast=self.fast,
            factor_names=sampler.latent_names,
        )


class DCIFastProtocol(DCIProtocol):
    name = "dci_fast"
    fast = True


class ModularityProtocol(_TrainTest):
    name = "modularity_explicitness"
    defaults = {"num_train": 10000, "num_test": 5000, "batch_size": 16, "num_bins": 20}

    def compute(self, plan, codes, sampler, seed):
        return modularity_explicitness(
            codes(plan["idx_train"]), plan["y_train"], codes(plan["idx_test"]), plan["y_test"],
            num_bins=self.settings["num_bins"], factor_names=sampler.latent_names,
        )


class IRSProtocol(_TrainTest):
    name = "irs"
    defaults = {"num_train": 10000, "batch_size": 16, "diff_quantile": 0.99, "num_bins": 20}

    def compute(self, plan, codes, sampler, seed):
        s = self.settings
        return irs(codes(plan["idx_train"]), plan["y_train"], s["diff_quantile"], s["num_bins"])


class UnsupervisedProtocol(_TrainTest):
    name = "unsupervised"
    defaults = {"num_train": 10000, "batch_size": 16, "num_bins": 20}

    def compute(self, plan, codes, sampler, seed):
        return unsupervised(codes(plan["idx_train"]), self.settings["num_bins"])


class FactorVAEProtocol(Protocol):
    """Variance sample (one draw of num_variance_estimate points), then train and eval fixed-factor batches."""

    name = "factor_vae"
    defaults = {
        "batch_size": 64, "num_train": 10000, "num_eval": 5000, "num_variance_estimate": 10000,
        "threshold": PRUNE_THRESHOLD,
    }

    def plan(self, sampler, rs):
        s = self.settings
        out: dict[str, Any] = {"idx_variance": sampler.observations(s["num_variance_estimate"], rs)}
        out["fixed_train"], out["idx_train"] = sampler.fixed_factor_batches(s["num_train"], s["batch_size"], rs)
        out["fixed_eval"], out["idx_eval"] = sampler.fixed_factor_batches(s["num_eval"], s["batch_size"], rs)
        return out

    def compute(self, plan, codes, sampler, seed):
        shape = plan["idx_train"].shape
        train = codes(plan["idx_train"].reshape(-1)).reshape(*shape, -1)
        evals = codes(plan["idx_eval"].reshape(-1)).reshape(*plan["idx_eval"].shape, -1)
        return factor_vae_score(
            codes(plan["idx_variance"]), train, plan["fixed_train"], evals, plan["fixed_eval"],
            num_factors=sampler.num_factors, threshold=self.settings["threshold"],
        )


class BetaVAEProtocol(Protocol):
    """Train pairs, a logistic regression fit with the RandomState that drew them, then eval pairs."""

    name = "beta_vae"
    defaults = {"batch_size": 64, "num_train": 10000, "num_eval": 5000}

    def plan(self, sampler, rs):
        s = self.settings
        out: dict[str, Any] = {}
        out["shared_train"], out["idx_train_1"], out["idx_train_2"] = sampler.shared_factor_pairs(
            s["num_train"], s["batch_size"], rs
        )
        out["state_after_train"] = rs.get_state()
        out["shared_eval"], out["idx_eval_1"], out["idx_eval_2"] = sampler.shared_factor_pairs(
            s["num_eval"], s["batch_size"], rs
        )
        return out

    @staticmethod
    def _features(codes: CodeGetter, idx_1: np.ndarray, idx_2: np.ndarray) -> np.ndarray:
        c1 = codes(idx_1.reshape(-1)).reshape(*idx_1.shape, -1)
        c2 = codes(idx_2.reshape(-1)).reshape(*idx_2.shape, -1)
        return pair_features(c1, c2)

    def compute(self, plan, codes, sampler, seed):
        train_points = self._features(codes, plan["idx_train_1"], plan["idx_train_2"])
        # The reference passes its sampling RandomState to LogisticRegression; lbfgs draws nothing from it, but
        # if a solver did, the evaluation pairs would come from the state it left, so they are redrawn then.
        rs = np.random.RandomState()
        rs.set_state(plan["state_after_train"])
        model = fit_beta_vae_classifier(train_points, plan["shared_train"], rs)
        shared_eval, idx_1, idx_2 = plan["shared_eval"], plan["idx_eval_1"], plan["idx_eval_2"]
        after = rs.get_state()
        before = plan["state_after_train"]
        if after[2] != before[2] or not np.array_equal(after[1], before[1]):
            shared_eval, idx_1, idx_2 = sampler.shared_factor_pairs(self.settings["num_eval"], self.settings["batch_size"], rs)
        eval_points = self._features(codes, idx_1, idx_2)
        return beta_vae_score(train_points, plan["shared_train"], eval_points, shared_eval, model=model)


METRICS: Registry[Protocol] = Registry("metric")
METRICS.add("mig", MIGProtocol)
METRICS.add("factor_vae", FactorVAEProtocol, aliases=("factorvae", "factor_vae_score"))
METRICS.add("beta_vae", BetaVAEProtocol, aliases=("betavae", "beta_vae_sklearn"))
METRICS.add("sap", SAPProtocol, aliases=("sap_score",))
METRICS.add("dci", DCIProtocol)
METRICS.add("dci_fast", DCIFastProtocol)
METRICS.add("modularity_explicitness", ModularityProtocol, aliases=("modularity",))
METRICS.add("irs", IRSProtocol)
METRICS.add("unsupervised", UnsupervisedProtocol, aliases=("unsupervised_metrics",))
