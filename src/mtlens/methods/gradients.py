"""Per-task gradients in one batched backward pass (vmap over the VJP), with a looped fallback.

`shared_jacobian` is the one place that chains the per-task gradients through the shared representation;
the gradient methods and the challenge measures (`mtlens.measures.challenge_callback`) both call it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _flat(grads: Sequence[torch.Tensor | None], inputs: Sequence[torch.Tensor], rows: int) -> torch.Tensor:
    parts = [
        (g if g is not None else torch.zeros(rows, *x.shape, dtype=x.dtype, device=x.device)).reshape(rows, -1)
        for g, x in zip(grads, inputs)
    ]
    return torch.cat(parts, dim=1)


def vjp_rows(
    outputs: torch.Tensor, inputs: Sequence[torch.Tensor], cotangents: torch.Tensor, *, batched: bool = True
) -> torch.Tensor:
    """Returns [R, P]: row r is the gradient of <outputs, cotangents[r]> w.r.t. the inputs, flattened.

    One batched backward (autograd's `is_grads_batched`, i.e. vmap over the VJP) when the graph allows it;
    otherwise (an op without a batching rule) one backward per row. The graph is kept: every caller
    backpropagates through it again (the aggregated update, the heads' own gradients).
    """
    inputs = list(inputs)
    rows = cotangents.shape[0]
    if batched:
        try:
            grads = torch.autograd.grad(
                outputs, inputs, grad_outputs=cotangents, retain_graph=True, allow_unused=True, is_grads_batched=True
            )
        except RuntimeError:
            grads = None  # an op without a vmap rule: fall back to the loop below
        if grads is not None:
            return _flat(grads, inputs, rows)
    per_row = []
    for r in range(rows):
        g = torch.autograd.grad(outputs, inputs, grad_outputs=cotangents[r], retain_graph=True, allow_unused=True)
        per_row.append(_flat([None if x is None else x.unsqueeze(0) for x in g], inputs, 1))
    return torch.cat(per_row, dim=0)


def task_jacobian(losses: torch.Tensor, inputs: Sequence[torch.Tensor], *, batched: bool = True) -> torch.Tensor:
    """Returns the Jacobian [T, P] of the T task losses w.r.t. the inputs, flattened and concatenated."""
    eye = torch.eye(losses.shape[0], dtype=losses.dtype, device=losses.device)
    return vjp_rows(losses, inputs, eye, batched=batched)


def shared_jacobian(
    losses: torch.Tensor,
    shared: Sequence[torch.Tensor],
    representation: torch.Tensor | None = None,
    *,
    jac_z: torch.Tensor | None = None,
    batched: bool = True,
) -> torch.Tensor:
    """Returns the Jacobian [T, P] of the T task losses w.r.t. the shared parameters, flattened.

    Given the representation z the losses were computed from, the rows are chained through it: T VJPs through
    the heads (dL/dz, or `jac_z` when the caller already has it), then T batched VJPs through the encoder,
    the cost of one forward plus T backward passes. This assumes every path from the shared parameters to the
    losses passes through z (the Model contract). Without z the rows come from the losses directly.
    """
    if representation is None:
        return task_jacobian(losses, shared, batched=batched)
    if jac_z is None:
        jac_z = task_jacobian(losses, [representation], batched=batched)
    cotangents = jac_z.view(losses.shape[0], *representation.shape)
    return vjp_rows(representation, shared, cotangents, batched=batched)


def write_grad(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """Adds a flat gradient vector to the `.grad` of `params` (accumulating, as `backward` does)."""
    offset = 0
    for p in params:
        n = p.numel()
        g = flat[offset : offset + n].view_as(p).to(p.dtype)
        p.grad = g.clone() if p.grad is None else p.grad + g
        offset += n
    if offset != flat.numel():
        raise RuntimeError(f"gradient has {flat.numel()} entries, parameters have {offset}")
