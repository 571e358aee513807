"""Disentanglement metrics, with the numbers of disentanglement_lib (Locatello et al. 2019).

Two layers: pure functions on arrays with one row per point (`mig`, `sap`, `dci`, `modularity_explicitness`,
`irs`, `unsupervised`, and `factor_vae_score` / `beta_vae_score` on fixed-factor batches), each returning a
frozen result with `score`, its parts and `as_dict()`; and `evaluate(dataset, encode, metrics, seed)`, which
samples a factor dataset draw for draw as the reference does and encodes each distinct image once.
`METRICS` names the evaluator's metrics: mig, factor_vae, beta_vae, sap, dci, dci_fast,
modularity_explicitness, irs, unsupervised.

Equal to disentanglement_lib 1.5 run with the same scikit-learn (tests/measures/test_disentanglement_reference.py).
Reference behaviours kept because they change numbers:
- FactorVAE reports `num_active_dims` = number of *all* code dimensions (`len` of a boolean mask); the real
  count is `num_active_dims_corrected`. Its votes index the argmin among active dimensions, as the reference.
- IRS histogram-discretises the factors into 20 groups (orientation, positions of dSprites get merged) and
  reports `num_active_dims` = sum of the active codes' values; the count is `num_active_dims_corrected`.
- DCI's GradientBoostingClassifier() draws tree seeds from numpy's global RNG: `dci(random_state=None)` does
  the same; the evaluator uses RandomState(seed) (= the reference after `np.random.seed(seed)`).
- scikit-learn version: the classifiers are sklearn's defaults of the installed version (LinearSVC's
  dual="auto" picks the primal solver, LogisticRegression is multinomial lbfgs); numbers published with the
  sklearn of 2019 (dual LinearSVC, one-vs-rest / liblinear logistic regression) can differ for SAP, BetaVAE,
  explicitness and DCI; run both libraries with the same sklearn to compare.
- a single-valued factor (dSprites' colour) is not a latent factor, as in dsprites_full; the evaluator still
  makes the reference's (no-op) draw for it.
Documented deviations (clear errors where the reference returns NaN / inf): a constant factor, fewer than 2
codes (MIG, SAP, DCI, unsupervised), fewer than 2 factors (DCI, modularity), more bins than points, NaN / inf
codes, a constant code for explicitness or the Gaussian unsupervised scores, codes whose range is too narrow
for equal-width bins, linearly dependent codes for the Gaussian total correlation (infinite), and codes past
1e50 in magnitude (their squares overflow; scikit-learn's liblinear in SAP never returns on them). Where the
reference divides by zero we leave the culprit out: a constant code whose float variance rounds above 0 is
inactive in IRS, a zero-variance code is inactive in FactorVAE at threshold 0. Dtypes: float32 and float64
codes are computed in their own dtype (the reference's numbers); float16, integer and bool codes, and float32
codes whose magnitude would over- or underflow when squared (outside 1e-15 .. 1e15), in float64. Every result
is checked finite when it is made (`MetricResult`): no metric returns a silent NaN.
tests/measures/test_disentanglement_properties.py holds the property tests of these contracts.
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
