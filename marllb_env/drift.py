"""Hidden, drifting server capacities: the ``hidden_drift`` scenario (``marllb_env/LoadBalanceHard-v0``).

MARLLB's premise (Yao, Ding, Clausen, CIKM 2022, section 1) is that a load balancer does
not know its servers' processing capacities and that they change: servers of one nominal
size differ (CPU generation, host contention) and co-located workloads come and go. Here:

* every server ``j`` has a **hidden base speed** ``b_j`` drawn per episode, log-uniform in
  ``base_speed_range`` (default ``[0.25, 1]``: up to 4x between nominally equal cores);
* a **noisy neighbour** (a co-located workload) alternates on each server: absent for an
  exponential time of mean ``neighbour_off_mean_s``, present for one of mean
  ``neighbour_on_mean_s``; while present it steals a fraction ``U(steal_range)`` of the
  server's CPU (a fresh draw per visit). Each change is a capacity event of the simulator
  (``FlowSimulator.set_capacity(server, speed=...)``), so in-service flows slow down or
  speed up at once (processor sharing);
* the LB sees only its own features (flow counts, FCT and flow-duration reservoirs) and the
  **configured** capacity (vCPUs): ``info["configured_capacity"]`` never changes. The true
  current capacity is available to clairvoyant oracles only, through
  :meth:`HiddenCapacityEnv.true_capacity`.

The drift is drawn from the env's ``np_random`` after the backend's reset (its own stream:
the workload and the dispatch randomness are those of ``LoadBalanceEnv``), so the same seed
gives the same capacities whatever the policy does. The schedule is generated lazily, 120 s
of simulated time ahead, so episodes of any length are covered.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lwmecps_gym.core.seeding import draw_seed
from lwmecps_gym.core.validation import check_float, check_positive
from marllb_env.env import LoadBalanceEnv
from marllb_env.scenarios import get_scenario
from marllb_env.sim import FlowSimulator

_LOOKAHEAD_S = 120.0


@dataclass(frozen=True)
class CapacityDrift:
    """The hidden-capacity process (see the module docstring).

    Attributes:
        base_speed_range: ``(low, high)`` of the log-uniform hidden base speed per core (0 < low <= high).
        neighbour_on_mean_s: mean time a noisy neighbour stays (s, exponential).
        neighbour_off_mean_s: mean time between neighbours (s, exponential).
        steal_range: ``(low, high)`` of the uniform fraction of CPU a neighbour takes (0 <= low <= high < 1).
    """

    base_speed_range: tuple[float, float] = (0.25, 1.0)
    neighbour_on_mean_s: float = 10.0
    neighbour_off_mean_s: float = 20.0
    steal_range: tuple[float, float] = (0.5, 0.8)

    def __post_init__(self) -> None:
        lo, hi = self._pair("base_speed_range", self.base_speed_range)
        check_positive("base_speed_range[0]", lo)
        if hi < lo:
            raise ValueError(f"base_speed_range must have low <= high, got {self.base_speed_range!r}")
        check_positive("neighbour_on_mean_s", self.neighbour_on_mean_s)
        check_positive("neighbour_off_mean_s", self.neighbour_off_mean_s)
        slo, shi = self._pair("steal_range", self.steal_range)
        check_float("steal_range[0]", slo, low=0.0, high=1.0)
        check_float("steal_range[1]", shi, low=0.0, high=1.0)
        if shi >= 1.0:
            raise ValueError(f"steal_range[1] must be < 1 (a neighbour cannot take the whole CPU), got {shi!r}")
        if shi < slo:
            raise ValueError(f"steal_range must have low <= high, got {self.steal_range!r}")

    @staticmethod
    def _pair(name: str, v: Any) -> tuple[float, float]:
        if not isinstance(v, Sequence) or isinstance(v, str) or len(v) != 2:
            raise ValueError(f"{name} must be a (low, high) pair, got {v!r}")
        return float(v[0]), float(v[1])

    @classmethod
    def from_spec(cls, spec: CapacityDrift | Mapping[str, Any] | None) -> CapacityDrift:
        """A drift from an instance, a mapping of its fields (unknown keys raise ``ValueError``) or ``None`` (defaults)."""
        if spec is None:
            return cls()
        if isinstance(spec, CapacityDrift):
            return spec
        if not isinstance(spec, Mapping):
            raise TypeError(f"capacity_drift must be a CapacityDrift, a mapping or None, got {type(spec).__name__}")
        allowed = set(cls.__dataclass_fields__)
        bad = sorted(set(spec) - allowed)
        if bad:
            raise ValueError(f"capacity_drift has unknown keys {bad}; allowed: {sorted(allowed)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})

    def mean_speed_factor(self) -> float:
        """Long-run mean of the speed factor ``b * (1 - steal * neighbour present)``: the expected
        true capacity as a fraction of the configured one (closed form; ``E[b]`` of a log-uniform law)."""
        lo, hi = self.base_speed_range
        eb = lo if hi == lo else (hi - lo) / math.log(hi / lo)
        p_on = self.neighbour_on_mean_s / (self.neighbour_on_mean_s + self.neighbour_off_mean_s)
        return eb * (1.0 - p_on * 0.5 * (self.steal_range[0] + self.steal_range[1]))


class DriftProcess:
    """One episode's realisation of a :class:`CapacityDrift` over ``n_servers`` servers.

    Args:
        drift: the process parameters.
        n_servers: servers.
        rng: the episode's generator (every draw comes from it, in time order per server).

    :meth:`events_until` returns the speed changes ``(time_s, server, speed)`` up to a time,
    each once; the first call's events at time 0 set every server's hidden start speed.
    """

    def __init__(self, drift: CapacityDrift, n_servers: int, rng: np.random.Generator):
        self.drift = drift
        self.rng = rng
        lo, hi = drift.base_speed_range
        self.base = np.exp(rng.uniform(math.log(lo), math.log(hi), n_servers))
        p_on = drift.neighbour_on_mean_s / (drift.neighbour_on_mean_s + drift.neighbour_off_mean_s)
        self._on = (rng.random(n_servers) < p_on).tolist()  # stationary start
        # the start speeds (time 0), then each server's next neighbour arrival/departure
        self._pending = [(0.0, j, self._speed(j, on)) for j, on in enumerate(self._on)]
        self._next = [self._holding(on) for on in self._on]
        self.until = 0.0

    def _holding(self, on: bool) -> float:
        d = self.drift
        return float(self.rng.exponential(d.neighbour_on_mean_s if on else d.neighbour_off_mean_s))

    def _speed(self, j: int, on: bool) -> float:
        if not on:
            return float(self.base[j])
        return float(self.base[j] * (1.0 - self.rng.uniform(*self.drift.steal_range)))

    def events_until(self, t_end: float) -> list[tuple[float, int, float]]:
        """Speed changes up to ``t_end`` not returned before, time-ordered per server."""
        out, self._pending = self._pending, []
        for j in range(len(self._next)):
            t = self._next[j]
            while t <= t_end:
                on = self._on[j] = not self._on[j]
                out.append((t, j, self._speed(j, on)))
                t += self._holding(on)
            self._next[j] = t
        self.until = max(self.until, float(t_end))
        return out


class HiddenCapacityEnv(LoadBalanceEnv):
    """:class:`marllb_env.LoadBalanceEnv` whose servers' true capacities are hidden and drift.

    Same spaces, reward, info and arguments as ``LoadBalanceEnv`` (default scenario
    ``"hidden_drift"``), plus ``capacity_drift`` (a :class:`CapacityDrift` or a mapping of its
    fields; default: the scenario's ``capacity_drift``, or :class:`CapacityDrift`'s defaults if
    it has none). ``info["configured_capacity"]`` is the nominal capacity (vCPUs), not the true one. ``info["true_capacity"]`` (``(num_servers,)`` float64, CPU-seconds/s,
    the true capacity at the observation's time) is **clairvoyant**: only oracles
    (:mod:`marllb_env.oracles`) read it; learned agents never see ``info`` and the
    non-clairvoyant baselines do not read it. Every step's ``info["episode_metrics"]`` carries
    at least the running ``fct_mean_s`` (mean FCT of the LB's flows completed so far, s; NaN
    before the first completion). Simulator backend only.

    Raises:
        ValueError: ``backend`` other than ``"sim"``, bad ``capacity_drift``.
    """

    def __init__(self, *, scenario: str | None = "hidden_drift", capacity_drift: Any = None, **kwargs: Any):
        if kwargs.get("backend", "sim") != "sim":
            raise ValueError("HiddenCapacityEnv runs on the flow simulator; backend must be 'sim'")
        super().__init__(scenario=scenario, **kwargs)
        if capacity_drift is None:
            capacity_drift = get_scenario(scenario or "default").get("capacity_drift")
        self.capacity_drift = CapacityDrift.from_spec(capacity_drift)
        self._drift: DriftProcess | None = None

    def simulator(self) -> FlowSimulator:
        """The flow simulator behind the env."""
        b = self.backend
        return b if isinstance(b, FlowSimulator) else b.sim

    def _schedule(self, horizon: float) -> None:
        sim = self.simulator()
        for t, j, speed in self._drift.events_until(horizon):
            sim.set_capacity(j, speed=speed, at=t if t > sim.now else None)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        rng = np.random.default_rng(draw_seed(self.np_random))
        self._drift = DriftProcess(self.capacity_drift, self.num_servers, rng)
        self._schedule(self.simulator().now + _LOOKAHEAD_S)
        info["true_capacity"] = self.true_capacity()
        return obs, info

    def step(self, action: Any):
        out = super().step(action)
        if self._drift is not None and self.simulator().now + 0.5 * _LOOKAHEAD_S > self._drift.until:
            self._schedule(self._drift.until + _LOOKAHEAD_S)
        info = out[4]
        info["true_capacity"] = self.true_capacity()
        # the running mean FCT of this LB's completed flows, so an episode cut by the caller
        # (e.g. the harness' step_limit) still reports the primary metric
        _, done, _, fct_sum = self.simulator().lb_counters(0)
        em = info.setdefault("episode_metrics", {})
        em.setdefault("fct_mean_s", fct_sum / done if done else float("nan"))
        return out

    def true_capacity(self) -> np.ndarray:
        """The servers' true current capacities (cpus x speed, CPU-seconds/s), ``(num_servers,)`` float64.

        Clairvoyant: a real load balancer cannot read this; only oracles may.
        """
        return self.simulator().capacities()


__all__ = ["CapacityDrift", "DriftProcess", "HiddenCapacityEnv"]
