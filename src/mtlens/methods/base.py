"""The method contract: one object per MTL optimisation method, and its whole life cycle.

Every method has the same six calls; each has a no-op (or empty) default here, so a loop that makes all of
them is right for every method, and the Trainer makes exactly these, nothing looked up by name:

- ``method.to(device)`` -> the method. Moves the method's own tensors to the model's device ("auto" resolves
  as `mtlens.device.resolve_device`); call it before building the optimiser (uncertainty, gradnorm, imtl_l,
  imtl, famo have tensors to move).
- ``method.parameters()`` -> list of tensors. The method's learnable tensors, for YOUR optimiser beside the
  model's: ``torch.optim.Adam([*model.parameters(), *method.parameters()])`` (uncertainty: log-variances,
  gradnorm: task weights, imtl_l and imtl: loss scales; empty for the others).
- ``method.backward(losses, shared, z, task_params)`` -> the [T] task weights used (for logging). Once per
  step, instead of ``loss.backward()``: writes ``.grad`` of the shared and task parameters (and of
  ``parameters()``).
- ``method.after_step(losses_after)``. Once per step, after ``optimizer.step()``: ``losses_after`` is a
  callable returning the same batch's [T] losses with the moved parameters, called (under no_grad) only by
  the methods that need them (famo: its logit update), so it costs the others nothing.
- ``method.epoch_end()``. Once after each epoch (dwa: the epoch's average losses set its next weights).
- ``method.validation_step(val_losses, train_losses, params)``, only where ``method.needs_validation_batch``
  (Auto-Lambda). Once per step, before ``backward``: ``val_losses`` is a callable returning the [T] losses of a
  validation batch, ``train_losses`` one returning this step's training-batch losses, both with the model's
  current parameters (and their graph); ``params`` are the model's parameters (shared and task-specific), which
  the method may move temporarily and restores exactly. The Trainer draws the batch from its "val" split.
- ``method.state_dict()`` / ``method.load_state_dict(state)``. The method's state (step, learnable tensors,
  generators, moving averages, optimiser moments), so a resumed run continues exactly.

The per-step arguments: ``losses`` the [T] task losses (a tensor or a list of scalars), ``shared`` the shared
(encoder) parameters, ``z`` the shared representation the losses were computed from (needed at level
"feature"; at level "param" it lets the gradient methods chain the per-task gradients through it, which is
faster), ``task_params`` the task-specific (head) parameters (needed by the gradient methods). A
`MultiTaskModel` gives all of them: ``losses, z = model.step_losses(batch)``, ``model.shared_parameters()``,
``model.task_parameters()``.

Kinds: loss-weighting methods implement ``weights(losses)`` (and ``weighted_loss`` when the weights are
learnable); gradient methods implement ``aggregate(jacobian, losses)`` ([T, P] in, [P] out). Gradient methods
run at two levels: "param" (per-task gradients w.r.t. the shared parameters) or "feature" (w.r.t. the shared
representation, the fast surrogate of seed 004 §2.4, as in MGDA-UB); the aggregated feature gradient is then
backpropagated once through the encoder.

Task count: ``n_tasks`` is fixed at construction where the method keeps per-task state (``per_task_state``:
moving averages, learnable per-task tensors, per-pair targets); the other methods also accept
``n_tasks=None`` and then take any number of tasks (of losses, of Jacobian rows) at every call. A given
``n_tasks`` is always checked.

Options are checked at construction against each class's ``option_rules`` (`mtlens.methods.options`);
``check_method_options(name, n_tasks, level, options)`` applies the same checks without building anything.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from mtlens.device import resolve_device
from mtlens.errors import MtlensError
from mtlens.methods.gradients import representation_rows, shared_jacobian, write_grad
from mtlens.methods.options import LEVELS, Flag, Integer, Rule, check_level, check_n_tasks, check_options, show


def check_losses(losses: torch.Tensor | Sequence[torch.Tensor], n_tasks: int | None, name: str) -> torch.Tensor:
    """Returns the losses stacked into a [T] tensor, or raises if their number, shape, dtype or devices are wrong."""
    if not isinstance(losses, torch.Tensor):
        losses = list(losses)
        if not losses or not all(isinstance(l, torch.Tensor) for l in losses):
            raise MtlensError(
                f"{name}: expected the task losses as a [T] tensor or a list of scalar tensors, got {show(losses)}"
            )
        devices = {l.device for l in losses}
        if len(devices) > 1:
            where = sorted(map(str, devices))
            raise MtlensError(f"{name}: the task losses are on different devices ({where}); move them to one")
        losses = torch.stack([l.reshape(()) for l in losses])
    expected = "T" if n_tasks is None else str(n_tasks)
    if losses.ndim != 1 or losses.shape[0] < 1 or (n_tasks is not None and losses.shape[0] != n_tasks):
        raise MtlensError(
            f"{name}: expected {expected} task losses (a [{expected}] tensor), got shape {tuple(losses.shape)}"
        )
    if not losses.dtype.is_floating_point:
        raise MtlensError(f"{name}: the task losses must be floating point, got {losses.dtype}")
    return losses


class Method(ABC):
    """Base of every MTL method: the life cycle of the module docstring. Subclasses set `name`, implement
    `_backward` (or `weights` / `aggregate` through the two kinds below) and override the hooks they use."""

    name: ClassVar[str] = ""
    #: True when the method needs per-task gradients.
    uses_gradients: ClassVar[bool] = False
    #: Levels at which the method is defined; a method that needs parameter gradients by definition says so.
    levels: ClassVar[tuple[str, ...]] = LEVELS
    #: Why the method refuses level "feature", where it does (for the error message).
    level_reason: ClassVar[str] = ""
    #: True when the method keeps per-task state, so n_tasks is fixed at construction.
    per_task_state: ClassVar[bool] = False
    #: The options of `__init__` (beyond n_tasks and level) and what each accepts; base classes' are inherited.
    option_rules: ClassVar[Mapping[str, Rule]] = {}
    #: Names of attributes that make up the method's state (tensors, numbers, tuples).
    state_keys: ClassVar[tuple[str, ...]] = ()
    #: True when the method needs a validation batch every step (`validation_step`), e.g. Auto-Lambda.
    needs_validation_batch: ClassVar[bool] = False

    def __init__(self, n_tasks: int | None = None, level: str = "param", **options: Any) -> None:
        self.n_tasks = check_n_tasks(n_tasks, self.name, self.per_task_state)
        self.level = check_level(level, self.name, self.levels, self.level_reason)
        #: The checked options, also set as attributes of the same names.
        self.options = check_options(type(self), options, self.n_tasks)
        type(self).check_combination(self.n_tasks, self.level, self.options)
        for key, value in self.options.items():
            setattr(self, key, value)
        self.step = 0

    @classmethod
    def check_combination(cls, n_tasks: int | None, level: str, options: Mapping[str, Any]) -> None:
        """Raises MtlensError when checked options do not fit together or with the level (nothing by default)."""

    # ------------------------------------------------------------------ the life cycle
    def to(self, device: str | torch.device) -> "Method":
        """Moves the method's tensors to `device` ("auto": CUDA when present, else CPU); returns self."""
        self._move(resolve_device(device))
        return self

    def _move(self, device: torch.device) -> None:
        """Moves the method's own tensors to `device` (nothing by default: state that stays on the CPU)."""

    def parameters(self) -> list[torch.Tensor]:
        """Returns the method's own learnable tensors for the optimiser (none by default)."""
        return []

    def backward(
        self,
        losses: torch.Tensor | Sequence[torch.Tensor],
        shared_params: Iterable[torch.Tensor],
        representation: torch.Tensor | None = None,
        task_params: Iterable[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """Writes `.grad` of the shared (and task) parameters for this step; returns the [T] task weights used."""
        losses = check_losses(losses, self.n_tasks, self.name)
        shared = [p for p in shared_params if p.requires_grad]
        tasks = None if task_params is None else [p for p in task_params if p.requires_grad]
        if self.uses_gradients and self.level == "feature" and representation is None:
            raise MtlensError(
                f"{self.name}: level='feature' needs the shared representation tensor; pass representation=z"
            )
        weights = self._backward(losses, shared, representation, tasks)
        self.step += 1
        return weights.detach()

    @abstractmethod
    def _backward(
        self,
        losses: torch.Tensor,
        shared: list[torch.Tensor],
        representation: torch.Tensor | None,
        task_params: list[torch.Tensor] | None,
    ) -> torch.Tensor:
        """Writes the gradients; returns the task weights."""

    def after_step(self, losses_after: Callable[[], torch.Tensor]) -> None:
        """Runs after `optimizer.step()`; `losses_after()` gives the same batch's losses with the new parameters.

        Nothing by default (the callable is not called, so it costs nothing); FAMO updates its logits.
        """

    def epoch_end(self) -> None:
        """Runs after the last step of each epoch; nothing by default (DWA closes its epoch average)."""

    def validation_step(
        self,
        val_losses: Callable[[], torch.Tensor],
        train_losses: Callable[[], torch.Tensor],
        params: Sequence[torch.Tensor],
    ) -> None:
        """Runs before `backward` when `needs_validation_batch`; nothing by default (Auto-Lambda's meta-step).

        `val_losses()` / `train_losses()` return the [T] losses of a validation batch / of this step's training
        batch at the current parameters; `params` are the model's parameters, restored exactly on return.
        """

    # ------------------------------------------------------------------ state, like torch.optim
    def state_dict(self) -> dict[str, Any]:
        """Returns the method's state (step and `state_keys`), so runs resume exactly."""
        state = {"step": self.step}
        for key in self.state_keys:
            value = getattr(self, key)
            state[key] = value.detach().clone() if isinstance(value, torch.Tensor) else value
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the state returned by `state_dict`."""
        self.step = int(state["step"])
        for key in self.state_keys:
            current = getattr(self, key)
            value = state[key]
            if isinstance(current, torch.Tensor) and isinstance(value, torch.Tensor):
                with torch.no_grad():
                    current.copy_(value)
            else:
                setattr(self, key, value)

    def __repr__(self) -> str:
        opts = "".join(f", {k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}(n_tasks={self.n_tasks}, level={self.level!r}{opts})"


class LossWeighting(Method):
    """A method that weights the losses: the step is `backward(sum_i w_i L_i)` through all parameters."""

    @abstractmethod
    def weights(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns the [T] weights for this step's (detached) losses."""

    def weighted_loss(self, losses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (the scalar to backpropagate, the weights); methods with learnable weights override it."""
        w = self.weights(losses.detach()).to(losses)
        return (w.detach() * losses).sum(), w

    def _backward(self, losses, shared, representation, task_params):  # type: ignore[no-untyped-def]
        total, w = self.weighted_loss(losses)
        total.backward()
        return w


#: The properties of an aggregation A (TorchJD's standard), each claimed or exempted by every gradient method.
PROPERTIES: Mapping[str, str] = {
    "permutation_invariant": "permuting the tasks (rows of J) leaves A(J) unchanged",
    "non_conflicting": "<g_t, A(J)> >= 0 for every task gradient g_t",
    "scale_equivariant": "A(a J) = a A(J) for every a > 0",
    "scale_invariant": "A(a J) = A(J) for every a > 0",
    "finite_on_zero": "a zero Jacobian gives a finite update",
    "finite_on_rank1": "a rank-1 Jacobian (gradients along one direction, either sign) gives a finite update",
    "levels_agree": "level 'param' and level 'feature' give the same update when the encoder is the identity",
}


class GradientAggregator(Method):
    """A method that combines the per-task gradients [T, P] into one update direction [P].

    `claims` names the `PROPERTIES` the method has; `exemptions` gives, for each of the others, the reason.
    """

    uses_gradients = True
    option_rules = {"batched": Flag()}
    claims: ClassVar[frozenset[str]] = frozenset()
    exemptions: ClassVar[Mapping[str, str]] = {}
    #: True when the update is exactly sum_t w_t g_t with w the reported weights (CR-MOGM can smooth them).
    weighted: ClassVar[bool] = False

    def __init__(self, n_tasks: int | None = None, level: str = "param", batched: bool = True, **options: Any) -> None:
        #: batched=True (default): the T rows of a Jacobian come from one vmap'd backward (autograd's
        #: is_grads_batched), falling back to a loop where an op has no batching rule; False: T backward passes.
        #: The rows dL/dz through the heads are always T passes (`representation_rows`: each head runs once).
        #: On 2 CPU cores the loop is ~8% faster for the encoder rows (PCGrad, conv encoder, 10 tasks, batch 64:
        #: 0.44 s vs 0.48 s per step, both ~6x equal weighting); on a GPU the batched pass is the one to have.
        super().__init__(n_tasks, level, batched=batched, **options)
        #: The weights of the last step: the combination coefficients where the method has them.
        self.last_weights = torch.ones(n_tasks or 0)

    @property
    def min_rows(self) -> int:
        """Returns the fewest task gradients (beyond one, which every method returns as it is) the method accepts."""
        return 1

    def head_objective(self, losses: torch.Tensor) -> torch.Tensor:
        """Returns the scalar whose gradient the task-specific parameters get: the sum of the losses by default."""
        return losses.sum()

    def head_weights(self, losses: torch.Tensor) -> torch.Tensor | None:
        """Returns d(head_objective)/dL_t [T] (None for the default sum: every weight is 1)."""
        if type(self).head_objective is GradientAggregator.head_objective:
            return None
        with torch.enable_grad():
            probe = losses.detach().clone().requires_grad_(True)
            (slopes,) = torch.autograd.grad(self.head_objective(probe), probe)
        return slopes

    def task_rows(self, losses: torch.Tensor, representation: torch.Tensor | None,
                  task_params: list[torch.Tensor]) -> torch.Tensor | None:
        """Gives the task-specific parameters their gradient (of `head_objective`); returns dL/dz [T, *z.shape]
        when the representation is given (from the same per-task passes), else None."""
        if representation is not None:
            return representation_rows(losses, representation, task_params, self.head_weights(losses))
        if task_params:
            torch.autograd.backward(self.head_objective(losses), inputs=task_params, retain_graph=True)
        return None

    @abstractmethod
    def aggregate(self, jacobian: torch.Tensor, losses: torch.Tensor | None = None) -> torch.Tensor:
        """Returns the update direction [P] for the per-task gradients [T, P] (sets `last_weights`)."""

    def _backward(self, losses, shared, representation, task_params):  # type: ignore[no-untyped-def]
        if task_params is None:
            raise MtlensError(
                f"{self.name}: pass task_params (e.g. model.task_parameters()) so the heads get their gradients"
            )
        # Task-specific parameters get each their own task's gradient (of `head_objective`, the plain sum by default).
        jac_z = self.task_rows(losses, representation, task_params)
        if self.level == "feature":
            direction = self.aggregate(jac_z.reshape(losses.shape[0], -1), losses.detach())
            torch.autograd.backward(representation, direction.view_as(representation), inputs=shared)
        else:
            jac = shared_jacobian(losses, shared, representation, jac_z=jac_z, batched=self.batched)
            write_grad(shared, self.aggregate(jac, losses.detach()))
        return self.last_weights


class Seeded:
    """Mixin: a private `torch.Generator` seeded by the `seed` option, saved in `state_dict()` so runs resume
    exactly. The generator lives on the CPU: the random choices concern T tasks, never P parameters."""

    option_rules = {"seed": Integer(0)}
    seed: int

    def _init_rng(self) -> None:
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(self.seed)

    def state_dict(self) -> dict[str, Any]:
        """Returns the method's state including the generator state."""
        state = super().state_dict()  # type: ignore[misc]
        state["rng_state"] = self.generator.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores the state returned by `state_dict`, generator included."""
        super().load_state_dict(state)  # type: ignore[misc]
        self.generator.set_state(state["rng_state"])
