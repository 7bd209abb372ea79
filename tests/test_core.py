"""Tests of the shared core: policy interface, evaluation harness, seeding, validation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pytest

from lwmecps_gym.core import evaluate, make_streams
from lwmecps_gym.core.evaluation import compare_table, mean_ci
from lwmecps_gym.core.policy import FunctionPolicy, RandomPolicy, SB3Policy, as_policy
from lwmecps_gym.core.validation import check_choice, check_float, check_int, check_keys, coerce_dataclass


class CountEnv(gym.Env):
    """Reward = action; 5 steps; info carries a per-step metric and an episode metric."""

    observation_space = gym.spaces.Box(0, 10, (1,), np.float32)
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.noise = float(self.np_random.normal())
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        info = {"metrics": {"latency_ms": 10.0 * self.t}}
        if self.t == 5:
            info["episode_metrics"] = {"noise": self.noise}
        return np.zeros(1, np.float32), float(action), False, self.t >= 5, info


def test_mean_ci_matches_student_t():
    x = [1.0, 2.0, 3.0, 4.0]
    m, h = mean_ci(x)
    assert m == 2.5
    # t_{0.975,3} = 3.182446; s = 1.290994
    assert h == pytest.approx(3.182446 * 1.290994 / 2, rel=1e-5)
    assert math.isnan(mean_ci([1.0])[1])


def test_evaluate_collects_metrics_and_returns():
    res = evaluate(CountEnv, FunctionPolicy(lambda o, i: 2, name="two"), n_episodes=3)
    assert res.policy == "two" and len(res.episodes) == 3
    assert res.seeds == [10_000, 10_001, 10_002]
    ep = res.episodes[0]
    assert ep["return"] == 10.0 and ep["length"] == 5.0
    assert ep["latency_ms"] == pytest.approx(30.0)  # mean of 10..50
    # episode metric depends on the seed: same seed -> same value, different seeds differ
    again = evaluate(CountEnv, lambda o, i: 2, seeds=[10_000])
    assert again.episodes[0]["noise"] == ep["noise"]
    assert res.episodes[1]["noise"] != ep["noise"]
    table = compare_table([res], ["return", "latency_ms"])
    assert "| two |" in table and "10.0" in table


def test_evaluate_argument_errors():
    with pytest.raises(ValueError, match="n_episodes"):
        evaluate(CountEnv, lambda o, i: 0)
    with pytest.raises(ValueError, match="disagrees"):
        evaluate(CountEnv, lambda o, i: 0, n_episodes=2, seeds=[1])
    with pytest.raises(TypeError, match="policy"):
        evaluate(CountEnv, 42, n_episodes=1)


def test_random_policy_is_seeded():
    p = RandomPolicy(gym.spaces.Discrete(100))
    p.reset(3)
    a = [p.act(None, {}) for _ in range(5)]
    p.reset(3)
    assert [p.act(None, {}) for _ in range(5)] == a


def test_sb3_policy_adapter_carries_recurrent_state():
    class FakeModel:
        def __init__(self):
            self.starts = []

        def predict(self, obs, state=None, episode_start=None, deterministic=False):
            self.starts.append(bool(episode_start[0]))
            return 1, (state or 0) + 1

    m = FakeModel()
    p = as_policy(m)
    assert isinstance(p, SB3Policy)
    p.reset(0)
    p.act(0, {})
    p.act(0, {})
    assert m.starts == [True, False] and p._state == 2
    p.reset(0)
    assert p._state is None


def test_streams_are_independent_and_reproducible():
    a = make_streams(np.random.default_rng(5))
    b = make_streams(np.random.default_rng(5))
    assert a.workload.random() == b.workload.random()
    b.system.random(100)  # drawing from system must not shift workload
    assert a.workload.random() == b.workload.random()
    assert make_streams(np.random.default_rng(6)).workload.random() != make_streams(
        np.random.default_rng(5)).workload.random()


def test_validation_messages_name_the_parameter():
    with pytest.raises(ValueError, match=r"scenario must be one of \['a', 'b'\], got 'c'"):
        check_choice("scenario", "c", ["a", "b"])
    with pytest.raises(ValueError, match="max_replicas must be >= 0"):
        check_int("max_replicas", -1, low=0)
    with pytest.raises(TypeError, match="max_replicas must be an integer"):
        check_int("max_replicas", 1.5)
    assert check_int("n", np.int64(3)) == 3
    with pytest.raises(ValueError, match="rate must be finite"):
        check_float("rate", float("nan"))
    with pytest.raises(ValueError, match=r"env_config has unknown keys \['x'\]"):
        check_keys("env_config", {"x": 1}, allowed=["base_url"])


def test_coerce_dataclass_round_trip():
    @dataclass(frozen=True)
    class Cfg:
        a: int = 1
        b: str = "x"

    assert coerce_dataclass(Cfg, {"a": 2}) == Cfg(2, "x")
    assert coerce_dataclass(Cfg, None) == Cfg()
    with pytest.raises(ValueError, match="unknown keys"):
        coerce_dataclass(Cfg, {"c": 1})


def test_retry_retries_transient_only_and_reraises_the_cause():
    from lwmecps_gym.core.backend import PermanentBackendError, TransientBackendError
    from lwmecps_gym.core.retry import with_retry

    calls = {"t": 0, "p": 0, "ok": 0}

    @with_retry(attempts=3, initial_s=0.001, max_s=0.002)
    def transient():
        calls["t"] += 1
        raise TransientBackendError("503 from apiserver")

    @with_retry(attempts=3, initial_s=0.001, max_s=0.002)
    def permanent():
        calls["p"] += 1
        raise PermanentBackendError("404 deployment web not found")

    @with_retry(attempts=3, initial_s=0.001, max_s=0.002)
    def flaky():
        calls["ok"] += 1
        if calls["ok"] < 3:
            raise TransientBackendError("429")
        return "scaled"

    with pytest.raises(TransientBackendError, match="503"):
        transient()
    with pytest.raises(PermanentBackendError, match="404"):
        permanent()
    assert flaky() == "scaled"
    assert calls == {"t": 3, "p": 1, "ok": 3}


def test_results_to_csv_writes_every_episode(tmp_path):
    import csv

    from lwmecps_gym.core.evaluation import results_to_csv

    a = evaluate(CountEnv, lambda o, i: 1, seeds=[1, 2], name="one")
    b = evaluate(CountEnv, lambda o, i: 2, seeds=[1, 2], name="two")
    path = tmp_path / "eps.csv"
    results_to_csv([a, b], str(path))
    rows = list(csv.DictReader(open(path)))
    assert [(r["policy"], r["seed"], float(r["return"])) for r in rows] == [
        ("one", "1", 5.0), ("one", "2", 5.0), ("two", "1", 10.0), ("two", "2", 10.0)]


def test_paired_table_differences_by_seed():
    from lwmecps_gym.core.evaluation import paired_table

    a = evaluate(CountEnv, lambda o, i: 1, seeds=[1, 2, 3], name="one")
    b = evaluate(CountEnv, lambda o, i: 2, seeds=[1, 2, 3], name="two")
    table = paired_table([a, b], "one", "return")
    assert "| two | 5.000 ± 0.000 |" in table  # every paired difference is exactly 5
    with pytest.raises(ValueError, match="reference must be one of"):
        paired_table([a, b], "three", "return")
    c = evaluate(CountEnv, lambda o, i: 2, seeds=[4, 5, 6], name="other-seeds")
    with pytest.raises(ValueError, match="same seeds"):
        paired_table([a, c], "one", "return")


def test_grown_keeps_contents_dtype_and_doubles():
    from lwmecps_gym.core.compiled import grown

    a = np.arange(6, dtype=np.int64).reshape(2, 3)
    assert grown(a, 2) is a  # room enough: the same array
    g = grown(a, 3)
    assert g.shape == (4, 3) and g.dtype == np.int64  # doubled (max(3, 2 * 2)), dtype kept
    assert np.array_equal(g[:2], a) and not g[2:].any()
    h = grown(a, 9, axis=1)  # beyond doubling: exactly the size asked for, along axis 1
    assert h.shape == (2, 9) and np.array_equal(h[:, :3], a) and not h[:, 3:].any()
    assert grown(np.zeros((0, 3)), 5).shape == (5, 3)
