"""Compact QMIX (Rashid et al., ICML 2018) in PyTorch for the multi-agent load balancer.

Imports torch: import this module only when training (``import marllb_env`` does not).

As MARLLB's ``sac_qmix.py`` (described in the reference, section 1.3), with the deviations
stated below:

* **Agent network**, shared by all agents (parameter sharing): input = the agent's
  observation, a one-hot agent id and the one-hot of its previous action; ``Linear -> ReLU
  -> GRUCell -> Linear``; output ``heads x levels`` utilities: one head per server, each
  choosing one of ``levels`` weight levels (the env's ``MultiDiscrete([K] * n)``). The agent's
  utility of a joint per-server choice is the **mean over heads** of the chosen entries, so
  the greedy action is the per-head argmax (MARLLB applies a softmax over the Q values;
  that quirk is not reproduced).
* **Mixer**: hypernetworks over the global ``state()``: ``Q_tot = w2 . elu(W1 q + b1) + V(s)``
  with ``W1 = |hyper_w1(s)|``, ``w2 = |hyper_w2(s)|`` (non-negative weights make ``Q_tot``
  monotonic in every agent's utility), ``b1 = hyper_b1(s)``, ``V(s)`` a 2-layer net.
* **Learning**: whole episodes in a replay buffer; TD(lambda) targets (MARLLB: gamma 0.99,
  lambda 0.6) from a target network updated every ``target_update`` updates, double-Q action
  selection with the online network; MSE loss; Adam; gradient-norm clip 10;
  epsilon-greedy exploration decaying linearly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class QMIXConfig:
    """Hyper-parameters. Defaults: MARLLB moderate scale where it states them (lr 1e-3,
    hidden 128, gamma 0.99, lambda 0.6), shorter schedules for a CPU."""

    hidden: int = 128
    mixer_embed: int = 32
    lr: float = 1e-3
    gamma: float = 0.99
    td_lambda: float = 0.6
    batch_episodes: int = 8
    buffer_episodes: int = 3000
    target_update: int = 20
    eps_start: float = 1.0
    eps_end: float = 0.05
    eps_decay_episodes: int = 20
    grad_clip: float = 10.0


class AgentRNN(nn.Module):
    """Shared per-agent recurrent utility network: ``(B, in) x (B, H) -> (B, heads, levels), (B, H)``."""

    def __init__(self, in_dim: int, hidden: int, heads: int, levels: int):
        super().__init__()
        self.heads, self.levels = heads, levels
        self.fc1 = nn.Linear(in_dim, hidden)
        self.rnn = nn.GRUCell(hidden, hidden)
        self.fc2 = nn.Linear(hidden, heads * levels)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.rnn(F.relu(self.fc1(x)), h)
        return self.fc2(h).view(-1, self.heads, self.levels), h


class QMixer(nn.Module):
    """Monotonic mixing network: ``(B, n_agents) x (B, state_dim) -> (B,)``."""

    def __init__(self, n_agents: int, state_dim: int, embed: int, hyper: int = 64):
        super().__init__()
        self.n_agents, self.embed = n_agents, embed
        self.hyper_w1 = nn.Sequential(nn.Linear(state_dim, hyper), nn.ReLU(), nn.Linear(hyper, n_agents * embed))
        self.hyper_b1 = nn.Linear(state_dim, embed)
        self.hyper_w2 = nn.Sequential(nn.Linear(state_dim, hyper), nn.ReLU(), nn.Linear(hyper, embed))
        self.v = nn.Sequential(nn.Linear(state_dim, embed), nn.ReLU(), nn.Linear(embed, 1))

    def forward(self, q: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        b = q.shape[0]
        w1 = torch.abs(self.hyper_w1(s)).view(b, self.n_agents, self.embed)
        hidden = F.elu(torch.bmm(q.unsqueeze(1), w1).squeeze(1) + self.hyper_b1(s))
        w2 = torch.abs(self.hyper_w2(s))
        return (hidden * w2).sum(-1) + self.v(s).squeeze(-1)


class QMIX:
    """QMIX learner and acting policy for homogeneous agents with ``MultiDiscrete([levels]*heads)`` actions.

    Args:
        n_agents: number of agents ``M``.
        obs_dim: flat observation length per agent.
        state_dim: flat global state length.
        heads: action components per agent (servers).
        levels: choices per component (weight levels).
        config: :class:`QMIXConfig` (or a dict of its fields).
        seed: seeds torch and the exploration generator.
    """

    def __init__(
        self,
        n_agents: int,
        obs_dim: int,
        state_dim: int,
        heads: int,
        levels: int,
        config: QMIXConfig | dict | None = None,
        seed: int = 0,
    ):
        self.cfg = config if isinstance(config, QMIXConfig) else QMIXConfig(**(config or {}))
        self.n_agents, self.obs_dim, self.state_dim = n_agents, obs_dim, state_dim
        self.heads, self.levels = heads, levels
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.in_dim = obs_dim + n_agents + heads * levels
        self.agent = AgentRNN(self.in_dim, self.cfg.hidden, heads, levels)
        self.mixer = QMixer(n_agents, state_dim, self.cfg.mixer_embed)
        self.target_agent = AgentRNN(self.in_dim, self.cfg.hidden, heads, levels)
        self.target_mixer = QMixer(n_agents, state_dim, self.cfg.mixer_embed)
        self._sync_target()
        self.params = list(self.agent.parameters()) + list(self.mixer.parameters())
        self.opt = torch.optim.Adam(self.params, lr=self.cfg.lr)
        self.buffer: list[dict[str, np.ndarray]] = []
        self.updates = 0
        self.episodes_seen = 0
        self.reset_hidden()

    # --- acting -----------------------------------------------------------------------
    def _sync_target(self) -> None:
        self.target_agent.load_state_dict(self.agent.state_dict())
        self.target_mixer.load_state_dict(self.mixer.state_dict())

    def reset_hidden(self) -> None:
        """Start of an episode: zero GRU state and 'previous action' inputs."""
        self._h = torch.zeros(self.n_agents, self.cfg.hidden)
        self._last = np.zeros((self.n_agents, self.heads), dtype=np.int64)
        self._first = True

    def _inputs(self, obs: np.ndarray, last: np.ndarray, first: np.ndarray | bool) -> torch.Tensor:
        """``obs (..., M, obs_dim)``, ``last (..., M, heads)`` -> ``(..., M, in_dim)``."""
        o = torch.as_tensor(obs, dtype=torch.float32)
        lead = o.shape[:-2]
        ids = torch.eye(self.n_agents).expand(*lead, self.n_agents, self.n_agents)
        onehot = F.one_hot(torch.as_tensor(last, dtype=torch.int64), self.levels).float()
        onehot = onehot.reshape(*lead, self.n_agents, self.heads * self.levels)
        f = torch.as_tensor(first, dtype=torch.float32).reshape(*lead, 1, 1) if lead else torch.tensor(float(first))
        return torch.cat([o, ids, onehot * (1.0 - f)], dim=-1)

    @property
    def epsilon(self) -> float:
        c = self.cfg
        frac = min(1.0, self.episodes_seen / max(1, c.eps_decay_episodes))
        return c.eps_start + frac * (c.eps_end - c.eps_start)

    @torch.no_grad()
    def act(self, obs: np.ndarray, explore: bool = False) -> np.ndarray:
        """Joint action ``(M, heads)`` int64 for observations ``(M, obs_dim)`` (carries the GRU state)."""
        x = self._inputs(obs, self._last, self._first)
        q, self._h = self.agent(x, self._h)
        a = q.argmax(-1).numpy()
        if explore:
            mask = self.rng.random(a.shape) < self.epsilon
            a = np.where(mask, self.rng.integers(0, self.levels, a.shape), a)
        self._last, self._first = a.astype(np.int64), False
        return a.astype(np.int64)

    # --- learning ---------------------------------------------------------------------
    def store(self, episode: dict[str, np.ndarray]) -> None:
        """Add one episode: ``obs (T+1, M, obs_dim)``, ``state (T+1, state_dim)``, ``actions (T, M, heads)``,
        ``rewards (T,)``, ``terminated (T,)`` (bool)."""
        t = episode["actions"].shape[0]
        assert episode["obs"].shape[0] == t + 1 and episode["state"].shape[0] == t + 1
        self.buffer.append({k: np.asarray(v) for k, v in episode.items()})
        if len(self.buffer) > self.cfg.buffer_episodes:
            self.buffer.pop(0)
        self.episodes_seen += 1

    def _unroll(self, net: AgentRNN, obs: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """Per-step utilities ``(B, T+1, M, heads, levels)``."""
        b, t1 = obs.shape[:2]
        last = torch.zeros(b, t1, self.n_agents, self.heads, dtype=torch.int64)
        last[:, 1:] = acts
        first = torch.zeros(b, t1)
        first[:, 0] = 1.0
        x = self._inputs(obs.numpy(), last.numpy(), first.numpy())
        h = torch.zeros(b * self.n_agents, self.cfg.hidden)
        out = []
        for k in range(t1):
            q, h = net(x[:, k].reshape(b * self.n_agents, -1), h)
            out.append(q.view(b, self.n_agents, self.heads, self.levels))
        return torch.stack(out, 1)

    def update(self) -> float | None:
        """One gradient step on a batch of stored episodes (equal lengths); returns the loss."""
        c = self.cfg
        if len(self.buffer) < c.batch_episodes:
            return None
        idx = self.rng.choice(len(self.buffer), c.batch_episodes, replace=False)
        batch = [self.buffer[i] for i in idx]
        obs = torch.as_tensor(np.stack([e["obs"] for e in batch]), dtype=torch.float32)
        state = torch.as_tensor(np.stack([e["state"] for e in batch]), dtype=torch.float32)
        acts = torch.as_tensor(np.stack([e["actions"] for e in batch]), dtype=torch.int64)
        rew = torch.as_tensor(np.stack([e["rewards"] for e in batch]), dtype=torch.float32)
        term = torch.as_tensor(np.stack([e["terminated"] for e in batch]), dtype=torch.float32)
        b, t = rew.shape
        q = self._unroll(self.agent, obs, acts)  # (B, T+1, M, H, K)
        chosen = q[:, :-1].gather(-1, acts.unsqueeze(-1)).squeeze(-1).mean(-1)  # (B, T, M)
        q_tot = self.mixer(chosen.reshape(b * t, -1), state[:, :-1].reshape(b * t, -1)).view(b, t)
        with torch.no_grad():
            tq = self._unroll(self.target_agent, obs, acts)
            greedy = q[:, 1:].argmax(-1, keepdim=True)  # double Q: online argmax, target value
            tq_next = tq[:, 1:].gather(-1, greedy).squeeze(-1).mean(-1)  # (B, T, M)
            tq_tot = self.target_mixer(tq_next.reshape(b * t, -1), state[:, 1:].reshape(b * t, -1)).view(b, t)
            # TD(lambda) return, backwards: G_t = r_t + g (1-d_t) [(1-l) Q'(t+1) + l G_{t+1}], G_T-1 bootstraps
            g = torch.zeros(b, t)
            nxt = tq_tot[:, -1]
            for k in range(t - 1, -1, -1):
                boot = tq_tot[:, k] if k == t - 1 else (1 - c.td_lambda) * tq_tot[:, k] + c.td_lambda * nxt
                g[:, k] = rew[:, k] + c.gamma * (1.0 - term[:, k]) * boot
                nxt = g[:, k]
        loss = F.mse_loss(q_tot, g)
        self.opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, c.grad_clip)
        self.opt.step()
        self.updates += 1
        if self.updates % c.target_update == 0:
            self._sync_target()
        return float(loss.item())

    # --- persistence ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent.state_dict(),
            "mixer": self.mixer.state_dict(),
            "config": asdict(self.cfg),
            "dims": {
                "n_agents": self.n_agents,
                "obs_dim": self.obs_dim,
                "state_dim": self.state_dim,
                "heads": self.heads,
                "levels": self.levels,
            },
        }

    def save(self, path: str) -> None:
        """Write a checkpoint (``torch.save``) with weights, config and dimensions."""
        torch.save(self.state_dict(), path)

    @classmethod
    def load(cls, path: str) -> QMIX:
        """Rebuild a learner from :meth:`save`'s checkpoint.

        Loaded with ``weights_only=True``: the checkpoint holds only tensors and plain dicts,
        numbers and strings, so a file cannot run code when it is read.
        """
        ck = torch.load(path, weights_only=True)
        q = cls(**ck["dims"], config=QMIXConfig(**ck["config"]))
        q.agent.load_state_dict(ck["agent"])
        q.mixer.load_state_dict(ck["mixer"])
        q._sync_target()
        return q


class QMIXPolicy:
    """Greedy QMIX agents as a joint :class:`~lwmecps_gym.core.policy.Policy` for
    :class:`marllb_env.multi_agent.JointEnv` (obs ``(M, obs_dim)`` -> action ``(M * heads,)``)."""

    def __init__(self, learner: QMIX, name: str = "QMIX"):
        self.learner, self.name = learner, name

    def reset(self, seed: int | None = None) -> None:
        self.learner.reset_hidden()

    def act(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        return self.learner.act(np.asarray(obs).reshape(self.learner.n_agents, -1)).reshape(-1)
