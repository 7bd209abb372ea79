"""The policy interface shared by heuristics and trained agents.

A policy is anything with ``act(obs, info) -> action``. ``info`` is the dict the
env returned with ``obs`` (heuristics read raw measurements from it; learned
policies ignore it). ``reset(seed)`` is called at the start of every episode so
stateful policies (hysteresis, recurrent agents, HPA stabilisation windows)
start clean.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np


@runtime_checkable
class Policy(Protocol):
    """``act(obs, info) -> action``; optional ``reset(seed)`` and ``name``."""

    def act(self, obs: Any, info: dict[str, Any]) -> Any: ...


class BasePolicy:
    """Convenience base: a ``name`` and a no-op ``reset``."""

    name: str = "policy"

    def reset(self, seed: int | None = None) -> None:  # noqa: B027 - optional hook
        """Forget per-episode state. ``seed`` seeds any policy randomness."""

    def act(self, obs: Any, info: dict[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


class FunctionPolicy(BasePolicy):
    """Wrap a plain function ``f(obs, info) -> action``."""

    def __init__(self, fn: Callable[[Any, dict[str, Any]], Any], name: str | None = None):
        self._fn = fn
        self.name = name or getattr(fn, "__name__", "function")

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        return self._fn(obs, info)


class RandomPolicy(BasePolicy):
    """Uniform random actions from ``action_space``, seeded per episode."""

    name = "random"

    def __init__(self, action_space: gym.Space):
        self.action_space = action_space

    def reset(self, seed: int | None = None) -> None:
        self.action_space.seed(seed)

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        return self.action_space.sample()


class SB3Policy(BasePolicy):
    """Adapt a Stable-Baselines3 model (anything with ``predict``) to :class:`Policy`.

    Recurrent models (sb3-contrib ``RecurrentPPO``) get their LSTM state carried
    between steps and cleared on ``reset``.

    Args:
        model: an SB3 ``BaseAlgorithm`` (or any object with a compatible ``predict``).
        deterministic: use the mode of the action distribution (default ``True``).
        name: label used in tables; defaults to the model's class name.
    """

    def __init__(self, model: Any, deterministic: bool = True, name: str | None = None):
        if not hasattr(model, "predict"):
            raise TypeError(f"model must have a predict() method, got {type(model).__name__}")
        self.model = model
        self.deterministic = deterministic
        self.name = name or type(model).__name__
        self._state: Any = None
        self._episode_start = np.ones((1,), dtype=bool)

    def reset(self, seed: int | None = None) -> None:
        self._state = None
        self._episode_start = np.ones((1,), dtype=bool)

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        action, self._state = self.model.predict(
            obs, state=self._state, episode_start=self._episode_start, deterministic=self.deterministic
        )
        self._episode_start = np.zeros((1,), dtype=bool)
        return action


def as_policy(obj: Any, name: str | None = None) -> Policy:
    """Return ``obj`` as a :class:`Policy`: policies pass through, SB3 models and functions are wrapped."""
    if hasattr(obj, "act"):
        if name is not None:
            obj.name = name
        return obj
    if hasattr(obj, "predict"):
        return SB3Policy(obj, name=name)
    if callable(obj):
        return FunctionPolicy(obj, name=name)
    raise TypeError(f"policy must have act(obs, info), predict(obs), or be callable; got {type(obj).__name__}")


class RLlibPolicy(BasePolicy):
    """Adapt a Ray RLlib (new API stack) ``RLModule`` to :class:`Policy` (needs the ``rllib`` extra).

    Acts with the module's inference distribution made deterministic (the greedy action).
    With ``n_agents`` set, the observation of :class:`marllb_env.multi_agent.JointEnv` (the agents'
    observations concatenated) is split into ``n_agents`` rows, batched through the shared module,
    and the per-agent actions are concatenated back: parameter sharing at evaluation.

    Args:
        module: e.g. ``algo.get_module()`` or ``algo.get_module("shared")``.
        n_agents: number of agents sharing the module, or ``None`` for a single-agent env.
        name: label used in tables.
    """

    def __init__(self, module: Any, n_agents: int | None = None, name: str = "RLlib"):
        import torch

        self.module, self.n_agents, self.name = module, n_agents, name
        self._torch = torch
        self._dist_cls = module.get_inference_action_dist_cls()

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        torch = self._torch
        x = np.asarray(obs, dtype=np.float32)
        batch = x.reshape(self.n_agents, -1) if self.n_agents else x[None]
        with torch.no_grad():
            out = self.module.forward_inference({"obs": torch.from_numpy(batch)})
        action = self._dist_cls.from_logits(out["action_dist_inputs"]).to_deterministic().sample().numpy()
        return action.reshape(-1) if self.n_agents else action[0]
