"""A training callback that records the MTL challenge measures (GDS, GMS, FD) every k steps (seed 004, §8:
every 10 iterations).

Cost: FD needs only the feature-level Jacobian dL_i/dZ [T, N*d], i.e. T backward passes through the heads
(batched into one vmapped pass). GDS and GMS need the parameter-level Jacobian [T, P], from
`mtlens.methods.gradients.shared_jacobian`, the chaining the gradient methods use: given the representation
it reuses that feature-level Jacobian and adds T (batched) vector-Jacobian products through the encoder.

Call `on_step` BEFORE the method's backward: it needs the step's graph, and keeps it (retain_graph).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch

from mtlens.errors import MtlensError
from mtlens.measures.challenge import (
    feature_disentanglement,
    gradient_direction_similarity,
    gradient_magnitude_similarity,
    trajectory_score,
)
from mtlens.methods.gradients import shared_jacobian, task_jacobian

MEASURES = ("gds", "gms", "fd")


class ChallengeRecorder:
    """Computes GDS, GMS and FD on every `every`-th step; keeps their trajectories."""

    def __init__(
        self, every: int = 10, measures: Sequence[str] = MEASURES, prefix: str = "", batched: bool = True
    ) -> None:
        if every < 1:
            raise MtlensError(f"ChallengeRecorder: every must be >= 1, got {every}")
        unknown = [m for m in measures if m not in MEASURES]
        if unknown or not measures:
            raise MtlensError(
                f"ChallengeRecorder: unknown measures {unknown or '[]'}; choose from {', '.join(MEASURES)}"
            )
        self.every = int(every)
        self.measures = tuple(dict.fromkeys(measures))
        self.prefix = prefix
        self.batched = batched
        #: name -> [(step, value)], in recording order.
        self.history: dict[str, list[tuple[int, float]]] = {m: [] for m in self.measures}

    def due(self, step: int) -> bool:
        """Returns True when `step` is one on which the measures are computed."""
        return step % self.every == 0

    def compute(
        self,
        losses: torch.Tensor | Sequence[torch.Tensor],
        shared_params: Iterable[torch.Tensor],
        representation: torch.Tensor | None,
    ) -> dict[str, float]:
        """Returns {measure: value} for this step's graph (keeps the graph, leaves `.grad` untouched)."""
        losses = losses if isinstance(losses, torch.Tensor) else torch.stack([l.reshape(()) for l in losses])
        if losses.ndim != 1:
            raise MtlensError(f"ChallengeRecorder: expected the [T] task losses, got shape {tuple(losses.shape)}")
        need_params = "gds" in self.measures or "gms" in self.measures
        if "fd" in self.measures and representation is None:
            raise MtlensError("ChallengeRecorder: FD needs the shared representation; pass representation=z")
        out: dict[str, float] = {}
        jac_z = None
        if representation is not None:
            jac_z = task_jacobian(losses, [representation], batched=self.batched)
            if "fd" in self.measures:
                out["fd"] = feature_disentanglement(jac_z).fd
        if need_params:
            shared = [p for p in shared_params if p.requires_grad]
            if not shared:
                raise MtlensError("ChallengeRecorder: GDS/GMS need the shared parameters; none requires grad")
            jac = shared_jacobian(losses, shared, representation, jac_z=jac_z, batched=self.batched)
            if "gds" in self.measures:
                out["gds"] = gradient_direction_similarity(jac).gds
            if "gms" in self.measures:
                out["gms"] = gradient_magnitude_similarity(jac).gms
        return out

    def on_step(
        self,
        step: int,
        losses: torch.Tensor | Sequence[torch.Tensor],
        shared_params: Iterable[torch.Tensor],
        representation: torch.Tensor | None = None,
    ) -> dict[str, float] | None:
        """Returns {prefix + measure: value} on due steps (and records them), None on the others."""
        if not self.due(step):
            return None
        values = self.compute(losses, shared_params, representation)
        for name in self.measures:
            self.history[name].append((int(step), values[name]))
        return {f"{self.prefix}{name}": values[name] for name in self.measures}

    def trajectory(self, name: str) -> list[float]:
        """Returns the recorded values of measure `name`, oldest first."""
        if name not in self.history:
            raise MtlensError(f"ChallengeRecorder: {name!r} is not recorded; recorded: {', '.join(self.measures)}")
        return [v for _, v in self.history[name]]

    def score(self, name: str, last: int = 50) -> float:
        """Returns the run's score for measure `name`: the mean of its last `last` recorded values (§5.5)."""
        return trajectory_score(self.trajectory(name), last)

    def state_dict(self) -> dict[str, Any]:
        """Returns the recorded trajectories (copies), so a resumed run continues them."""
        return {"history": {k: list(v) for k, v in self.history.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the trajectories returned by `state_dict`."""
        self.history = {m: [tuple(x) for x in state["history"].get(m, [])] for m in self.measures}  # type: ignore[misc]
