"""Hypothesis strategies of values outside an argument's contract, and the check that they are refused.

Each strategy draws only values that MUST be rejected (never a value the contract allows), grouped by
the kind of mistake: numeric strings for numbers, truthy strings for bools, NaN/inf, out-of-range
numbers, floats for ints, bools for numbers, containers where a scalar belongs, scalars where a
sequence belongs, unknown choices (also unhashable ones), negative or non-int seeds.

:func:`assert_rejected` runs a call and checks that it raises one of :data:`REJECTIONS` and that the
message names the parameter (so a user can tell what to fix).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import gymnasium
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

#: What an argument check may raise.
REJECTIONS = (ValueError, TypeError, FileNotFoundError, gymnasium.error.Error)

#: Small, deterministic example counts: the whole hardening suite stays within its time budget.
FAST = settings(max_examples=20, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(FAST, max_examples=6)

_CONTAINERS = st.sampled_from([[1.0], (1, 2), {"x": 1}, {1.0}, object()])


def numeric_strings() -> st.SearchStrategy[str]:
    """``"100"``, ``"1e3"``, ``"nan"``, ``" 15 "``: strings that ``float()`` would accept."""
    return st.one_of(
        st.integers(-1000, 1000).map(str),
        st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
        st.sampled_from(["nan", "inf", "-inf", " 15 ", "1e3", "0x10"]),
    )


def bad_real(low: float | None = None, high: float | None = None, *, low_open: bool = False,
             allow_none: bool = True) -> st.SearchStrategy[Any]:
    """Anything a finite real number in ``[low, high]`` (``(low, high]`` if ``low_open``) is not."""
    out = [numeric_strings(), st.booleans(), st.sampled_from([math.nan, math.inf, -math.inf]), _CONTAINERS]
    if not allow_none:
        out.append(st.none())
    if low is not None:
        hi = low if not low_open else low
        below = st.floats(max_value=hi, allow_nan=False, allow_infinity=False, min_value=-1e12)
        out.append(below.filter(lambda v: v < low or (low_open and v <= low)))
    if high is not None:
        out.append(st.floats(min_value=high, max_value=1e12, allow_nan=False, exclude_min=True))
    return st.one_of(*out)


def bad_int(low: int | None = None, high: int | None = None, *, allow_none: bool = True) -> st.SearchStrategy[Any]:
    """Anything an int in ``[low, high]`` is not: floats (also integral ones like ``2.0``), strings, bools, ..."""
    out = [numeric_strings(), st.booleans(), st.sampled_from([math.nan, 2.0, 1.5, -0.5]), _CONTAINERS]
    if not allow_none:
        out.append(st.none())
    if low is not None:
        out.append(st.integers(min_value=low - 10**6, max_value=low - 1))
    if high is not None:
        out.append(st.integers(min_value=high + 1, max_value=high + 10**6))
    return st.one_of(*out)


def bad_bool() -> st.SearchStrategy[Any]:
    """Truthy/falsy non-bools: ``"no"``, ``"False"``, ``0``, ``1``, ``None``, ``[]``."""
    return st.one_of(st.sampled_from(["no", "yes", "False", "true", "0", "", 0, 1, 0.0, None, [], [True]]),
                     st.text(max_size=5))


def bad_choice(allowed: Iterable[Any], *, allow_none: bool = True) -> st.SearchStrategy[Any]:
    """Values outside ``allowed``: other strings (also case variants), numbers, unhashable containers."""
    allowed = list(allowed)
    strs = [a for a in allowed if isinstance(a, str)]
    variants = [s.upper() for s in strs if s.upper() not in allowed] + [s + " " for s in strs]
    out = [st.text(min_size=1, max_size=12).filter(lambda s: s not in allowed),
           st.integers(-5, 5).filter(lambda i: i not in allowed), st.sampled_from([[1], {"k": 1}, 1.5])]
    if variants:
        out.append(st.sampled_from(variants))
    if not allow_none:
        out.append(st.none())
    return st.one_of(*out)


def bad_seed() -> st.SearchStrategy[Any]:
    """Negative ints, floats, numeric strings and bools are not seeds."""
    return st.one_of(st.integers(max_value=-1, min_value=-(2**63)), st.sampled_from([1.0, 0.5, math.nan, True, False]),
                     numeric_strings())


def not_a_sequence() -> st.SearchStrategy[Any]:
    """Scalars where a sequence belongs (``weight_levels=5``)."""
    return st.one_of(st.integers(-3, 10), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                     st.just(object()))


def assert_rejected(call: Callable[[], Any], *names: str) -> BaseException:
    """``call()`` must raise one of :data:`REJECTIONS` whose message contains one of ``names``."""
    try:
        result = call()
    except REJECTIONS as exc:
        msg = str(exc)
        low = msg.lower()
        assert any(n.lower() in low for n in names), f"{type(exc).__name__} does not name any of {names}: {msg!r}"
        return exc
    close = getattr(result, "close", None)
    if callable(close):
        close()
    raise AssertionError(f"accepted a value outside the contract of {names} (no error raised)")


@dataclass(frozen=True)
class Case:
    """One constructor argument's out-of-contract values: ``gym.make(env_id, **kwargs(value))`` must
    raise naming one of ``names``."""

    env_id: str
    names: tuple[str, ...]
    strategy: st.SearchStrategy
    kwargs: Callable[[Any], dict]

    def __str__(self) -> str:
        return f"{self.env_id}:{self.names[0]}"


def kw(name: str) -> Callable[[Any], dict]:
    """``kwargs`` of a :class:`Case` that passes the value as argument ``name``."""
    return lambda v: {name: v}


def case_params(cases):
    """``pytest.param`` per case with a unique id (repeated names get ``-2``, ``-3`` ...)."""
    seen: dict[str, int] = {}
    for c in cases:
        key = str(c)
        seen[key] = seen.get(key, 0) + 1
        yield pytest.param(c, id=key if seen[key] == 1 else f"{key}-{seen[key]}")


def make_and_reset(env_id: str, kwargs: dict):
    """``gym.make`` and ``reset(seed=0)``; the env is closed if reset raises."""
    import gymnasium as gym

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(env_id, **kwargs)
        try:
            env.reset(seed=0)
        except BaseException:
            env.close()
            raise
    return env


def assert_action_rejected(env, action) -> None:
    """``env.step(action)`` raises naming ``action``, and the env still steps: a sampled action
    gives an observation inside the space and a finite reward."""
    assert_rejected(lambda: env.step(action), "action")
    obs, r, *_ = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs) and math.isfinite(r)


def check_constructor_case(case: Case) -> None:
    """Every value drawn from ``case.strategy`` is refused by the constructor or reset, naming the argument."""

    @FEW
    @given(case.strategy)
    def check(value):
        assert_rejected(lambda: make_and_reset(case.env_id, case.kwargs(value)), *case.names)

    check()

