"""Property tests: lwmecps constructors, resets and actions refuse everything outside their contract.

Each case draws values that MUST be rejected (tests/support/badinput.py) for one argument of
``gym.make(id, ...)`` followed by ``reset(seed=0)``; the error must be ValueError/TypeError/
FileNotFoundError (or a gymnasium.error) naming the argument. Actions outside the action space are
refused naming ``action``, and the env then steps normally.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lwmecps_gym  # noqa: F401 (registers the ids)
from lwmecps_gym.scenarios import SCENARIO_NAMES
from tests.support.badinput import (
    FEW,
    Case,
    assert_action_rejected,
    assert_rejected,
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


def nested(outer: str, inner: str) -> Callable[[Any], dict]:
    return lambda v: {outer: {inner: v}}


V3, V0 = "lwmecps-v3", "lwmecps-v0"
POS = bad_real(0.0, low_open=True)
NONNEG = bad_real(0.0)

CASES = [
    Case(V3, ("sla_ms",), POS, kw("sla_ms")),
    Case(V3, ("interval_s",), POS, kw("interval_s")),
    Case(V3, ("w_latency",), NONNEG, kw("w_latency")),
    Case(V3, ("w_replicas",), NONNEG, kw("w_replicas")),
    Case(V3, ("w_imbalance",), NONNEG, kw("w_imbalance")),
    Case(V3, ("w_sla",), NONNEG, kw("w_sla")),
    Case(V3, ("max_replicas",), bad_int(low=1), kw("max_replicas")),
    Case(V3, ("obs_mode",), bad_choice(["flat", "dict"]), kw("obs_mode")),
    Case(V3, ("action_mode",), bad_choice(["discrete", "continuous"]), kw("action_mode")),
    Case(V3, ("scenario",), bad_choice(SCENARIO_NAMES), kw("scenario")),
    Case(V3, ("backend",), bad_choice(["sim", "kubernetes"]), kw("backend")),
    # (gym.make itself calls str methods on render_mode, so only strings are drawn)
    Case(V3, ("render_mode",), st.text(min_size=1, max_size=8).filter(lambda s: s not in ("ansi", "rgb_array")),
         kw("render_mode")),
    Case(V3, ("node_name",), not_a_sequence(), kw("node_name")),
    Case(V3, ("node_cpu",), POS, nested("scenario_options", "node_cpu")),
    Case(V3, ("site_seed",), bad_seed(), nested("scenario_options", "site_seed")),
    Case(V3, ("n_nodes",), bad_int(low=1), nested("scenario_options", "n_nodes")),
    Case(V3, ("user_rate_rps",), NONNEG, nested("scenario_options", "user_rate_rps")),
    Case(V3, ("start_time_s",), bad_real(0.0, 86400.0), nested("sim_config", "start_time_s")),
    Case(V3, ("trace_seed",), bad_seed(), nested("sim_config", "trace_seed")),
    Case(V3, ("timeout_s",), POS, nested("sim_config", "timeout_s")),
    Case(V3, ("pod_startup_median_s",), NONNEG, nested("sim_config", "pod_startup_median_s")),
    Case(V3, ("initial_replicas",), bad_int(low=0, high=8), nested("sim_config", "initial_replicas")),
    Case(V3, ("scenario_options",), st.sampled_from([5, "x", [1], {"bogus": 1}, {1: 2}]), kw("scenario_options")),
    Case(V3, ("sim_config",), st.sampled_from([5, "x", [1], {"bogus": 1}]), kw("sim_config")),
    Case(V0, ("sla_ms",), POS, kw("sla_ms")),
    Case(V0, ("interval_s",), POS, kw("interval_s")),
    Case(V0, ("peak_utilisation",), POS, kw("peak_utilisation")),
    Case(V0, ("w_migration",), NONNEG, kw("w_migration")),
    Case(V0, ("initial_node",), bad_int(low=0, high=7), kw("initial_node")),
    Case(V0, ("obs_mode",), bad_choice(["flat", "dict"]), kw("obs_mode")),
    Case(V0, ("node_cpu",), POS, nested("scenario_options", "node_cpu")),
    Case("lwmecps-v2", ("w_latency",), NONNEG, kw("w_latency")),
    Case("lwmecps-v1", ("sla_ms",), POS, kw("sla_ms")),
]

@pytest.mark.parametrize("case", list(case_params(CASES)))
def test_constructor_and_reset_refuse_out_of_contract_values(case):
    check_constructor_case(case)


def test_node_cpu_names_itself_not_a_derived_value():
    with pytest.raises(ValueError, match="node_cpu") as err:
        make_and_reset(V3, {"scenario_options": {"node_cpu": -16}})
    assert "max_replicas" not in str(err.value)


# ---------------------------------------------------------------------------------------- seeds


@pytest.mark.parametrize("env_id", ["lwmecps-v0", "lwmecps-v3"])
@FEW
@given(seed=bad_seed())
def test_reset_refuses_bad_seeds(env_id, seed):
    env = make_and_reset(env_id, {})
    try:
        assert_rejected(lambda: env.reset(seed=seed), "seed")
        env.reset(seed=1)  # still usable
    finally:
        env.close()


# ---------------------------------------------------------------------------------------- actions


def bad_multidiscrete_actions(n: int, high: int) -> st.SearchStrategy:
    return st.one_of(
        st.integers(0, n - 1).flatmap(lambda i: st.sampled_from([-1, high + 1, 10**9]).map(
            lambda v: np.array([v if j == i else 0 for j in range(n)]))),
        st.integers(0, 3 * n).filter(lambda k: k != n).map(lambda k: np.zeros(k, dtype=np.int64)),
        st.sampled_from([None, "x", 3, 1.5, [[0] * n], np.full(n, 1.5), np.full(n, np.nan), {"a": 1}]),
    )


def bad_discrete_actions(n: int) -> st.SearchStrategy:
    return st.one_of(st.integers(max_value=-1), st.integers(min_value=n), st.sampled_from(
        [1.5, math.nan, "1", None, [0, 1], np.array([1, 2]), True, {"a": 1}]))


@FEW
@given(action=bad_multidiscrete_actions(8, 8))
def test_v3_refuses_actions_outside_the_space_and_keeps_working(action):
    env = make_and_reset(V3, {})
    try:
        assert_action_rejected(env, action)
    finally:
        env.close()


@FEW
@given(action=st.one_of(st.integers(0, 7).map(lambda i: np.where(np.arange(8) == i, np.nan, 0.5)),
                        st.sampled_from([np.zeros(7), np.full(8, 2.0), np.full(8, -1.5), np.full(8, np.inf)])))
def test_v3_continuous_refuses_nan_shape_and_bounds(action):
    env = make_and_reset(V3, {"action_mode": "continuous"})
    try:
        assert_rejected(lambda: env.step(np.asarray(action) if isinstance(action, np.ndarray) else action), "action")
        env.step(env.action_space.sample())
    finally:
        env.close()


def test_v3_continuous_refuses_a_string_action():
    env = make_and_reset(V3, {"action_mode": "continuous"})
    try:
        assert_rejected(lambda: env.step("x"), "action")
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ["lwmecps-v0", "lwmecps-v1", "lwmecps-v2"])
@FEW
@given(action=bad_discrete_actions(8))
def test_placement_refuses_actions_outside_the_space_and_keeps_working(env_id, action):
    env = make_and_reset(env_id, {})
    try:
        assert_rejected(lambda: env.step(action), "action")
        obs, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ["lwmecps-v0", "lwmecps-v3"])
def test_raw_class_refuses_step_before_reset(env_id):
    cls = gym.registry[env_id].entry_point
    mod, name = cls.split(":")
    import importlib

    env = getattr(importlib.import_module(mod), name)()
    assert_rejected(lambda: env.step(env.action_space.sample()), "reset")


# ---------------------------------------------------------------------------------------- kubeconfig bytes


@FEW
@given(data=st.one_of(st.binary(max_size=120), st.lists(st.sampled_from(
    [b"apiVersion: v1\n", b"kind: Config\n", b"clusters: [\n", b"- 1\n", b"current-context: nope\n",
     b"users: {}\n", b"\xff\xfe\n", b"contexts:\n  - name: c\n", b"\t\t: :\n", b"\x00"]), max_size=5).map(b"".join)))
def test_any_kubeconfig_bytes_give_a_clear_error_naming_the_file(tmp_path_factory, data):
    pytest.importorskip("kubernetes")
    from lwmecps_gym.backends.kubernetes import KubernetesConfig, _make_api_client
    from lwmecps_gym.core.backend import PermanentBackendError

    path = tmp_path_factory.mktemp("kc") / "kubeconfig"
    path.write_bytes(data)
    with pytest.raises(PermanentBackendError) as err:  # none of these is a usable kubeconfig
        _make_api_client(KubernetesConfig(kubeconfig=str(path)))
    assert str(path) in str(err.value)
