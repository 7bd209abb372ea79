"""Tabular Q-learning (Watkins & Dayan 1992) over a discretised observation.

The upstream project's default algorithm was tabular Q-learning keyed on the
whole raw observation, so states almost never repeated; and under a
``MultiDiscrete`` action it applied one argmax to every deployment. Here:

* :class:`ObservationDiscretizer` maps selected observation components to a
  small integer state (uniform bins between given bounds), so states recur;
* for ``MultiDiscrete`` actions the agent is *factorised*: one Q-table per
  action dimension (one per deployment), each greedy on its own row, all
  updated with the shared reward (independent learners; Claus & Boutilier 1998).
  ``Discrete`` actions use a single table.

Update rule: ``Q[s,a] += lr * (r + gamma * (1 - terminated) * max_a' Q[s',a'] - Q[s,a])``,
epsilon-greedy exploration decaying per episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from lwmecps_gym.core.policy import BasePolicy
from lwmecps_gym.core.validation import check_float, check_int


class ObservationDiscretizer:
    """Uniform bins over chosen components of a flat ``Box`` observation.

    Args:
        low, high: per-component bounds (values outside are put in the edge bins).
        bins: number of bins per component (int, or one int per component).
        components: indices of the observation vector to use (default: all).

    ``__call__(obs) -> int`` returns the state index in ``[0, n_states)``.
    """

    def __init__(
        self,
        low: Sequence[float] | np.ndarray,
        high: Sequence[float] | np.ndarray,
        bins: int | Sequence[int] = 3,
        components: Sequence[int] | None = None,
    ):
        low = np.asarray(low, dtype=np.float64).ravel()
        high = np.asarray(high, dtype=np.float64).ravel()
        if low.shape != high.shape:
            raise ValueError(f"low and high must have the same shape, got {low.shape} and {high.shape}")
        self.components = np.arange(low.size) if components is None else np.asarray(components, dtype=np.int64)
        if self.components.size == 0 or self.components.min() < 0 or self.components.max() >= low.size:
            raise ValueError(f"components must be indices in [0, {low.size}), got {list(self.components)}")
        self.low, self.high = low[self.components], high[self.components]
        if not np.all(np.isfinite(self.low) & np.isfinite(self.high) & (self.high > self.low)):
            raise ValueError("bounds of the chosen components must be finite with high > low")
        b = np.broadcast_to(np.asarray(bins, dtype=np.int64), self.components.shape)
        if np.any(b < 1):
            raise ValueError(f"bins must be >= 1, got {bins!r}")
        self.bins = b.copy()
        self._radix = np.concatenate([[1], np.cumprod(self.bins[:-1])])
        self.n_states = int(np.prod(self.bins))

    @classmethod
    def for_space(cls, space: gym.spaces.Box, bins: int | Sequence[int] = 3,
                  components: Sequence[int] | None = None) -> ObservationDiscretizer:
        """Discretiser over a ``Box`` space's own (finite) bounds."""
        if not isinstance(space, gym.spaces.Box):
            raise TypeError(f"space must be a Box, got {type(space).__name__}")
        return cls(space.low.ravel(), space.high.ravel(), bins, components)

    def __call__(self, obs: np.ndarray) -> int:
        x = np.asarray(obs, dtype=np.float64).ravel()[self.components]
        idx = np.floor((x - self.low) / (self.high - self.low) * self.bins).astype(np.int64)
        idx = np.clip(idx, 0, self.bins - 1)
        return int(idx @ self._radix)


class TabularQLearning(BasePolicy):
    """Epsilon-greedy tabular Q-learning; also a :class:`~lwmecps_gym.core.policy.Policy` (greedy ``act``).

    Args:
        action_space: ``Discrete`` or 1-D ``MultiDiscrete`` (factorised: one table per dimension).
        discretizer: maps an observation to a state index.
        learning_rate: step size in (0, 1].
        gamma: discount in [0, 1].
        epsilon, epsilon_decay, epsilon_min: exploration schedule, decayed once per episode.
        seed: exploration RNG seed.

    Raises:
        TypeError: unsupported action space.
    """

    name = "tabular-q"

    def __init__(
        self,
        action_space: gym.Space,
        discretizer: ObservationDiscretizer,
        learning_rate: float = 0.1,
        gamma: float = 0.95,
        epsilon: float = 1.0,
        epsilon_decay: float = 0.99,
        epsilon_min: float = 0.05,
        seed: int | None = None,
    ):
        if isinstance(action_space, gym.spaces.Discrete):
            self._nvec = np.array([int(action_space.n)])
            self._start = np.array([int(action_space.start)])
            self._multi = False
        elif isinstance(action_space, gym.spaces.MultiDiscrete) and action_space.nvec.ndim == 1:
            self._nvec = action_space.nvec.astype(np.int64)
            self._start = action_space.start.astype(np.int64)
            self._multi = True
        else:
            raise TypeError(f"action_space must be Discrete or 1-D MultiDiscrete, got {action_space}")
        self.discretizer = discretizer
        self.lr = check_float("learning_rate", learning_rate, low=0.0, high=1.0, low_open=True)
        self.gamma = check_float("gamma", gamma, low=0.0, high=1.0)
        self.epsilon = check_float("epsilon", epsilon, low=0.0, high=1.0)
        self.epsilon_decay = check_float("epsilon_decay", epsilon_decay, low=0.0, high=1.0)
        self.epsilon_min = check_float("epsilon_min", epsilon_min, low=0.0, high=1.0)
        n = discretizer.n_states
        width = int(self._nvec.max())
        # q[d, s, a]; actions beyond nvec[d] are masked with -inf
        self.q = np.zeros((self._nvec.size, n, width))
        for d, k in enumerate(self._nvec):
            self.q[d, :, k:] = -np.inf
        self.rng = np.random.default_rng(seed)

    def _greedy(self, s: int) -> np.ndarray:
        rows = self.q[:, s, :]
        best = rows == rows.max(axis=1, keepdims=True)
        # random tie-break among maxima keeps untrained states from collapsing to action 0
        return np.array([self.rng.choice(np.flatnonzero(b)) for b in best])

    def _to_env(self, a: np.ndarray) -> Any:
        a = a + self._start
        return a.astype(np.int64) if self._multi else int(a[0])

    def act(self, obs: Any, info: dict[str, Any] | None = None) -> Any:
        """Greedy action (evaluation)."""
        return self._to_env(self._greedy(self.discretizer(obs)))

    def explore(self, obs: Any) -> Any:
        """Epsilon-greedy action (training)."""
        s = self.discretizer(obs)
        if self.rng.random() < self.epsilon:
            a = self.rng.integers(0, self._nvec)
        else:
            a = self._greedy(s)
        return self._to_env(a)

    def update(self, obs: Any, action: Any, reward: float, next_obs: Any, terminated: bool) -> None:
        s, s2 = self.discretizer(obs), self.discretizer(next_obs)
        a = np.atleast_1d(np.asarray(action, dtype=np.int64)) - self._start
        d = np.arange(self._nvec.size)
        target = reward + (0.0 if terminated else self.gamma * self.q[d, s2, :].max(axis=1))
        self.q[d, s, a] += self.lr * (target - self.q[d, s, a])

    def learn(self, env: gym.Env, episodes: int, seed: int = 0) -> list[float]:
        """Train for ``episodes`` episodes (seeds ``seed, seed+1, ...``); returns per-episode returns."""
        episodes = check_int("episodes", episodes, low=1)
        returns = []
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            total, done = 0.0, False
            while not done:
                action = self.explore(obs)
                nxt, r, term, trunc, _ = env.step(action)
                self.update(obs, action, float(r), nxt, bool(term))
                obs, total, done = nxt, total + float(r), term or trunc
            returns.append(total)
            self.epsilon = max(self.epsilon_min, self.epsilon * self.epsilon_decay)
        return returns

    def save(self, path: str) -> None:
        np.savez(path, q=self.q, nvec=self._nvec, start=self._start, epsilon=self.epsilon)

    def load(self, path: str) -> None:
        data = np.load(path)
        if data["q"].shape != self.q.shape:
            raise ValueError(f"saved table has shape {data['q'].shape}, this agent needs {self.q.shape}")
        self.q, self.epsilon = data["q"], float(data["epsilon"])
