"""rgb_array pictures of faas_gym and marllb_env: shapes, what the panels show, history per episode,
no backend switch, and the same render-mode rule as lwmecps (warn without a render mode)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import faas_gym  # noqa: F401  (registers ids)
import marllb_env  # noqa: F401

matplotlib = pytest.importorskip("matplotlib")

FAAS = "faas_gym/Autoscaling-v0"
LB = "marllb_env/LoadBalance-v0"


@pytest.mark.parametrize("env_id", [FAAS, LB])
def test_rgb_frame_shape_backend_and_change_over_episode(env_id):
    backend = matplotlib.get_backend()
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (720, 960, 3) and first.dtype == np.uint8 and first.std() > 0
    for _ in range(5):
        env.step(env.action_space.sample())
    later = env.render()
    assert later.shape == first.shape and np.any(later != first)
    assert matplotlib.get_backend() == backend
    env.close()


@pytest.mark.parametrize("env_id", [FAAS, LB])
def test_render_without_mode_warns_and_returns_none(env_id):
    env = gym.make(env_id, disable_env_checker=True)
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


def test_faas_frame_plots_the_recorded_episode():
    from faas_gym.rendering import FaasRenderer

    env = gym.make(FAAS)
    u = env.unwrapped
    r = FaasRenderer(u.slo_ms, u.max_replicas, FAAS)
    env.reset(seed=1)
    r.record(u.last_measurement)
    for a in (2, 2, 2, 1, 0, 0):
        env.step(a)
        r.record(u.last_measurement)
        r.record(u.last_measurement)  # the same record twice counts once
    assert len(r.history) == 7
    fig = r.figure()
    ax_demand, ax_rep, ax_rt, ax_cold = fig.get_axes()[:4]
    ready = next(line for line in ax_rep.get_lines() if line.get_label() == "ready")
    assert ready.get_ydata().tolist() == [m.replicas for m in r.history]
    slo = next(line for line in ax_rt.get_lines() if line.get_label().startswith("SLO"))
    assert slo.get_ydata()[0] == pytest.approx(u.slo_ms)
    assert sum(p.get_height() for p in ax_cold.patches) == sum(m.cold_starts for m in r.history)
    # a new episode (time goes back) starts a new history
    env.reset(seed=2)
    r.record(u.last_measurement)
    assert len(r.history) == 1


def test_lb_frame_shows_weights_cpu_and_running_fct():
    from marllb_env.backend import SimBackend
    from marllb_env.rendering import LBRenderer

    backend = SimBackend([1.0, 1.0, 2.0, 2.0], {"kind": "poisson", "rho": 0.9, "mean_size_s": 1.0})
    backend.reset(seed=0)
    r = LBRenderer(LB)
    rng = np.random.default_rng(0)
    for _ in range(40):
        weights = rng.choice([1.0, 1.5, 2.0], size=4)
        backend.apply_weights(weights)
        backend.advance(0.25)
        r.record(backend.observe(), weights, capacity=[1, 1, 2, 2])
    fig = r.figure()
    aw, af, ac, at = fig.get_axes()[:4]
    assert [p.get_height() for p in aw.patches] == pytest.approx(list(weights))
    assert [t.get_text() for t in aw.get_xticklabels()] == ["s0\n1", "s1\n1", "s2\n2", "s3\n2"]
    assert all(0.0 <= p.get_height() <= 1.0 for p in ac.patches)
    run = next(line for line in at.get_lines() if line.get_label() == "running mean FCT")
    fs = [m.flow_stats for m, _ in r.history]
    expect = sum(f["fct_sum_s"] for f in fs) / sum(f["completed"] for f in fs)
    assert run.get_ydata()[-1] == pytest.approx(expect)


def test_multi_lb_frame_has_one_bar_per_lb_and_server():
    from marllb_env.multi_agent import MultiLoadBalanceEnv

    env = MultiLoadBalanceEnv("seed_4x4", max_steps=10, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(5):
        env.step({a: rng.integers(0, 3, env.n_servers) for a in env.agents})
    frame = env.render()
    assert frame.shape == (720, 960, 3) and frame.std() > 0
    with pytest.warns(UserWarning, match="render_mode"):
        assert MultiLoadBalanceEnv("seed_4x4", max_steps=10).render() is None


def test_lwmecps_map_frame_has_legend_scale_colourbar_and_timeline():
    import lwmecps_gym  # noqa: F401
    from lwmecps_gym.rendering import MapRenderer

    env = gym.make("lwmecps-v3", render_mode="rgb_array")
    env.reset(seed=0)
    for _ in range(4):
        env.step(env.action_space.sample())
    frame = env.render()
    assert frame.shape == (720, 960, 3) and frame.std() > 0
    r = MapRenderer()
    u = env.unwrapped
    r.record(u.last_measurement)
    fig = r.figure(u)
    ax, cax, tax = fig.get_axes()[:3]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "user (colour: serving site)" in labels and "edge site (size: ready replicas)" in labels
    assert any(t.get_text().endswith(" km") for t in ax.texts)  # scale bar (Melbourne has coordinates)
    assert "site latency (ms)" in cax.get_ylabel()
    lat = next(line for line in tax.get_lines() if line.get_label() == "mean latency")
    assert lat.get_ydata()[-1] == pytest.approx(u.last_measurement.mean_latency_ms)


def test_serving_site_follows_home_then_failover_order():
    import lwmecps_gym  # noqa: F401
    from lwmecps_gym.rendering import serving_site

    sc = gym.make("lwmecps-v3").unwrapped.scenario
    home = sc.bs_home_node()[sc.user_bs]
    n = sc.n_nodes
    assert np.array_equal(serving_site(sc, [1] * n), home)
    ready = [1] * n
    ready[0] = 0
    serve = serving_site(sc, ready)
    order = [int(e) for e in np.argsort(sc.site_rtt_ms()[0], kind="stable") if e != 0]
    assert np.all(serve[home == 0] == order[0]) and np.all(serve[home != 0] == home[home != 0])
    assert np.all(serving_site(sc, [0] * n) == -1)
