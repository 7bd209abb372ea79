"""Heuristic autoscalers for the faas_gym envs, as :class:`~lwmecps_gym.core.policy.BasePolicy` subclasses.

Every baseline computes a desired replica count from ``info["metrics"]`` (the raw,
unit-labelled measurements the env returns) and then picks the env action whose replica
delta moves the env's desired count closest to that target (ties: the smaller change),
so it works with any ``deltas`` set or the two-action mode. Build them with
``Policy.from_env(env, **params)`` (reads ``deltas``, ``min_replicas``, ``max_replicas``,
``interval_s`` and, for the simulator, the function's concurrency and mean service time),
or pass those values explicitly.

* :class:`HPAPolicy` -- Kubernetes HorizontalPodAutoscaler (autoscaling/v2) on CPU utilisation.
* :class:`KPAPolicy` -- Knative Pod Autoscaler-like concurrency scaler with stable/panic windows.
* :class:`OpenFaaSRPSPolicy` -- OpenFaaS (Pro) ``com.openfaas.scale.type=rps`` scaling.
* :class:`StaticPolicy` -- a constant replica count (``static_min`` / ``static_max``).
* :class:`ThresholdPolicy` -- step up/down by one replica on CPU / SLO thresholds.
* :class:`IdleGapPolicy` -- keep-alive and pre-warming by idle time (the hybrid histogram policy's
  idea, Shahrad et al., USENIX ATC 2020): scale down after an idle gap, pre-warm before the next burst.

Sources for the rules: Kubernetes HPA documentation (algorithm details, tolerance,
stabilisation window, scaling policies), Knative ``config-autoscaler`` defaults, OpenFaaS
autoscaling documentation (see ``docs/faas_gym.md``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from lwmecps_gym.core.policy import BasePolicy
from lwmecps_gym.core.validation import check_float, check_int


def env_params(env: Any) -> dict[str, Any]:
    """The faas env's ``deltas``, ``min_replicas``, ``max_replicas`` and ``interval_s`` (what every baseline needs).

    Raises:
        TypeError: if ``env`` is not a faas_gym env.
    """
    u = getattr(env, "unwrapped", env)
    missing = [a for a in ("deltas", "min_replicas", "max_replicas", "interval_s") if not hasattr(u, a)]
    if missing:
        raise TypeError(f"env is not a faas_gym env (missing {missing})")
    return {"deltas": u.deltas, "min_replicas": u.min_replicas, "max_replicas": u.max_replicas, "interval_s": u.interval_s}


def _replica_capacity_rps(env: Any) -> float | None:
    """Requests/s one replica can serve (concurrency / mean service time) for a simulated env."""
    cfg = getattr(getattr(getattr(env, "unwrapped", env), "backend", None), "config", None)
    if cfg is None or not hasattr(cfg, "service_time"):
        return None
    return cfg.concurrency / cfg.service_time.mean_s


class ReplicaTargetPolicy(BasePolicy):
    """Base: turn a desired replica count into the env action closest to it.

    Args:
        deltas: the env's replica deltas, in action order.
        min_replicas, max_replicas: the env's replica range (targets are clamped to it).
        interval_s: the env's control interval, s (for time windows).
    """

    name = "replica_target"

    def __init__(
        self,
        deltas: Sequence[int] = (-1, 0, 1),
        min_replicas: int = 1,
        max_replicas: int = 16,
        interval_s: float = 15.0,
    ):
        self.deltas = tuple(check_int(f"deltas[{i}]", d) for i, d in enumerate(deltas))
        if not self.deltas:
            raise ValueError("deltas must not be empty")
        self.min_replicas = check_int("min_replicas", min_replicas, low=0)
        self.max_replicas = check_int("max_replicas", max_replicas, low=max(1, self.min_replicas))
        self.interval_s = check_float("interval_s", interval_s, low=0.0, low_open=True)
        self.last_target: int | None = None

    @classmethod
    def from_env(cls, env: Any, **params: Any):
        """Build the policy with the env's action set, replica range and interval (``params`` override)."""
        return cls(**{**env_params(env), **params})

    def desired_replicas(self, metrics: dict[str, float]) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def action_for(self, current: int, target: int) -> int:
        """Index of the delta that brings ``current`` closest to ``target`` (ties: smaller |delta|)."""
        best, best_key = 0, None
        for i, d in enumerate(self.deltas):
            nxt = min(max(current + d, self.min_replicas), self.max_replicas)
            key = (abs(nxt - target), abs(d))
            if best_key is None or key < best_key:
                best, best_key = i, key
        return best

    def act(self, obs: Any, info: dict[str, Any]) -> int:
        m = info["metrics"]
        target = min(max(int(self.desired_replicas(m)), self.min_replicas), self.max_replicas)
        self.last_target = target
        return self.action_for(int(m["replicas_desired"]), target)


class StaticPolicy(ReplicaTargetPolicy):
    """Hold ``replicas`` replicas (``"min"``/``"max"`` for the env's bounds)."""

    def __init__(self, replicas: int | str = "min", **kw: Any):
        super().__init__(**kw)
        if replicas == "min":
            self.replicas = self.min_replicas
        elif replicas == "max":
            self.replicas = self.max_replicas
        else:
            self.replicas = check_int("replicas", replicas, low=self.min_replicas, high=self.max_replicas)
        self.name = f"static_{replicas}"

    def desired_replicas(self, metrics):
        return self.replicas


class HPAPolicy(ReplicaTargetPolicy):
    """Kubernetes HPA (autoscaling/v2) on average CPU utilisation, one reconcile per env step.

    Rules, as the Kubernetes documentation states them:

    * ``desired = ceil(current * metric / target)`` where ``metric`` is the mean CPU utilisation of
      the ready pods and ``current`` is the Deployment's replica count (``replicas_desired``);
      no change if ``|metric / target - 1| <= tolerance`` (default 0.1).
    * Pods not yet ready (cold-starting) count as 0 % utilisation when scaling up; if that makes the
      ratio fall within the tolerance or reverses the direction, no change.
    * Scale-down stabilisation: the applied recommendation is the **maximum** of the raw
      recommendations over the last ``scale_down_stabilization_s`` seconds (default 300 s);
      scale-up window 0.
    * Scale-up policies (default): at most ``max(+100 %, +4 pods)`` per 15 s period; scale-down
      policy: at most -100 % per 15 s (i.e. unrestricted). Periods are counted in env steps:
      an env step of ``interval_s`` allows ``ceil(interval_s / 15)`` periods' worth.
    * Clamp to ``[min_replicas, max_replicas]``.

    Args:
        target_utilization: target mean CPU utilisation of ready pods, fraction (default 0.7).
        tolerance: default 0.1 (``--horizontal-pod-autoscaler-tolerance``).
        scale_down_stabilization_s: default 300.
        scale_up_pods, scale_up_percent, period_s: scale-up policy (4 pods, 100 %, 15 s).
    """

    name = "hpa"

    def __init__(
        self,
        target_utilization: float = 0.7,
        tolerance: float = 0.1,
        scale_down_stabilization_s: float = 300.0,
        scale_up_pods: int = 4,
        scale_up_percent: float = 100.0,
        period_s: float = 15.0,
        **kw: Any,
    ):
        super().__init__(**kw)
        self.target = check_float("target_utilization", target_utilization, low=0.0, low_open=True)
        self.tolerance = check_float("tolerance", tolerance, low=0.0)
        self.window_s = check_float("scale_down_stabilization_s", scale_down_stabilization_s, low=0.0)
        self.scale_up_pods = check_int("scale_up_pods", scale_up_pods, low=0)
        self.scale_up_percent = check_float("scale_up_percent", scale_up_percent, low=0.0)
        self.period_s = check_float("period_s", period_s, low=0.0, low_open=True)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self._recs: deque[tuple[float, int]] = deque()
        self._t = 0.0

    @staticmethod
    def raw_recommendation(current: int, ready: int, utilization: float, target: float, tolerance: float) -> int:
        """The HPA replica calculation without windows or rate limits (see the class docstring)."""
        if current <= 0 or ready <= 0:
            return current
        ratio = utilization / target
        if abs(ratio - 1.0) <= tolerance:
            return current
        desired = math.ceil(ready * ratio)
        if ready < current and ratio > 1.0:
            # scale-up with unready pods: they count as 0 % -> recompute over all pods
            ratio2 = utilization * ready / (target * current)
            if abs(ratio2 - 1.0) <= tolerance or ratio2 < 1.0:
                return current
            desired = math.ceil(current * ratio2)
        elif ready == current:
            desired = math.ceil(current * ratio)
        return desired

    def desired_replicas(self, metrics):
        current = int(metrics["replicas_desired"])
        ready = int(metrics["replicas"])
        rec = self.raw_recommendation(current, ready, float(metrics["cpu_utilization"]), self.target, self.tolerance)
        self._t += self.interval_s
        self._recs.append((self._t, rec))
        while self._recs and self._recs[0][0] <= self._t - self.window_s:
            self._recs.popleft()
        stabilized = rec
        if rec < current:
            stabilized = min(current, max((r for _, r in self._recs), default=rec))  # window 0: no history
        if stabilized > current:
            periods = max(1, math.ceil(self.interval_s / self.period_s))
            limit = current
            for _ in range(periods):
                limit = max(limit + self.scale_up_pods, math.floor(limit * (1 + self.scale_up_percent / 100.0)))
            stabilized = min(stabilized, limit)
        return stabilized


class KPAPolicy(ReplicaTargetPolicy):
    """Knative Pod Autoscaler-like concurrency scaler (stable and panic modes).

    * Observed concurrency per step: in-flight requests by Little's law,
      ``request_rate_rps * response_time_ms / 1000`` (requests queued at the gateway included,
      as Knative's queue-proxy counts them).
    * ``desired = ceil(avg_concurrency / (target * target_utilization))`` with the average over the
      stable window (default 60 s) and, for panic, over the panic window (10 % of stable, at least
      one step).
    * Panic when the panic-window desired count is >= ``panic_threshold`` (2.0) x ready replicas; while
      panicking the count never decreases; panic ends after a stable window without the condition.
    * Rate limits: up to ``max_scale_up_rate`` (1000) x ready, down to ready / ``max_scale_down_rate`` (2).

    Args:
        target: per-replica concurrency target (Knative's ``container-concurrency-target-default``
            is 100 for unbounded containers; here default 4 = the simulator's per-replica concurrency).
        target_utilization: ``container-concurrency-target-percentage`` (0.7).
    """

    name = "kpa"

    def __init__(
        self,
        target: float = 4.0,
        target_utilization: float = 0.7,
        stable_window_s: float = 60.0,
        panic_window_percent: float = 10.0,
        panic_threshold: float = 2.0,
        max_scale_up_rate: float = 1000.0,
        max_scale_down_rate: float = 2.0,
        **kw: Any,
    ):
        super().__init__(**kw)
        self.target = check_float("target", target, low=0.0, low_open=True)
        self.target_utilization = check_float("target_utilization", target_utilization, low=0.0, low_open=True, high=1.0)
        self.stable_window_s = check_float("stable_window_s", stable_window_s, low=0.0, low_open=True)
        self.panic_window_percent = check_float("panic_window_percent", panic_window_percent, low=0.0, low_open=True, high=100.0)
        self.panic_threshold = check_float("panic_threshold", panic_threshold, low=1.0)
        self.max_up = check_float("max_scale_up_rate", max_scale_up_rate, low=1.0)
        self.max_down = check_float("max_scale_down_rate", max_scale_down_rate, low=1.0)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self._hist: deque[float] = deque()
        self._panic_until_step = -1
        self._step = 0

    def desired_replicas(self, metrics):
        conc = float(metrics["request_rate_rps"]) * float(metrics["response_time_ms"]) / 1000.0
        self._hist.append(conc)
        n_stable = max(1, round(self.stable_window_s / self.interval_s))
        n_panic = max(1, round(self.stable_window_s * self.panic_window_percent / 100.0 / self.interval_s))
        while len(self._hist) > n_stable:
            self._hist.popleft()
        per_pod = self.target * self.target_utilization
        stable = math.ceil(sum(self._hist) / len(self._hist) / per_pod)
        recent = list(self._hist)[-n_panic:]
        panic = math.ceil(sum(recent) / len(recent) / per_pod)
        ready = max(int(metrics["replicas"]), 1)
        current = int(metrics["replicas_desired"])
        self._step += 1
        if panic >= self.panic_threshold * ready:
            self._panic_until_step = self._step + n_stable
        if self._step <= self._panic_until_step:
            desired = max(panic, current)
        else:
            desired = stable
        desired = min(desired, math.ceil(self.max_up * ready))
        desired = max(desired, math.floor(ready / self.max_down))
        return desired


class OpenFaaSRPSPolicy(ReplicaTargetPolicy):
    """OpenFaaS autoscaler, ``com.openfaas.scale.type=rps``: ``desired = ceil(rps / (target * proportion))``.

    Args:
        target_rps: ``com.openfaas.scale.target``, requests/s per replica (OpenFaaS default 50;
            here default 2.0, about 80 % of the default simulated function's capacity of
            4 / 1.63 s = 2.45 requests/s per replica; ``from_env`` sets ``0.8 x`` the simulated
            capacity).
        target_proportion: ``com.openfaas.scale.target-proportion`` (default 0.90).
    """

    name = "openfaas_rps"

    def __init__(self, target_rps: float = 2.0, target_proportion: float = 0.9, **kw: Any):
        super().__init__(**kw)
        self.target_rps = check_float("target_rps", target_rps, low=0.0, low_open=True)
        self.target_proportion = check_float("target_proportion", target_proportion, low=0.0, low_open=True, high=1.0)

    @classmethod
    def from_env(cls, env: Any, **params: Any):
        cap = _replica_capacity_rps(env)
        if cap is not None and "target_rps" not in params:
            params["target_rps"] = 0.8 * cap
        return super().from_env(env, **params)

    def desired_replicas(self, metrics):
        return math.ceil(float(metrics["request_rate_rps"]) / (self.target_rps * self.target_proportion))


class ThresholdPolicy(ReplicaTargetPolicy):
    """Threshold rule: +1 replica if CPU > ``upper`` or SLO violations > ``slo_upper``; -1 if CPU < ``lower``.

    The rule-based autoscaler RL papers compare against (e.g. DRe-SCale's threshold HPA).
    """

    name = "threshold"

    def __init__(self, upper: float = 0.8, lower: float = 0.3, slo_upper: float = 0.1, **kw: Any):
        super().__init__(**kw)
        self.upper = check_float("upper", upper, low=0.0, high=1.0)
        self.lower = check_float("lower", lower, low=0.0, high=self.upper)
        self.slo_upper = check_float("slo_upper", slo_upper, low=0.0, high=1.0)

    def desired_replicas(self, metrics):
        current = int(metrics["replicas_desired"])
        cpu = float(metrics["cpu_utilization"])
        v = metrics.get("slo_violation_rate", 0.0)
        v = 0.0 if v is None or v != v else float(v)
        if cpu > self.upper or v > self.slo_upper:
            return current + 1
        if cpu < self.lower and int(metrics["queue_length"]) == 0:
            return current - 1
        return current


class IdleGapPolicy(ReplicaTargetPolicy):
    """Keep-alive and pre-warming by idle time.

    Counts consecutive control intervals without arrivals (``metrics["arrived"] == 0``): while
    requests arrive, or for the first ``drop_after - 1`` empty intervals (keep-alive), it holds
    ``busy_replicas``; from ``drop_after`` empty intervals on it holds ``idle_replicas``; from
    ``rewarm_after`` empty intervals on it pre-warms back to ``busy_replicas`` ahead of the next
    burst. This is the idea of Azure Functions' hybrid histogram policy (keep-alive window and
    pre-warming window from the distribution of idle times; Shahrad et al., "Serverless in the
    Wild", USENIX ATC 2020), with the two windows as tuned parameters instead of a histogram.

    Args:
        busy_replicas: replicas while busy and after pre-warming (>= ``idle_replicas``).
        idle_replicas: replicas inside an idle gap.
        drop_after: empty intervals before scaling down (>= 1).
        rewarm_after: empty intervals before pre-warming (> ``drop_after``).
        **kw: :class:`ReplicaTargetPolicy` arguments.

    Raises:
        ValueError: a parameter out of range (the message names it).
    """

    name = "idle_gap"

    def __init__(self, busy_replicas: int = 6, idle_replicas: int = 1, drop_after: int = 1, rewarm_after: int = 6,
                 **kw: Any):
        super().__init__(**kw)
        self.busy_replicas = check_int("busy_replicas", busy_replicas, low=self.min_replicas, high=self.max_replicas)
        self.idle_replicas = check_int("idle_replicas", idle_replicas, low=self.min_replicas, high=self.busy_replicas)
        self.drop_after = check_int("drop_after", drop_after, low=1)
        self.rewarm_after = check_int("rewarm_after", rewarm_after, low=self.drop_after + 1)
        self.idle_intervals = 0

    def reset(self, seed: int | None = None) -> None:
        self.idle_intervals = 0

    def desired_replicas(self, metrics):
        self.idle_intervals = self.idle_intervals + 1 if float(metrics["arrived"]) == 0 else 0
        if self.drop_after <= self.idle_intervals < self.rewarm_after:
            return self.idle_replicas
        return self.busy_replicas


def all_baselines(env: Any) -> list[BasePolicy]:
    """Every baseline built for ``env``: HPA, KPA, OpenFaaS RPS, threshold, static min and static max."""
    kpa_kw = {}
    cfg = getattr(getattr(getattr(env, "unwrapped", env), "backend", None), "config", None)
    if cfg is not None and hasattr(cfg, "concurrency"):
        kpa_kw["target"] = float(cfg.concurrency)
    return [
        HPAPolicy.from_env(env),
        KPAPolicy.from_env(env, **kpa_kw),
        OpenFaaSRPSPolicy.from_env(env),
        ThresholdPolicy.from_env(env),
        StaticPolicy.from_env(env, replicas="min"),
        StaticPolicy.from_env(env, replicas="max"),
    ]
