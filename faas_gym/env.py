"""The FaaS autoscaling environment: one function, replicas chosen by the agent, simulated or real."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from faas_gym.backends import fluid
from faas_gym.backends.base import FaasBackend, FaasMeasurement
from lwmecps_gym.core.env import BackendEnv
from lwmecps_gym.core.optional import extra_hint
from lwmecps_gym.core.validation import (
    check_choice,
    check_float,
    check_int,
    coerce_dataclass,
    resolve_alias,
    unset,
)

DAY_S = 86_400.0
ACTION_MODES = ("delta", "scale_up_down")
BACKENDS = ("sim", "openfaas")

#: Observation components, in order: (name, unit).
OBSERVATION_FIELDS: tuple[tuple[str, str], ...] = (
    ("replicas", "replicas"),
    ("cpu_utilization", "fraction"),
    ("memory_utilization", "fraction"),
    ("response_time_ms", "ms"),
    ("request_rate_rps", "requests/s"),
    ("throughput_rps", "requests/s"),
    ("cold_starts", "replicas"),
    ("queue_length", "requests"),
    ("replicas_desired", "replicas"),
    ("time_of_day_sin", "-"),
    ("time_of_day_cos", "-"),
)


where = np.where  # array meaning; fluid.scalar_variant gives the Python-float variants below


def observation_values(
    time_s, replicas, cpu, mem, rt, rate, thr, cold, queue, desired, start_s, mx, rt_cap, rate_cap, q_cap, ops
):
    """The 11 observation values (table of :class:`FaasAutoscalingEnv`) saturated at their caps, as a
    tuple of Python floats/ints; one source for the single env (``where`` rewritten to if-expressions)
    and the vector env's compiled kernel (:mod:`faas_gym.backends.fluid`)."""
    phase = 2.0 * math.pi * ((start_s + time_s) % DAY_S) / DAY_S
    return (
        where(replicas < mx, replicas, mx),
        where(cpu < 1.0, cpu, 1.0),
        where(mem < 1.0, mem, 1.0),
        where(rt < rt_cap, rt, rt_cap),
        where(rate < rate_cap, rate, rate_cap),
        where(thr < rate_cap, thr, rate_cap),
        where(cold < mx, cold, mx),
        where(queue < q_cap, queue, q_cap),
        where(desired < mx, desired, mx),
        ops.sin(phase),
        ops.cos(phase),
    )


def reward_value(violation, desired, cold, dropped, arrived, mx, w_slo, w_cost, w_cold_start, w_drop):
    """``-(w_slo v + w_cost R / mx + w_cold_start min(n_cold, mx) / mx + w_drop d)`` (see Rewards of
    :class:`FaasAutoscalingEnv`), ``d`` the dropped fraction of arrivals (at most 1); scalars or arrays."""
    drop_frac = where(arrived > 0, dropped / where(arrived > 0, arrived, 1), 0.0)
    drop_frac = where(drop_frac > 1.0, 1.0, drop_frac)
    return -(
        w_slo * violation
        + w_cost * desired / mx
        + w_cold_start * where(cold < mx, cold, mx) / mx
        + w_drop * drop_frac
    )


_observation_scalar = fluid.scalar_variant(observation_values)
_reward_scalar = fluid.scalar_variant(reward_value)
_SCALAR_OPS = fluid.ScalarOps()


class FaasAutoscalingEnv(BackendEnv[FaasMeasurement]):
    """Horizontal autoscaling of one serverless function (OpenFaaS on Kubernetes style).

    ## Description

    Requests for one function arrive from a workload (by default a bursty renewal process
    fitted to the Azure Functions 2019 trace by OrcBench) and are served by the function's
    replicas, each running up to ``concurrency`` requests at once behind one FIFO gateway
    queue. Every ``interval_s`` seconds the agent changes the desired replica count. New
    replicas serve only after a cold start; scaled-down replicas are kept warm for a while
    and revived without a cold start. The goal is to meet a response-time SLO with as few
    replica-seconds and cold starts as possible. The default backend is the simulator
    (:class:`faas_gym.backends.sim.SimBackend`); ``backend="openfaas"`` acts on a real
    OpenFaaS function through Kubernetes and Prometheus. ``step`` follows the one template of
    :class:`~lwmecps_gym.core.env.BackendEnv`: ``decode_action`` -> ``backend.apply(replicas)`` ->
    ``backend.advance(interval_s)`` -> ``backend.observe()`` -> observation, reward, info.

    >>> import gymnasium as gym, faas_gym
    >>> env = gym.make("faas_gym/Autoscaling-v0")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, int(env.action_space.n)
    ((11,), 3)
    >>> obs, reward, terminated, truncated, info = env.step(2)  # +1 replica
    >>> info["metrics"]["replicas_desired"]
    2

    ## Action Space

    ``action_mode="delta"`` (default): ``Discrete(len(deltas))``; action ``i`` adds
    ``deltas[i]`` replicas to the desired count (default ``deltas=(-1, 0, 1)``;
    ``FaaSTrainGym-v1`` uses ``-5..+5`` like upstream). ``action_mode="scale_up_down"``
    (the FaaSTrainGym README's two actions): ``Discrete(2)``, 0 = scale down by one,
    1 = scale up by one. The result is clipped to ``[min_replicas, max_replicas]``; when
    clipping happens ``info["clipped"]`` is ``True`` and ``info["requested_replicas"]`` holds
    the unclipped target. Deltas apply to the desired count (``spec.replicas``), not the ready
    count, so replicas still cold-starting are not asked for twice.

    ## Observation Space

    ``Box(11,)``, ``float32``. Values above a cap are reported at the cap (the raw value is
    in ``info["metrics"]``).

    | index | name | unit | min | max |
    |---|---|---|---|---|
    | 0 | replicas (ready) | replicas | 0 | max_replicas |
    | 1 | cpu_utilization (busy / capacity of ready replicas) | fraction | 0 | 1 |
    | 2 | memory_utilization (working set / limit) | fraction | 0 | 1 |
    | 3 | response_time_ms (mean of requests completed in the interval) | ms | 0 | response_time_cap_ms |
    | 4 | request_rate_rps (arrivals / interval) | requests/s | 0 | rate_cap_rps |
    | 5 | throughput_rps (completions / interval) | requests/s | 0 | rate_cap_rps |
    | 6 | cold_starts (replicas started cold in the interval) | replicas | 0 | max_replicas |
    | 7 | queue_length (waiting requests at the end) | requests | 0 | queue_cap |
    | 8 | replicas_desired | replicas | 0 | max_replicas |
    | 9 | time_of_day_sin | - | -1 | 1 |
    | 10 | time_of_day_cos | - | -1 | 1 |

    Indices 0-5 are the FaaSTrainGym six (reordered; upstream mixed seconds and percent).

    ## Rewards

    ``r = -(w_slo * v + w_cost * R / max_replicas + w_cold_start * n_cold / max_replicas + w_drop * d)``
    with ``v`` the SLO-violation rate (fraction of completed requests slower than ``slo_ms``;
    if the backend cannot measure it, 1.0 when the mean response time exceeds ``slo_ms`` else 0.0),
    ``R`` the desired (billed) replicas during the interval, ``n_cold`` the cold starts, and ``d``
    the fraction of arriving requests dropped. Every term is in [0, 1], so
    ``r`` is in ``[-(w_slo + w_cost + w_cold_start + w_drop), 0]``. Raw values with units are in
    ``info["metrics"]``: ``replicas``, ``replicas_desired``, ``cpu_utilization``,
    ``memory_utilization``, ``response_time_ms``, ``request_rate_rps``, ``throughput_rps``,
    ``cold_starts``, ``queue_length``, ``dropped``, ``slo_violation_rate`` (NaN if unknown),
    ``replica_seconds``, ``arrived``, ``completed``, ``in_system``, ``time_s``, ``window_s``. ``info["episode_metrics"]`` holds running episode values:
    request-weighted ``response_time_ms`` and ``slo_violation_rate``, and totals
    ``replica_seconds``, ``cold_starts``, ``dropped``, ``drop_rate``.

    ## Starting State

    ``initial_replicas`` warm replicas (default ``min_replicas``), empty queue. ``reset`` lets
    one interval of workload pass without an action so the first observation is a real
    measurement. With the simulator, ``reset(seed=s)`` fixes the whole trajectory for a given
    action sequence; the workload has its own random stream, so two policies see the same
    arrivals.

    ## Episode End

    Never terminates (autoscaling is a continuing task). Truncation by ``max_episode_steps``
    of the registered id: ``FaaSTrainGym-v1`` 10 steps of 30 s; ``faas_gym/Autoscaling-v0``
    240 steps of 15 s (1 h); ``faas_gym/AutoscalingDay-v0`` 1440 steps of 60 s (24 h);
    ``faas_gym/AutoscalingBursty-v0`` 240 steps of 15 s.

    ## Arguments

    | argument | default | meaning |
    |---|---|---|
    | backend | ``"sim"`` | ``"sim"``, ``"openfaas"`` or a :class:`FaasBackend` instance |
    | sim_config (alias ``sim``) | ``None`` | :class:`~faas_gym.backends.sim.SimConfig` or dict (workload, service_time, concurrency, cold_start_s, keep_alive_s, queue_capacity, model, ...); only with ``backend="sim"`` |
    | min_replicas / max_replicas | 1 / 16 | replica range (0 allows scale to zero) |
    | initial_replicas | ``min_replicas`` | replicas at reset |
    | interval_s (alias ``sample_interval``, FaaSTrainGym's name) | 15.0 | control interval, s |
    | action_mode | ``"delta"`` | ``"delta"`` or ``"scale_up_down"`` |
    | deltas | ``(-1, 0, 1)`` | replica changes of the ``delta`` actions |
    | slo_ms | 6000.0 | response-time SLO, ms (also passed to the sim) |
    | w_slo, w_cost, w_cold_start, w_drop | 1.0, 0.5, 0.05, 1.0 | reward weights (>= 0) |
    | response_time_cap_ms | 60000.0 | observation cap of index 3 |
    | rate_cap_rps | 1000.0 | observation cap of indices 4-5 |
    | queue_cap | sim ``queue_capacity`` or 10000 | observation cap of index 7 |
    | start_time_of_day_s | 0.0 | time of day at episode time 0, s |
    | function_name, namespace, backend_kwargs | ``None`` (namespace ``"openfaas-fn"``) | only with ``backend="openfaas"`` (see :mod:`faas_gym.backends.openfaas`); given with ``backend="sim"`` they raise ``ValueError`` |
    | render_mode | ``None`` | ``"ansi"``: a one-line text summary; ``"rgb_array"``: a ``uint8 (720, 960, 3)`` frame of the episode so far (demand, replicas, latency vs SLO, cold starts; :mod:`faas_gym.rendering`, needs matplotlib) |

    ## Version History

    * v0 / FaaSTrainGym-v1: first version in this library. Differences from upstream
      FaaSTrainGym v1: ``reset`` works; metrics are measured, not zeros; bounded reward
      without the squared-throughput term; deltas relative to the desired count; simulator backend.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        backend: str | FaasBackend = "sim",
        sim_config: Any = unset(),
        min_replicas: int = 1,
        max_replicas: int = 16,
        initial_replicas: int | None = None,
        interval_s: float = unset(),
        action_mode: str = "delta",
        deltas: Sequence[int] = (-1, 0, 1),
        slo_ms: float = 6000.0,
        w_slo: float = 1.0,
        w_cost: float = 0.5,
        w_cold_start: float = 0.05,
        w_drop: float = 1.0,
        response_time_cap_ms: float = 60_000.0,
        rate_cap_rps: float = 1000.0,
        queue_cap: int | None = None,
        start_time_of_day_s: float = 0.0,
        function_name: str | None = None,
        namespace: str | None = None,
        backend_kwargs: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        *,
        sim: Any = unset(),
        sample_interval: float = unset(),
    ):
        sim_config = resolve_alias("sim_config", sim_config, "sim", sim, None)
        interval_s = resolve_alias("interval_s", interval_s, "sample_interval", sample_interval, 15.0)
        self.min_replicas = check_int("min_replicas", min_replicas, low=0)
        self.max_replicas = check_int("max_replicas", max_replicas, low=max(1, self.min_replicas))
        if initial_replicas is None:
            initial_replicas = self.min_replicas
        self.initial_replicas = check_int(
            "initial_replicas", initial_replicas, low=self.min_replicas, high=self.max_replicas
        )
        self.interval_s = check_float("interval_s", interval_s, low=0.0, low_open=True)
        self.action_mode = check_choice("action_mode", action_mode, ACTION_MODES)
        if self.action_mode == "delta":
            if isinstance(deltas, (str, bytes)) or not isinstance(deltas, Sequence) or len(deltas) == 0:
                raise ValueError(f"deltas must be a non-empty sequence of integers, got {deltas!r}")
            self.deltas = tuple(check_int(f"deltas[{i}]", d) for i, d in enumerate(deltas))
            if len(set(self.deltas)) != len(self.deltas):
                raise ValueError(f"deltas must not repeat values, got {list(self.deltas)}")
        else:
            self.deltas = (-1, 1)
        self.slo_ms = check_float("slo_ms", slo_ms, low=0.0, low_open=True)
        self.w_slo = check_float("w_slo", w_slo, low=0.0)
        self.w_cost = check_float("w_cost", w_cost, low=0.0)
        self.w_cold_start = check_float("w_cold_start", w_cold_start, low=0.0)
        self.w_drop = check_float("w_drop", w_drop, low=0.0)
        self.response_time_cap_ms = check_float("response_time_cap_ms", response_time_cap_ms, low=0.0, low_open=True)
        self.rate_cap_rps = check_float("rate_cap_rps", rate_cap_rps, low=0.0, low_open=True)
        self.start_time_of_day_s = check_float("start_time_of_day_s", start_time_of_day_s, low=0.0, high=DAY_S)
        if render_mode is not None:
            check_choice("render_mode", render_mode, self.metadata["render_modes"])
        self.render_mode = render_mode
        self._renderer = None
        if render_mode == "rgb_array":
            from faas_gym.rendering import FaasRenderer

            self._renderer = FaasRenderer(self.slo_ms, self.max_replicas)

        self.backend, default_queue_cap = self._make_backend(
            backend, sim_config, function_name, namespace, backend_kwargs
        )
        if queue_cap is None:
            queue_cap = default_queue_cap
        self.queue_cap = check_int("queue_cap", queue_cap, low=1)

        high = np.array(
            [
                self.max_replicas,
                1.0,
                1.0,
                self.response_time_cap_ms,
                self.rate_cap_rps,
                self.rate_cap_rps,
                self.max_replicas,
                self.queue_cap,
                self.max_replicas,
                1.0,
                1.0,
            ],
            dtype=np.float32,
        )
        low = np.zeros_like(high)
        low[9:] = -1.0
        self.observation_space = spaces.Box(low=low, high=high, dtype=np.float32)
        self.action_space = spaces.Discrete(len(self.deltas))
        self._delta_map = dict(enumerate(self.deltas))
        self._desired = self.initial_replicas
        self._requested = self.initial_replicas
        self._reset_episode_totals()

    # ------------------------------------------------------------------ construction
    @extra_hint("backend='openfaas'", extra="prometheus")  # a missing kubernetes/prometheus client names its extra
    def _make_backend(self, backend, sim_config, function_name, namespace, backend_kwargs) -> tuple[FaasBackend, int]:
        if not isinstance(backend, str):
            missing = [m for m in ("reset", "apply", "advance", "observe", "close") if not hasattr(backend, m)]
            if missing:
                raise TypeError(f"backend must be 'sim', 'openfaas' or a FaasBackend; {type(backend).__name__} lacks {missing}")
            cap = getattr(getattr(backend, "config", None), "queue_capacity", 10_000)
            return backend, max(int(cap), 1)
        check_choice("backend", backend, BACKENDS)
        if backend == "sim":
            for name, value in (("backend_kwargs", backend_kwargs), ("function_name", function_name), ("namespace", namespace)):
                if value is not None:
                    raise ValueError(
                        f"{name} is only valid with backend='openfaas'; configure the simulator with sim_config"
                    )
            from faas_gym.backends.sim import SimBackend, SimConfig

            cfg = coerce_dataclass(SimConfig, sim_config, "sim_config")
            given = sim_config.get("initial_replicas") if isinstance(sim_config, Mapping) else None
            if given is not None and given != self.initial_replicas:  # never replaced silently
                raise ValueError(f"sim_config['initial_replicas'] ({given!r}) conflicts with initial_replicas="
                                 f"{self.initial_replicas} (in [{self.min_replicas}, {self.max_replicas}]); "
                                 "set initial_replicas on the env")
            cfg = dataclasses.replace(cfg, slo_ms=self.slo_ms, initial_replicas=self.initial_replicas)
            return SimBackend(cfg), max(cfg.queue_capacity, 1)
        if sim_config is not None:
            raise ValueError("sim_config is only valid with backend='sim'")
        if not function_name:
            raise ValueError("backend='openfaas' needs function_name (the OpenFaaS function / Deployment name)")
        from faas_gym.backends.openfaas import OpenFaaSBackend  # lazy: kubernetes, prometheus_api_client

        be = OpenFaaSBackend.from_env_kwargs(
            function_name=function_name,
            namespace="openfaas-fn" if namespace is None else namespace,
            sample_interval_s=self.interval_s,
            slo_ms=self.slo_ms,
            min_replicas=self.min_replicas,
            max_replicas=self.max_replicas,
            **dict(backend_kwargs or {}),
        )
        return be, 10_000

    # ------------------------------------------------------------------ BackendEnv hooks
    def start_episode(self, options: dict[str, Any] | None) -> FaasMeasurement:
        """``initial_replicas`` warm replicas, then one interval of workload without an action."""
        self._desired = self._requested = self.initial_replicas
        self.backend.apply(self._desired)
        self.backend.advance(self.interval_s)
        self._reset_episode_totals()
        return self.backend.observe()

    def decode_action(self, action: Any) -> int:
        """The desired replica count after ``action``: ``desired + deltas[action]`` clipped to
        ``[min_replicas, max_replicas]`` (the unclipped value goes to ``info["requested_replicas"]``).

        Raises:
            ValueError / TypeError: if ``action`` is not an integer in ``[0, len(deltas) - 1]``.
        """
        cls = action.__class__
        delta = self._delta_map.get(action) if cls is int or cls is np.int64 else None
        if delta is None:
            delta = self._delta_of(action)
        requested = self._desired + delta
        target = requested
        if target < self.min_replicas:
            target = self.min_replicas
        elif target > self.max_replicas:
            target = self.max_replicas
        self._requested = requested
        self._desired = target
        return target

    def observation(self, m: FaasMeasurement) -> np.ndarray:
        """The 11 values of the observation table, saturated at their caps (``float32``;
        :func:`observation_values`)."""
        return np.array(
            _observation_scalar(
                m.time_s, m.replicas, m.cpu_utilization, m.memory_utilization, m.response_time_ms,
                m.request_rate_rps, m.throughput_rps, m.cold_starts, m.queue_length, m.replicas_desired,
                self.start_time_of_day_s, self.max_replicas, self.response_time_cap_ms, self.rate_cap_rps,
                self.queue_cap, _SCALAR_OPS,
            ),
            dtype=np.float32,
        )

    def reward(self, m: FaasMeasurement) -> float:
        """``-(w_slo v + w_cost R / max_replicas + w_cold_start n_cold / max_replicas + w_drop d)`` of
        measurement ``m`` (see Rewards); a pure function of ``m`` and the weights."""
        arrived = m.arrived if m.arrived is not None else m.request_rate_rps * m.window_s
        return float(
            _reward_scalar(
                self._violation(m), m.replicas_desired, m.cold_starts, m.dropped, arrived, self.max_replicas,
                self.w_slo, self.w_cost, self.w_cold_start, self.w_drop,
            )
        )

    def info(self, m: FaasMeasurement) -> dict[str, Any]:
        """``metrics`` of ``m``, the running ``episode_metrics`` (updated here, once per step),
        ``clipped`` and ``requested_replicas``."""
        if self._renderer is not None:
            self._renderer.record(m)
        metrics = self._metrics(m)
        done = metrics["completed"]
        self._tot_completed += done
        self._tot_resp += m.response_time_ms * done
        self._tot_viol += self._violation(m) * done
        self._tot_replica_s += metrics["replica_seconds"]
        self._tot_cold += m.cold_starts
        self._tot_dropped += m.dropped
        self._tot_arrived += metrics["arrived"]
        n = self._tot_completed
        return {
            "metrics": metrics,
            "episode_metrics": {
                "response_time_ms": self._tot_resp / n if n else 0.0,
                "slo_violation_rate": self._tot_viol / n if n else 0.0,
                "replica_seconds": self._tot_replica_s,
                "cold_starts": self._tot_cold,
                "dropped": self._tot_dropped,
                "drop_rate": self._tot_dropped / self._tot_arrived if self._tot_arrived else 0.0,
            },
            "clipped": self._desired != self._requested,
            "requested_replicas": self._requested,
        }

    def reset_info(self, m: FaasMeasurement) -> dict[str, Any]:
        """The warm-up window's ``metrics`` (not counted in ``episode_metrics``)."""
        if self._renderer is not None:
            self._renderer.record(m)
        return {"metrics": self._metrics(m), "clipped": False, "requested_replicas": self._desired}

    # ------------------------------------------------------------------ helpers
    def _violation(self, m: FaasMeasurement) -> float:
        """The SLO-violation rate of ``m``; if unknown, 1.0 when the mean response time exceeds the SLO."""
        v = m.slo_violation_rate
        if v is None:
            return 1.0 if m.response_time_ms > self.slo_ms else 0.0
        return v

    def _delta_of(self, action: Any) -> int:
        """Validate a non-``int`` action (numpy integer, 0-d/1-element array) and return its delta."""
        n = len(self.deltas)
        if np.asarray(action).dtype.kind == "f":  # 1.0 is not an index (Discrete refuses floats too)
            raise ValueError(f"action must be an integer in [0, {n - 1}], got {action!r}")
        try:
            idx = int(np.asarray(action).reshape(()))
        except (TypeError, ValueError):
            raise TypeError(f"action must be an integer in [0, {n - 1}], got {action!r}") from None
        if not 0 <= idx < n or np.asarray(action).reshape(()) != idx:
            raise ValueError(f"action must be an integer in [0, {n - 1}], got {action!r}")
        return self.deltas[idx]

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        m = self.last_measurement
        if self.render_mode == "rgb_array":
            if self.spec is not None:
                self._renderer.title = self.spec.id
            return self._renderer.frame()
        if m is None:
            return None
        return (
            f"t={m.time_s:8.0f}s replicas={m.replicas}/{m.replicas_desired} rate={m.request_rate_rps:7.2f}rps "
            f"resp={m.response_time_ms:8.1f}ms slo_viol={m.slo_violation_rate if m.slo_violation_rate is not None else float('nan'):.3f} "
            f"queue={m.queue_length} cold={m.cold_starts} drop={m.dropped}"
        )

    def _metrics(self, m: FaasMeasurement) -> dict[str, float]:
        """``info["metrics"]``: every FaasMeasurement field (``None`` -> NaN, or derived counts) plus
        ``replica_seconds``."""
        d = m.__dict__.copy()
        if m.arrived is None or m.completed is None or m.slo_violation_rate is None or m.in_system is None:
            if d["arrived"] is None:
                d["arrived"] = m.request_rate_rps * m.window_s
            if d["completed"] is None:
                d["completed"] = m.throughput_rps * m.window_s
            if d["slo_violation_rate"] is None:
                d["slo_violation_rate"] = math.nan
            if d["in_system"] is None:
                d["in_system"] = math.nan
        d["replica_seconds"] = m.replicas_desired * m.window_s
        return d

    def _reset_episode_totals(self) -> None:
        self._tot_completed = 0.0
        self._tot_resp = 0.0
        self._tot_viol = 0.0
        self._tot_replica_s = 0.0
        self._tot_cold = 0
        self._tot_dropped = 0
        self._tot_arrived = 0.0
