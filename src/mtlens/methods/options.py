"""Method options: one rule per option (type and range), checked at construction and before any run.

Every method class declares `option_rules` (name -> rule) for the options of its `__init__`; the rules of the
base classes (e.g. `batched` of the gradient methods, `seed` of the seeded ones) are inherited. The same
rules serve two callers:

* `Method.__init__` checks the options a subclass passes up, so a direct `MGDA(3, max_iter=-1)` fails too;
* `check_method_options(name, n_tasks, level, options)` checks a whole method specification without building
  anything (a study calls it for every cell before the first run is written); `create_method` calls it first,
  so an unknown option is a one-line error that lists the valid ones, not a TypeError.
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from mtlens.device import resolve_device
from mtlens.errors import MtlensError

if TYPE_CHECKING:
    from mtlens.methods.base import Method

LEVELS = ("param", "feature")


class Rule(ABC):
    """What one option accepts: `check` returns the value to use or raises with `describe()` in the message."""

    @abstractmethod
    def describe(self) -> str:
        """Returns the accepted values in a few words, for error messages."""

    @abstractmethod
    def check(self, value: Any, n_tasks: int | None) -> Any:
        """Returns the value to store, or raises ValueError (with a reason, or none) when it is not accepted."""


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Real(Rule):
    """A finite real number within [low, high] (an open end where `low_open` / `high_open`)."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        return "a number " + " and ".join(parts) if parts else "a finite number"

    def check(self, value: Any, n_tasks: int | None) -> float:
        if not _is_real(value) or not math.isfinite(float(value)):
            raise ValueError
        v = float(value)
        if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
            raise ValueError
        if self.high is not None and (v > self.high or (self.high_open and v == self.high)):
            raise ValueError
        return v


@dataclass(frozen=True)
class Integer(Rule):
    """An integer >= `low` (bools are refused: True is not a count)."""

    low: int = 0

    def describe(self) -> str:
        return f"an integer >= {self.low}"

    def check(self, value: Any, n_tasks: int | None) -> int:
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or int(value) < self.low:
            raise ValueError
        return int(value)


@dataclass(frozen=True)
class Choice(Rule):
    """One of a fixed set of values."""

    values: tuple[Any, ...]

    def describe(self) -> str:
        return "one of " + "|".join(repr(v) for v in self.values)

    def check(self, value: Any, n_tasks: int | None) -> Any:
        for v in self.values:  # `in` would accept True for 1 and 1.0 for 1
            if type(value) is type(v) and value == v:
                return v
        raise ValueError


@dataclass(frozen=True)
class Flag(Rule):
    """True or False."""

    def describe(self) -> str:
        return "true or false"

    def check(self, value: Any, n_tasks: int | None) -> bool:
        if not isinstance(value, bool):
            raise ValueError
        return value


@dataclass(frozen=True)
class Device(Rule):
    """A torch device or its name; "auto" is CUDA when present, else the CPU (`mtlens.device.resolve_device`)."""

    def describe(self) -> str:
        return "'auto', 'cpu', 'cuda' or a torch.device"

    def check(self, value: Any, n_tasks: int | None) -> torch.device:
        if not isinstance(value, (str, torch.device)):
            raise ValueError
        try:
            return resolve_device(value)
        except MtlensError as err:
            raise ValueError from err


@dataclass(frozen=True)
class PerTask(Rule):
    """One finite number per task (a list or tensor of n_tasks), each >= `low` (> where `low_open`); None
    where `optional`; a single number (the same for every task) where `scalar`."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    optional: bool = False
    scalar: bool = False

    def describe(self) -> str:
        bound = Real(self.low, self.high, self.low_open).describe().removeprefix("a number ")
        what = f"{'a number or ' if self.scalar else ''}one number per task ({bound})"
        return what + (" or None" if self.optional else "")

    def check(self, value: Any, n_tasks: int | None) -> torch.Tensor | float | None:
        if value is None:
            if not self.optional:
                raise ValueError
            return None
        number = Real(self.low, self.high, self.low_open)
        if _is_real(value) or (isinstance(value, torch.Tensor) and value.ndim == 0):
            if not self.scalar:
                raise ValueError
            return number.check(float(value), n_tasks)
        if isinstance(value, torch.Tensor):
            items = value.detach().reshape(-1).tolist() if value.ndim == 1 else None
        elif isinstance(value, Sequence) and not isinstance(value, str):
            items = list(value)
        else:
            items = None
        if items is None:
            raise ValueError
        if n_tasks is None:
            raise ValueError("a value per task needs n_tasks")
        if len(items) != n_tasks:
            raise ValueError(f"{len(items)} values for {n_tasks} tasks")
        return torch.tensor([number.check(v, n_tasks) for v in items], dtype=torch.float64)


@dataclass(frozen=True)
class MethodName(Rule):
    """The registered name (or alias) of a method class that `accepts`; stored as its canonical name."""

    what: str
    accepts: Any  # Callable[[type], bool]; a plain field keeps the dataclass hashable

    def describe(self) -> str:
        return f"the name of {self.what}"

    def check(self, value: Any, n_tasks: int | None) -> str:
        from mtlens.methods.registry import METHODS  # the registry imports the base class, which imports this module

        if not isinstance(value, str) or value not in METHODS:
            raise ValueError
        name = METHODS.canonical(value)
        if not self.accepts(METHODS.get(name)):
            raise ValueError(f"{name} is not one")
        return name


@dataclass(frozen=True)
class OptionMap(Rule):
    """None, or a mapping of option names (strings) to values: the options of another method."""

    def describe(self) -> str:
        return "a mapping of option names to values, or None"

    def check(self, value: Any, n_tasks: int | None) -> dict[str, Any] | None:
        if value is None:
            return None
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise ValueError
        return dict(value)


@dataclass(frozen=True)
class TaskIndices(Rule):
    """None, or distinct task indices 0 <= i < n_tasks (at least one)."""

    def describe(self) -> str:
        return "a list of distinct task indices (0 .. n_tasks - 1), or None for every task"

    def check(self, value: Any, n_tasks: int | None) -> tuple[int, ...] | None:
        if value is None:
            return None
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
            raise ValueError
        items = list(value)
        if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in items):
            raise ValueError
        if n_tasks is None:
            raise ValueError("task indices need n_tasks")
        if len(set(items)) != len(items) or not all(0 <= int(i) < n_tasks for i in items):
            raise ValueError(f"indices must be distinct and in 0 .. {n_tasks - 1}")
        return tuple(int(i) for i in items)


def show(value: Any) -> str:
    """Returns a one-line, bounded repr of a user's value for an error message."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 80 else text[:77] + "..."


def rules_of(cls: type[Method]) -> dict[str, Rule]:
    """Returns the option rules of a method class, its own first, then its base classes' (the subclass's win)."""
    rules: dict[str, Rule] = {}
    for klass in cls.__mro__:
        for key, rule in vars(klass).get("option_rules", {}).items():
            rules.setdefault(key, rule)
    return rules


def describe_options(cls: type[Method]) -> str:
    """Returns 'name (accepted values), ...' for every option of a method class."""
    rules = rules_of(cls)
    return ", ".join(f"{k} ({r.describe()})" for k, r in rules.items()) or "none"


def check_n_tasks(n_tasks: Any, name: str, required: bool) -> int | None:
    """Returns n_tasks as an int (or None where the method takes any number of tasks), or raises."""
    if n_tasks is None:
        if required:
            raise MtlensError(f"{name} keeps per-task state: give n_tasks (the number of tasks, an integer >= 1)")
        return None
    if not isinstance(n_tasks, numbers.Integral) or isinstance(n_tasks, bool) or int(n_tasks) < 1:
        raise MtlensError(f"{name}: n_tasks must be an integer >= 1, got {show(n_tasks)}")
    return int(n_tasks)


def check_level(level: Any, name: str, levels: tuple[str, ...], reason: str = "") -> str:
    """Returns the level, or raises naming the levels the method is defined at (and why, when `reason`)."""
    if level not in LEVELS:
        raise MtlensError(f"{name}: unknown level {show(level)}; choose 'param' or 'feature'")
    if level not in levels:
        why = f" ({reason})" if reason else ""
        raise MtlensError(f"{name} is defined on parameter gradients only{why}; use level='param'")
    return str(level)


def check_options(cls: type[Method], options: Mapping[str, Any], n_tasks: int | None) -> dict[str, Any]:
    """Returns the options with each value checked (and normalised: floats, ints, devices, tensors)."""
    rules = rules_of(cls)
    name = cls.name
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key not in rules:
            raise MtlensError(f"{name}: unknown option {key!r}; valid options: {describe_options(cls)}")
        try:
            out[key] = rules[key].check(value, n_tasks)
        except ValueError as err:
            why = f" ({err})" if str(err) else ""
            raise MtlensError(
                f"{name}: option {key} must be {rules[key].describe()}, got {show(value)}{why}; "
                f"valid options: {describe_options(cls)}"
            ) from None
    return out


def check_method_options(
    name: str, n_tasks: int | None = None, level: str = "param", options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Returns the checked options of method `name` for `n_tasks` tasks at `level`, or raises MtlensError.

    Builds nothing: a study calls it for each (method, options) before writing any run. The checks are the
    ones the method's constructor applies, so a specification that passes here constructs.
    """
    from mtlens.methods.registry import METHODS  # the registry imports the base class, which imports this module

    if not isinstance(name, str):
        raise MtlensError(f"a method name must be a string, got {show(name)}")
    cls = METHODS.get(name)
    checked_tasks = check_n_tasks(n_tasks, cls.name, cls.per_task_state)
    check_level(level, cls.name, cls.levels, cls.level_reason)
    if options is not None and not isinstance(options, Mapping):
        raise MtlensError(f"{cls.name}: options must be a mapping of option name to value, got {show(options)}")
    checked = check_options(cls, dict(options or {}), checked_tasks)
    cls.check_combination(checked_tasks, str(level), checked)
    return checked
