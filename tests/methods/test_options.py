"""Method options: every option has a rule, every rule rejects bad values with one line naming the valid
options, `check_method_options` agrees with construction, and the task count and level are checked."""

from __future__ import annotations

import inspect

import pytest
import torch

from mtlens import MtlensError
from mtlens.methods import METHODS, available_methods, check_method_options, create_method
from mtlens.methods.options import (Choice, Device, Flag, Integer, MethodName, OptionMap, PerTask, Real, TaskIndices,
                                   rules_of)

#: Values every rule of a kind must refuse (the issue's: a string for a number, -1 for a count, True for 3).
BAD = {
    Real: ["abc", float("nan"), float("inf"), True, None, [1.0]],
    Integer: ["3", 2.5, True, None, -1],
    Choice: ["nope", None, 3.5],
    Flag: ["yes", 1, None],
    Device: ["gpu", 3, None],
    PerTask: ["abc", [1.0], [[1.0, 2.0]], [float("nan"), 1.0]],
    MethodName: ["nope", 3, None, "ew", "graddrop"],  # unknown, not a name, none, and methods of another kind
    OptionMap: ["abc", [1, 2], {1: 2}],
    TaskIndices: ["abc", [], [0.5], [-1], [0, 0], [3], True],
}


def _params(cls: type) -> dict[str, inspect.Parameter]:
    sig = inspect.signature(cls.__init__)
    skip = ("self", "n_tasks", "level")
    return {k: p for k, p in sig.parameters.items() if k not in skip and p.kind != p.VAR_KEYWORD}


@pytest.mark.parametrize("name", available_methods())
def test_every_option_has_a_rule_and_its_default_passes(name: str) -> None:
    cls = METHODS.get(name)
    params, rules = _params(cls), rules_of(cls)
    assert set(params) == set(rules), f"{name}: options without a rule or rules without an option"
    defaults = {k: p.default for k, p in params.items()}
    assert check_method_options(name, 3, "param", defaults).keys() == defaults.keys()
    method = create_method(name, 3, **defaults)
    assert set(method.options) == set(defaults)


@pytest.mark.parametrize("name", available_methods())
def test_every_rule_refuses_bad_values_in_one_line(name: str) -> None:
    cls = METHODS.get(name)
    for key, rule in rules_of(cls).items():
        bad = BAD[type(rule)] + ([-0.5] if getattr(rule, "low", None) == 0.0 else [])
        bad = bad + ([1.0] if isinstance(rule, Real) and rule.high == 1.0 and rule.high_open else [])
        if isinstance(rule, PerTask):
            bad = bad + ([] if rule.scalar else [0.5]) + ([] if rule.optional else [None])
        for value in bad:
            with pytest.raises(MtlensError) as err:
                check_method_options(name, 3, "param", {key: value})
            message = str(err.value)
            assert "\n" not in message and f"option {key} must be" in message and "valid options:" in message
            with pytest.raises(MtlensError):  # construction applies the same rules
                create_method(name, 3, **{key: value})


def test_the_issues_examples() -> None:
    with pytest.raises(MtlensError, match=r"mgda: option max_iter must be an integer >= 1, got -1; valid options: "
                                          r"normalization .*solver .*max_iter .*batched"):
        create_method("mgda", n_tasks=3, solver="frank_wolfe", max_iter=-1)
    for n in (2.5, "3", True, 0):
        with pytest.raises(MtlensError, match=r"mgda: n_tasks must be an integer >= 1, got "):
            create_method("mgda", n_tasks=n)
    with pytest.raises(MtlensError, match=r"mgda: unknown option 'foo'; valid options: normalization"):
        create_method("mgda", n_tasks=3, foo=1)
    with pytest.raises(MtlensError, match=r"option max_iter must be .* got 'abc'"):
        check_method_options("mgda", 3, "param", {"max_iter": "abc"})  # a config's method.options.max_iter=abc


def test_check_method_options_for_the_engine() -> None:
    assert check_method_options("nash", 3, "feature", {"max_norm": 2}) == {"max_norm": 2.0}
    checked = check_method_options("graddrop", 2, options={"leak": [0.1, 0.2]})
    torch.testing.assert_close(checked["leak"], torch.tensor([0.1, 0.2], dtype=torch.float64))
    with pytest.raises(MtlensError, match="unknown method 'nope'; choose one of: aligned_mtl"):
        check_method_options("nope", 3)
    with pytest.raises(MtlensError, match="a method name must be a string"):
        check_method_options(3)  # type: ignore[arg-type]
    with pytest.raises(MtlensError, match="cosreg is defined on parameter gradients only"):
        check_method_options("cosreg", 3, "feature")
    with pytest.raises(MtlensError, match="unknown level 'both'"):
        check_method_options("mgda", 3, "both")
    with pytest.raises(MtlensError, match="options must be a mapping"):
        check_method_options("mgda", 3, "param", [("max_iter", 3)])  # type: ignore[arg-type]
    with pytest.raises(MtlensError, match=r"leak must be .*\(a value per task needs n_tasks\)"):
        check_method_options("graddrop", None, options={"leak": [0.1, 0.2]})
    with pytest.raises(MtlensError, match=r"initial_losses must be .*\(3 values for 2 tasks\)"):
        check_method_options("gradnorm", 2, options={"initial_losses": [1.0, 2.0, 3.0]})


@pytest.mark.parametrize("name", available_methods())
def test_the_task_count_is_fixed_only_where_the_method_keeps_per_task_state(name: str) -> None:
    cls = METHODS.get(name)
    if cls.per_task_state:
        with pytest.raises(MtlensError, match=f"{cls.name} keeps per-task state: give n_tasks"):
            create_method(name)
    else:
        assert create_method(name).n_tasks is None
    assert create_method(name, 4).n_tasks == 4
