"""Property tests: faas_gym constructors, workloads, trace files, resets and actions refuse bad input.

Each case draws values that MUST be rejected (tests/support/badinput.py) for one argument of
``gym.make(id, ...)`` + ``reset(seed=0)``; the error must be ValueError/TypeError/FileNotFoundError
(or a gymnasium.error) naming the argument. Azure-format trace files made of arbitrary bytes either
load or raise naming the file; actions outside the space are refused naming ``action`` and the env
keeps working.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import faas_gym  # noqa: F401 (registers the ids)
from faas_gym.workloads import AzureTraceReplay, make_workload
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


def sim(key: str) -> Callable[[Any], dict]:
    return lambda v: {"sim_config": {key: v}}


def workload(kind: str, key: str) -> Callable[[Any], dict]:
    return lambda v: {"sim_config": {"workload": {"kind": kind, key: v}}}


A, T = "faas_gym/Autoscaling-v0", "FaaSTrainGym-v1"
POS = bad_real(0.0, low_open=True)
NONNEG = bad_real(0.0)

CASES = [
    Case(A, ("interval_s",), POS, kw("interval_s")),
    Case(A, ("slo_ms",), POS, kw("slo_ms")),
    Case(A, ("w_slo",), NONNEG, kw("w_slo")),
    Case(A, ("w_cost",), NONNEG, kw("w_cost")),
    Case(A, ("w_cold_start",), NONNEG, kw("w_cold_start")),
    Case(A, ("w_drop",), NONNEG, kw("w_drop")),
    Case(A, ("response_time_cap_ms",), POS, kw("response_time_cap_ms")),
    Case(A, ("rate_cap_rps",), POS, kw("rate_cap_rps")),
    Case(A, ("start_time_of_day_s",), bad_real(0.0, 86400.0), kw("start_time_of_day_s")),
    Case(A, ("min_replicas",), bad_int(low=0), kw("min_replicas")),
    Case(A, ("max_replicas",), bad_int(low=1), kw("max_replicas")),
    Case(A, ("initial_replicas",), bad_int(low=1, high=16), kw("initial_replicas")),
    Case(A, ("queue_cap",), bad_int(low=1), kw("queue_cap")),
    Case(A, ("action_mode",), bad_choice(["delta", "scale_up_down"]), kw("action_mode")),
    Case(A, ("backend",), bad_choice(["sim", "openfaas"]), kw("backend")),
    Case(A, ("deltas",), not_a_sequence(), kw("deltas")),
    Case(A, ("deltas",), st.lists(st.sampled_from([1.5, "1", None, True, math.nan]), min_size=1, max_size=3),
         kw("deltas")),
    Case(A, ("backend_kwargs",), st.sampled_from([{"timeout_s": 5}, {"x": 1}]), kw("backend_kwargs")),
    Case(A, ("cold_start_s",), NONNEG, sim("cold_start_s")),
    Case(A, ("keep_alive_s",), NONNEG, sim("keep_alive_s")),
    Case(A, ("memory_limit_mb",), POS, sim("memory_limit_mb")),
    Case(A, ("concurrency",), bad_int(low=1), sim("concurrency")),
    Case(A, ("queue_capacity",), bad_int(low=0), sim("queue_capacity")),
    Case(A, ("model",), bad_choice(["fluid", "des"]), sim("model")),
    Case(A, ("initial_replicas",), bad_int(low=1, high=16), sim("initial_replicas")),
    Case(A, ("sim_config",), st.sampled_from([5, "x", [1], {"bogus": 1}]), kw("sim_config")),
    Case(A, ("workload",), st.sampled_from([5, "x", [1], {"kind": "bogus"}, {"kind": "poisson", "bogus": 1}]),
         sim("workload")),
    Case(A, ("rate_rps",), NONNEG, workload("poisson", "rate_rps")),
    Case(A, ("mean_rps",), NONNEG, workload("diurnal", "mean_rps")),
    Case(A, ("amplitude",), bad_real(0.0, 1.0), workload("diurnal", "amplitude")),
    Case(A, ("peak_s",), bad_real(), workload("diurnal", "peak_s")),
    Case(A, ("path",), st.sampled_from([None, 5, "/no/such/file.csv", b"/tmp"]), workload("azure_trace", "path")),
    Case(T, ("interval_s", "sample_interval"), POS, kw("sample_interval")),
    Case(T, ("slo_ms",), POS, kw("slo_ms")),
]

@pytest.mark.parametrize("case", list(case_params(CASES)))
def test_constructor_and_reset_refuse_out_of_contract_values(case):
    check_constructor_case(case)


# ---------------------------------------------------------------------------------------- trace files


@FEW
@given(data=st.one_of(
    st.binary(min_size=0, max_size=300),
    st.lists(st.sampled_from([b"HashOwner,HashApp,HashFunction,Trigger,1,2\n", b"o,a,f,http,1,2\n",
                              b"o,a,f,http,-1,x\n", b"\xff\xfe\x00", b"o,a,f\n", b"\n", b"o,a,g,http,3.5,nan\n"]),
             min_size=1, max_size=5).map(b"".join)))
def test_azure_trace_bytes_load_or_fail_naming_the_file(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("trace") / "invocations.csv"
    path.write_bytes(data)
    try:
        wl = AzureTraceReplay.from_csv(path)
    except (ValueError, TypeError) as exc:
        assert str(path) in str(exc), str(exc)
        return
    assert all(isinstance(c, int) and c >= 0 for c in wl.counts_per_minute)
    assert math.isfinite(wl.mean_rate_rps())


def test_binary_trace_names_file_and_line(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(b"HashOwner,HashApp,HashFunction,Trigger,1\n\xff\xfe\xfa binary\n")
    with pytest.raises(ValueError, match=r"garbage\.csv.*line 2"):
        make_workload({"kind": "azure_trace", "path": str(path)})


# ---------------------------------------------------------------------------------------- seeds, actions


@FEW
@given(seed=bad_seed())
def test_reset_refuses_bad_seeds(seed):
    env = make_and_reset(A, {})
    try:
        assert_rejected(lambda: env.reset(seed=seed), "seed")
        env.reset(seed=1)
    finally:
        env.close()


@pytest.mark.parametrize(("env_id", "n"), [(A, 3), (T, 11)])
@FEW
@given(action=st.data())
def test_actions_outside_the_space_are_refused_and_the_env_keeps_working(env_id, n, action):
    bad = action.draw(st.one_of(st.integers(max_value=-1), st.integers(min_value=n), st.sampled_from(
        [1.5, math.nan, "1", None, [0, 1], np.array([1, 2]), {"a": 1}])))
    env = make_and_reset(env_id, {})
    try:
        assert_action_rejected(env, bad)
    finally:
        env.close()


@pytest.mark.parametrize("action", [1.0, np.float64(1.0), np.array(1.0)])
def test_float_actions_are_refused(action):
    env = make_and_reset(A, {})
    try:
        assert_rejected(lambda: env.step(action), "action")
    finally:
        env.close()
