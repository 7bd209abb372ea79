"""The one env template of all three families, over one backend contract.

Data flows one way (HighwayEnv's ``AbstractEnv.step`` and mobile-env's handlers have the same
shape)::

    policy -> env.step(action)
               command = env.decode_action(action)        # validate, map to a control decision
               backend.apply(command)                      # replicas, placement, weights
               backend.advance(env.interval_s)             # one control period, seconds
               m = backend.observe()                       # a Measurement record (units in names)
               obs(m), reward(m), terminated(m), info(m)   # pure functions of m (and env constants)

A :class:`Backend` is a simulator or a real system; it never imports an env. An env never
branches on the kind of backend and never reads a backend's private attributes: a simulator
makes ``observe()`` cheap instead. Truncation is Gymnasium's ``TimeLimit`` (``max_episode_steps``
at registration), never counted by the env.

Seeding: ``reset(seed=s)`` seeds ``env.np_random`` (Gymnasium's rule) and hands the backend one
integer drawn from it (:func:`lwmecps_gym.core.seeding.draw_seed`); the backend derives its
workload and system streams with :func:`lwmecps_gym.core.seeding.streams_from_seed`.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import gymnasium as gym
from gymnasium.error import ResetNeeded

from lwmecps_gym.core.backend import Backend
from lwmecps_gym.core.seeding import draw_seed
from lwmecps_gym.core.validation import check_seed

M = TypeVar("M")


class BackendEnv(gym.Env, Generic[M]):
    """Base class of the single-agent envs: the step/reset template over a :class:`Backend`.

    Subclasses set ``self.backend`` and ``self.interval_s`` (control period, seconds) in
    ``__init__`` and implement :meth:`decode_action`, :meth:`observation` and :meth:`reward`;
    they may override :meth:`terminated`, :meth:`info`, :meth:`reset_info` and
    :meth:`start_episode`. ``step`` before ``reset`` raises :class:`gymnasium.error.ResetNeeded`.
    """

    backend: Backend
    interval_s: float
    _measurement: Any = None

    # ------------------------------------------------------------------ the template
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        check_seed("seed", seed)  # None or an int >= 0: no bools, floats or numeric strings
        super().reset(seed=seed)
        self.backend.reset(seed=draw_seed(self.np_random))
        m = self.start_episode(options)
        self._measurement = m
        return self.observation(m), self.reset_info(m)

    def step(self, action: Any):
        if self._measurement is None:
            raise ResetNeeded("step() called before reset(); call env.reset(seed=...) first")
        command = self.decode_action(action)
        backend = self.backend
        backend.apply(command)
        backend.advance(self.interval_s)
        m = backend.observe()
        self._measurement = m
        return self.observation(m), self.reward(m), self.terminated(m), False, self.info(m)

    @property
    def last_measurement(self) -> M | None:
        """The measurement record behind the last observation (``None`` before ``reset``)."""
        return self._measurement

    # ------------------------------------------------------------------ hooks
    def start_episode(self, options: dict[str, Any] | None) -> M:
        """After ``backend.reset``: bring the backend to the episode's first state and observe it."""
        return self.backend.observe()

    def decode_action(self, action: Any) -> Any:
        """Validate ``action`` against ``self.action_space`` and return the backend's command.

        Raises:
            ValueError / TypeError: naming the action and the allowed values.
        """
        raise NotImplementedError

    def observation(self, m: M) -> Any:
        """The observation of measurement ``m`` (inside ``self.observation_space``, its dtype)."""
        raise NotImplementedError

    def reward(self, m: M) -> float:
        """The reward of measurement ``m``: a pure function of ``m`` and env constants; Python float."""
        raise NotImplementedError

    def terminated(self, m: M) -> bool:
        """Whether ``m`` is a terminal state (no family has one by default)."""
        return False

    def info(self, m: M) -> dict[str, Any]:
        """The step's info dict; the family's raw unit-labelled measurements go under ``"metrics"``."""
        return {}

    def reset_info(self, m: M) -> dict[str, Any]:
        """The info dict returned by ``reset`` (defaults to :meth:`info`)."""
        return self.info(m)

    def close(self) -> None:
        backend = getattr(self, "backend", None)
        if backend is not None:
            backend.close()
        super().close()
