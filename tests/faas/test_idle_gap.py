"""IdleGapPolicy: keep-alive and pre-warming by idle time (a tuned baseline of the bursty task)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import faas_gym  # noqa: F401
from faas_gym.baselines import IdleGapPolicy, StaticPolicy
from faas_gym.benchmark import BURSTY_ID
from lwmecps_gym.core.evaluation import evaluate


def _targets(policy, arrivals):
    out = []
    for a in arrivals:
        out.append(policy.desired_replicas({"arrived": a, "replicas_desired": 1}))
    return out


def test_targets_follow_the_idle_run_length():
    p = IdleGapPolicy(busy_replicas=7, idle_replicas=1, drop_after=2, rewarm_after=4, max_replicas=16)
    arrivals = [5, 0, 0, 0, 0, 0, 3, 0, 2]
    #            busy, keep-alive, idle, idle, pre-warm (4 and 5 empty), busy, keep-alive, busy
    assert _targets(p, arrivals) == [7, 7, 1, 1, 7, 7, 7, 7, 7]
    p.reset()
    assert p.idle_intervals == 0 and _targets(p, [0, 0]) == [7, 1]


@pytest.mark.parametrize(("kw", "name"), [
    ({"busy_replicas": 0}, "busy_replicas"),
    ({"busy_replicas": 4, "idle_replicas": 5}, "idle_replicas"),
    ({"drop_after": 0}, "drop_after"),
    ({"drop_after": 3, "rewarm_after": 3}, "rewarm_after"),
    ({"busy_replicas": 17}, "busy_replicas"),
])
def test_bad_parameters_are_named(kw, name):
    with pytest.raises(ValueError, match=name):
        IdleGapPolicy(**{"max_replicas": 16, **kw})


def test_on_the_fluid_bursty_scenario_it_beats_the_static_level_it_keeps_while_busy():
    # fast fluid model for test time; the leaderboard measures the DES (docs/faas_gym.md)
    env = gym.make(BURSTY_ID, sim_config={**faas_gym.BURSTY_SIM, "model": "fluid"})
    seeds = [10_000, 10_001]
    gap = evaluate(env, IdleGapPolicy.from_env(env, busy_replicas=7, idle_replicas=1, drop_after=1, rewarm_after=6),
                   seeds=seeds)
    static = evaluate(env, StaticPolicy.from_env(env, replicas=7), seeds=seeds)
    assert np.mean(gap.values("replica_seconds")) < 0.9 * np.mean(static.values("replica_seconds"))
    assert np.mean(gap.values("return")) > np.mean(static.values("return"))
