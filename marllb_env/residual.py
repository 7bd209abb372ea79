"""Residual learning on top of the FCT-adaptive SED heuristic (``hidden_drift``'s best non-clairvoyant baseline).

Residual policy learning (Silver, Allen, Tenenbaum, Kaelbling, "Residual Policy Learning",
arXiv:1812.06298, 2018; Johannink et al., "Residual Reinforcement Learning for Robot Control",
ICRA 2019, doi:10.1109/ICRA.2019.8794127): the agent does not replace a good controller, it learns a
bounded correction to it. Here the controller is :class:`marllb_env.baselines.FCTAdaptiveSED` and
the correction is multiplicative on its SED weights::

    weights_t = adaptive_weights_t * exp(scale * residual_t),   residual_t in [-1, 1]^num_servers

so a residual of 0 (the deterministic mean of a freshly initialised Gaussian policy) *is* the
heuristic, action for action, and the worst a residual can do is bounded by ``exp(2 * scale)`` on
any weight ratio. The agent observes the env's observation in log scale, ``log(obs + 0.01)``
flattened (``features="all"``; ``"relative"``: per server ``log n_flow_on`` and the logs of
``fct_avg_decay``, ``flow_duration_avg`` and ``flow_duration_avg_decay`` relative to ``fct_avg``,
i.e. recent vs long-run latency), followed by ``log(adaptive_weights / max(adaptive_weights))``, the
heuristic's current capacity estimate.

* :class:`ResidualSED`: the arithmetic, shared by training and deployment (``reset``,
  ``observe(obs, info) -> agent observation``, ``action(residual) -> env action``);
* :class:`ResidualSEDWrapper`: a ``gym.Wrapper`` exposing the residual as the action space
  (for training);
* :class:`ResidualPolicy`: a policy for the env itself (``act(obs, info)``) from any policy
  acting on the agent observation (e.g. a trained SB3 model), so the shared evaluation harness
  scores it on the true metric.

The heuristic is used only through its public :meth:`~marllb_env.baselines.FCTAdaptiveSED.weights`
(which advances its EWMA one step, exactly as its own ``act`` does).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lwmecps_gym.core.policy import BasePolicy
from lwmecps_gym.core.validation import check_choice, check_float
from marllb_env.baselines import FCTAdaptiveSED
from marllb_env.sim import FEATURE_NAMES

#: offset of the log features: ``log(obs + LOG_EPS)`` (counts in flows, times in s; empty reservoirs give 0).
LOG_EPS = 0.01
#: agent observations of :meth:`ResidualSED.observe`.
FEATURE_MODES = ("all", "relative")
_FCT_AVG = FEATURE_NAMES.index("fct_avg")
_RELATIVE = [FEATURE_NAMES.index(k) for k in ("fct_avg_decay", "flow_duration_avg", "flow_duration_avg_decay")]


class ResidualSED:
    """Multiplicative residual on :class:`~marllb_env.baselines.FCTAdaptiveSED`'s weights.

    Args:
        base: the heuristic (its parameters, e.g. ``FCTAdaptiveSED(**TUNED_ADAPTIVE)``); it is
            reset with this object.
        scale: ``c`` in ``exp(c * residual)``, in (0, 2]: the largest factor one weight can get
            is ``exp(c)``.
        features: the agent observation, one of :data:`FEATURE_MODES` (see the module docstring).

    Raises:
        TypeError: ``base`` is not an ``FCTAdaptiveSED``.
        ValueError: ``scale`` or ``features`` out of range.
    """

    def __init__(self, base: FCTAdaptiveSED, scale: float = 0.5, features: str = "all"):
        self.features = check_choice("features", features, FEATURE_MODES)
        if not isinstance(base, FCTAdaptiveSED):
            raise TypeError(f"base must be an FCTAdaptiveSED, got {type(base).__name__}")
        self.base = base
        self.scale = check_float("scale", scale, low=0.0, high=2.0, low_open=True)
        self.reset()

    def reset(self) -> None:
        """Forget the episode (the heuristic's EWMA restarts from the configured capacity)."""
        self.base.reset()
        self.base_weights: np.ndarray | None = None
        self._codec: Any = None

    def observe(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        """Advance the heuristic on the env's ``(obs, info)`` and return the agent observation:
        the log features (module docstring) then ``log(w / max w)`` of the heuristic's weights,
        float32 ``(obs.size + n,)`` (``"all"``) or ``(5 n,)`` (``"relative"``). ``obs`` must carry the
        11 MARLLB feature columns (``feature_set="all"``, flat or 2-D).

        Raises:
            ValueError: the env does not run ``dispatch="sed"`` or has no continuous weights.
        """
        if info.get("dispatch") != "sed":
            raise ValueError(f"the residual acts on SED weights; make the env with dispatch='sed', got {info.get('dispatch')!r}")
        codec = info["weight_codec"]
        if codec.action_type != "continuous":
            raise ValueError(f"the residual needs action_mode='continuous', got {codec.action_type!r}")
        self._codec = codec
        w = self.base.weights(obs, info)
        self.base_weights = w
        lw = np.log(w / w.max())
        x = np.log(np.asarray(obs, dtype=np.float64) + LOG_EPS)
        if self.features == "all":
            return np.concatenate([x.ravel(), lw]).astype(np.float32)
        f = x.reshape(w.shape[0], -1)
        ref = f[:, _FCT_AVG]
        rel = f[:, _RELATIVE] - ref[:, None]
        return np.concatenate([f[:, 0], rel.ravel(), lw]).astype(np.float32)

    def action(self, residual: Any) -> np.ndarray:
        """The env action realising ``base_weights * exp(scale * residual)``.

        Args:
            residual: ``(n,)`` floats in ``[-1, 1]``.

        Raises:
            RuntimeError: called before :meth:`observe`.
            ValueError: wrong shape, or entries not finite or outside ``[-1, 1]``.
        """
        if self.base_weights is None:
            raise RuntimeError("ResidualSED.action called before observe (reset the env and observe first)")
        r = np.asarray(residual, dtype=np.float64)
        n = self.base_weights.shape[0]
        if r.shape != (n,):
            raise ValueError(f"residual must have shape ({n},) (one entry per server), got shape {r.shape}")
        if not np.all(np.abs(r) <= 1.0):  # also NaN
            raise ValueError(f"residual entries must be finite and in [-1, 1], got {r.tolist()}")
        return self._codec.encode(self.base_weights * np.exp(self.scale * r))

    def agent_observation_size(self, obs_size: int, n: int) -> int:
        """Length of :meth:`observe`'s output for an env observation of ``obs_size`` values and ``n`` servers."""
        return obs_size + n if self.features == "all" else n * (2 + len(_RELATIVE))


class ResidualSEDWrapper(gym.Wrapper):
    """The env with the residual of :class:`ResidualSED` as its action.

    Action space ``Box(-1, 1, (num_servers,), float32)`` (0 = the heuristic); observation space
    ``Box(-inf, inf, (size,), float32)`` with ``size`` that of :meth:`ResidualSED.observe`.
    Rewards, termination and ``info`` are the wrapped env's.

    Args:
        env: a ``marllb_env`` env with ``action_mode="continuous"`` and ``dispatch="sed"``
            (e.g. ``marllb_env/LoadBalanceHard-v0``), possibly wrapped.
        base, scale, features: see :class:`ResidualSED`.

    Raises:
        ValueError: (at reset) an env without continuous SED weights; (at step) a bad residual.
    """

    def __init__(self, env: gym.Env, base: FCTAdaptiveSED, scale: float = 0.5, features: str = "all"):
        super().__init__(env)
        self.residual = ResidualSED(base, scale, features)
        n = int(np.prod(env.action_space.shape))
        size = self.residual.agent_observation_size(int(np.prod(env.observation_space.shape)), n)
        self.action_space = spaces.Box(-1.0, 1.0, (n,), dtype=np.float32)
        self.observation_space = spaces.Box(-np.inf, np.inf, (size,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self.residual.reset()
        obs, info = self.env.reset(seed=seed, options=options)
        return self.residual.observe(obs, info), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(self.residual.action(action))
        return self.residual.observe(obs, info), reward, terminated, truncated, info


class ResidualPolicy(BasePolicy):
    """A policy for the env itself: the heuristic corrected by ``agent``'s residual.

    Args:
        agent: a policy on the agent observation (``act(x, info) -> residual``, optional ``reset``),
            e.g. :class:`marllb_env.benchmark.NormalizedSB3Policy`; ``None`` = residual 0 (the heuristic).
        base, scale, features: see :class:`ResidualSED`.
        name: row label.
    """

    def __init__(self, agent: Any, base: FCTAdaptiveSED, scale: float = 0.5, features: str = "all",
                 name: str = "residual FCT-adaptive SED"):
        self.agent, self.name = agent, name
        self.residual = ResidualSED(base, scale, features)

    def reset(self, seed: int | None = None) -> None:
        self.residual.reset()
        reset = getattr(self.agent, "reset", None)
        if callable(reset):
            reset(seed)

    def act(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        x = self.residual.observe(obs, info)
        r = np.zeros(self.residual.base_weights.shape[0]) if self.agent is None else self.agent.act(x, info)
        return self.residual.action(r)


__all__ = ["ResidualPolicy", "ResidualSED", "ResidualSEDWrapper"]
