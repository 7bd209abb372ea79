"""Discrete SAC-GRU (marllb_env.sac_gru): losses against hand computations, the temperature
update, GRU burn-in, checkpoint round trip, and a short seeded run that learns."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from marllb_env.sac_gru import (  # noqa: E402
    SACGRU,
    GRUNet,
    SACGRUAgents,
    SACGRUConfig,
    actor_loss,
    burn_in_hidden,
    critic_loss,
    polyak_update,
    preset,
    soft_q_target,
)


def _np_softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_twin_q_target_matches_hand_computation():
    rng = np.random.default_rng(0)
    q1, q2, logits = (rng.normal(size=(2, 2, 3)) for _ in range(3))  # (batch, heads, levels)
    r, d, alpha, gamma = np.array([0.5, -1.0]), np.array([0.0, 1.0]), 0.3, 0.9
    y = soft_q_target(*(torch.tensor(v) for v in (r, d, q1, q2, logits)), alpha, gamma).numpy()
    p = _np_softmax(logits)
    expected = []
    for b in range(2):
        # V = mean over heads of E_pi_h[min(Q1, Q2)_h] + alpha * sum over heads of H(pi_h)
        ev = np.mean([np.dot(p[b, h], np.minimum(q1[b, h], q2[b, h])) for h in range(2)])
        ent = -sum(np.dot(p[b, h], np.log(p[b, h])) for h in range(2))
        expected.append(r[b] + gamma * (1 - d[b]) * (ev + alpha * ent))
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    assert y[1] == r[1]  # terminated: no bootstrap


def test_critic_and_actor_losses_match_hand_computation():
    q = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]])  # (1, heads 2, levels 3)
    a = torch.tensor([[2, 0]])
    y = torch.tensor([2.5])
    # chosen Q = (3, 4); squared errors (0.25, 2.25), mean 1.25
    assert float(critic_loss(q, a, y)) == pytest.approx(1.25)
    logits = torch.zeros(1, 2, 3)  # uniform: log pi = -log 3
    q2 = q + 1.0
    alpha = 0.5
    expected = sum(np.mean(alpha * -math.log(3) - np.array(row)) for row in ([1, 2, 3], [4, 5, 6]))
    assert float(actor_loss(logits, q, q2, alpha)) == pytest.approx(expected)


def _filled_learner(target_entropy, seed=0) -> SACGRU:
    cfg = SACGRUConfig(hidden=8, batch_episodes=2, learning_starts=1, seq_len=4, burn_in=2, lr=1e-3,
                       init_alpha=0.5, target_entropy=target_entropy)
    lr = SACGRU(obs_dim=3, heads=2, levels=3, config=cfg, seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(2):
        lr.store(rng.random((9, 3)), rng.integers(0, 3, (8, 2)), rng.random(8), np.zeros(8, bool))
    return lr


@pytest.mark.parametrize(("target", "sign"), [("paper", -1.0), (10.0, +1.0)])
def test_temperature_update_direction_and_size(target, sign):
    """log(alpha) moves against (entropy - target): with the paper's -|A| (below any discrete
    entropy) alpha falls, with a target above the maximum entropy 2 log 3 = 2.2 it rises. Adam's
    first step has size lr whatever the gradient's scale, so log(alpha) moves by exactly lr."""
    lr = _filled_learner(target)
    assert lr.target_entropy == (-2.0 if target == "paper" else 10.0)
    before = float(lr.log_alpha.detach())
    stats = lr.update()
    assert stats is not None and 0.0 <= stats["entropy"] <= 2 * math.log(3) + 1e-6
    assert float(lr.log_alpha.detach()) - before == pytest.approx(sign * 1e-3, rel=1e-3)


def test_burn_in_state_is_the_prefix_state_without_gradient():
    torch.manual_seed(0)
    net = GRUNet(in_dim=4, hidden=6, out_dim=2)
    prefix = torch.randn(3, 5, 4, requires_grad=True)
    has = torch.tensor([True, False, True])
    h = burn_in_hidden(net, prefix, has)
    assert h.shape == (1, 3, 6) and not h.requires_grad
    # step by step from the zero state over each row's prefix
    for b in range(3):
        hb = torch.zeros(1, 1, 6)
        with torch.no_grad():
            for k in range(5):
                _, hb = net.gru(net.encoder(prefix[b : b + 1, k : k + 1]), hb)
        want = hb[0, 0] if has[b] else torch.zeros(6)
        torch.testing.assert_close(h[0, b], want, rtol=1e-6, atol=1e-6)
    # a loss on the window after the burn-in sends no gradient into the prefix
    y, _ = net(torch.randn(3, 4, 4), h)
    y.sum().backward()
    assert prefix.grad is None
    assert net.gru.weight_hh_l0.grad is not None  # ... but trains the GRU on the window


def test_polyak_update():
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    wa, wb = a.weight.detach().clone(), b.weight.detach().clone()
    polyak_update(a, b, 0.25)
    torch.testing.assert_close(a.weight.detach(), 0.25 * wb + 0.75 * wa)


def test_presets_follow_the_paper_and_validate():
    assert (preset("moderate").hidden, preset("moderate").lr) == (128, 1e-3)
    assert (preset("large").hidden, preset("large").lr) == (512, 3e-4)
    for p in ("moderate", "large"):
        c = preset(p)
        assert (c.batch_episodes, c.buffer_episodes, c.updates_per_episode, c.learning_starts) == (12, 3000, 25, 25)
    with pytest.raises(ValueError, match="unknown SACGRUConfig fields"):
        preset("moderate", hiden=3)
    with pytest.raises(ValueError, match="target_entropy"):
        SACGRUConfig(target_entropy="auto")
    with pytest.raises(ValueError, match="obs must have 3 entries"):
        SACGRU(3, 2, 3, {"hidden": 8}).act(np.zeros(4))


def test_checkpoint_round_trip_gives_the_same_actions(tmp_path):
    agents = SACGRUAgents.independent(2, obs_dim=5, heads=3, levels=3, config={"hidden": 16}, seed=4)
    path = str(tmp_path / "isac.pt")
    _, jpath = agents.save(path, {"note": "x"})
    meta = json.loads(open(jpath).read())
    assert meta["kind"] == "i-sac" and meta["extra"] == {"note": "x"} and len(meta["learners"]) == 2
    torch.load(path, weights_only=True)  # plain tensors only
    other = SACGRUAgents.load(path)
    obs = np.random.default_rng(0).random((12, 10)).astype(np.float32) * 5
    agents.reset()
    other.reset()
    acts = [agents.act(o, {}) for o in obs]
    assert [a.tolist() for a in acts] == [other.act(o, {}).tolist() for o in obs]  # GRU state carried alike
    x = torch.randn(2, 7, agents.learners[1].in_dim)
    for a, b in zip(agents.learners, other.learners, strict=True):  # every network, not only the argmax
        for net in ("actor", "q1", "q2", "q1_target", "q2_target"):
            assert torch.equal(getattr(a, net)(x)[0], getattr(b, net)(x)[0])
        assert a.alpha == b.alpha


def test_store_checks_shapes():
    lr = SACGRU(3, 2, 3, {"hidden": 8})
    with pytest.raises(ValueError, match="episode needs obs"):
        lr.store(np.zeros((5, 3)), np.zeros((5, 2), int), np.zeros(5), np.zeros(5, bool))


def test_learns_to_weight_the_big_server():
    """1 LB, servers of 1 and 4 CPUs, weight levels (1, 4): random weights give a return of 30.8
    over 40 steps (20 seeds), the capacity weights (1, 4) 37.8, the inverse 26.9. Seeded run (30
    episodes x 5 updates, about 3 s): greedy SAC-GRU reaches 37.3 on 10 held-out seeds
    (measured; training seeds 0 and 2 of 0-2 reach it with this budget, seed 1 stays at equal
    weights, 31.6). The assertion asks for 3 above the random policy on the same seeds."""
    pytest.importorskip("pettingzoo")
    from lwmecps_gym.core.evaluation import evaluate
    from lwmecps_gym.core.policy import RandomPolicy
    from marllb_env.multi_agent import JointEnv

    torch.set_num_threads(1)
    kw = {"scenario": None, "n_lbs": 1, "servers": [1, 4], "weight_levels": (1.0, 4.0), "max_steps": 40,
          "workload": {"kind": "poisson", "rho": 0.9, "mean_size_s": 0.2}}
    env = JointEnv(**kw)
    cfg = SACGRUConfig(hidden=32, lr=3e-3, batch_episodes=8, learning_starts=4, updates_per_episode=5, seq_len=20,
                       burn_in=10, init_alpha=0.01)
    agents = SACGRUAgents.single(env.observation_space.shape[0], 2, 2, cfg, seed=0)
    for ep in range(30):
        obs, _ = env.reset(seed=ep)
        agents.reset()
        obs_seq, A, R, D = [obs], [], [], []
        done = False
        while not done:
            a = agents.joint_action(obs, explore=True)
            obs, r, term, trunc, _ = env.step(a)
            obs_seq.append(obs), A.append(a), R.append(r), D.append(term)
            done = term or trunc
        agents.store(np.array(obs_seq), np.array(A), np.array(R), np.array(D))
        for _ in range(cfg.updates_per_episode):
            agents.update()
    seeds = list(range(10_000, 10_010))
    learned = evaluate(lambda: JointEnv(**kw), agents, seeds=seeds).values("return").mean()
    random = evaluate(lambda: JointEnv(**kw), RandomPolicy(env.action_space), seeds=seeds).values("return").mean()
    assert learned > random + 3.0, (learned, random)
