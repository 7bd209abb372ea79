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

from lwmecps_gym.core.policy import BasePolicy, RandomPolicy
from lwmecps_gym.core.queueing import erlang_c, tail_from_c
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
    """Replicas proportional to demand (the Kubernetes HPA rule on request rate).

    Recommendation ``clip(ceil(lambda / (mu * target_utilisation)), min_replicas, max_replicas)``
    from the last window's measured demand; with ``stabilization_windows = k > 0`` the action
    is the largest recommendation of the last ``k + 1`` windows (HPA's scale-down
    stabilisation window: scale up at once, scale down only after ``k`` quieter windows).
    """

    name = "proportional"

    def __init__(self, target_utilisation: float = 0.7, min_replicas: int = 1, stabilization_windows: int = 0):
        super().__init__()
        self.target = check_float("target_utilisation", target_utilisation, low=0.0, high=1.0, low_open=True)
        self.min_replicas = check_int("min_replicas", min_replicas, low=0)
        self.stabilization_windows = check_int("stabilization_windows", stabilization_windows, low=0)
        self._recent: list[np.ndarray] = []

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._recent = []

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        self._remember(info)
        if self._is_placement(info):
            raise ValueError("ProportionalPolicy scales replicas (lwmecps-v3); it has no placement form")
        mu, m = float(self.static["service_rate_rps"]), int(self.static["max_replicas"])
        lam = np.asarray(info["demand_rps"], dtype=float)
        r = np.clip(np.ceil(lam / (mu * self.target) - 1e-9), min(self.min_replicas, m), m).astype(np.int64)
        if self.stabilization_windows:
            self._recent = (self._recent + [r])[-(self.stabilization_windows + 1):]
            r = np.max(self._recent, axis=0)
        return r


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


class MPCPolicy(_InfoPolicy):
    """Receding-horizon model-predictive control of per-site replicas, aware of pod start-up and budget.

    Every window it plans the replica counts ``x`` (held over the horizon) that minimise the
    env's predicted cost over the next ``lead_windows + 1`` windows (this one and the windows
    until a pod asked for now serves):

    ``sum_k sum_d share_dk (w_latency W_dk / sla + w_sla V_dk) + w_replicas x_d / (n max_replicas)``

    where ``W``/``V`` are the stationary M/M/c mean response time and SLA-violation
    probability of site ``d`` with the pods ready in window ``k`` (overload: the client
    timeout and certain violation) and ``share_dk`` its share of the window's requests.
    Pods ready in window ``k``: scale-downs act at once (pending pods go first, newest first,
    as on the simulator and Kubernetes); pods asked for now serve from window
    ``lead_windows``; pending pods serve when the policy's own record of its scale-ups says
    (oldest first). The plan is separable by site, so a dynamic programme over sites solves it
    exactly under the shared replica budget (``info["replica_budget"]`` of the reset info;
    none: ``n x max_replicas``).

    Args:
        forecast: ``"last-window"`` (naive, non-clairvoyant: every future window has the last
            window's measured demand) or ``"oracle"`` (clairvoyant: the simulator's true future
            arrival rates, :meth:`~lwmecps_gym.backends.sim.SimBackend.demand_forecast`).
        env: the env (needed for ``"oracle"``; its ``unwrapped.backend`` must be the simulator).
        lead_windows: windows until a new pod serves; default from the simulator's start-up
            delay, ``ceil(q / window)`` with ``q`` its ``startup_quantile`` quantile, else 1.
        startup_quantile: quantile of the LogNormal start-up delay used for ``lead_windows``.
        timeout_s: client timeout used for an overloaded site, s.
    Raises:
        ValueError: bad argument, or ``"oracle"`` without a simulator env.
    """

    FORECASTS = ("last-window", "oracle")

    def __init__(self, forecast: str = "last-window", env: Any = None, lead_windows: int | None = None,
                 startup_quantile: float = 0.8, timeout_s: float = 1.0, name: str | None = None):
        from lwmecps_gym.core.validation import check_choice

        super().__init__()
        self.forecast = check_choice("forecast", forecast, self.FORECASTS)
        self.timeout_s = check_float("timeout_s", timeout_s, low=0.0, low_open=True)
        q = check_float("startup_quantile", startup_quantile, low=0.0, high=1.0, low_open=True)
        if q >= 1.0:
            raise ValueError(f"startup_quantile must be in (0, 1), got {startup_quantile!r}")
        self.backend = None
        if env is not None:
            b = getattr(env.unwrapped, "backend", None)
            if b is not None and hasattr(b, "demand_forecast"):
                self.backend = b
        if self.forecast == "oracle" and self.backend is None:
            raise ValueError("MPCPolicy(forecast='oracle') needs an env on the simulator (backend='sim')")
        if lead_windows is None:
            lead_windows = 1
            if self.backend is not None:
                from scipy.stats import norm

                cfg = self.backend.cfg
                delay = cfg.pod_startup_median_s * float(np.exp(cfg.pod_startup_sigma * norm.ppf(q)))
                lead_windows = max(1, int(np.ceil(delay / cfg.window_s - 1e-9)))
        self.lead_windows = check_int("lead_windows", lead_windows, low=0)
        self.name = name or ("oracle-mpc" if self.forecast == "oracle" else "mpc-last-window")
        self._groups: list[list[list[int]]] = []
        self._t = 0

    def reset(self, seed: int | None = None) -> None:
        super().reset(seed)
        self._groups = []
        self._t = 0

    def _pending_arrivals(self, ready: list[int], desired: list[int]) -> None:
        """Reconcile the record of pending groups ``[eta, count]`` with the measured pending pods."""
        if not self._groups:
            self._groups = [[] for _ in ready]
        for d, groups in enumerate(self._groups):
            pend = max(desired[d] - ready[d], 0)
            have = sum(g[1] for g in groups)
            while have > pend and groups:  # became ready, oldest first
                k = min(groups[0][1], have - pend)
                groups[0][1] -= k
                have -= k
                if groups[0][1] == 0:
                    groups.pop(0)
            if have < pend:  # pods we did not ask for (initial state): assume they serve next window
                groups.insert(0, [self._t + 1, pend - have])

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        self._remember(info)
        st = self.static
        mu, m, sla_s = float(st["service_rate_rps"]), int(st["max_replicas"]), float(st["sla_ms"]) / 1000.0
        w = st["reward_weights"]
        rtt = [x / 1000.0 for x in st["site_rtt_ms"]]
        ready = [int(x) for x in info["replicas_ready"]]
        desired = [int(x) for x in info["replicas_desired"]]
        n = len(ready)
        budget = int(st.get("replica_budget", n * m))
        K = self.lead_windows
        H = K + 1
        if self.forecast == "oracle":
            seen = np.asarray(self.backend.observe().demand_rps, dtype=float)
            if not np.allclose(seen, np.asarray(info["demand_rps"], dtype=float), rtol=1e-9, atol=1e-9):
                raise RuntimeError(
                    "MPCPolicy(forecast='oracle') reads the simulator of the env it was built with, and that "
                    "simulator is not the one this observation came from: evaluate the oracle on that env instance")
            F = self.backend.demand_forecast(H)
        else:
            F = np.tile(np.asarray(info["demand_rps"], dtype=float), (H, 1))
        self._pending_arrivals(ready, desired)
        tot = F.sum(axis=1)
        tot[tot <= 0.0] = 1.0
        rep = w["w_replicas"] / (n * m)
        g = np.zeros((n, m + 1))
        xs = np.arange(m + 1)
        ks = self._t + np.arange(H)
        late = (np.arange(H) >= K)[None, :]
        for d in range(n):
            # cost of c ready pods in window k
            share = F[:, d] / tot
            lat, v = _cost_curve(F[:, d], m, mu, sla_s - rtt[d], self.timeout_s)
            cost_kc = share[:, None] * (w["w_latency"] * lat / sla_s + w["w_sla"] * v)
            # pods ready in window k for each x: kept pending groups (oldest first), then new pods
            r = np.repeat(np.minimum(xs, ready[d])[:, None], H, axis=1)
            extra = xs - ready[d]
            for eta, cnt in self._groups[d]:
                take = np.clip(extra, 0, cnt)
                r += take[:, None] * (ks >= eta)[None, :]
                extra = extra - take
            r += np.maximum(extra, 0)[:, None] * late
            np.minimum(r, m, out=r)
            g[d] = cost_kc[np.arange(H)[None, :], r].sum(axis=1) + H * rep * xs
        x = _budget_dp(g, budget)
        for d in range(n):  # update the record: scale-ups add a group, scale-downs drop the newest pending
            if x[d] > desired[d]:
                self._groups[d].append([self._t + K, int(x[d] - max(desired[d], ready[d]))])
            elif x[d] < desired[d]:
                drop = desired[d] - x[d]
                groups = self._groups[d]
                while drop > 0 and groups:
                    k = min(groups[-1][1], drop)
                    groups[-1][1] -= k
                    drop -= k
                    if groups[-1][1] == 0:
                        groups.pop()
        self._t += 1
        return x


def _cost_curve(lam: np.ndarray, m: int, mu: float, slack_s: float, timeout_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Stationary M/M/c mean response time (s) and ``P(T > slack_s)`` for ``c = 0..m`` at rates ``lam``.

    ``lam``: ``float64 (H,)``; returns two ``float64 (H, m + 1)`` arrays. Vectorised form of
    :func:`_site_cost` (RTT excluded) with the simulator's conventions: an overloaded site
    (``lam >= c mu``) costs the timeout and certain violation, and the mean wait is capped at
    the timeout. Erlang C from the Erlang B recursion over ``c``.
    """
    lam = np.asarray(lam, dtype=float)
    H = lam.shape[0]
    lat = np.full((H, m + 1), float(timeout_s))
    viol = np.ones((H, m + 1))
    a = lam / mu
    B = np.empty((H, m + 1))
    b = np.ones(H)
    B[:, 0] = 1.0
    for c in range(1, m + 1):
        b = a * b / (c + a * b)
        B[:, c] = b
    cs = np.arange(m + 1)[None, :]
    ok = (cs * mu > lam[:, None]) & (cs > 0)
    if not ok.any():
        return lat, viol
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.where(ok, a[:, None] / np.maximum(cs, 1), 0.0)
        C = B / (1.0 - rho * (1.0 - B))
        theta = np.where(ok, cs * mu - lam[:, None], 1.0)
        lat = np.where(ok, 1.0 / mu + np.minimum(C / theta, timeout_s), lat)
        if slack_s > 0.0:
            es = np.exp(-mu * slack_s)
            dd = mu - theta
            near = np.abs(dd) < 1e-9 * mu
            wait = np.where(near, (1.0 + mu * slack_s) * es,
                            (mu * np.exp(-theta * slack_s) - theta * es) / np.where(near, 1.0, dd))
            viol = np.where(ok, (1.0 - C) * es + C * wait, viol)
    return lat, viol


def _budget_dp(g: np.ndarray, budget: int) -> np.ndarray:
    """``argmin_x sum_d g[d, x_d]`` subject to ``sum_d x_d <= budget`` (exact dynamic programme).

    ``g``: ``float64 (n, m + 1)``. Returns ``int64 (n,)``; ties go to fewer replicas.
    """
    n, m1 = g.shape
    B = max(0, min(int(budget), n * (m1 - 1)))
    INF = np.inf
    best = np.zeros(B + 1)  # best[b]: min cost of the sites so far using at most b replicas
    choice = np.zeros((n, B + 1), dtype=np.int64)
    bx = np.arange(B + 1)[:, None] - np.arange(m1)[None, :]  # budget left for earlier sites
    valid = bx >= 0
    bxc = np.maximum(bx, 0)
    for d in range(n):
        vals = np.where(valid, g[d][None, :] + best[bxc], INF)
        j = np.argmin(vals, axis=1)  # first minimum: fewer replicas on ties
        choice[d] = j
        best = vals[np.arange(B + 1), j]
    x = np.zeros(n, dtype=np.int64)
    b = B
    for d in range(n - 1, -1, -1):
        x[d] = choice[d, b]
        b -= x[d]
    return x


#: Training seeds on which baselines are tuned (disjoint from the evaluation seeds >= 10_000).
TUNING_SEEDS = (1, 2, 3, 4, 5)


def grid_search(env: Any, make_policy: Any, grid: Any, seeds: Any = TUNING_SEEDS,
                step_limit: int | None = None) -> tuple[Any, dict[Any, float]]:
    """Tune a baseline: the grid point whose policy has the best mean return on ``seeds``.

    Args:
        env: the env to tune for; rollouts run on a fresh copy made from ``env.spec`` (on
            ``env`` itself, which is then reset, if it has no spec).
        make_policy: ``make_policy(point) -> Policy``.
        grid: the candidate points (hashable).
        seeds: training seeds (keep them disjoint from evaluation seeds).
        step_limit: steps per tuning episode (``None``: the env's own episode length).

    Returns:
        ``(best point, {point: mean return})``. Raises ``ValueError`` on an empty grid.
    """
    import gymnasium as gym

    from lwmecps_gym.core.evaluation import evaluate

    grid = list(grid)
    if not grid:
        raise ValueError("grid must not be empty")
    spec = getattr(env, "spec", None)
    run_env = gym.make(spec) if spec is not None else env
    try:
        table = {p: float(evaluate(run_env, make_policy(p), seeds=list(seeds), step_limit=step_limit)
                          .values("return").mean()) for p in grid}
    finally:
        if run_env is not env:
            run_env.close()
    best = max(grid, key=lambda p: table[p])
    return best, table


def tuned_static(env: Any, seeds: Any = TUNING_SEEDS, step_limit: int | None = None) -> StaticPolicy:
    """:class:`StaticPolicy` with the replica level (same at every site) grid-searched on ``seeds``.

    Levels ``0 .. max_replicas`` (at most ``replica_budget // n`` when the env has a budget).
    The grid's mean returns are in the policy's ``tuning`` attribute.
    """
    u = env.unwrapped
    top = u.max_replicas
    try:
        top = min(top, int(env.get_wrapper_attr("budget")) // u.n)
    except AttributeError:  # no replica budget
        pass
    best, table = grid_search(env, lambda r: StaticPolicy(replicas=r), range(top + 1), seeds, step_limit)
    p = StaticPolicy(replicas=best)
    p.tuning = table
    return p


def tuned_proportional(env: Any, seeds: Any = TUNING_SEEDS, step_limit: int | None = None,
                       targets: Any = tuple(round(0.3 + 0.05 * i, 2) for i in range(13)),
                       stabilization: Any = (0, 4, 10)) -> ProportionalPolicy:
    """:class:`ProportionalPolicy` (HPA rule) with target utilisation and scale-down stabilisation
    window grid-searched on ``seeds``; the grid's mean returns are in ``tuning``."""
    grid = [(t, s) for t in targets for s in stabilization]
    best, table = grid_search(env, lambda p: ProportionalPolicy(p[0], stabilization_windows=p[1]), grid, seeds,
                              step_limit)
    p = ProportionalPolicy(best[0], stabilization_windows=best[1])
    p.name = "hpa"
    p.tuning = table
    return p


def _on_sim(env: Any) -> bool:
    from lwmecps_gym.backends.sim import SimBackend

    return isinstance(getattr(env.unwrapped, "backend", None), SimBackend)


class LazyPolicy(BasePolicy):
    """A policy built on first use (``reset`` or ``act``), e.g. one tuned by a grid search.

    Listing baselines then costs nothing; the tuning runs once, when the policy is first
    evaluated. ``build() -> Policy``; ``name`` is the label used until (and after) it is built.
    """

    def __init__(self, name: str, build: Any):
        if not callable(build):
            raise TypeError(f"build must be callable, got {build!r}")
        self.name = name
        self._build = build
        self.policy: Any = None

    def _get(self) -> Any:
        if self.policy is None:
            self.policy = self._build()
            self.policy.name = self.name
        return self.policy

    def reset(self, seed: int | None = None) -> None:
        reset = getattr(self._get(), "reset", None)
        if callable(reset):
            reset(seed)

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        return self._get().act(obs, info)


def baselines_for(env: Any, include_oracle: bool | None = None, tune: bool = True) -> list[BasePolicy]:
    """The standard baselines for ``env``.

    Scaling envs: ``static`` (the replica level grid-searched on :data:`TUNING_SEEDS` when
    ``tune``, see :func:`tuned_static`; else upstream's uniform rule), ``random``,
    ``nearest-site``, ``proportional``, and the one-step ``oracle`` on small simulated instances.
    Placement envs: ``static`` (stay), ``random``, ``nearest-site``, ``oracle`` (simulator).
    For the hard scenario's tuned and MPC baselines see :mod:`lwmecps_gym.benchmark`.
    """
    u = env.unwrapped
    scaling = hasattr(u, "max_replicas")
    static = tuned_static(env) if (scaling and tune) else StaticPolicy()
    out: list[BasePolicy] = [static, RandomPolicy(env.action_space), NearestSitePolicy()]
    if scaling:
        out.append(ProportionalPolicy())
    if include_oracle is None:
        include_oracle = _on_sim(env) and (not scaling or (u.max_replicas + 1) ** u.n <= 100_000)
    if include_oracle:
        out.append(OraclePolicy(env))
    return out
