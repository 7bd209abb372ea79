"""Model-predictive autoscalers over the simulator: a clairvoyant oracle and a naive-forecast MPC.

Both plan with :meth:`faas_gym.backends.sim.SimBackend.fork`: every control interval they copy the
simulator in its current state, try each constant replica level ``L`` in ``levels`` for
``horizon`` intervals (moving toward ``L`` with the env's own action set and clipping, applying,
advancing and scoring each interval with the env's reward, the same pure function of the
measurement the agent is scored with), and take the first action toward the best level
(receding horizon; ties go to fewer replicas).

* ``forecast="oracle"``: the copy's workload stream is the true one, so the plan sees exactly the
  arrivals that will come (a clairvoyant upper-bound baseline; it reads the future through the
  public ``fork`` of the backend, nothing private).
* ``forecast="last"``: the naive persistence forecast a practitioner can deploy: every future
  interval gets the last measured interval's arrival count; ``forecast="mean"``: the mean count
  of the last ``window`` measured intervals (a moving-average forecast; ``window`` is tuned).

Neither is an exact optimum (the plan family is constant levels; the horizon is finite), but the
oracle's knowledge of the future makes it an upper reference for non-clairvoyant policies; the
benchmark (``faas_gym.benchmark``) reports the measured gap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from faas_gym.baselines import ReplicaTargetPolicy, env_params
from lwmecps_gym.core.validation import check_choice, check_int

FORECASTS = ("oracle", "last", "mean")


class MPCPolicy(ReplicaTargetPolicy):
    """Receding-horizon MPC over constant replica levels, planned on forks of the env's simulator.

    Args:
        env: a faas_gym env (wrapped or not) whose backend is a
            :class:`~faas_gym.backends.sim.SimBackend`; the policy is bound to it (evaluate it on
            this env).
        horizon: planning horizon, control intervals (>= 1).
        forecast: ``"oracle"`` (true future arrivals), ``"last"`` (persistence of the last count) or
            ``"mean"`` (mean count of the last ``window`` intervals).
        window: intervals averaged by ``forecast="mean"`` (>= 1).
        levels: replica levels to try (default: every level in ``[min_replicas, max_replicas]``).
        name: table label (default ``"mpc_oracle"`` / ``"mpc_last"``).

    Raises:
        TypeError: if the env's backend cannot ``fork``.
    """

    def __init__(self, env: Any, horizon: int = 8, forecast: str = "oracle", window: int = 4,
                 levels: Sequence[int] | None = None, name: str | None = None):
        super().__init__(**env_params(env))
        self.env = getattr(env, "unwrapped", env)
        if not hasattr(self.env.backend, "fork"):
            raise TypeError(f"MPCPolicy needs a backend with fork() (the simulator), got {type(self.env.backend).__name__}")
        self.horizon = check_int("horizon", horizon, low=1)
        self.forecast = check_choice("forecast", forecast, FORECASTS)
        self.window = check_int("window", window, low=1)
        self._history: deque[int] = deque(maxlen=self.window)
        lv = range(self.min_replicas, self.max_replicas + 1) if levels is None else levels
        self.levels = tuple(check_int("levels[i]", v, low=self.min_replicas, high=self.max_replicas) for v in lv)
        self.name = name or f"mpc_{forecast}"

    def reset(self, seed: int | None = None) -> None:
        self._history.clear()

    def plan_value(self, current: int, level: int, arrived: int) -> float:
        """Sum of the env's rewards over the horizon when moving toward ``level`` from ``current``
        (``arrived``: the forecast count per interval, unused by the oracle)."""
        env = self.env
        if self.forecast == "oracle":
            twin = env.backend.fork()
        else:
            twin = env.backend.fork(future_counts=[arrived] * self.horizon, interval_s=self.interval_s)
        deltas, lo, hi, dt = self.deltas, self.min_replicas, self.max_replicas, self.interval_s
        desired = current
        total = 0.0
        for _ in range(self.horizon):
            desired = min(max(desired + deltas[self.action_for(desired, level)], lo), hi)
            twin.apply(desired)
            twin.advance(dt)
            total += env.reward(twin.observe())
        return total

    def desired_replicas(self, metrics: dict[str, float]) -> int:
        current = int(metrics["replicas_desired"])
        self._history.append(int(round(metrics["arrived"])))
        if self.forecast == "mean":
            arrived = int(round(sum(self._history) / len(self._history)))
        else:
            arrived = self._history[-1]
        best, best_v = current, None
        for level in self.levels:
            v = self.plan_value(current, level, arrived)
            if best_v is None or v > best_v + 1e-12:
                best, best_v = level, v
        return best
