"""Heuristic baselines for the MEC envs, as :class:`~lwmecps_gym.core.policy.BasePolicy` subclasses.

All read what they need from ``info`` (the reset info carries the static values:
``max_replicas``, ``service_rate_rps``, ``sla_ms``, ``window_s``, ``reward_weights``,
``site_rtt_ms``; each step's info the last window's ``demand_rps`` and
``replicas_ready``), so they run unchanged on the simulator and on a real cluster, except
the clairvoyant :class:`OraclePolicy`, which needs the simulator itself.

Scaling (``lwmecps-v3``):

* :class:`StaticPolicy`: the same replica count everywhere, always (default: upstream's
  "uniform" rule ``max(1, max_replicas // n_deployments)``).
* ``RandomPolicy`` (from :mod:`lwmecps_gym.core.policy`): uniform random actions.
* :class:`NearestSitePolicy`: every site serves its own (nearest) users; replicas are added
  greedily where the M/M/c model predicts the largest drop of demand-weighted latency and
  SLA violations, while that drop is worth more than a replica in the env's reward.
* :class:`ProportionalPolicy`: replicas proportional to the observed demand,
  ``ceil(lambda / (mu * target_utilisation))`` (the Kubernetes HPA rule on request rate).
* :class:`OraclePolicy`: one-step clairvoyant exhaustive search with the simulator
  (:meth:`~lwmecps_gym.backends.sim.SimBackend.preview_site`): every joint action for small
  instances (``prod(max_replicas + 1) <= max_joint``), per site otherwise.

Placement (``lwmecps-v0``/``v2``): :class:`StaticPolicy` (stay), :class:`NearestSitePolicy`
(node with the lowest estimated latency, with hysteresis), :class:`OraclePolicy` (node with
the lowest clairvoyant next-window RTT).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from lwmecps_gym.core.queueing import erlang_c, tail_from_c
from lwmecps_gym.core.policy import BasePolicy, RandomPolicy
from lwmecps_gym.core.validation import check_float, check_int

__all__ = ["NearestSitePolicy", "OraclePolicy", "ProportionalPolicy", "RandomPolicy", "StaticPolicy", "baselines_for"]


class _InfoPolicy(BasePolicy):
    """Caches the static values of the reset info."""

    def __init__(self) -> None:
        self.static: dict[str, Any] = {}

    def reset(self, seed: int | None = None) -> None:
        self.static = {}

    def _remember(self, info: dict[str, Any]) -> None:
        if "service_rate_rps" in info:
            self.static = dict(info)
        elif not self.static:
            raise ValueError(f"{type(self).__name__} needs the reset info first (pass reset's info to act)")

    @staticmethod
    def _is_placement(info: dict[str, Any]) -> bool:
        return "node_latency_ms" in info


class StaticPolicy(_InfoPolicy):
    """Fixed action: ``replicas`` per deployment (v3) or stay on the current node (v0/v2).

    The default replica count is upstream's "uniform" heuristic, ``max(1, max_replicas // n_deployments)``.
    """

    name = "static"

    def __init__(self, replicas: int | None = None):
        super().__init__()
        self.replicas = None if replicas is None else check_int("replicas", replicas, low=0)

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        self._remember(info)
        if self._is_placement(info):
            return int(info["node"])
        n = len(info["demand_rps"])
        m = int(self.static["max_replicas"])
        r = max(1, m // n) if self.replicas is None else self.replicas
        if r > m:
            raise ValueError(f"replicas={r} exceeds the env's max_replicas={m}")
        return np.full(n, max(r, 0), dtype=np.int64)


class ProportionalPolicy(_InfoPolicy):
    """Replicas proportional to demand: ``clip(ceil(lambda / (mu * target_utilisation)), min_replicas, max_replicas)``."""

    name = "proportional"

    def __init__(self, target_utilisation: float = 0.7, min_replicas: int = 1):
        super().__init__()
        self.target = check_float("target_utilisation", target_utilisation, low=0.0, high=1.0, low_open=True)
        self.min_replicas = check_int("min_replicas", min_replicas, low=0)

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        self._remember(info)
        if self._is_placement(info):
            raise ValueError("ProportionalPolicy scales replicas (lwmecps-v3); it has no placement form")
        mu, m = float(self.static["service_rate_rps"]), int(self.static["max_replicas"])
        lam = np.asarray(info["demand_rps"], dtype=float)
        r = np.ceil(lam / (mu * self.target) - 1e-9)
        return np.clip(r, min(self.min_replicas, m), m).astype(np.int64)


def _site_cost(lam: float, c: int, mu: float, slack_s: float, rtt_s: float, timeout_s: float) -> tuple[float, float]:
    """Stationary M/M/c estimate of (mean latency s, SLA-violation probability) for one site; overload -> timeout."""
    if lam <= 0.0:
        return rtt_s + 1.0 / mu, 0.0
    if c <= 0 or lam >= c * mu:
        return timeout_s, 1.0
    C = erlang_c(c, lam / mu)
    theta = c * mu - lam
    return rtt_s + 1.0 / mu + C / theta, tail_from_c(C, theta, mu, slack_s)


class NearestSitePolicy(_InfoPolicy):
    """Nearest-site serving with demand-weighted latency greedy replica allocation (see module docstring).

    v3: start from ``min_replicas`` per site, then repeatedly add a replica where the
    predicted reward gain ``w_latency * dL / sla + w_sla * dV`` (demand-weighted, from the
    last window's demand and the stationary M/M/c model) is largest, while it exceeds the
    replica cost ``w_replicas / (n max_replicas)``. v0/v2: move to the node with the lowest
    estimated latency if it beats the current node by more than ``hysteresis_ms``.
    """

    name = "nearest-site"

    def __init__(self, min_replicas: int = 1, hysteresis_ms: float = 1.0, timeout_s: float = 1.0):
        super().__init__()
        self.min_replicas = check_int("min_replicas", min_replicas, low=0)
        self.hysteresis_ms = check_float("hysteresis_ms", hysteresis_ms, low=0.0)
        self.timeout_s = check_float("timeout_s", timeout_s, low=0.0, low_open=True)

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        self._remember(info)
        if self._is_placement(info):
            lat = info["node_latency_ms"]
            cur = int(info["node"])
            best = int(np.argmin(lat))
            return best if lat[best] < lat[cur] - self.hysteresis_ms else cur
        st = self.static
        mu, m, sla_s = float(st["service_rate_rps"]), int(st["max_replicas"]), float(st["sla_ms"]) / 1000.0
        w = st["reward_weights"]
        lam = [float(x) for x in info["demand_rps"]]
        rtt = [x / 1000.0 for x in st["site_rtt_ms"]]
        n = len(lam)
        total = sum(lam) or 1.0
        rep_cost = w["w_replicas"] / (n * m)
        # start from the smallest stable count (lambda < c mu), so the greedy never stalls on an overload plateau
        c = [min(max(self.min_replicas, int(x / mu) + 1 if x > 0 else 0), m) for x in lam]

        def value(i: int, k: int) -> float:
            lat, v = _site_cost(lam[i], k, mu, sla_s - rtt[i], rtt[i], self.timeout_s)
            return (lam[i] / total) * (w["w_latency"] * lat / sla_s + w["w_sla"] * v)

        cur = [value(i, c[i]) for i in range(n)]
        while True:
            best_gain, best_i = 0.0, -1
            for i in range(n):
                if c[i] < m:
                    gain = cur[i] - value(i, c[i] + 1)
                    if gain > best_gain:
                        best_gain, best_i = gain, i
            if best_i < 0 or best_gain <= rep_cost:
                break
            c[best_i] += 1
            cur[best_i] = value(best_i, c[best_i])
        return np.asarray(c, dtype=np.int64)


class OraclePolicy(BasePolicy):
    """One-step clairvoyant exhaustive search with the simulator (small instances: joint; else per site).

    Args:
        env: the env (or a wrapper of it) whose simulator the oracle previews; it must use
            ``backend="sim"``.
        max_joint: largest joint action space searched exhaustively (with the imbalance
            term); beyond it each site is optimised separately (imbalance ignored).
    """

    name = "oracle"

    def __init__(self, env: Any, max_joint: int = 100_000):
        from lwmecps_gym.backends.sim import SimBackend

        self.env = env.unwrapped
        if not isinstance(self.env.backend, SimBackend):
            raise ValueError("OraclePolicy needs backend='sim' (it previews the simulator's next window)")
        self.max_joint = check_int("max_joint", max_joint, low=1)

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        env = self.env
        b = env.backend
        if b.mode == "placement":
            rtt = b.next_window_rtt_ms()
            best = int(np.argmin(rtt))
            return best if rtt[best] < rtt[b.target] - 1.0 else int(b.target)
        n, m = env.n, env.max_replicas
        lam_next = b.next_window_demand()
        total_n = max(sum(lam_next) * b.tau, 1e-9)
        sla_ms = env.sla_ms
        lat_term = np.zeros((n, m + 1))
        sla_term = np.zeros((n, m + 1))
        load = np.zeros((n, m + 1))
        for d in range(n):
            for k in range(m + 1):
                L, V, N, failed = b.preview_site(d, k)
                lat_term[d, k] = 1000.0 * (L + failed * b.timeout_s) / total_n / sla_ms
                sla_term[d, k] = (V + failed) / total_n
                load[d, k] = min(lam_next[d] / (k * b.mu), 1.0) if k > 0 else (1.0 if lam_next[d] > 0 else 0.0)
        sep = env.w_latency * lat_term + env.w_sla * sla_term + env.w_replicas * np.arange(m + 1)[None, :] / (n * m)
        if (m + 1) ** n <= self.max_joint and env.w_imbalance > 0:
            combos = np.array(list(itertools.product(range(m + 1), repeat=n)), dtype=np.int64)
            idx = np.arange(n)[None, :]
            score = sep[idx, combos].sum(axis=1)
            u = load[idx, combos]
            score += env.w_imbalance * u.std(axis=1)
            return combos[int(np.argmin(score))]
        return np.argmin(sep, axis=1).astype(np.int64)


def baselines_for(env: Any, include_oracle: bool | None = None) -> list[BasePolicy]:
    """The standard baselines for ``env`` (static, random, nearest-site, proportional, oracle when small)."""
    u = env.unwrapped
    scaling = hasattr(u, "max_replicas")
    out: list[BasePolicy] = [StaticPolicy(), RandomPolicy(env.action_space), NearestSitePolicy()]
    if scaling:
        out.append(ProportionalPolicy())
    if include_oracle is None:
        from lwmecps_gym.backends.sim import SimBackend

        include_oracle = isinstance(u.backend, SimBackend) and (not scaling or (u.max_replicas + 1) ** u.n <= 100_000)
    if include_oracle:
        out.append(OraclePolicy(env))
    return out

