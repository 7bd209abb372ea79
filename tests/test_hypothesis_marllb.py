"""Property tests: marllb_env constructors, trace files, resets and actions refuse bad input.

Each case draws values that MUST be rejected (tests/support/badinput.py) for one argument of
``gym.make(id, ...)`` + ``reset(seed=0)``; the error must be ValueError/TypeError/FileNotFoundError
(or a gymnasium.error) naming the argument. Trace files made of arbitrary bytes either load or raise
naming the file (and, for a decode error, the line); actions outside the space are refused naming
``action`` and the env keeps working; the PettingZoo parallel env refuses bad seeds and action dicts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import marllb_env
from marllb_env.traces import MarllbTraceWorkload, TraceFormatError, WikibenchWorkload
from tests.support.badinput import (
    FEW,
    Case,
    assert_action_rejected,
    assert_rejected,
    bad_bool,
    bad_choice,
    bad_int,
    bad_real,
    bad_seed,
    case_params,
    check_constructor_case,
    kw,
    make_and_reset,
    not_a_sequence,
)


def case(names, strategy, kwargs, env_id: str = "marllb_env/LoadBalance-v0") -> Case:
    return Case(env_id, names, strategy, kwargs)


def workload(kind: str, key: str) -> Callable[[Any], dict]:
    return lambda v: {"workload": {"kind": kind, key: v}}


POS = bad_real(0.0, low_open=True)
NONNEG = bad_real(0.0)

CASES = [
    case(("num_servers",), bad_int(low=1), kw("num_servers")),
    case(("interval_s",), POS, kw("interval_s")),
    case(("warmup_s",), NONNEG, kw("warmup_s")),
    case(("n_lbs",), bad_int(low=1), kw("n_lbs")),
    case(("reward_type",), bad_choice(["jain", "max", "mean", "std"]), kw("reward_type")),
    case(("feature_set",), bad_choice(["all", "marllb_agents"]), kw("feature_set")),
    case(("action_mode",), bad_choice(["discrete", "continuous"]), kw("action_mode")),
    case(("dispatch",), bad_choice(["sed", "wcmp", "lsq", "ecmp", "gsq"]), kw("dispatch")),
    case(("reward_smoothing",), bad_real(0.0, 1.0), kw("reward_smoothing")),
    case(("use_ground_truth",), bad_bool(), kw("use_ground_truth")),
    case(("flatten_obs",), bad_bool(), kw("flatten_obs")),
    case(("weight_levels",), not_a_sequence(), kw("weight_levels")),
    case(("weight_levels",), st.lists(st.sampled_from(["2", None, math.nan, -1.0, True]), min_size=1, max_size=3),
         kw("weight_levels")),
    case(("weight_range",), st.sampled_from([(10.0, 0.1), (0.1,), 5, (0.1, math.inf), ("0.1", 10)]),
         kw("weight_range")),
    case(("capacity_events",), st.sampled_from([[5], 5, [[1.0]], [["a", 0, 1.0]], [[math.nan, 0, 1.0]]]),
         kw("capacity_events")),
    case(("servers", "cpus", "speed"), st.one_of(not_a_sequence(), st.sampled_from([[1, -1], [1, math.nan], [], ["1", 2]])),
         kw("servers")),
    case(("sim_config", "bogus"), st.sampled_from([{"bogus": 1}, [1], 5, "x"]), kw("sim_config")),
    case(("backend_kwargs",), st.sampled_from([{"speed": 2.0}, {"x": 1}]), kw("backend_kwargs")),
    case(("workload",), st.sampled_from([5, [1], {"kind": "bogus"}, {"kind": "poisson", "bogus": 1}]),
         kw("workload")),
    case(("rho",), POS, workload("poisson", "rho")),
    case(("mean_size_s",), POS, workload("poisson", "mean_size_s")),
    case(("size_dist",), bad_choice(["exponential", "deterministic", "pareto", "lognormal"]),
         workload("poisson", "size_dist")),
    case(("trace",), st.sampled_from([None, 5, "no-such-trace", b"rate_150"]), workload("marllb_trace", "trace")),
    case(("time_scale",), POS, workload("marllb_trace", "time_scale")),
    case(("path",), st.sampled_from([None, 5, "/no/such/trace.txt"]), workload("wikibench", "path")),
]

@pytest.mark.parametrize("case", list(case_params(CASES)))
def test_constructor_and_reset_refuse_out_of_contract_values(case):
    check_constructor_case(case)


# ---------------------------------------------------------------------------------------- trace files

MARLLB_LINES = [b"time\tquery\n", b"0.5\t/dummy.php/?n=3670000\n", b"0.4\t/dummy.php/?n=1\n", b"x\t/a?n=2\n",
                b"1.0\t/dummy.php\n", b"\xff\xfe\xfd\n", b"nan\t/?n=3\n", b"2.0\t/?n=5\n", b"\n", b"\x00\n"]


@FEW
@given(data=st.one_of(st.binary(max_size=200),
                      st.lists(st.sampled_from(MARLLB_LINES), min_size=1, max_size=6).map(b"".join)))
def test_marllb_trace_bytes_load_or_fail_naming_the_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("trace") / "rate.csv"
    path.write_bytes(data)
    try:
        wl = MarllbTraceWorkload(trace=str(path), start="zero")
    except TraceFormatError as exc:
        assert str(path) in str(exc), str(exc)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data.count(b"\n", 0, err.start) + 1
            assert f"line {line}," in str(exc)
        return
    times, sizes = next(wl.batches(np.random.default_rng(0), capacity=4.0))
    assert np.all(np.isfinite(times)) and np.all(np.diff(times) >= 0) and np.all(sizes >= 0)


@FEW
@given(data=st.one_of(st.binary(max_size=200), st.lists(st.sampled_from(
    [b"1190146243.3 http://en.wikipedia.org/wiki/A\n", b"1190146243.1 http://x/static.png\n", b"abc def\n",
     b"5\n", b"\xc3\x28 /wiki/\n", b"inf /wiki/x\n"]), min_size=1, max_size=6).map(b"".join)))
def test_wikibench_bytes_load_or_fail_naming_the_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("wiki") / "wiki.txt"
    path.write_bytes(data)
    try:
        wl = WikibenchWorkload(path=str(path))
    except TraceFormatError as exc:
        assert str(path) in str(exc), str(exc)
        return
    times, sizes = next(wl.batches(np.random.default_rng(0), capacity=4.0))
    assert times[0] == 0.0 and np.all(np.diff(times) >= 0) and np.all(sizes > 0)


# ---------------------------------------------------------------------------------------- seeds, actions


@FEW
@given(seed=bad_seed())
def test_reset_refuses_bad_seeds(seed):
    env = make_and_reset("marllb_env/LoadBalance-v0", {})
    try:
        assert_rejected(lambda: env.reset(seed=seed), "seed")
        env.reset(seed=1)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ["marllb_env/LoadBalance-v0", "marllb_env/LoadBalancePaper-v0"])
@FEW
@given(data=st.data())
def test_actions_outside_the_space_are_refused_and_the_env_keeps_working(env_id, data):
    env = make_and_reset(env_id, {})
    n = int(env.action_space.shape[0])
    bad = data.draw(st.one_of(
        st.integers(0, n - 1).flatmap(lambda i: st.sampled_from([-1, 3, 99]).map(
            lambda v: np.array([v if j == i else 0 for j in range(n)]))),
        st.integers(0, 2 * n).filter(lambda k: k != n).map(lambda k: np.zeros(k, dtype=np.int64)),
        st.sampled_from([None, "x", 1.5, np.full(n, 1.5), np.full(n, np.nan), {"a": 1}])))
    try:
        assert_action_rejected(env, bad)
    finally:
        env.close()


@FEW
@given(action=st.one_of(st.integers(0, 3).map(lambda i: np.where(np.arange(4) == i, np.nan, 1.0)),
                        st.sampled_from([np.zeros(3), np.full(4, 1e9), np.full(4, -1e9), np.full(4, np.inf)])))
def test_continuous_actions_refuse_nan_shape_and_bounds(action):
    env = make_and_reset("marllb_env/LoadBalance-v0", {"action_mode": "continuous"})
    try:
        assert_rejected(lambda: env.step(action), "action")
        env.step(env.action_space.sample())
    finally:
        env.close()


# ---------------------------------------------------------------------------------------- PettingZoo

@FEW
@given(seed=bad_seed())
def test_parallel_env_refuses_bad_seeds(seed):
    env = marllb_env.parallel_env()
    assert_rejected(lambda: env.reset(seed=seed), "seed")


def _parallel_after_reset():
    env = marllb_env.parallel_env()
    env.reset(seed=0)
    return env, {a: env.action_space(a).sample() for a in env.agents}


def test_parallel_env_refuses_a_missing_agent_and_keeps_working():
    env, acts = _parallel_after_reset()
    first = env.agents[0]
    assert_rejected(lambda: env.step({first: acts[first]}), "agent", "actions")
    env.step(acts)


def test_parallel_env_refuses_an_unknown_agent():
    env, acts = _parallel_after_reset()
    assert_rejected(lambda: env.step({**acts, "lb_99": acts[env.agents[0]]}), "lb_99")


def test_parallel_env_refuses_a_list_of_actions():
    env, acts = _parallel_after_reset()
    assert_rejected(lambda: env.step(list(acts.values())), "actions")
