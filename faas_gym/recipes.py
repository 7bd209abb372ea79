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


# --------------------------------------------------------------------------------------------------
# Residual recipe on the idle-gap rule
# --------------------------------------------------------------------------------------------------

#: default replica offsets of the residual action (index 2, offset 0, is the rule itself)
RESIDUAL_OFFSETS = (-2, -1, 0, 1, 2, 4)
N_RESIDUAL_FEATURES = N_FEATURES + 2


def check_offsets(offsets: Any) -> tuple[int, ...]:
    """``offsets`` as a tuple of distinct ints containing 0.

    Raises:
        TypeError / ValueError: not a non-empty list/tuple of ints, repeated values or no 0 (names ``offsets``).
    """
    if not isinstance(offsets, (list, tuple)) or not offsets:
        raise TypeError(f"offsets must be a non-empty tuple of ints containing 0, got {offsets!r}")
    out = tuple(check_int(f"offsets[{i}]", o) for i, o in enumerate(offsets))
    if len(set(out)) != len(out) or 0 not in out:
        raise ValueError(f"offsets must be distinct ints containing 0, got {offsets!r}")
    return out


class ResidualIdleGap:
    """Residual action and observation around :class:`faas_gym.baselines.IdleGapPolicy`.

    Residual policy learning (Silver et al., "Residual Policy Learning", arXiv:1812.06298, 2018): the
    agent picks an offset (replicas) added to the rule's target; offset 0 is the rule exactly. Uses
    only the rule's public API (``desired_replicas(metrics)``, ``action_for(current, target)``) and
    ``info["metrics"]``; an env action is an index into the env's ``deltas`` as for every faas_gym
    baseline.

    Args:
        env: the faas_gym env (its ``deltas``, replica range, interval and ``Box(11,)`` observation).
        rule_params: :class:`IdleGapPolicy` parameters (``busy_replicas``, ``idle_replicas``,
            ``drop_after``, ``rewarm_after``); default: the rule's defaults.
        offsets: distinct ints, one of them 0 (replicas added to the rule's target; the sum is clamped
            to the env's replica range).
        max_run: see :class:`BurstPhaseFeatures`.

    Observation (:meth:`observe`), ``Box(11 + 6,)`` ``float32`` in [-1, 1]: the 15 values of
    :class:`BurstPhaseFeatures`, then the rule's target ``(t - min) / (max - min) * 2 - 1`` and the
    rule's idle run (``min(n, max_run) / max_run * 2 - 1``).

    Raises:
        ValueError / TypeError: ``offsets`` empty, not ints, repeated or without 0 (the message
            names ``offsets``); a bad ``rule_params`` entry or ``max_run`` (named likewise).
    """

    def __init__(self, env: gym.Env, rule_params: dict[str, Any] | None = None,
                 offsets: tuple[int, ...] = RESIDUAL_OFFSETS, max_run: int = 8):
        from faas_gym.baselines import IdleGapPolicy

        self.offsets = check_offsets(offsets)
        self.zero_index = self.offsets.index(0)
        self.rule = IdleGapPolicy.from_env(env, **dict(rule_params or {}))
        self.features = BurstPhaseFeatures(env.observation_space, max_run=max_run)
        self.max_run = self.features.max_run
        n = env.observation_space.shape[0] + N_RESIDUAL_FEATURES
        self.observation_space = gym.spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(len(self.offsets))
        self.rule_target = self.rule.min_replicas

    def reset(self) -> None:
        """Forget the episode (call before its first observation)."""
        self.rule.reset()
        self.features.reset()

    def _clamp(self, n: int) -> int:
        return min(max(int(n), self.rule.min_replicas), self.rule.max_replicas)

    def observe(self, obs: Any, metrics: dict[str, float]) -> np.ndarray:
        """Advance the rule and the features by one observation (once per env step) and return the
        residual observation (see the class docstring)."""
        base = self.features.transform(obs)
        self.rule_target = self._clamp(self.rule.desired_replicas(metrics))
        lo, hi = self.rule.min_replicas, self.rule.max_replicas
        tgt = (self.rule_target - lo) / max(hi - lo, 1) * 2.0 - 1.0
        idle = min(self.rule.idle_intervals, self.max_run) / self.max_run * 2.0 - 1.0
        return np.clip(np.concatenate([base, [tgt, idle]]), -1.0, 1.0).astype(np.float32)

    def env_action(self, index: Any, metrics: dict[str, float]) -> int:
        """The env action (index into ``deltas``) for residual action ``index`` after :meth:`observe`.

        Raises:
            ValueError: ``index`` not an int in ``[0, len(offsets))``.
        """
        i = int(index)
        if i != index or not 0 <= i < len(self.offsets):
            raise ValueError(f"residual action must be an int in [0, {len(self.offsets)}), got {index!r}")
        target = self._clamp(self.rule_target + self.offsets[i])
        return self.rule.action_for(int(metrics["replicas_desired"]), target)


class ResidualIdleGapEnv(gym.Wrapper):
    """A faas_gym env whose action is an offset around the idle-gap rule's target (:class:`ResidualIdleGap`).

    ``action_space`` is ``Discrete(len(offsets))``, ``observation_space`` the ``Box(17,)`` of
    :class:`ResidualIdleGap`; rewards, termination and info are the env's. Arguments as
    :class:`ResidualIdleGap`.
    """

    def __init__(self, env: gym.Env, rule_params: dict[str, Any] | None = None,
                 offsets: tuple[int, ...] = RESIDUAL_OFFSETS, max_run: int = 8):
        super().__init__(env)
        self.residual = ResidualIdleGap(env, rule_params, offsets, max_run)
        self.observation_space = self.residual.observation_space
        self.action_space = self.residual.action_space
        self._metrics: dict[str, float] = {}

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self.residual.reset()
        self._metrics = info["metrics"]
        return self.residual.observe(obs, self._metrics), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(self.residual.env_action(action, self._metrics))
        self._metrics = info["metrics"]
        return self.residual.observe(obs, self._metrics), reward, terminated, truncated, info


class ResidualIdleGapPolicy(BasePolicy):
    """A trained SB3 model (trained on :class:`ResidualIdleGapEnv`) acting on the unwrapped env.

    Args:
        model: anything with SB3's ``predict(obs, deterministic=True)``; ``None`` acts with offset 0
            (the rule itself).
        env: the unwrapped faas_gym env (or one built like it).
        rule_params, offsets, max_run: as the model was trained with.
        name: table label.
    """

    def __init__(self, model: Any, env: gym.Env, rule_params: dict[str, Any] | None = None,
                 offsets: tuple[int, ...] = RESIDUAL_OFFSETS, max_run: int = 8, name: str = "residual_idle_gap"):
        self.model, self.name = model, name
        self.residual = ResidualIdleGap(env, rule_params, offsets, max_run)

    def reset(self, seed: int | None = None) -> None:
        self.residual.reset()

    def act(self, obs: Any, info: dict[str, Any]) -> int:
        x = self.residual.observe(obs, info["metrics"])
        index = self.residual.zero_index if self.model is None else self.model.predict(x, deterministic=True)[0]
        return self.residual.env_action(int(index), info["metrics"])


def set_q_prior(model: Any, zero_index: int, margin: float = 1.0, weight_scale: float = 0.1) -> None:
    """Make an SB3 DQN's greedy action the residual's offset 0 before training.

    Scales the last layer of the Q-network by ``weight_scale`` (outputs nearly independent of the
    observation) and adds ``margin`` to the offset-0 output's bias, then copies the network to the
    target network, so the untrained greedy policy is the rule. Imports torch lazily.
    """
    import torch

    with torch.no_grad():
        last = [m for m in model.q_net.q_net.modules() if isinstance(m, torch.nn.Linear)][-1]
        last.weight.mul_(weight_scale)
        last.bias.mul_(weight_scale)
        last.bias[zero_index] += margin
    model.q_net_target.load_state_dict(model.q_net.state_dict())


def residual_idle_gap_trainer(rule_params: dict[str, Any] | None = None, offsets: tuple[int, ...] = RESIDUAL_OFFSETS,
                              max_run: int = 8, q_margin: float = 1.0) -> Callable[[Any, Any, int], ResidualIdleGapPolicy]:
    """A ``Recipe.train`` trainer: SB3 DQN (or PPO, DQN-like algorithms) on :class:`ResidualIdleGapEnv`.

    Builds ``recipe.algo`` with ``recipe.algo_kwargs`` on ``recipe.n_envs`` copies of the task's env
    wrapped as the residual of the idle-gap rule with ``rule_params``; for DQN the Q-network starts
    with offset 0 greedy (:func:`set_q_prior` with ``q_margin``). Training episodes are reset with seeds
    ``seed * 1000 + k`` (disjoint from ``task.eval_seeds``); trains on the env's own reward; returns a
    :class:`ResidualIdleGapPolicy` for the unwrapped env. Imports SB3 lazily.

    Raises:
        ValueError / TypeError: bad ``offsets``, ``max_run`` or ``q_margin`` (at construction).
    """
    from lwmecps_gym.core.validation import check_float

    max_run = check_int("max_run", max_run, low=1)
    q_margin = check_float("q_margin", q_margin, low=0.0)
    rule_params = dict(rule_params or {})
    offsets = check_offsets(offsets)

    def train(task: Any, recipe: Any, seed: int) -> ResidualIdleGapPolicy:
        from stable_baselines3.common.env_util import make_vec_env

        from lwmecps_gym.core.training import algorithm_class

        kwargs = {**task.env_kwargs, **recipe.env_kwargs}

        def make() -> gym.Env:
            return ResidualIdleGapEnv(gym.make(task.env_id, **kwargs), rule_params, offsets, max_run)

        venv = make_vec_env(make, n_envs=recipe.n_envs, seed=seed * 1000)
        model = algorithm_class(recipe.algo)("MlpPolicy", venv, seed=seed, verbose=0, **dict(recipe.algo_kwargs))
        if recipe.algo == "DQN" and q_margin > 0:
            set_q_prior(model, offsets.index(0), q_margin)
        model.learn(total_timesteps=recipe.timesteps)
        venv.close()
        return ResidualIdleGapPolicy(model, gym.make(task.env_id, **kwargs), rule_params, offsets, max_run,
                                     name=recipe.name)

    train.__name__ = train.__qualname__ = f"residual_idle_gap_trainer(offsets={offsets}, max_run={max_run})"
    return train
