"""``melbourne-flash``: the hard per-site scaling scenario (id ``lwmecps_gym/ScalingHard-v0``).

What makes it hard, on top of ``lwmecps-v3``'s Melbourne CBD (EUA sites and users, diurnal
demand, user mobility):

* **Flash crowds** (:class:`~lwmecps_gym.scenarios.events.FlashCrowds`): every site gets
  sudden surges, 2-4x its demand, ramping up over 1-3 min (about 0.5 per site per hour).
* **Slow pod start-up**: new pods serve after a median 90 s (3 windows; image pull of a large
  service), so a controller that reacts to the last window is 3 windows late.
* **A real replica cost**: ``w_replicas = 3``: one replica for one window costs
  3 / (n max_replicas) = 0.025, as much as 0.23% of the window's requests timing out;
  provisioning for the worst case everywhere is expensive.
* **A shared capacity budget** (:class:`ReplicaBudget`): at most ``budget`` replicas over all
  sites together (a regional ResourceQuota), far below ``n x max_replicas``, so headroom must
  be moved to where the crowd is, not kept everywhere.
* ``w_imbalance = 0``: the reward is latency + SLA violations + replica cost.

The observation adds what a learner needs to anticipate (:class:`DemandTrend`): the change of
every site's demand over the last window and over the last three, and the unused budget.

Bounds and baselines: :mod:`lwmecps_gym.baselines` (tuned static, tuned HPA, MPC with a
last-window forecast, clairvoyant MPC oracle); the leaderboard task: :mod:`lwmecps_gym.benchmark`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lwmecps_gym.core.validation import check_int
from lwmecps_gym.scenarios.events import FlashCrowds

#: Scenario name used in tables and ``info["scenario_name"]``.
HARD_SCENARIO = "melbourne-flash"
#: Registered id.
HARD_ID = "lwmecps_gym/ScalingHard-v0"

#: The scenario's constants (documented in docs/lwmecps_gym.md, "Hard scenario").
HARD_DEFAULTS: dict[str, Any] = {
    "scenario": "melbourne-cbd",
    "scenario_options": {"n_nodes": 6, "node_cpu": 40.0},  # 20 pods of 2 cores fit per site
    "sim_config": {"pod_startup_median_s": 90.0, "pod_startup_sigma": 0.25, "initial_replicas": 3},
    "w_replicas": 3.0,
    "w_imbalance": 0.0,
}
HARD_BUDGET = 40
HARD_FLASH_CROWDS = FlashCrowds(peak=(2.0, 4.0))


class ReplicaBudget(gym.ActionWrapper):
    """A shared replica budget across sites (a namespace ResourceQuota on pods).

    If an action asks for more than ``budget`` replicas in total, the quota admits
    ``budget`` of them, shared in proportion to the request (largest remainders first, ties
    to the lower site index); the env sees, and charges, the admitted replicas. The request
    and the admitted counts are in ``info["replicas_requested"]`` / ``info["replicas_desired"]``;
    the reset info carries ``replica_budget``.

    Args:
        env: a per-site scaling env with a ``MultiDiscrete`` action (``lwmecps-v3`` layout).
        budget: total replicas admitted, ``>= 0``.
    Raises:
        ValueError: bad ``budget`` or an env without a ``MultiDiscrete`` action.
    """

    def __init__(self, env: gym.Env, budget: int):
        super().__init__(env)
        if not isinstance(env.action_space, spaces.MultiDiscrete):
            raise ValueError("ReplicaBudget needs a MultiDiscrete (per-site replica count) action space")
        self.budget = check_int("budget", budget, low=0)
        self._requested: list[int] = []

    @staticmethod
    def admit(request: np.ndarray, budget: int) -> np.ndarray:
        """The admitted counts for ``request`` (``int64 (n,)``) under ``budget`` (see class docstring)."""
        req = np.asarray(request, dtype=np.int64)
        total = int(req.sum())
        if total <= budget:
            return req
        share = req * (budget / total)
        out = np.floor(share).astype(np.int64)
        left = budget - int(out.sum())
        order = np.lexsort((np.arange(len(req)), -(share - out)))
        out[order[:left]] += 1
        return out

    def action(self, action: Any) -> np.ndarray:
        a = np.asarray(action)
        if a.shape != self.action_space.shape or a.dtype.kind not in "iu":
            a = np.asarray(action, dtype=np.float64)
            if a.shape != self.action_space.shape or not np.all(a == np.round(a)):
                raise ValueError(f"action must be {self.action_space.shape[0]} integer replica counts, got {action!r}")
            a = a.astype(np.int64)
        self._requested = a.tolist()
        return self.admit(a, self.budget)

    def step(self, action: Any):
        obs, r, term, trunc, info = self.env.step(self.action(action))
        info = {**info, "replicas_requested": list(self._requested)}
        return obs, r, term, trunc, info

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        return obs, {**info, "replica_budget": self.budget}


class DemandTrend(gym.ObservationWrapper):
    """Append anticipation features to the flat ``lwmecps-v3`` observation.

    New entries after the env's ``5 n + 2`` (``n`` sites). Demand changes are measured in
    units of ``TREND_UNIT_REPLICAS`` replicas' worth of demand (``4 x service rate``), so a
    rising crowd shows as values of order 1 (the env's own demand entry is divided by
    ``max_replicas x service rate`` and its changes would be ~0.01):

    | index | feature | range |
    |---|---|---|
    | ``5n + 2 + i`` | demand change over the last window / (4 mu) | [-4, 4] |
    | ``6n + 2 + i`` | demand change over the last three windows / (4 mu) | [-4, 4] |
    | ``7n + 2`` | unused replica budget / budget (0 if no :class:`ReplicaBudget` below) | [0, 1] |

    At reset the changes are 0.
    """

    TREND_UNIT_REPLICAS = 4.0

    def __init__(self, env: gym.Env):
        super().__init__(env)
        base = env.observation_space
        if not isinstance(base, spaces.Box) or base.shape is None or len(base.shape) != 1:
            raise ValueError("DemandTrend needs the flat (obs_mode='flat') observation")
        self.n = n = int(env.unwrapped.n)
        low = np.concatenate([base.low, np.full(2 * n, -4.0), [0.0]]).astype(np.float32)
        high = np.concatenate([base.high, np.full(2 * n, 4.0), [1.0]]).astype(np.float32)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self._hist: list[np.ndarray] = []
        try:
            self._budget = int(env.get_wrapper_attr("budget"))
        except AttributeError:
            self._budget = 0

    def reset(self, **kwargs: Any):
        self._hist = []
        return super().reset(**kwargs)

    def observation(self, obs: np.ndarray) -> np.ndarray:
        n = self.n
        u = self.env.unwrapped
        # back to req/s (the env's demand entry is rate / (max_replicas mu)), then to trend units
        dem = np.asarray(obs[:n], dtype=np.float32) * (u.max_replicas / self.TREND_UNIT_REPLICAS)
        self._hist = (self._hist + [dem])[-4:]
        d1 = dem - self._hist[-2] if len(self._hist) >= 2 else np.zeros(n, np.float32)
        d3 = dem - self._hist[0] if len(self._hist) >= 2 else np.zeros(n, np.float32)
        if self._budget > 0:
            used = float(np.sum(obs[2 * n:3 * n])) * u.max_replicas
            slack = min(max(1.0 - used / self._budget, 0.0), 1.0)
        else:
            slack = 0.0
        return np.concatenate([obs, np.clip(d1, -4, 4), np.clip(d3, -4, 4), [slack]]).astype(np.float32)


class DemandRelativeAction(gym.ActionWrapper):
    """Replica counts relative to the demand: an action space a learner can start from.

    ``MultiDiscrete([len(offsets)] * n)``: action ``a_i`` asks site ``i`` for
    ``clip(base_i + offsets[a_i], min_replicas, max_replicas)`` replicas (the map is the action's
    definition, not input repair), where ``base_i`` is the HPA recommendation: the largest
    ``ceil(lambda_i / (mu * target_utilisation))`` of the last ``stabilization_windows + 1``
    windows (HPA's scale-down stabilisation; ``0``: the last window only), ``lambda_i`` the
    measured demand (req/s) and ``mu`` the service rate. Offset 0 is the HPA rule; positive
    offsets are headroom ahead of a rising crowd, negative ones save replicas. With the tuned
    ``hpa`` baseline's ``target_utilisation``, ``stabilization_windows`` and ``min_replicas=1``,
    offset 0 IS that baseline, so a learner acts as a residual on it (residual policy learning,
    Silver et al. 2018, arXiv:1812.06298).

    Args:
        env: the ``melbourne-flash`` env (or any ``lwmecps-v3`` layout env reporting
            ``info["demand_rps"]``).
        target_utilisation: HPA target, in ``(0, 1]``.
        offsets: the replica offsets the actions select, a non-empty tuple of distinct ints.
        stabilization_windows: ``k >= 0`` (see above).
        min_replicas: lower bound of the request, in ``[0, max_replicas]``.
    Raises:
        ValueError: a bad argument (naming it) or an action outside the space.
    """

    def __init__(self, env: gym.Env, target_utilisation: float = 0.7,
                 offsets: tuple[int, ...] = (-2, -1, 0, 1, 2, 3, 4, 6, 8), stabilization_windows: int = 0,
                 min_replicas: int = 0):
        from lwmecps_gym.core.validation import check_float

        super().__init__(env)
        self.target = check_float("target_utilisation", target_utilisation, low=0.0, high=1.0, low_open=True)
        if (not isinstance(offsets, (tuple, list)) or not offsets
                or any(isinstance(o, bool) or not isinstance(o, (int, np.integer)) for o in offsets)
                or len(set(int(o) for o in offsets)) != len(offsets)):
            raise ValueError(f"offsets must be a non-empty tuple of distinct ints, got {offsets!r}")
        self.offsets = np.asarray(offsets, dtype=np.int64)
        u = env.unwrapped
        self.n, self.m, self.mu = int(u.n), int(u.max_replicas), float(u.scenario.service_rate_rps)
        self.stabilization_windows = check_int("stabilization_windows", stabilization_windows, low=0)
        self.min_replicas = check_int("min_replicas", min_replicas, low=0, high=self.m)
        self.action_space = spaces.MultiDiscrete(np.full(self.n, len(offsets), dtype=np.int64))
        self._demand = np.zeros(self.n)
        self._recent: list[np.ndarray] = []

    def reset(self, **kwargs: Any):
        obs, info = self.env.reset(**kwargs)
        self._demand = np.asarray(info["demand_rps"], dtype=float)
        self._recent = []
        return obs, info

    def step(self, action: Any):
        obs, r, term, trunc, info = self.env.step(self.action(action))
        self._demand = np.asarray(info["demand_rps"], dtype=float)
        return obs, r, term, trunc, info

    def base(self) -> np.ndarray:
        """The HPA recommendation ``base`` (``int64 (n,)``) the next action is relative to."""
        rec = np.ceil(self._demand / (self.mu * self.target) - 1e-9).astype(np.int64)
        if not self.stabilization_windows:
            return rec
        return np.max(self._recent[-self.stabilization_windows:] + [rec], axis=0)

    def action(self, action: Any) -> np.ndarray:
        a = np.asarray(action)
        if a.shape != (self.n,) or a.dtype.kind not in "iu" or a.min() < 0 or a.max() >= len(self.offsets):
            raise ValueError(f"action must be {self.n} ints in [0, {len(self.offsets) - 1}], got {action!r}")
        base = self.base()
        if self.stabilization_windows:
            rec = np.ceil(self._demand / (self.mu * self.target) - 1e-9).astype(np.int64)
            self._recent = (self._recent + [rec])[-self.stabilization_windows:]
        return np.clip(base + self.offsets[a], self.min_replicas, self.m)


#: The keyword arguments of :class:`DemandRelativeAction` accepted in ``action_options``.
DEMAND_RELATIVE_OPTIONS = ("target_utilisation", "offsets", "stabilization_windows", "min_replicas")


def make_scaling_hard(budget: int = HARD_BUDGET, flash_crowds: FlashCrowds | None = HARD_FLASH_CROWDS,
                      trend_features: bool = True, action: str = "replicas",
                      action_options: Mapping[str, Any] | None = None, **env_kwargs: Any) -> gym.Env:
    """Build the ``melbourne-flash`` env: ``LWMECPSEnv3`` with :data:`HARD_DEFAULTS`, flash crowds,
    :class:`ReplicaBudget` and (``trend_features``) :class:`DemandTrend`.

    ``action="replicas"`` (default): the env's own ``MultiDiscrete`` replica counts;
    ``"demand-relative"``: :class:`DemandRelativeAction` (HPA rule plus an offset per site), with
    ``action_options`` its keyword arguments (``target_utilisation``, ``offsets``,
    ``stabilization_windows``, ``min_replicas``; ``None``: its defaults; only with
    ``action="demand-relative"``).
    ``env_kwargs`` override the defaults (``sim_config`` and ``scenario_options`` are merged
    key by key). ``flash_crowds=None`` turns the crowds off. Raises ``ValueError`` on bad input.
    """
    from lwmecps_gym.core.validation import check_choice

    action = check_choice("action", action, ("replicas", "demand-relative"))
    if action_options is not None:
        if action != "demand-relative":
            raise ValueError(f"action_options needs action='demand-relative', got action={action!r}")
        if not isinstance(action_options, Mapping):
            raise ValueError(f"action_options must be a mapping or None, got {action_options!r}")
        unknown = sorted(set(action_options) - set(DEMAND_RELATIVE_OPTIONS))
        if unknown:
            raise ValueError(f"action_options: unknown key(s) {unknown}; allowed: {list(DEMAND_RELATIVE_OPTIONS)}")
    from lwmecps_gym.envs.scaling import LWMECPSEnv3

    kw: dict[str, Any] = {**HARD_DEFAULTS, **env_kwargs}
    for key in ("sim_config", "scenario_options"):
        extra = env_kwargs.get(key) or {}
        if not isinstance(extra, Mapping):
            raise ValueError(f"{key} must be a mapping, got {extra!r}")
        kw[key] = {**HARD_DEFAULTS[key], **extra}
    if flash_crowds is not None and not isinstance(flash_crowds, FlashCrowds):
        raise ValueError(f"flash_crowds must be a FlashCrowds or None, got {flash_crowds!r}")
    kw["sim_config"] = {**kw["sim_config"], "demand_events": flash_crowds}
    env: gym.Env = ReplicaBudget(LWMECPSEnv3(**kw), budget)
    if trend_features:
        env = DemandTrend(env)
    if action == "demand-relative":
        env = DemandRelativeAction(env, **dict(action_options or {}))
    return env
