"""Shared pieces of the aggregators that carry per-task vectors from step to step (MoCo's tracked gradients,
DB-MTL's gradient average, ExcessMTL's squared-gradient sums): their buffers live on the gradients' device,
follow `to(device)`, are saved by `state_dict()`, and must keep their length between calls."""

from __future__ import annotations

import torch

from mtlens.errors import MtlensError
from mtlens.methods._common import Aggregator

#: Why these methods refuse level "feature" (or, for ExcessMTL, use batch sums there).
PER_SAMPLE_REASON = (
    "gradients w.r.t. the representation belong to each step's own samples, so a running average of them "
    "across steps is undefined"
)


class TrackingAggregator(Aggregator):
    """An aggregator with [T, K] buffers kept across calls; `buffer_keys` names them (None until the first call)."""

    per_task_state = True
    buffer_keys: tuple[str, ...] = ()

    def _move(self, device: torch.device) -> None:
        for key in self.buffer_keys:
            value = getattr(self, key)
            if isinstance(value, torch.Tensor):
                setattr(self, key, value.to(device))

    def _buffer(self, key: str, like: torch.Tensor) -> torch.Tensor:
        """Returns buffer `key` (zeros shaped like `like` on its first use), or raises if its length changed."""
        value = getattr(self, key)
        if value is None:
            value = torch.zeros_like(like)
        elif value.shape != like.shape:
            raise MtlensError(
                f"{self.name}: its state holds {value.shape[1]} entries per task but the gradients now have "
                f"{like.shape[1]}; create a new method for a different model or level"
            )
        return value.to(like.device)

    def load_state_dict(self, state: dict) -> None:  # type: ignore[type-arg]
        """Restores the state returned by `state_dict` (buffers replaced, not copied into: their shape may differ)."""
        for key in self.buffer_keys:
            setattr(self, key, None)
        super().load_state_dict(state)
