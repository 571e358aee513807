"""BetaVAE score (Higgins et al. 2017), as disentanglement_lib's `compute_beta_vae_sklearn` computes it.

Each point is a pair of code batches sharing one factor value; its feature is the mean absolute difference
of the two batches' codes, and a logistic regression predicts which factor was shared. The evaluator samples
the batches with the reference's RandomState draws.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn import linear_model
from sklearn.exceptions import ConvergenceWarning

from mtlens.errors import MtlensError
from mtlens.measures.disentanglement._utils import as_float_array
from mtlens.measures.disentanglement.results import MetricResult


@dataclass(frozen=True, eq=False)
class BetaVAEResult(MetricResult):
    """BetaVAE: `score` = eval accuracy of the logistic regression on mean |z1 - z2| features."""

    train_accuracy: float
    eval_accuracy: float

    def scalars(self) -> dict[str, float]:
        return {"train_accuracy": self.train_accuracy, "eval_accuracy": self.eval_accuracy}


def pair_features(batches_1: object, batches_2: object) -> np.ndarray:
    """Returns float64 features [T, d]: per pair of batches [B, d], the mean over the batch of |z1 - z2|."""
    b1, b2 = np.asarray(batches_1), np.asarray(batches_2)
    if b1.ndim != 3 or b1.shape != b2.shape or 0 in b1.shape:
        raise MtlensError(f"pair batches must be two equal non-empty [num_points, batch, d] arrays, got {b1.shape} and {b2.shape}")
    b1, b2 = as_float_array(b1, "pair batches"), as_float_array(b2, "pair batches")
    points = np.zeros((b1.shape[0], b1.shape[2]))
    for i in range(b1.shape[0]):
        # per pair, as the reference: its layout keeps the float32 sums' last bits equal
        points[i, :] = np.mean(np.abs(b1[i] - b2[i]), axis=0)
    return points


def as_features(points: object, name: str) -> np.ndarray:
    """Returns pair features as a finite float array [T, d] with T >= 1 (`as_float_array`'s dtypes)."""
    arr = np.asarray(points.detach().cpu().numpy() if hasattr(points, "detach") else points)
    if arr.ndim != 2 or 0 in arr.shape:
        raise MtlensError(f"{name} must be a non-empty 2-D array [num_points, num_codes], got shape {arr.shape}")
    return as_float_array(arr, name)


def as_labels(labels: object, num_points: int, name: str) -> np.ndarray:
    """Returns integer labels [num_points] (the shared factor of each pair)."""
    arr = np.asarray(labels).reshape(-1)
    if arr.shape[0] != num_points:
        raise MtlensError(f"got {arr.shape[0]} {name} for {num_points} points; pass one label per point")
    if arr.dtype.kind == "f" and (not np.isfinite(arr).all() or not np.array_equal(arr, np.round(arr))):
        raise MtlensError(f"{name} must hold integer factor indices, got non-integer values")
    if arr.dtype.kind not in "fiub":
        raise MtlensError(f"{name} must hold integer factor indices, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def fit_beta_vae_classifier(
    train_points: np.ndarray, train_labels: np.ndarray, random_state: np.random.RandomState | int | None = None
) -> linear_model.LogisticRegression:
    """Returns the reference's classifier, `LogisticRegression(random_state=random_state)`, fit on the features."""
    train_points = as_features(train_points, "train_points")
    labels = as_labels(train_labels, train_points.shape[0], "train_labels")
    if np.unique(labels).size < 2:
        raise MtlensError("the BetaVAE training set holds a single fixed factor; use more training points")
    model = linear_model.LogisticRegression(random_state=random_state)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(train_points, labels)
    return model


def beta_vae_score(
    train_points: np.ndarray,
    train_labels: np.ndarray,
    eval_points: np.ndarray,
    eval_labels: np.ndarray,
    random_state: np.random.RandomState | int | None = None,
    model: linear_model.LogisticRegression | None = None,
) -> BetaVAEResult:
    """Returns the BetaVAE score from pair features [T, d] and shared-factor labels [T] (train and eval)."""
    train_points = as_features(train_points, "train_points")
    train_labels = as_labels(train_labels, train_points.shape[0], "train_labels")
    eval_points = as_features(eval_points, "eval_points")
    eval_labels = as_labels(eval_labels, eval_points.shape[0], "eval_labels")
    if eval_points.shape[1] != train_points.shape[1]:
        raise MtlensError(f"eval_points have {eval_points.shape[1]} features, train_points {train_points.shape[1]}; "
                          "pass features of the same encoder")
    if model is None:
        model = fit_beta_vae_classifier(train_points, train_labels, random_state)
    train_accuracy = np.mean(model.predict(train_points) == train_labels)
    eval_accuracy = model.score(eval_points, eval_labels)
    return BetaVAEResult(
        name="beta_vae", score=float(eval_accuracy), train_accuracy=float(train_accuracy), eval_accuracy=float(eval_accuracy)
    )
