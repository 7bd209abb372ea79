"""Discrete SAC over GRU encoders (MARLLB's SAC-GRU), and its I-SAC / S-SAC groupings.

Imports torch: import this module only when training or evaluating a learned agent
(``import marllb_env`` does not import it).

Algorithm
---------
Discrete soft actor-critic (Christodoulou 2019, arXiv 1910.07207) with recurrent networks, as
MARLLB's ``sac_gru_discrete.py`` (Yao, Ding, Clausen, CIKM'22, section 4 and Table 2; facts in the
reference notes, sections 1.2-1.3):

* **Networks**: MARLLB's agent architecture, ``2 FC -> GRU -> 2 FC`` (ReLU), one for the actor
  and one for each of the twin critics, each with its own GRU state. The input at step ``t`` is
  ``log1p(o_t)`` (the features are counts and seconds >= 0; ``log1p`` puts both on an O(1)
  scale without statistics to carry) and the one-hot of the previous action ``a_{t-1}``
  (zeros at ``t = 0``): the weights the agent set are part of what it needs to remember.
* **Factorised heads**: the action is ``MultiDiscrete([K] * heads)`` (one weight level per
  server). The actor outputs ``heads`` independent categoricals ``pi_h``; each critic outputs
  ``Q_h(s, a_h)`` per head, the expected return given head ``h``'s choice with the other heads
  following the policy (the marginal of the joint ``Q``). Then, for every head,
  ``E_pi[Q(s, a)] = sum_a pi_h(a) Q_h(s, a)``, and with the joint entropy
  ``H(pi) = sum_h H(pi_h)``:

  - soft value: ``V(s) = mean_h sum_a pi_h(a) min(Q1'_h, Q2'_h)(s, a) + alpha * sum_h H(pi_h)(s)``
  - twin-Q target: ``y = r + gamma * (1 - terminated) * V(s')`` (target critics, current actor)
  - critic loss: ``mean over (batch, time, heads) of (Q_i,h(s, a_h) - y)^2`` for ``i = 1, 2``
  - actor loss: ``mean over (batch, time) of sum_h sum_a pi_h(a) (alpha log pi_h(a) - min(Q1, Q2)_h(s, a))``
  - temperature loss: ``log(alpha) * (H(pi)(s) - H_target)`` (so ``alpha`` falls while the policy
    is more random than the target and rises otherwise)
  - target critics: Polyak averaging ``theta' <- tau theta + (1 - tau) theta'`` after every update.

* **Target entropy**: ``"paper"`` (default) is MARLLB's Table 2, ``-|A|`` with ``|A|`` the
  action dimension (``heads``), as continuous SAC's ``-dim(A)``. A discrete entropy is never
  negative, so with this target ``alpha`` decreases monotonically: it acts as an annealing
  schedule of the temperature (by about ``lr`` in ``log alpha`` per update with Adam).
  ``"max_ratio"`` is Christodoulou's ``0.98 * heads * log K`` (98% of the maximum entropy); a
  float sets the target directly.
* **Replay**: whole episodes (MARLLB: 3000), sampled as windows of ``seq_len`` steps that start
  at the episode's start (true zero GRU state) or at ``t0 >= burn_in``, where the GRU states come
  from the ``burn_in`` steps before ``t0`` run without gradient from the zero state (R2D2,
  Kapturowski et al. 2019). Updates start once more than ``learning_starts`` episodes are stored
  (MARLLB: 25); ``updates_per_episode`` gradient steps follow each episode (MARLLB: 25).

Checkpoints are ``torch.save`` of plain state dicts (loadable with ``weights_only=True``) plus
a JSON file with the configuration and dimensions; nothing is unpickled.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lwmecps_gym.core.policy import BasePolicy
from lwmecps_gym.core.validation import check_choice, check_float, check_int


@dataclass
class SACGRUConfig:
    """Hyper-parameters of :class:`SACGRU` (defaults: MARLLB's moderate scale, Table 2).

    Attributes:
        hidden: width of every FC layer and of the GRU (paper: 128 moderate, 512 large).
        lr: Adam learning rate of actor, critics and temperature (paper: 1e-3 / 3e-4).
        gamma: discount factor (0.99).
        tau: Polyak coefficient of the target critics (0.005, Haarnoja et al. 2018).
        batch_episodes: episodes (windows) per gradient step (paper: 12).
        buffer_episodes: replay capacity in episodes (paper: 3000).
        updates_per_episode: gradient steps after each collected episode (paper: 25).
        learning_starts: updates start once more than this many episodes are stored (paper: 25).
        seq_len: steps per training window.
        burn_in: steps of GRU prefix before a window, run without gradient.
        target_entropy: ``"paper"`` (``-heads``), ``"max_ratio"`` (``0.98 heads log K``) or a float.
        init_alpha: initial temperature.
        grad_clip: gradient-norm clip of actor and critics.
    """

    hidden: int = 128
    lr: float = 1e-3
    gamma: float = 0.99
    tau: float = 0.005
    batch_episodes: int = 12
    buffer_episodes: int = 3000
    updates_per_episode: int = 25
    learning_starts: int = 25
    seq_len: int = 40
    burn_in: int = 20
    target_entropy: str | float = "paper"
    init_alpha: float = 1.0
    grad_clip: float = 10.0

    def __post_init__(self) -> None:
        for name in ("hidden", "batch_episodes", "buffer_episodes", "seq_len"):
            check_int(name, getattr(self, name), low=1)
        for name in ("updates_per_episode", "learning_starts", "burn_in"):
            check_int(name, getattr(self, name), low=0)
        check_float("lr", self.lr, low=0.0, low_open=True)
        check_float("gamma", self.gamma, low=0.0, high=1.0)
        check_float("tau", self.tau, low=0.0, high=1.0, low_open=True)
        check_float("init_alpha", self.init_alpha, low=0.0, low_open=True)
        check_float("grad_clip", self.grad_clip, low=0.0, low_open=True)
        if isinstance(self.target_entropy, str):
            check_choice("target_entropy", self.target_entropy, ("paper", "max_ratio"))
        else:
            check_float("target_entropy", self.target_entropy)


#: MARLLB Table 2 presets (both: batch 12, replay 3000 episodes, 25 updates per episode,
#: training after > 25 episodes, target entropy -|A|). The paper trains 72 episodes of 60 s
#: (moderate) or 30 s (large) at 0.25 s per step: see :data:`PAPER_SCHEDULE`.
PRESETS: dict[str, SACGRUConfig] = {
    "moderate": SACGRUConfig(hidden=128, lr=1e-3),
    "large": SACGRUConfig(hidden=512, lr=3e-4),
}
#: The paper's training schedule per scale: episodes, episode length in steps of 0.25 s.
PAPER_SCHEDULE: dict[str, dict[str, int]] = {
    "moderate": {"episodes": 72, "episode_steps": 240},
    "large": {"episodes": 72, "episode_steps": 120},
}


def preset(name: str, **overrides: Any) -> SACGRUConfig:
    """A copy of :data:`PRESETS` ``[name]`` with ``overrides`` applied (``ValueError`` on unknown names)."""
    check_choice("preset", name, tuple(PRESETS))
    known = {f.name for f in fields(SACGRUConfig)}
    bad = sorted(set(overrides) - known)
    if bad:
        raise ValueError(f"unknown SACGRUConfig fields {bad}; allowed: {sorted(known)}")
    return SACGRUConfig(**{**asdict(PRESETS[name]), **overrides})


# ---------------------------------------------------------------------------------- networks
class GRUNet(nn.Module):
    """MARLLB's recurrent agent network: ``Linear-ReLU-Linear-ReLU -> GRU -> Linear-ReLU-Linear``.

    ``forward(x (B, T, in_dim), h (1, B, hidden) or None) -> (y (B, T, out_dim), h (1, B, hidden))``.
    """

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.hidden = hidden
        self.encoder = nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.decoder = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        y, h = self.gru(self.encoder(x), h)
        return self.decoder(y), h


@torch.no_grad()
def burn_in_hidden(net: GRUNet, prefix: torch.Tensor, has_prefix: torch.Tensor) -> torch.Tensor:
    """GRU state after a burn-in prefix, computed without gradient.

    Args:
        net: the network whose GRU state is wanted.
        prefix: ``(B, P, in_dim)`` inputs of the ``P`` steps before each window.
        has_prefix: ``(B,)`` bool; ``False`` for windows that start at the episode's start (their
            state is the zero state and their prefix rows are ignored).

    Returns:
        ``(1, B, hidden)``: the state after running ``net``'s encoder and GRU over the prefix from
        the zero state (zero where ``has_prefix`` is False); detached (``requires_grad`` False).
    """
    b, p = prefix.shape[:2]
    h = torch.zeros(1, b, net.hidden)
    if p == 0:
        return h
    _, h_end = net.gru(net.encoder(prefix), h)
    return torch.where(has_prefix.view(1, b, 1), h_end, h)


# ------------------------------------------------------------------------------------ losses
def soft_value(q1: torch.Tensor, q2: torch.Tensor, logits: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """Soft state value of the factorised policy.

    Args:
        q1, q2: ``(..., heads, K)`` per-head action values of the twin (target) critics.
        logits: ``(..., heads, K)`` actor logits.
        alpha: temperature.

    Returns:
        ``(...)``: ``mean_h sum_a pi_h(a) min(q1, q2)_h(a) + alpha * sum_h H(pi_h)``.
    """
    logp = F.log_softmax(logits, dim=-1)
    p = logp.exp()
    q = torch.minimum(q1, q2)
    return (p * q).sum(-1).mean(-1) - alpha * (p * logp).sum(-1).sum(-1)


def soft_q_target(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    q1_next: torch.Tensor,
    q2_next: torch.Tensor,
    logits_next: torch.Tensor,
    alpha: torch.Tensor | float,
    gamma: float,
) -> torch.Tensor:
    """Twin-Q soft Bellman target ``y = r + gamma * (1 - terminated) * V(s')`` (see :func:`soft_value`).

    Args:
        reward, terminated: ``(...)`` float tensors (terminated in {0, 1}).
        q1_next, q2_next: ``(..., heads, K)`` target critics at ``s'``.
        logits_next: ``(..., heads, K)`` actor logits at ``s'``.

    Returns:
        ``(...)`` targets (no gradient is needed through them; call under ``torch.no_grad``).
    """
    return reward + gamma * (1.0 - terminated) * soft_value(q1_next, q2_next, logits_next, alpha)


def critic_loss(q: torch.Tensor, actions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean (Q_h(s, a_h) - y)^2`` over batch, time and heads.

    Args:
        q: ``(..., heads, K)`` critic outputs; actions: ``(..., heads)`` int64; target: ``(...)``.
    """
    chosen = q.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    return F.mse_loss(chosen, target.unsqueeze(-1).expand_as(chosen))


def actor_loss(logits: torch.Tensor, q1: torch.Tensor, q2: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """``mean over (...) of sum_h sum_a pi_h(a) (alpha log pi_h(a) - min(q1, q2)_h(a))`` (critics detached)."""
    logp = F.log_softmax(logits, dim=-1)
    q = torch.minimum(q1, q2).detach()
    return (logp.exp() * (alpha * logp - q)).sum(-1).sum(-1).mean()


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """Joint entropy ``sum_h H(pi_h)`` in nats, ``(..., heads, K) -> (...)``."""
    logp = F.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1).sum(-1)


def alpha_loss(log_alpha: torch.Tensor, policy_entropy: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """Temperature loss ``log_alpha * mean(H - H_target)`` (``policy_entropy`` is detached).

    Its gradient in ``log_alpha`` is ``mean(H) - H_target``: gradient descent lowers ``alpha`` while
    the policy's entropy exceeds the target and raises it otherwise (Haarnoja et al. 2018b, eq. 18).
    """
    return log_alpha * (policy_entropy.detach() - target_entropy).mean()


def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """``theta_target <- tau * theta_source + (1 - tau) * theta_target`` in place."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters(), strict=True):
            t.mul_(1.0 - tau).add_(s, alpha=tau)


def resolve_target_entropy(spec: str | float, heads: int, levels: int) -> float:
    """``"paper"`` -> ``-heads`` (MARLLB Table 2: ``-|A|``); ``"max_ratio"`` -> ``0.98 * heads * log(levels)``
    (Christodoulou 2019); a float passes through."""
    if spec == "paper":
        return -float(heads)
    if spec == "max_ratio":
        return 0.98 * heads * math.log(levels)
    return float(spec)


# ----------------------------------------------------------------------------------- learner
class SACGRU:
    """Discrete SAC-GRU learner and actor for ``MultiDiscrete([levels] * heads)`` actions.

    Args:
        obs_dim: flat observation length (``float32`` features >= 0, e.g. MARLLB's ``(N, 11)`` flattened).
        heads: action components (servers whose weight this agent sets).
        levels: weight levels per component.
        config: :class:`SACGRUConfig` or a dict of its fields (default: the ``"moderate"`` preset).
        seed: seeds the network initialisation and the sampling generator.

    Acting carries the actor's GRU state: call :meth:`reset_hidden` at every episode start.
    """

    def __init__(self, obs_dim: int, heads: int, levels: int, config: SACGRUConfig | dict | None = None, seed: int = 0):
        self.cfg = config if isinstance(config, SACGRUConfig) else SACGRUConfig(**(config or {}))
        self.obs_dim = check_int("obs_dim", obs_dim, low=1)
        self.heads = check_int("heads", heads, low=1)
        self.levels = check_int("levels", levels, low=2)
        self.seed = int(seed)
        self.in_dim = obs_dim + heads * levels
        self.target_entropy = resolve_target_entropy(self.cfg.target_entropy, heads, levels)
        gen = torch.Generator().manual_seed(self.seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            out = heads * levels
            h = self.cfg.hidden
            self.actor = GRUNet(self.in_dim, h, out)
            self.q1, self.q2 = GRUNet(self.in_dim, h, out), GRUNet(self.in_dim, h, out)
            self.q1_target, self.q2_target = GRUNet(self.in_dim, h, out), GRUNet(self.in_dim, h, out)
        self.q1_target.load_state_dict(self.q1.state_dict())
        self.q2_target.load_state_dict(self.q2.state_dict())
        for p in (*self.q1_target.parameters(), *self.q2_target.parameters()):
            p.requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(self.cfg.init_alpha), requires_grad=True)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=self.cfg.lr)
        self.critic_opt = torch.optim.Adam([*self.q1.parameters(), *self.q2.parameters()], lr=self.cfg.lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=self.cfg.lr)
        self._gen = gen
        self.rng = np.random.default_rng(self.seed)
        self.buffer: list[dict[str, np.ndarray]] = []
        self.episodes_seen = 0
        self.updates = 0
        self.reset_hidden()

    @property
    def alpha(self) -> float:
        return float(self.log_alpha.detach().exp())

    # --- inputs and acting ------------------------------------------------------------
    def inputs(self, obs: np.ndarray | torch.Tensor, prev_actions: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Network inputs ``(..., in_dim)`` from ``obs (..., obs_dim)`` and ``prev_actions (..., heads)``
        int64 (``-1`` = none, at the episode's start: a zero one-hot)."""
        o = torch.as_tensor(obs, dtype=torch.float32)
        a = torch.as_tensor(prev_actions, dtype=torch.int64)
        onehot = F.one_hot(a.clamp(min=0), self.levels).float() * (a >= 0).unsqueeze(-1).float()
        return torch.cat([torch.log1p(o.clamp(min=0.0)), onehot.flatten(-2)], dim=-1)

    def reset_hidden(self) -> None:
        """Start of an episode: zero actor state and no previous action."""
        self._h: torch.Tensor | None = None
        self._prev = np.full(self.heads, -1, dtype=np.int64)

    @torch.no_grad()
    def act(self, obs: np.ndarray, explore: bool = False) -> np.ndarray:
        """Action ``(heads,)`` int64 for one observation ``(obs_dim,)``: a sample of the policy if
        ``explore``, else the per-head mode. Advances the actor's GRU state.

        Raises:
            ValueError: ``obs`` does not have ``obs_dim`` entries.
        """
        o = np.asarray(obs, dtype=np.float32).reshape(-1)
        if o.size != self.obs_dim:
            raise ValueError(f"obs must have {self.obs_dim} entries, got {o.size}")
        x = self.inputs(o, self._prev).view(1, 1, -1)
        logits, self._h = self.actor(x, self._h)
        logits = logits.view(self.heads, self.levels)
        if explore:
            a = torch.multinomial(F.softmax(logits, -1), 1, generator=self._gen).view(-1)
        else:
            a = logits.argmax(-1)
        self._prev = a.numpy().astype(np.int64)
        return self._prev.copy()

    # --- replay -----------------------------------------------------------------------
    def store(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminated: np.ndarray) -> None:
        """Add one episode: ``obs (T+1, obs_dim)``, ``actions (T, heads)`` int, ``rewards (T,)``,
        ``terminated (T,)`` bool (``True`` only where the MDP ended; truncation is ``False``).

        Raises:
            ValueError: inconsistent shapes.
        """
        obs = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        actions = np.asarray(actions, dtype=np.int64).reshape(len(actions), -1)
        t = len(actions)
        if t < 1 or obs.shape != (t + 1, self.obs_dim) or actions.shape[1] != self.heads:
            raise ValueError(
                f"episode needs obs (T+1, {self.obs_dim}) and actions (T, {self.heads}); got {obs.shape}, {actions.shape}"
            )
        rewards = np.asarray(rewards, dtype=np.float32).reshape(-1)
        terminated = np.asarray(terminated, dtype=np.float32).reshape(-1)
        if rewards.shape != (t,) or terminated.shape != (t,):
            raise ValueError(f"rewards and terminated need shape ({t},), got {rewards.shape}, {terminated.shape}")
        prev = np.concatenate([np.full((1, self.heads), -1, np.int64), actions])  # a_{t-1} for t = 0..T
        self.buffer.append({"obs": obs, "prev": prev, "actions": actions, "rewards": rewards, "terminated": terminated})
        if len(self.buffer) > self.cfg.buffer_episodes:
            self.buffer.pop(0)
        self.episodes_seen += 1

    def _sample(self) -> dict[str, torch.Tensor]:
        """A batch of windows: inputs ``x (B, L+1, in)`` (steps ``t0 .. t0+L``), burn-in ``prefix
        (B, P, in)`` (steps ``t0-P .. t0-1``) with ``has_prefix (B,)``, ``actions (B, L, heads)``,
        ``rewards`` and ``terminated`` ``(B, L)``.

        A window starts at ``t0 = 0`` (zero GRU state, exact) or at ``t0 >= P`` (state from a full
        ``P``-step burn-in), uniformly over these starts, so every prefix has the same length and
        the burn-in is one batched GRU call.
        """
        c = self.cfg
        n = len(self.buffer)
        idx = self.rng.choice(n, c.batch_episodes, replace=n < c.batch_episodes)
        eps = [self.buffer[i] for i in idx]
        length = min(c.seq_len, min(len(e["actions"]) for e in eps))
        p = c.burn_in
        xs, pre, has, acts, rews, terms = [], [], [], [], [], []
        for e in eps:
            starts = max(0, len(e["actions"]) - length - p + 1)  # t0 in {0} U [p, T - L]
            k = int(self.rng.integers(0, starts + 1))
            t0 = 0 if k == 0 else p + k - 1
            x = self.inputs(e["obs"], e["prev"])  # (T+1, in)
            xs.append(x[t0 : t0 + length + 1])
            pre.append(x[t0 - p : t0] if t0 else torch.zeros(p, self.in_dim))
            has.append(t0 > 0)
            acts.append(torch.as_tensor(e["actions"][t0 : t0 + length]))
            rews.append(torch.as_tensor(e["rewards"][t0 : t0 + length]))
            terms.append(torch.as_tensor(e["terminated"][t0 : t0 + length]))
        return {
            "x": torch.stack(xs),
            "prefix": torch.stack(pre),
            "has_prefix": torch.tensor(has),
            "actions": torch.stack(acts),
            "rewards": torch.stack(rews),
            "terminated": torch.stack(terms),
        }

    # --- learning ---------------------------------------------------------------------
    def _unroll(self, net: GRUNet, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h = burn_in_hidden(net, batch["prefix"], batch["has_prefix"])
        y, _ = net(batch["x"], h)
        b, t1 = y.shape[:2]
        return y.view(b, t1, self.heads, self.levels)

    def ready(self) -> bool:
        """True once more than ``learning_starts`` episodes are stored."""
        return len(self.buffer) > self.cfg.learning_starts

    def update(self) -> dict[str, float] | None:
        """One gradient step of critics, actor and temperature on a sampled batch of windows.

        Returns:
            ``{"critic_loss", "actor_loss", "alpha_loss", "alpha", "entropy"}``, or ``None`` before
            :meth:`ready`.
        """
        if not self.ready():
            return None
        c = self.cfg
        batch = self._sample()
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            logits_t = self._unroll(self.actor, batch)
            target = soft_q_target(
                batch["rewards"],
                batch["terminated"],
                self._unroll(self.q1_target, batch)[:, 1:],
                self._unroll(self.q2_target, batch)[:, 1:],
                logits_t[:, 1:],
                alpha,
                c.gamma,
            )
        q1 = self._unroll(self.q1, batch)[:, :-1]
        q2 = self._unroll(self.q2, batch)[:, :-1]
        lc = critic_loss(q1, batch["actions"], target) + critic_loss(q2, batch["actions"], target)
        self.critic_opt.zero_grad()
        lc.backward()
        nn.utils.clip_grad_norm_([*self.q1.parameters(), *self.q2.parameters()], c.grad_clip)
        self.critic_opt.step()

        logits = self._unroll(self.actor, batch)[:, :-1]
        la = actor_loss(logits, q1.detach(), q2.detach(), alpha)
        self.actor_opt.zero_grad()
        la.backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), c.grad_clip)
        self.actor_opt.step()

        ent = entropy(logits.detach())
        lt = alpha_loss(self.log_alpha, ent, self.target_entropy)
        self.alpha_opt.zero_grad()
        lt.backward()
        self.alpha_opt.step()

        polyak_update(self.q1_target, self.q1, c.tau)
        polyak_update(self.q2_target, self.q2, c.tau)
        self.updates += 1
        return {
            "critic_loss": float(lc.detach()),
            "actor_loss": float(la.detach()),
            "alpha_loss": float(lt.detach()),
            "alpha": self.alpha,
            "entropy": float(ent.mean()),
        }

    # --- persistence ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Tensors only (``torch.load(..., weights_only=True)`` reads them back)."""
        return {
            "actor": self.actor.state_dict(),
            "q1": self.q1.state_dict(),
            "q2": self.q2.state_dict(),
            "q1_target": self.q1_target.state_dict(),
            "q2_target": self.q2_target.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
        }

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        for name in ("actor", "q1", "q2", "q1_target", "q2_target"):
            getattr(self, name).load_state_dict(sd[name])
        with torch.no_grad():
            self.log_alpha.copy_(sd["log_alpha"])

    def spec(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments."""
        return {"obs_dim": self.obs_dim, "heads": self.heads, "levels": self.levels, "config": asdict(self.cfg),
                "seed": self.seed}

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> SACGRU:
        return cls(spec["obs_dim"], spec["heads"], spec["levels"], SACGRUConfig(**spec["config"]), spec.get("seed", 0))


# ------------------------------------------------------------------ groups: SAC-GRU, I-SAC, S-SAC
class SACGRUAgents(BasePolicy):
    """One or more :class:`SACGRU` learners acting together on one flat observation/action.

    Learner ``i`` reads ``obs[obs_slices[i]]`` and writes ``action[act_slices[i]]``; every learner
    gets the env's (shared) reward. As a :class:`~lwmecps_gym.core.policy.Policy` it acts greedily
    (``act(obs, info)``) and ``reset(seed)`` clears the GRU states.

    * ``kind="sac-gru"``: one learner on a single-agent env (the whole observation and action).
    * ``kind="s-sac"``: one learner over the joint observation of every LB, setting every LB's
      weights (``marllb_env.multi_agent.JointEnv``; MARLLB's S-SAC, a single agent with the global view).
    * ``kind="i-sac"``: one independent learner per LB on its local observation and its own
      weights, all rewarded with the cooperative reward (MARLLB's I-SAC).

    Build them with :meth:`single` or :meth:`independent`.
    """

    KINDS = ("sac-gru", "i-sac", "s-sac")

    def __init__(self, learners: Sequence[SACGRU], obs_slices: Sequence[tuple[int, int]],
                 act_slices: Sequence[tuple[int, int]], kind: str = "sac-gru", name: str | None = None):
        self.kind = check_choice("kind", kind, self.KINDS)
        if not (len(learners) == len(obs_slices) == len(act_slices) >= 1):
            raise ValueError("learners, obs_slices and act_slices must have the same non-zero length")
        for lr, (o0, o1), (a0, a1) in zip(learners, obs_slices, act_slices, strict=True):
            if o1 - o0 != lr.obs_dim or a1 - a0 != lr.heads:
                raise ValueError(f"slices {(o0, o1)}, {(a0, a1)} do not match a learner with obs_dim "
                                 f"{lr.obs_dim} and heads {lr.heads}")
        self.learners = list(learners)
        self.obs_slices = [tuple(map(int, s)) for s in obs_slices]
        self.act_slices = [tuple(map(int, s)) for s in act_slices]
        self.obs_dim = max(s[1] for s in self.obs_slices)
        self.act_dim = max(s[1] for s in self.act_slices)
        self.name = name or {"sac-gru": "SAC-GRU", "i-sac": "I-SAC", "s-sac": "S-SAC"}[self.kind]

    @classmethod
    def single(cls, obs_dim: int, heads: int, levels: int, config: Any = None, seed: int = 0,
               kind: str = "sac-gru") -> SACGRUAgents:
        """One learner over the whole observation and action (``"sac-gru"`` or ``"s-sac"``)."""
        return cls([SACGRU(obs_dim, heads, levels, config, seed)], [(0, obs_dim)], [(0, heads)], kind=kind)

    @classmethod
    def independent(cls, n_agents: int, obs_dim: int, heads: int, levels: int, config: Any = None,
                    seed: int = 0) -> SACGRUAgents:
        """I-SAC: ``n_agents`` learners, learner ``i`` on ``obs[i*obs_dim:(i+1)*obs_dim]`` and
        ``action[i*heads:(i+1)*heads]`` (the layout of ``JointEnv``), seeds ``seed*1000 + i``."""
        ls = [SACGRU(obs_dim, heads, levels, config, seed * 1000 + i) for i in range(n_agents)]
        return cls(ls, [(i * obs_dim, (i + 1) * obs_dim) for i in range(n_agents)],
                   [(i * heads, (i + 1) * heads) for i in range(n_agents)], kind="i-sac")

    # --- acting -----------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        for lr in self.learners:
            lr.reset_hidden()

    def joint_action(self, obs: Any, explore: bool = False) -> np.ndarray:
        """Flat int64 action ``(act_dim,)`` for a flat (or any-shaped) observation of ``obs_dim`` entries."""
        o = np.asarray(obs, dtype=np.float32).reshape(-1)
        if o.size != self.obs_dim:
            raise ValueError(f"obs must have {self.obs_dim} entries, got {o.size}")
        a = np.empty(self.act_dim, dtype=np.int64)
        for lr, (o0, o1), (a0, a1) in zip(self.learners, self.obs_slices, self.act_slices, strict=True):
            a[a0:a1] = lr.act(o[o0:o1], explore=explore)
        return a

    def act(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        return self.joint_action(obs, explore=False)

    # --- learning ---------------------------------------------------------------------
    def store(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminated: np.ndarray) -> None:
        """Store one episode of flat joint ``obs (T+1, obs_dim)`` and ``actions (T, act_dim)``: each
        learner gets its slices and the shared rewards."""
        obs = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        actions = np.asarray(actions, dtype=np.int64).reshape(len(actions), -1)
        for lr, (o0, o1), (a0, a1) in zip(self.learners, self.obs_slices, self.act_slices, strict=True):
            lr.store(obs[:, o0:o1], actions[:, a0:a1], rewards, terminated)

    def update(self) -> dict[str, float] | None:
        """One :meth:`SACGRU.update` of every learner; the mean of their statistics (``None`` before ready)."""
        stats = [lr.update() for lr in self.learners]
        stats = [s for s in stats if s is not None]
        if not stats:
            return None
        return {k: float(np.mean([s[k] for s in stats])) for k in stats[0]}

    @property
    def config(self) -> SACGRUConfig:
        return self.learners[0].cfg

    # --- persistence ------------------------------------------------------------------
    def save(self, path: str, extra: dict[str, Any] | None = None) -> tuple[str, str]:
        """Write ``path`` (``torch.save`` of the learners' state dicts) and ``<path stem>.json``
        (kind, slices, learner specs, and ``extra``, e.g. the env's arguments). Returns both paths."""
        torch.save({str(i): lr.state_dict() for i, lr in enumerate(self.learners)}, path)
        meta = {
            "format": "marllb_env.sac_gru/1",
            "kind": self.kind,
            "name": self.name,
            "obs_slices": self.obs_slices,
            "act_slices": self.act_slices,
            "learners": [lr.spec() for lr in self.learners],
            "extra": extra or {},
        }
        jpath = os.path.splitext(path)[0] + ".json"
        with open(jpath, "w") as fh:
            json.dump(meta, fh, indent=1)
        return path, jpath

    @classmethod
    def load(cls, path: str) -> SACGRUAgents:
        """Rebuild from :meth:`save`'s files with ``torch.load(..., weights_only=True)``.

        Raises:
            FileNotFoundError: ``path`` or its JSON file is missing.
            ValueError: the JSON is not a ``marllb_env.sac_gru`` checkpoint.
        """
        jpath = os.path.splitext(path)[0] + ".json"
        with open(jpath) as fh:
            meta = json.load(fh)
        if meta.get("format") != "marllb_env.sac_gru/1":
            raise ValueError(f"{jpath} is not a marllb_env.sac_gru checkpoint (format {meta.get('format')!r})")
        sd = torch.load(path, weights_only=True)
        learners = [SACGRU.from_spec(s) for s in meta["learners"]]
        for i, lr in enumerate(learners):
            lr.load_state_dict(sd[str(i)])
        agents = cls(learners, meta["obs_slices"], meta["act_slices"], kind=meta["kind"], name=meta["name"])
        agents.extra = meta.get("extra", {})
        return agents


__all__ = [
    "GRUNet",
    "PAPER_SCHEDULE",
    "PRESETS",
    "SACGRU",
    "SACGRUAgents",
    "SACGRUConfig",
    "actor_loss",
    "alpha_loss",
    "burn_in_hidden",
    "critic_loss",
    "entropy",
    "polyak_update",
    "preset",
    "soft_q_target",
    "soft_value",
]
