"""Disentanglement metrics, with the numbers of disentanglement_lib (Locatello et al. 2019).

Two layers: pure functions on arrays with one row per point (`mig`, `sap`, `dci`, `modularity_explicitness`,
`irs`, `unsupervised`, and `factor_vae_score` / `beta_vae_score` on fixed-factor batches), each returning a
frozen result with `score`, its parts and `as_dict()`; and `evaluate(dataset, encode, metrics, seed)`, which
samples a factor dataset draw for draw as the reference does and encodes each distinct image once.
`METRICS` names the evaluator's metrics: mig, factor_vae, beta_vae, sap, dci, dci_fast,
modularity_explicitness, irs, unsupervised.
"""

from mtlens.measures.disentanglement._utils import discrete_entropy, discrete_mutual_info, histogram_discretize
from mtlens.measures.disentanglement._beta_vae import BetaVAEResult, beta_vae_score, pair_features
from mtlens.measures.disentanglement._dci import DCIResult, dci
from mtlens.measures.disentanglement.evaluator import DEFAULT_METRICS, CodeSource, evaluate
from mtlens.measures.disentanglement._factor_vae import FactorVAEResult, factor_vae_score
from mtlens.measures.disentanglement._irs import IRSResult, irs
from mtlens.measures.disentanglement._mig import MIGResult, mig
from mtlens.measures.disentanglement._modularity import ModularityResult, modularity_explicitness
from mtlens.measures.disentanglement.protocols import METRICS, Protocol
from mtlens.measures.disentanglement.results import MetricResult
from mtlens.measures.disentanglement.sampling import ReferenceSampler
from mtlens.measures.disentanglement._sap import SAPResult, sap
from mtlens.measures.disentanglement._unsupervised import UnsupervisedResult, unsupervised

__all__ = [
    "METRICS", "DEFAULT_METRICS", "evaluate", "CodeSource", "Protocol", "ReferenceSampler", "MetricResult",
    "mig", "MIGResult", "sap", "SAPResult", "dci", "DCIResult", "modularity_explicitness", "ModularityResult",
    "irs", "IRSResult", "unsupervised", "UnsupervisedResult", "factor_vae_score", "FactorVAEResult",
    "beta_vae_score", "BetaVAEResult", "pair_features", "histogram_discretize", "discrete_mutual_info",
    "discrete_entropy",
]
