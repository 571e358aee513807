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
    if b1.ndim != 3 or b1.shape != b2.shape or b1.shape[0] == 0:
        raise MtlensError(f"pair batches must be two equal [num_points, batch, d] arrays, got {b1.shape} and {b2.shape}")
    if not (np.isfinite(b1).all() and np.isfinite(b2).all()):
        raise MtlensError("pair batches contain NaN or inf codes; the encoder must return finite codes")
    points = np.zeros((b1.shape[0], b1.shape[2]))
    for i in range(b1.shape[0]):
        # per pair, as the reference: its layout keeps the float32 sums' last bits equal
        points[i, :] = np.mean(np.abs(b1[i] - b2[i]), axis=0)
    return points


def fit_beta_vae_classifier(
    train_points: np.ndarray, train_labels: np.ndarray, random_state: np.random.RandomState | int | None = None
) -> linear_model.LogisticRegression:
    """Returns the reference's classifier, `LogisticRegression(random_state=random_state)`, fit on the features."""
    labels = np.asarray(train_labels, dtype=np.int64).reshape(-1)
    if labels.shape[0] != train_points.shape[0]:
        raise MtlensError(f"got {labels.shape[0]} labels for {train_points.shape[0]} training points")
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
    if model is None:
        model = fit_beta_vae_classifier(train_points, train_labels, random_state)
    train_accuracy = np.mean(model.predict(train_points) == np.asarray(train_labels))
    eval_accuracy = model.score(eval_points, np.asarray(eval_labels))
    return BetaVAEResult(
        name="beta_vae", score=float(eval_accuracy), train_accuracy=float(train_accuracy), eval_accuracy=float(eval_accuracy)
    )
