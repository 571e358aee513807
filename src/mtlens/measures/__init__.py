"""Measures of what a shared representation learned: disentanglement metrics and MTL challenge measures.

Disentanglement (disentanglement_lib's numbers, `mtlens.measures.disentanglement`): pure functions on arrays
with one row per point (`mig`, `sap`, `dci`, `modularity_explicitness`, `irs`, `unsupervised`, and
`factor_vae_score` / `beta_vae_score` on fixed-factor batches), each returning a frozen result with `score`,
its parts and `as_dict()`; and `evaluate(dataset, encode, metrics, seed)`, which samples a factor dataset as
the reference does and scores an encoder. `available_metrics()` lists the names `evaluate` (and a study's
`metrics:`) accepts.

MTL challenge measures (seed 004): `gradient_direction_similarity` (GDS), `gradient_magnitude_similarity`
(GMS), `feature_disentanglement` (FD) on task Jacobians, `ranking_similarity` (RS) and the trajectory helpers,
and `ChallengeRecorder`, a training callback that records GDS/GMS/FD every k steps.
"""

from __future__ import annotations

from mtlens.measures.challenge import (
    FDResult,
    GDSResult,
    GMSResult,
    RankingSimilarity,
    feature_disentanglement,
    gradient_direction_similarity,
    gradient_magnitude_similarity,
    ranking_similarity,
    ranking_similarity_of_trajectories,
    trajectory_score,
)
from mtlens.measures.challenge_callback import ChallengeRecorder
from mtlens.measures.disentanglement import (
    DEFAULT_METRICS,
    METRICS,
    BetaVAEResult,
    DCIResult,
    FactorVAEResult,
    IRSResult,
    MetricResult,
    MIGResult,
    ModularityResult,
    SAPResult,
    UnsupervisedResult,
    beta_vae_score,
    dci,
    evaluate,
    factor_vae_score,
    irs,
    mig,
    modularity_explicitness,
    sap,
    unsupervised,
)


def available_metrics() -> list[str]:
    """Returns the names of the disentanglement metrics `evaluate` accepts (aliases not included)."""
    return METRICS.available()


__all__ = [
    # disentanglement
    "available_metrics", "evaluate", "METRICS", "DEFAULT_METRICS", "MetricResult",
    "mig", "MIGResult", "sap", "SAPResult", "dci", "DCIResult", "modularity_explicitness", "ModularityResult",
    "irs", "IRSResult", "unsupervised", "UnsupervisedResult", "factor_vae_score", "FactorVAEResult",
    "beta_vae_score", "BetaVAEResult",
    # MTL challenge measures
    "gradient_direction_similarity", "GDSResult", "gradient_magnitude_similarity", "GMSResult",
    "feature_disentanglement", "FDResult", "ranking_similarity", "RankingSimilarity", "trajectory_score",
    "ranking_similarity_of_trajectories", "ChallengeRecorder",
]
