"""The aggregators of issue 16 against TorchJD 0.18 on the same Jacobians (same seeds): equal to 1e-6, or the
difference named (a different default, passed explicitly here). TorchJD's UPGrad and DualProj solve their QP
with quadprog, which the shared environment lacks: they run here with an exact projector built on scipy's NNLS
(TorchJD's normalise + regularise steps, then the same QP), and with quadprog itself where it is installed."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import nnls

from mtlens.methods import create_method

agg = pytest.importorskip("torchjd.aggregation")
linalg = pytest.importorskip("torchjd.linalg")

TOL = {"rtol": 0.0, "atol": 1e-6}


def _jac(n_tasks: int, dim: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n_tasks, dim, generator=gen, dtype=torch.float64) + shift


#: (tasks, coordinates, seed, common component): independent gradients, more tasks than coordinates, conflict
CASES = [(2, 5, 0, 0.0), (3, 8, 1, 0.3), (4, 9, 2, 0.0), (5, 12, 3, 0.5), (6, 4, 4, 0.0), (3, 3, 5, -0.2)]


class NNLSProjector(linalg.DualConeProjector):
    """TorchJD's QuadprogProjector (normalise by the trace if >= 1e-4, add 1e-4 I) with the QP
    min v^T G v s.t. v >= u solved as NNLS on a Cholesky factor: |L^T (u + x)|^2, x >= 0."""

    def __call__(self, U: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
        trace = float(G.diagonal().sum())
        g = (G / trace if trace >= 1e-4 else torch.zeros_like(G)) + 1e-4 * torch.eye(G.shape[0], dtype=G.dtype)
        factor = np.linalg.cholesky(g.numpy()).T
        rows = [u + nnls(factor, -factor @ u)[0] for u in U.reshape(-1, G.shape[0]).numpy()]
        return torch.tensor(np.stack(rows), dtype=G.dtype).reshape(U.shape)


@pytest.mark.parametrize("case", CASES)
def test_upgrad_and_dualproj_equal_torchjd(case: tuple) -> None:
    jac = _jac(*case)
    for ours, ref in (("upgrad", agg.UPGrad), ("dualproj", agg.DualProj)):
        got = create_method(ours, norm_eps=1e-4, reg_eps=1e-4).aggregate(jac)
        torch.testing.assert_close(got, ref(projector=NNLSProjector())(jac), **TOL)
        try:
            quadprog = ref()(jac)  # TorchJD's own solver, where its optional dependencies are installed
        except ImportError:
            continue
        torch.testing.assert_close(got, quadprog, **TOL)


def test_upgrad_default_is_the_exact_projection() -> None:
    # TorchJD's 1e-4 regularisation lets the update conflict slightly; the exact projection does not
    for case in CASES:
        jac = _jac(*case)
        exact = create_method("upgrad").aggregate(jac)
        assert float((jac @ exact).min()) >= -1e-10 * float(jac.norm() * exact.norm())
        regular = create_method("upgrad", norm_eps=1e-4, reg_eps=1e-4).aggregate(jac)
        assert float((exact - regular).abs().max()) < 5e-2 * float(exact.abs().max())  # the regulariser's effect
    # a preference vector weights the projected rows (UPGrad) / the projected combination (DualProj)
    jac, pref = _jac(3, 6, 7), torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    got = create_method("upgrad", 3, preference=pref.tolist(), norm_eps=1e-4, reg_eps=1e-4).aggregate(jac)
    torch.testing.assert_close(got, agg.UPGrad(pref, projector=NNLSProjector())(jac), **TOL)


@pytest.mark.parametrize("case", CASES)
def test_config_equals_torchjd(case: tuple) -> None:
    jac = _jac(*case)
    torch.testing.assert_close(create_method("config").aggregate(jac), agg.ConFIG()(jac), **TOL)
    if jac.shape[0] <= jac.shape[1]:  # independent gradients: equal progress <u_t, d> for every unit gradient
        d = create_method("config").aggregate(jac)
        progress = (jac / jac.norm(dim=1, keepdim=True)) @ d
        torch.testing.assert_close(progress, progress[0].expand_as(progress))
    pref = torch.tensor([1.0, 2.0] + [0.5] * (jac.shape[0] - 2), dtype=torch.float64)
    got = create_method("config", jac.shape[0], preference=pref.tolist()).aggregate(jac)
    torch.testing.assert_close(got, agg.ConFIG(pref)(jac), **TOL)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_fairgrad_equals_torchjd(alpha: float) -> None:
    for case in CASES[:4]:
        jac = _jac(*case, ) + 0.5  # a common component: a fair allocation exists
        m = create_method("fairgrad", alpha=alpha)
        got = m.aggregate(jac)
        # TorchJD uses scipy least_squares (default tolerances, 1e-8): equal to its accuracy
        torch.testing.assert_close(got, agg.FairGrad(alpha)(jac), rtol=1e-6, atol=1e-6)
        x = torch.linalg.lstsq(jac.T, got.unsqueeze(1)).solution.squeeze(1)  # the float64 weights of the update
        torch.testing.assert_close((jac @ jac.T) @ x, x ** (-1.0 / alpha), rtol=1e-10, atol=0.0)  # G x = x^(-1/a)
    jac = _jac(3, 6, 9) + 0.5
    torch.testing.assert_close(create_method("fairgrad", alpha=0.0).aggregate(jac), jac.mean(0))  # alpha = 0: mean


@pytest.mark.parametrize("case", [c for c in CASES if c[0] >= 3])
def test_krum_and_trimmed_mean_equal_torchjd(case: tuple) -> None:
    jac = _jac(*case)
    t = jac.shape[0]
    for f in range(t - 3):  # two or more neighbours: the scores are distinct
        for selected in (1, 2):
            got = create_method("krum", n_byzantine=f, n_selected=selected).aggregate(jac)
            torch.testing.assert_close(got, agg.Krum(f, selected)(jac), **TOL)
    # one neighbour (f = T - 3): the two gradients of the closest pair tie; ours takes the lower index
    dist = torch.cdist(jac, jac) + torch.diag(torch.full((t,), float("inf"), dtype=jac.dtype))
    i, j = divmod(int(dist.argmin()), t)
    torch.testing.assert_close(create_method("krum", n_byzantine=t - 3).aggregate(jac), jac[min(i, j)])
    for trim in range((t - 1) // 2 + 1):
        got = create_method("trimmed_mean", trim_number=trim).aggregate(jac)
        torch.testing.assert_close(got, agg.TrimmedMean(trim)(jac), **TOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_trimmed_mean_reports_each_task_s_kept_share(dtype: torch.dtype) -> None:
    # weights <kept_t, g_t> / |g_t|^2 with kept_t the entries of row t that survive the trim, over T - 2k
    for k, zero_row in ((0, False), (1, False), (2, False), (1, True)):
        jac = _jac(7, 40, 70 + k).to(dtype)
        if zero_row:
            jac[3] = 0.0
        method = create_method("trimmed_mean", trim_number=k)
        method.aggregate(jac)
        order = torch.argsort(jac, dim=0)
        keep = torch.zeros_like(jac, dtype=torch.bool).scatter_(0, order[k:7 - k], True)
        kept = torch.where(keep, jac, 0.0).double() / (7 - 2 * k)
        sq = (jac.double() ** 2).sum(dim=1)
        want = torch.where(sq > 0, (kept * jac.double()).sum(dim=1) / sq.clamp_min(1e-300), 0.0)
        torch.testing.assert_close(method.last_weights.double(), want, rtol=1e-6, atol=1e-7)


def test_pcd_equals_torchjd_over_steps() -> None:
    for n_tasks, tau in ((3, 0.02), (4, 0.3), (5, 0.1)):
        ours = create_method("pcd", n_tasks, tau=tau)
        ref = agg.PCD(tau=tau)
        for step in range(5):
            jac = _jac(n_tasks, 7, 40 + step, shift=-0.3 if step % 2 else 0.2) * (1.0 + step)
            torch.testing.assert_close(ours.aggregate(jac), ref(jac), **TOL)


def _torchjd_weighting_steps(weighting, jacs: list[torch.Tensor]) -> list[torch.Tensor]:  # type: ignore[no-untyped-def]
    """Returns TorchJD's updates for a stateful weighting fed J J^T (the one-batch Gram matrix)."""
    return [weighting(j @ j.T) @ j for j in jacs]


def test_sdmgrad_and_modo_equal_torchjd_weightings_on_one_batch() -> None:
    jacs = [_jac(4, 9, 60 + s, 0.1 * s) for s in range(5)]
    ours = create_method("sdmgrad", 4)
    for got, want in zip([ours.aggregate(j) for j in jacs],
                         _torchjd_weighting_steps(agg.SDMGradWeighting(lambda_=0.3), jacs)):
        # TorchJD divides by (mean norm)^2 + 1e-8, we by (mean norm)^2: a 1e-9 relative difference here
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    ours = create_method("modo", 4, gamma=0.1, rho=0.1)  # TorchJD's default gamma; ours is LibMTL's 1e-3
    for got, want in zip([ours.aggregate(j) for j in jacs], _torchjd_weighting_steps(agg.MoDoWeighting(0.1, 0.1), jacs)):
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("warmup", [1, 3])
def test_excess_mtl_equals_torchjd_times_t(warmup: int) -> None:
    # TorchJD keeps the weights on the simplex (sum 1); the authors' (and ours) sum to T
    n_tasks = 3
    ours = create_method("excess_mtl", n_tasks, robust_step_size=0.5, warmup_steps=warmup)
    ref = agg.ExcessMTL(robust_step_size=0.5, n_warmup_steps=warmup)
    for step in range(7):
        jac = _jac(n_tasks, 8, 80 + step, 0.2) * (1.0 + 0.5 * step * torch.tensor([[1.0], [0.2], [3.0]]))
        # TorchJD adds 1e-7 to the baseline in the ratio: a 1e-7 relative difference in the exponent
        torch.testing.assert_close(ours.aggregate(jac), n_tasks * ref(jac), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("base", "ref_weighting"), [("imtl_g", "IMTLGWeighting"), ("upgrad", "UPGradWeighting"),
                                                     ("dualproj", "DualProjWeighting")])
def test_cr_mogm_equals_torchjd(base: str, ref_weighting: str) -> None:
    options = {"norm_eps": 1e-4, "reg_eps": 1e-4} if base in ("upgrad", "dualproj") else {}
    kwargs = {"projector": NNLSProjector()} if base in ("upgrad", "dualproj") else {}
    ours = create_method("cr_mogm", 3, base=base, base_options=options, alpha=0.7)
    ref = agg.GramianWeightedAggregator(agg.CRMOGMWeighting(getattr(agg, ref_weighting)(**kwargs), alpha=0.7))
    for step in range(5):
        jac = _jac(3, 6, 90 + step, 0.2)
        torch.testing.assert_close(ours.aggregate(jac), ref(jac), **TOL)
    fresh = create_method("cr_mogm", 3, base=base, base_options=options)  # the first step is the base's own
    jac = _jac(3, 6, 99)
    torch.testing.assert_close(fresh.aggregate(jac), create_method(base, 3, **options).aggregate(jac))
