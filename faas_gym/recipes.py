"""Burst-phase observation for learning recipes on bursty workloads (``faas_gym.benchmark``).

An on/off workload such as OrcBench model 16 (``faas_gym/AutoscalingBursty-v0``) is idle for a
nearly fixed number of intervals between bursts, so *how long it has been idle* tells when the next
burst comes; one observation of the request rate does not. :class:`BurstPhaseFeatures` tracks, from
the env's own observation only (index 4, ``request_rate_rps``; an interval with rate 0 had no
arrivals), the burst phase and the rate trend; :class:`BurstPhaseObservation` is the
``gymnasium.ObservationWrapper`` a recipe trains on; :class:`BurstPhasePolicy` runs a trained SB3
model on the unwrapped env (the leaderboard evaluates policies on the task's own env), computing
the same features. Nothing here imports SB3 or torch.

Observation of the wrapper, ``Box(11 + 4,)`` ``float32``, every component in ``[-1, 1]``:

| index | value |
|---|---|
| 0-10 | the env's 11 observations rescaled linearly from their bounds to [-1, 1] |
| 11 | idle run: consecutive intervals with no arrivals, ``min(n, max_run) / max_run * 2 - 1`` |
| 12 | busy run: consecutive intervals with arrivals, same scaling |
| 13 | ``log1p(rate) / log1p(rate_cap) * 2 - 1`` of the last interval (requests/s) |
| 14 | the same of the interval before (the trend) |
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from lwmecps_gym.core.policy import BasePolicy
from lwmecps_gym.core.validation import check_int

#: index of ``request_rate_rps`` in the faas_gym observation (``faas_gym.env.OBSERVATION_FIELDS``)
RATE_INDEX = 4
N_FEATURES = 4


class BurstPhaseFeatures:
    """The 4 burst-phase features of a stream of faas_gym observations (see the module table).

    Args:
        observation_space: the faas_gym env's ``Box(11,)`` (its finite bounds scale the features).
        max_run: runs are counted up to this many intervals (int >= 1; default 8, one more than the
            7-interval idle gaps of ``AutoscalingBursty-v0``).

    Raises:
        ValueError / TypeError: ``max_run`` not an int >= 1, or a space that is not a finite
            ``Box`` of at least 5 values.
    """

    def __init__(self, observation_space: gym.spaces.Box, max_run: int = 8):
        self.max_run = check_int("max_run", max_run, low=1)
        if not isinstance(observation_space, gym.spaces.Box) or observation_space.shape[0] <= RATE_INDEX:
            raise TypeError(f"observation_space must be a faas_gym Box(11,), got {observation_space!r}")
        low = observation_space.low.astype(np.float64)
        high = observation_space.high.astype(np.float64)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high)) and np.all(high > low)):
            raise ValueError(f"observation_space must have finite bounds with high > low, got {observation_space!r}")
        self._low, self._span = low, high - low
        self._log_cap = math.log1p(float(high[RATE_INDEX]))
        self.reset()

    def reset(self) -> None:
        """Forget the episode (call before its first observation)."""
        self.idle = self.busy = 0
        self.prev_rate = 0.0

    def transform(self, obs: Any) -> np.ndarray:
        """Update the runs with ``obs`` (the env's next observation) and return the wrapper's
        ``float32`` vector of ``11 + 4`` values in [-1, 1]."""
        x = np.asarray(obs, dtype=np.float64)
        rate = float(x[RATE_INDEX])
        if rate > 0.0:
            self.busy, self.idle = self.busy + 1, 0
        else:
            self.idle, self.busy = self.idle + 1, 0
        m = self.max_run
        feats = (
            min(self.idle, m) / m * 2.0 - 1.0,
            min(self.busy, m) / m * 2.0 - 1.0,
            math.log1p(rate) / self._log_cap * 2.0 - 1.0,
            math.log1p(self.prev_rate) / self._log_cap * 2.0 - 1.0,
        )
        self.prev_rate = rate
        scaled = 2.0 * (x - self._low) / self._span - 1.0
        return np.clip(np.concatenate([scaled, feats]), -1.0, 1.0).astype(np.float32)


class BurstPhaseObservation(gym.ObservationWrapper):
    """A faas_gym env whose observation is :class:`BurstPhaseFeatures`' ``Box(15,)`` in [-1, 1].

    Args:
        env: a faas_gym env (its observation is the ``Box(11,)`` of ``FaasAutoscalingEnv``).
        max_run: see :class:`BurstPhaseFeatures`.

    Actions, rewards, termination and info are the env's, unchanged.
    """

    def __init__(self, env: gym.Env, max_run: int = 8):
        super().__init__(env)
        self.features = BurstPhaseFeatures(env.observation_space, max_run=max_run)
        n = env.observation_space.shape[0] + N_FEATURES
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)

    def reset(self, **kwargs: Any):
        self.features.reset()
        return super().reset(**kwargs)

    def observation(self, observation: Any) -> np.ndarray:
        return self.features.transform(observation)


class BurstPhasePolicy(BasePolicy):
    """A trained SB3 model (trained on :class:`BurstPhaseObservation`) acting on the unwrapped env.

    Args:
        model: anything with SB3's ``predict(obs, deterministic=True)``.
        observation_space: the unwrapped env's ``Box(11,)``.
        max_run: the ``max_run`` the model was trained with.
        name: table label.
    """

    def __init__(self, model: Any, observation_space: gym.spaces.Box, max_run: int = 8, name: str = "burst_phase"):
        self.model, self.name = model, name
        self.features = BurstPhaseFeatures(observation_space, max_run=max_run)

    def reset(self, seed: int | None = None) -> None:
        self.features.reset()

    def act(self, obs: Any, info: dict[str, Any]) -> int:
        action, _ = self.model.predict(self.features.transform(obs), deterministic=True)
        return int(action)


def burst_phase_trainer(max_run: int = 8) -> Callable[[Any, Any, int], BurstPhasePolicy]:
    """A ``Recipe.train`` trainer: SB3 on the task's env wrapped in :class:`BurstPhaseObservation`.

    ``trainer(task, recipe, seed)`` builds ``recipe.algo`` with ``recipe.algo_kwargs`` (SB3 arguments)
    on ``recipe.n_envs`` copies of ``gym.make(task.env_id, **task.env_kwargs, **recipe.env_kwargs)``
    wrapped with ``max_run``, trains ``recipe.timesteps`` steps on the env's own reward (the evaluated
    return) with training episodes reset with seeds ``seed * 1000 + k`` (disjoint from
    ``task.eval_seeds``), and returns a :class:`BurstPhasePolicy` for the unwrapped env. Imports SB3
    lazily.

    Raises:
        ValueError / TypeError: ``max_run`` not an int >= 1 (at construction, before any training).
    """
    max_run = check_int("max_run", max_run, low=1)

    def train(task: Any, recipe: Any, seed: int) -> BurstPhasePolicy:
        from stable_baselines3.common.env_util import make_vec_env

        from lwmecps_gym.core.training import algorithm_class

        kwargs = {**task.env_kwargs, **recipe.env_kwargs}

        def make() -> gym.Env:
            return BurstPhaseObservation(gym.make(task.env_id, **kwargs), max_run=max_run)

        venv = make_vec_env(make, n_envs=recipe.n_envs, seed=seed * 1000)
        model = algorithm_class(recipe.algo)("MlpPolicy", venv, seed=seed, verbose=0, **dict(recipe.algo_kwargs))
        model.learn(total_timesteps=recipe.timesteps)
        venv.close()
        space = gym.make(task.env_id, **kwargs).observation_space
        return BurstPhasePolicy(model, space, max_run=max_run, name=recipe.name)

    train.__name__ = train.__qualname__ = f"burst_phase_trainer(max_run={max_run})"
    return train
