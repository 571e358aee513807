"""GDS, GMS, FD and ranking similarity on hand-computed cases, their edge cases, and the recorder callback."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mtlens import MtlensError
from mtlens.measures.challenge import (
    feature_disentanglement,
    gradient_direction_similarity,
    gradient_magnitude_similarity,
    ranking_similarity,
    ranking_similarity_of_trajectories,
    trajectory_score,
)
from mtlens.measures.challenge_callback import ChallengeRecorder

R2 = math.sqrt(2.0)


# ---------------------------------------------------------------------------------------------- GDS / GMS
def test_gds_and_gms_by_hand() -> None:
    # g0 = (1, 0), g1 = (0, 1), g2 = (1, 1): cosines 0, 1/sqrt2, 1/sqrt2; norms 1, 1, sqrt2
    jac = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    gds = gradient_direction_similarity(jac)
    assert gds.gds == pytest.approx((0 + 2 / R2) / 3)
    assert (gds.n_tasks, gds.n_zero_gradients) == (3, 0)
    # beta: (1,1) -> 1; (1, sqrt2) -> 2 sqrt2 / 3 (twice)
    assert gradient_magnitude_similarity(jac).gms == pytest.approx((1 + 2 * (2 * R2 / 3)) / 3)


def test_gds_gms_two_tasks_opposite_and_scaled() -> None:
    jac = torch.tensor([[3.0, 4.0], [-6.0, -8.0]])  # opposite directions, norms 5 and 10
    assert gradient_direction_similarity(jac).gds == pytest.approx(-1.0)
    assert gradient_magnitude_similarity(jac).gms == pytest.approx(2 * 5 * 10 / (25 + 100))
    # any trailing shape is flattened per task
    assert gradient_direction_similarity(jac.view(2, 2, 1)).gds == pytest.approx(-1.0)


def test_gds_gms_zero_gradients() -> None:
    jac = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    gds = gradient_direction_similarity(jac)
    assert gds.gds == pytest.approx(0.0) and gds.n_zero_gradients == 1  # zero gradient: cosine 0; others orthogonal
    # beta with the zero gradient is 0; beta(1, 2) = 4 / 5
    assert gradient_magnitude_similarity(jac).gms == pytest.approx((4 / 5) * 2 / 6)
    both_zero = torch.zeros(2, 3)
    assert gradient_magnitude_similarity(both_zero).gms == 1.0  # equal (zero) magnitudes
    assert gradient_direction_similarity(both_zero).gds == 0.0


def test_gds_gms_errors() -> None:
    with pytest.raises(MtlensError, match="at least 2 tasks"):
        gradient_direction_similarity(torch.ones(1, 4))
    with pytest.raises(MtlensError, match="at least 2 tasks"):
        gradient_magnitude_similarity(torch.ones(1, 4))
    with pytest.raises(MtlensError, match=r"shape \[T, \.\.\.\]"):
        gradient_direction_similarity(torch.ones(4))
    with pytest.raises(MtlensError, match="task 1"):
        gradient_magnitude_similarity(torch.tensor([[1.0, 0.0], [float("nan"), 1.0]]))


# ---------------------------------------------------------------------------------------------- FD
def test_fd_by_hand() -> None:
    # two tasks, three locations: saliencies (1,1) -> p = (1/2, 1/2), entropy log 2; (2, 0) -> 0; (1, 3) -> H(1/4)
    grads = torch.tensor([[1.0, -2.0, 1.0], [-1.0, 0.0, 3.0]])
    h = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    res = feature_disentanglement(grads)
    assert res.fd == pytest.approx((math.log(2) + 0 + h) / 3)
    assert res.max_entropy == pytest.approx(math.log(2))
    assert (res.n_locations, res.n_excluded) == (3, 0)


def test_fd_batch_tensor_and_extremes() -> None:
    g = torch.Generator().manual_seed(0)
    grads = torch.randn(3, 4, 5, generator=g)  # [T, N, d]: 20 locations
    flat = feature_disentanglement(grads.reshape(3, 20))
    assert feature_disentanglement(grads).fd == pytest.approx(flat.fd)
    assert 0 < flat.fd < math.log(3)
    equal = torch.ones(3, 7)
    assert feature_disentanglement(equal).fd == pytest.approx(math.log(3))  # salient to all tasks equally
    disjoint = torch.tensor([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    assert feature_disentanglement(disjoint).fd == 0.0  # each location serves one task
    assert feature_disentanglement(torch.randn(1, 6, generator=g)).fd == 0.0  # one task: entropy 0


def test_fd_zero_locations_and_errors() -> None:
    grads = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    res = feature_disentanglement(grads)
    assert res.fd == pytest.approx(math.log(2)) and res.n_excluded == 1
    with pytest.raises(MtlensError, match="every feature-level gradient is 0"):
        feature_disentanglement(torch.zeros(2, 3))
    with pytest.raises(MtlensError, match="task 0"):
        feature_disentanglement(torch.tensor([[float("inf")], [1.0]]))


# ---------------------------------------------------------------------------------------------- RS
def test_ranking_similarity_by_hand() -> None:
    # ordered pairs: (0,1), (1,0), (0,2), (2,0) agree; (1,2), (2,1) disagree -> 4 / 6
    rs = ranking_similarity([1.0, 2.0, 3.0], [10.0, 30.0, 20.0])
    assert rs.similarity == pytest.approx(2 / 3) and rs.symmetric == pytest.approx(1 / 6) and rs.n_runs == 3
    assert ranking_similarity([1, 2, 3, 4], [5, 6, 7, 8]).similarity == 1.0
    assert ranking_similarity([1, 2, 3, 4], [8, 7, 6, 5]).similarity == 0.0
    assert ranking_similarity([1, 2, 3, 4], [8, 7, 6, 5]).symmetric == 0.5
    # reversing one ranking gives 1 - S (the paper's symmetry), without ties
    s = torch.tensor([0.3, 0.1, 0.7, 0.5, 0.2])
    p = torch.tensor([1.0, 4.0, 2.0, 5.0, 3.0])
    assert ranking_similarity(s, -p).similarity == pytest.approx(1 - ranking_similarity(s, p).similarity)


def test_ranking_similarity_ties_and_errors() -> None:
    # scores tied for runs 0 and 1: "greater" is false both ways; performance 1 < 2 -> pair (1,0) disagrees
    rs = ranking_similarity([1.0, 1.0, 2.0], [1.0, 2.0, 3.0])
    assert rs.similarity == pytest.approx(5 / 6)
    with pytest.raises(MtlensError, match="at least 2 runs"):
        ranking_similarity([1.0], [2.0])
    with pytest.raises(MtlensError, match="one per run"):
        ranking_similarity([1.0, 2.0], [2.0])
    with pytest.raises(MtlensError, match="performance of run 1"):
        ranking_similarity([1.0, 2.0], [2.0, float("nan")])


def test_trajectory_scores() -> None:
    traj = list(range(100))
    assert trajectory_score(traj) == pytest.approx(sum(range(50, 100)) / 50)
    assert trajectory_score([1.0, 2.0, 3.0], last=2) == 2.5
    with pytest.raises(MtlensError, match="fewer than last=50"):
        trajectory_score([1.0] * 10)
    runs = [[0.0] * 10 + [3.0] * 5, [9.0] * 10 + [1.0] * 5, [2.0] * 15]
    rs = ranking_similarity_of_trajectories(runs, [30.0, 10.0, 20.0], last=5)
    assert rs.similarity == 1.0  # scores (3, 1, 2) order the runs like the performances


# ---------------------------------------------------------------------------------------------- recorder
def _batch(seed: int = 0):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    enc = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    heads = nn.ModuleList([nn.Linear(3, 1) for _ in range(3)])
    x, y = torch.randn(8, 4), torch.randn(8, 3)
    z = enc(x)
    losses = torch.stack([((h(z).squeeze(1) - y[:, i]) ** 2).mean() for i, h in enumerate(heads)])
    return enc, heads, z, losses


def test_recorder_matches_direct_measures_every_k_steps() -> None:
    enc, heads, z, losses = _batch()
    shared = list(enc.parameters())
    rows = [torch.autograd.grad(l, shared, retain_graph=True) for l in losses]
    jac = torch.stack([torch.cat([g.flatten() for g in row]) for row in rows])
    jz = torch.stack([torch.autograd.grad(l, [z], retain_graph=True)[0] for l in losses])
    rec = ChallengeRecorder(every=10, prefix="challenge/")
    assert rec.on_step(3, losses, shared, z) is None
    got = rec.on_step(20, losses, shared, z)
    assert got is not None and set(got) == {"challenge/gds", "challenge/gms", "challenge/fd"}
    assert got["challenge/gds"] == pytest.approx(gradient_direction_similarity(jac).gds, abs=1e-6)
    assert got["challenge/gms"] == pytest.approx(gradient_magnitude_similarity(jac).gms, abs=1e-6)
    assert got["challenge/fd"] == pytest.approx(feature_disentanglement(jz).fd, abs=1e-6)
    assert all(p.grad is None for p in shared)  # .grad untouched, graph kept for the method
    losses.sum().backward()
    assert rec.trajectory("gds") == [got["challenge/gds"]]
    assert rec.history["fd"][0][0] == 20


def test_recorder_without_representation_and_state() -> None:
    enc, heads, z, losses = _batch(1)
    full = ChallengeRecorder(every=1).compute(losses, enc.parameters(), z)
    rec = ChallengeRecorder(every=1, measures=("gds", "gms"))
    got = rec.on_step(0, losses, enc.parameters())
    assert got == pytest.approx({"gds": full["gds"], "gms": full["gms"]}, abs=1e-6)
    state = rec.state_dict()
    rec.on_step(1, losses, enc.parameters())
    fresh = ChallengeRecorder(every=1, measures=("gds", "gms"))
    fresh.load_state_dict(state)
    assert fresh.history["gds"] == [(0, got["gds"])]
    with pytest.raises(MtlensError, match="FD needs the shared representation"):
        ChallengeRecorder(every=1).on_step(0, losses, enc.parameters())
    with pytest.raises(MtlensError, match="unknown measures"):
        ChallengeRecorder(measures=("gds", "cka"))
    with pytest.raises(MtlensError, match="every must be"):
        ChallengeRecorder(every=0)
    with pytest.raises(MtlensError, match="fewer than last"):
        rec.score("gds")


def test_recorder_and_gradient_methods_chain_through_the_one_helper() -> None:
    from mtlens.measures import challenge_callback
    from mtlens.methods import base, gradients

    assert challenge_callback.shared_jacobian is base.shared_jacobian is gradients.shared_jacobian
    # the Jacobian a gradient method aggregates is the one the recorder measures
    enc, heads, z, losses = _batch(2)
    seen = []

    class _Capture(base.GradientAggregator):
        name = "capture"

        def aggregate(self, jacobian, losses=None):  # type: ignore[no-untyped-def]
            seen.append(jacobian.detach().clone())
            return jacobian.sum(0)

    got = ChallengeRecorder(every=1, measures=("gds", "gms")).compute(losses, enc.parameters(), z)
    _Capture(3).backward(losses, enc.parameters(), z, heads.parameters())
    assert got["gds"] == pytest.approx(gradient_direction_similarity(seen[0]).gds, abs=1e-12)
    assert got["gms"] == pytest.approx(gradient_magnitude_similarity(seen[0]).gms, abs=1e-12)
