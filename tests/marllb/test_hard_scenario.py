"""The hard scenario ``hidden_drift`` (marllb_env/LoadBalanceHard-v0): hidden drifting capacities,
its oracle, its tuned baselines and its leaderboard declaration."""

import gymnasium as gym
import numpy as np
import pytest

import marllb_env  # noqa: F401  (registers the ids)
from lwmecps_gym.core.benchmark import headroom
from lwmecps_gym.core.evaluation import evaluate
from marllb_env.baselines import SED, FCTAdaptiveSED
from marllb_env.benchmark import HARD_ID, TASKS, hard_baselines, hard_oracles
from marllb_env.drift import CapacityDrift, DriftProcess
from marllb_env.oracles import TrueCapacitySED


def _capacities(seed, policy_action, steps=240):
    env = gym.make(HARD_ID)
    obs, info = env.reset(seed=seed)
    caps = [info["true_capacity"]]
    cfg = info["configured_capacity"]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(policy_action(env))
        caps.append(info["true_capacity"])
        np.testing.assert_array_equal(info["configured_capacity"], cfg)  # the LB's view never changes
    assert np.array_equal(info["true_capacity"], env.unwrapped.true_capacity())
    env.close()
    return np.array(caps), cfg


def test_true_capacity_hidden_drifts_and_does_not_depend_on_the_policy():
    mid = _capacities(3, lambda env: np.zeros(8, np.float32))
    rnd = _capacities(3, lambda env: env.action_space.sample())
    np.testing.assert_array_equal(mid[0], rnd[0])  # the drift is the seed's, not the policy's
    caps, cfg = mid
    assert cfg.tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    assert np.all(caps < cfg + 1e-12) and np.all(caps > 0)  # speeds in (0, 1] per core
    assert not np.allclose(caps[0] / caps[0].max(), cfg / cfg.max())  # configured ratios are wrong
    changed = (np.diff(caps, axis=0) != 0).any(axis=0)
    assert changed.sum() >= 4  # 60 s: most servers see a neighbour come or go (mean 10 s on, 20 s off)
    other, _ = _capacities(4, lambda env: np.zeros(8, np.float32), steps=1)
    assert not np.array_equal(other[0], caps[0])


def test_drift_process_long_run_mean_matches_closed_form():
    # Over many independent servers: the hidden base speeds have the log-uniform mean, and the
    # time-average share left by neighbours is 1 - P(on) * E[steal]; their product is
    # CapacityDrift.mean_speed_factor(). Tolerances: 4 standard errors over independent servers.
    d = CapacityDrift()
    n, horizon = 1000, 600.0
    proc = DriftProcess(d, n, np.random.default_rng(0))
    per_server = [[] for _ in range(n)]
    for t, j, speed in proc.events_until(horizon):
        per_server[j].append((t, speed))
    share = np.zeros(n)
    for j, ej in enumerate(per_server):
        times = [t for t, _ in ej]
        assert times == sorted(times) and times[0] == 0.0
        ej = ej + [(horizon, 0.0)]
        share[j] = sum(s * (t1 - t0) for (t0, s), (t1, _) in zip(ej, ej[1:], strict=False)) / horizon / proc.base[j]
    lo, hi = d.base_speed_range
    for values, theory in (
        (proc.base, (hi - lo) / np.log(hi / lo)),
        (share, 1.0 - d.neighbour_on_mean_s / (d.neighbour_on_mean_s + d.neighbour_off_mean_s) * np.mean(d.steal_range)),
    ):
        se = values.std(ddof=1) / np.sqrt(n)
        assert se < 0.02 * theory
        assert abs(values.mean() - theory) < 4 * se
    assert d.mean_speed_factor() == pytest.approx((hi - lo) / np.log(hi / lo) * (1 - 1 / 3 * 0.65))
    # lazily extended schedules continue the same process: nothing is emitted twice
    assert proc.events_until(horizon) == []
    assert all(t > horizon for t, _, _ in proc.events_until(horizon + 100.0))


def test_capacity_drift_validation():
    with pytest.raises(ValueError, match="unknown keys"):
        CapacityDrift.from_spec({"steal": (0.1, 0.2)})
    with pytest.raises(ValueError, match="steal_range"):
        CapacityDrift(steal_range=(0.5, 1.0))
    with pytest.raises(ValueError, match="base_speed_range"):
        CapacityDrift(base_speed_range=(1.0, 0.5))
    with pytest.raises(ValueError, match="neighbour_on_mean_s"):
        CapacityDrift(neighbour_on_mean_s=0)
    with pytest.raises(ValueError, match="backend"):
        gym.make(HARD_ID, backend="shm")
    # a drift given as a mapping overrides the scenario's
    env = gym.make(HARD_ID, capacity_drift={"base_speed_range": (1.0, 1.0), "steal_range": (0.0, 0.0)})
    _, info = env.reset(seed=0)
    np.testing.assert_allclose(info["true_capacity"], info["configured_capacity"])


def test_oracle_needs_true_capacity_and_baselines_never_read_it():
    with pytest.raises(KeyError, match="true_capacity"):
        evaluate("marllb_env/LoadBalance-v0", TrueCapacitySED(), seeds=[0], step_limit=2)

    class Hide(gym.Wrapper):  # the non-clairvoyant controllers must run without the clairvoyant key
        def reset(self, **kw):
            obs, info = self.env.reset(**kw)
            info.pop("true_capacity")
            return obs, info

        def step(self, action):
            out = self.env.step(action)
            out[4].pop("true_capacity")
            return out

    for p in hard_baselines():
        res = evaluate(Hide(gym.make(HARD_ID)), p, seeds=[0], step_limit=40)
        assert res.episodes[0]["length"] == 40
        assert 0 < res.episodes[0]["fct_mean_s"] < 5  # an episode cut short still reports its running mean FCT


def test_oracle_beats_every_tuned_baseline_by_the_documented_margin():
    # The headroom claim on 4 training seeds (the docs report 20 held-out seeds): the oracle's mean
    # FCT is below the best non-clairvoyant baseline's by more than 5% (measured: ~15-19%), and it
    # wins on every seed against the adaptive heuristic.
    seeds = [0, 1, 2, 3]
    fct = {p.name: evaluate(HARD_ID, p, seeds=seeds).values("fct_mean_s") for p in hard_baselines() + hard_oracles()}
    oracle = fct.pop(TrueCapacitySED.name)
    best = min(fct, key=lambda k: fct[k].mean())
    assert headroom(oracle.mean(), fct[best].mean(), higher_is_better=False) > 0.05
    adaptive = next(v for k, v in fct.items() if k.startswith("FCT-adaptive"))
    assert np.all(oracle < adaptive)
    assert fct[SED().name].mean() > adaptive.mean()  # adapting to measured latency beats the vCPU weights


def test_benchmark_task_declaration():
    (task,) = TASKS
    assert task.env_id == HARD_ID and task.metric == "fct_mean_s" and not task.higher_is_better
    assert [r.name for r in task.recipes] == ["PPO", "ResidualPPO"]
    assert set(task.eval_seeds).isdisjoint(range(1000))  # tuning seeds 0..7, training seeds seed*1000+k
    env = task.make_env()
    names = [p.name for p in task.baselines(env)] + [p.name for p in task.oracles(env)]
    assert len(set(names)) == len(names)
    env.close()


def test_fct_adaptive_sed_lowers_the_weight_of_the_slow_server():
    class Codec:
        n, action_type, w_min, w_max = 3, "continuous", 0.1, 10.0

    p = FCTAdaptiveSED(smoothing=0.5, floor=0.2)
    p.reset()
    obs = np.zeros((3, 11), np.float32)
    obs[:, 1] = [0.2, 0.2, 0.8]  # fct_avg: server 2 is 4x slower
    info = {"weight_codec": Codec, "configured_capacity": np.ones(3)}
    w = p.weights(obs, info)
    np.testing.assert_allclose(w, [1.0, 1.0, 0.625])  # 0.5 * 1 + 0.5 * 0.25
    for _ in range(20):
        w = p.weights(obs, info)
    np.testing.assert_allclose(w, [1.0, 1.0, 0.25], atol=1e-5)
    obs[:, 1] = [0.2, 0.0, 0.8]  # a server without samples is explored (treated as the best)
    assert p.weights(obs, info)[1] == 1.0
    obs[:, 1] = [0.2, 0.2, 100.0]
    for _ in range(50):
        w = p.weights(obs, info)
    assert w[2] == pytest.approx(0.2)  # the floor keeps every server sampled
    with pytest.raises(ValueError, match="feature"):
        FCTAdaptiveSED(feature="n_flow_on")
    with pytest.raises(ValueError, match="11 MARLLB feature columns"):
        p.weights(np.zeros((3, 6)), info)
