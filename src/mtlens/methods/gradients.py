"""Per-task gradients in one batched backward pass (vmap over the VJP), with a looped fallback.

`shared_jacobian` is the one place that chains the per-task gradients through the shared representation;
the gradient methods and the challenge measures (`mtlens.measures.challenge_callback`) both call it.
`shared_gramian` gives J J^T without forming J (the `gramian=True` path of the Gram-based aggregators).
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


def representation_rows(
    losses: torch.Tensor,
    representation: torch.Tensor,
    task_params: Sequence[torch.Tensor],
    head_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Returns dL_t/dz for every task, [T, *z.shape], and adds sum_t head_weights[t] dL_t/dtheta (default
    weights 1) to `.grad` of the task-specific parameters theta, in one backward pass per task.

    Each loss reaches only its own head, so T passes run each head once; one batched pass over the stacked
    losses (is_grads_batched) runs every head for every row, T times the work (with ten 300-wide heads, a
    third of a step). The graph is kept for the encoder.
    """
    params = list(task_params)
    rows = []
    for t in range(losses.shape[0]):
        grads = torch.autograd.grad(losses[t], [representation, *params], retain_graph=True, allow_unused=True)
        rows.append(torch.zeros_like(representation) if grads[0] is None else grads[0])
        for p, g in zip(params, grads[1:]):
            if g is None:
                continue
            if head_weights is not None:
                g = g * head_weights[t].to(g.dtype)
            p.grad = g if p.grad is None else p.grad + g
    return torch.stack(rows)


def shared_gramian(
    losses: torch.Tensor,
    shared: Sequence[torch.Tensor],
    representation: torch.Tensor | None = None,
    *,
    jac_z: torch.Tensor | None = None,
) -> torch.Tensor:
    """Returns J J^T [T, T] (float64, CPU) for the Jacobian J of the losses w.r.t. the shared parameters, never
    holding more than one of its rows.

    With D the Jacobian of the outputs (the representation z when given, else the losses) w.r.t. the
    parameters and C the rows of dL/d(outputs), J = C D and column t of J J^T is C D g_t, g_t = D^T C_t. One
    backward pass with a graph gives h(c) = D^T c as a function of c (linear: every backward formula is
    linear in its incoming gradient); then, per task, g_t [P] is one ordinary backward pass and D g_t the
    gradient of <h(c), g_t> w.r.t. c, one pass through that graph. Memory: one [P] row and the graph of one
    backward, instead of the [T, P] Jacobian (and the [T, ...] activations of a batched backward). `jac_z`:
    the rows dL/dz when the caller has them (`representation_rows`).
    """
    n = losses.shape[0]
    if representation is None:
        outputs, cotangents = losses, torch.eye(n, dtype=losses.dtype, device=losses.device)
    else:
        outputs = representation
        if jac_z is None:
            jac_z = task_jacobian(losses, [representation])
        cotangents = jac_z.view(n, *representation.shape)
    probe = torch.zeros_like(outputs, requires_grad=True)
    transposed = torch.autograd.grad(outputs, list(shared), grad_outputs=probe, create_graph=True, allow_unused=True)
    used = [(h, p) for h, p in zip(transposed, shared) if h is not None]
    if not used:
        return torch.zeros(n, n, dtype=torch.float64)
    images, params = [h for h, _ in used], [p for _, p in used]
    flat = cotangents.reshape(n, -1)
    gram = torch.zeros(n, n, dtype=torch.float64)
    for t in range(n):
        row = torch.autograd.grad(outputs, params, grad_outputs=cotangents[t], retain_graph=True)
        (pushed,) = torch.autograd.grad(images, probe, grad_outputs=row, retain_graph=True)
        gram[:, t] = (flat @ pushed.reshape(-1)).to(device="cpu", dtype=torch.float64)
    return (gram + gram.T) / 2


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
