"""The methods of the peer libraries (LibMTL 1.1.5 and TorchJD 0.18) and the mtlens method that implements
each: `mtlens methods` shows them, and tests/methods/test_peer_lists.py checks this table against the names the
installed packages export (their `__all__`), so a method they add cannot go unnoticed.

TorchJD offers most aggregators twice, as an Aggregator and as the Weighting that gives its weights (for its
Gramian engine); both map to the one mtlens method (whose `gramian=True` is that engine's path). Its
scalarizers combine the losses and map to loss weightings. Its Sum / Mean / Constant aggregators combine the
rows of the Jacobian linearly, which is the gradient of the same combination of the losses: mtlens has them as
the loss weightings ew / mean / constant (the same update without forming the Jacobian).
"""

from __future__ import annotations

from collections.abc import Mapping

#: LibMTL 1.1.5, `LibMTL.weighting.__all__` -> mtlens method.
LIBMTL: Mapping[str, str] = {
    "EW": "ew", "GradNorm": "gradnorm", "MGDA": "mgda", "UW": "uncertainty", "DWA": "dwa", "GLS": "gls",
    "GradDrop": "graddrop", "PCGrad": "pcgrad", "GradVac": "gradvac", "IMTL": "imtl", "CAGrad": "cagrad",
    "RLW": "rlw",
}

#: TorchJD 0.18, `torchjd.aggregation.__all__` -> mtlens method.
TORCHJD_AGGREGATION: Mapping[str, str] = {
    "AlignedMTL": "aligned_mtl", "AlignedMTLWeighting": "aligned_mtl",
    "CAGrad": "cagrad", "CAGradWeighting": "cagrad",
    "ConFIG": "config",
    "Constant": "constant", "ConstantWeighting": "constant",
    "CRMOGMWeighting": "cr_mogm",
    "DualProj": "dualproj", "DualProjWeighting": "dualproj",
    "ExcessMTL": "excess_mtl", "ExcessMTLWeighting": "excess_mtl",
    "FairGrad": "fairgrad", "FairGradWeighting": "fairgrad",
    "GradDrop": "graddrop",
    "GradVac": "gradvac", "GradVacWeighting": "gradvac",
    "IMTLG": "imtl_g", "IMTLGWeighting": "imtl_g",
    "Krum": "krum", "KrumWeighting": "krum",
    "Mean": "mean", "MeanWeighting": "mean",
    "MGDA": "mgda", "MGDAWeighting": "mgda",
    "MoDoWeighting": "modo",
    "NashMTL": "nash_mtl",
    "PCD": "pcd", "PCDWeighting": "pcd",
    "PCGrad": "pcgrad", "PCGradWeighting": "pcgrad",
    "Random": "rgw", "RandomWeighting": "rgw",
    "SDMGradWeighting": "sdmgrad",
    "Sum": "ew", "SumWeighting": "ew",
    "TrimmedMean": "trimmed_mean",
    "UPGrad": "upgrad", "UPGradWeighting": "upgrad",
}

#: TorchJD 0.18, `torchjd.scalarization.__all__` -> mtlens method.
TORCHJD_SCALARIZATION: Mapping[str, str] = {
    "COSMOS": "cosmos", "Constant": "constant", "DWA": "dwa", "FAMO": "famo", "GeometricMean": "gls",
    "IMTLL": "imtl_l", "Mean": "mean", "PBI": "pbi", "Random": "rlw", "STCH": "stch", "Sum": "ew", "UW": "uncertainty",
}

#: Exported names that are not methods, with the reason they have no mtlens counterpart.
NOT_METHODS: Mapping[str, str] = {
    "AbsWeighting": "LibMTL's base class of weightings (mtlens.methods.base.Method)",
    "Aggregator": "TorchJD's base class of aggregators (mtlens.methods.base.GradientAggregator)",
    "WeightedAggregator": "TorchJD's base class for aggregators that weight the rows (mtlens's GramAggregator "
                          "and `weighted`)",
    "GramianWeightedAggregator": "TorchJD's base class for Gram-based weightings (mtlens.methods._common."
                                 "GramAggregator)",
    "Weighting": "TorchJD's base class of weightings",
    "Scalarizer": "TorchJD's base class of scalarizers (mtlens.methods.scalarizations.Scalarization)",
}


def peer_names(method: str) -> list[str]:
    """Returns 'LibMTL X' / 'TorchJD X' for every peer method that `method` (a registered name) implements."""
    names = [f"LibMTL {k}" for k, v in LIBMTL.items() if v == method]
    names += [f"TorchJD {k}" for k, v in TORCHJD_AGGREGATION.items() if v == method and not k.endswith("Weighting")
              or v == method and k.endswith("Weighting") and k.removesuffix("Weighting") not in TORCHJD_AGGREGATION]
    names += [f"TorchJD scalarization.{k}" for k, v in TORCHJD_SCALARIZATION.items() if v == method]
    return names
