"""Heuristic load-balancing baselines as policies (``act(obs, info) -> action``).

Most baselines are a *dispatch mode* of the load balancer plus (for weighted modes)
a weight vector. A policy says which mode it needs in ``dispatch``; make the env
with it, e.g. ``evaluate(env_id, LSQ(), **LSQ().env_kwargs)`` or
``gym.make(env_id, **policy.env_kwargs)``. ``act`` checks ``info["dispatch"]`` and
raises a ``ValueError`` naming the fix if the env runs another mode, so a baseline
can never silently be evaluated as SED.

==================  ==========  ===========================================================  ==========
policy              dispatch    rule                                                         needs
==================  ==========  ===========================================================  ==========
``ECMP``            ecmp        hash(flow) mod n (stateless)                                 nothing
``Maglev``          maglev      Maglev lookup table (prime size 65537, equal weights)        nothing
``Random``          random      uniform                                                      nothing
``WCMP``            wcmp        P(j) proportional to capacity (alias sampling)               vCPU config
``ActiveWCMP``      wcmp        w_j ~ c_j / (busy_j + 1) every step (MARLLB ``weighted.py``) server probe
``LSQ``             lsq         argmin local n_flow_on                                       local counts
``LSQ2``            lsq2        power-of-two LSQ                                             local counts
``SED``             sed         argmin (n_flow_on + 1) / c_j, static capacity weights       local counts
``SED2``            sed2        power-of-two SED                                             local counts
``StaticWeights``   sed         SED with any fixed weights (e.g. all equal)                  local counts
``FCTAdaptiveSED``  sed         SED, weights tracking 1 / (per-server mean FCT) ** beta      local features
``GSQ`` (oracle)    gsq         argmin (N_j + 1) / c_j, N_j = true flows at j (all LBs)      global state
``LWL`` (oracle)    lwl         argmin unfinished work / capacity                            job sizes
``SRT`` (oracle)    srt         argmin new job's PS completion time given true remaining sizes  job sizes
==================  ==========  ===========================================================  ==========

``c_j`` is the configured capacity (cpus x speed, MARLLB ``meta.weights``) from
``info["configured_capacity"]``. With discrete actions the weights are rounded to
the nearest weight level after scaling (exact for 1:2 capacity ratios and the
default levels); continuous actions represent ratios up to ``weight_range``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lwmecps_gym.core.policy import BasePolicy
from lwmecps_gym.core.validation import check_choice, check_float
from marllb_env.sim import DISPATCH_MODES, FEATURE_NAMES


class LBBaseline(BasePolicy):
    """A baseline: a dispatch mode plus weights. Subclasses override :meth:`weights`."""

    name = "baseline"
    dispatch = "sed"

    @property
    def env_kwargs(self) -> dict[str, Any]:
        """Keyword arguments the env must be made with for this baseline."""
        return {"dispatch": self.dispatch}

    def reset(self, seed: int | None = None) -> None:
        self._cached: tuple[Any, np.ndarray] | None = None

    def _check(self, info: dict[str, Any]) -> None:
        got = info.get("dispatch")
        if got != self.dispatch:
            raise ValueError(
                f"{self.name} needs the env's dispatch={self.dispatch!r} but it runs {got!r}; "
                f"make the env with dispatch={self.dispatch!r} (policy.env_kwargs)"
            )

    def weights(self, obs: Any, info: dict[str, Any]) -> np.ndarray | None:
        """Desired weights, ``(n_servers,)`` positive floats; ``None`` = all equal."""
        return None

    def static(self) -> bool:
        """True if :meth:`weights` does not change within an episode (the action is cached)."""
        return True

    def act(self, obs: Any, info: dict[str, Any]) -> Any:
        self._check(info)
        codec = info["weight_codec"]
        cached = getattr(self, "_cached", None)
        if self.static() and cached is not None and cached[0] is codec:
            return cached[1].copy()
        w = self.weights(obs, info)
        if w is None:
            w = np.ones(codec.n)
        a = codec.encode(w)
        self._cached = (codec, a)
        return a.copy()


def _capacity(info: dict[str, Any]) -> np.ndarray:
    cap = info.get("configured_capacity")
    if cap is None:
        raise KeyError("info has no 'configured_capacity'; this baseline needs the servers' configured capacity")
    return np.asarray(cap, dtype=np.float64)


class _Mode(LBBaseline):
    def __init__(self, dispatch: str, name: str):
        if dispatch not in DISPATCH_MODES:
            raise ValueError(f"dispatch must be one of {DISPATCH_MODES}, got {dispatch!r}")
        self.dispatch = dispatch
        self.name = name
        self._cached = None


class _CapacityWeighted(_Mode):
    def weights(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        return _capacity(info)


def ECMP() -> LBBaseline:
    """Stateless hash: server = active[hash mod n]."""
    return _Mode("ecmp", "ECMP")


def Maglev() -> LBBaseline:
    """Maglev consistent-hash table (equal weights)."""
    return _Mode("maglev", "Maglev")


def Random() -> LBBaseline:
    """Uniformly random server per flow."""
    return _Mode("random", "Random")


def LSQ() -> LBBaseline:
    """Local shortest queue: fewest of this LB's ongoing flows."""
    return _Mode("lsq", "LSQ")


def LSQ2() -> LBBaseline:
    """Power-of-two LSQ."""
    return _Mode("lsq2", "LSQ2")


def WCMP() -> LBBaseline:
    """Weighted random by configured capacity (alias sampling)."""
    return _CapacityWeighted("wcmp", "WCMP")


def SED() -> LBBaseline:
    """Shortest expected delay with static capacity weights (MARLLB's strongest heuristic)."""
    return _CapacityWeighted("sed", "SED")


def SED2() -> LBBaseline:
    """Power-of-two SED with capacity weights."""
    return _CapacityWeighted("sed2", "SED2")


def GSQ() -> LBBaseline:
    """Oracle: SED on the global true number of flows at each server (all LBs), capacity weights."""
    return _CapacityWeighted("gsq", "GSQ (oracle)")


def LWL() -> LBBaseline:
    """Oracle: least unfinished work per unit capacity."""
    return _Mode("lwl", "LWL (oracle)")


def SRT() -> LBBaseline:
    """Oracle: the server where the new job would finish first under PS, given all true remaining sizes."""
    return _Mode("srt", "SRT (oracle)")


class StaticWeights(LBBaseline):
    """SED with fixed weights (``None``: all equal, i.e. local SED without capacity knowledge)."""

    dispatch = "sed"

    def __init__(self, weights: Any = None, name: str = "SED (equal weights)"):
        self._w = None if weights is None else np.asarray(weights, dtype=np.float64)
        self.name = name
        self._cached = None

    def weights(self, obs: Any, info: dict[str, Any]) -> np.ndarray | None:
        return self._w


class ActiveWCMP(LBBaseline):
    """Active WCMP (MARLLB ``weighted.py get_action_active``; Spotlight-like).

    Every step: ``w_j = (c_j / (busy_j + 1)) / max_k (c_k / (busy_k + 1))`` with ``busy_j``
    the server's busy workers probed from ground truth (``info["ground_truth"][:, 1]``),
    dispatch by alias sampling (WCMP). Best with ``action_type="continuous"``; discrete
    levels quantise the ratios to at most 2.
    """

    dispatch = "wcmp"
    name = "Active WCMP"

    def __init__(self) -> None:
        self._cached = None

    def static(self) -> bool:
        return False

    def weights(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        cap = _capacity(info)
        busy = np.asarray(info["ground_truth"], dtype=np.float64)[:, 1]
        w = cap / (busy + 1.0)
        codec = info["weight_codec"]
        if codec.action_type == "continuous":  # keep inside the representable ratio
            w = np.maximum(w, w.max() * codec.w_min / codec.w_max)
        return w / w.max()


class FCTAdaptiveSED(LBBaseline):
    """SED whose weights follow the servers' measured latency: a capacity estimate without capacity knowledge.

    Every step, for each server with samples, ``e_j = x_j ** -beta`` with ``x_j`` the observed
    reservoir statistic ``feature`` (default ``fct_avg``: mean completion time of the server's
    recent flows; a slower server completes its flows later); servers without samples get
    ``max e`` (optimistic: they receive flows and get measured). Then
    ``w <- (1 - smoothing) * w / max(w) + smoothing * e / max(e)`` and ``w_j >= floor * max(w)``
    (the floor keeps every server sampled, so a server that got faster is noticed). Episode
    start: ``w`` = configured capacity. Reads only the observation (MARLLB features), so it is
    deployable; the parameters are tuned on training seeds (:mod:`marllb_env.benchmark`).

    Args:
        smoothing: EWMA weight in (0, 1].
        floor: minimum weight relative to the largest, in (0, 1].
        beta: exponent > 0.
        feature: a reservoir statistic of :data:`marllb_env.sim.FEATURE_NAMES` (not ``n_flow_on``).

    The observation must carry all 11 MARLLB feature columns first (``feature_set="all"``, the
    default; flat or 2-D). With continuous actions the floor is raised to the codec's
    representable ratio ``w_min / w_max`` if needed.

    Raises:
        ValueError: a parameter out of range, or an observation without the 11 feature columns.
    """

    dispatch = "sed"

    def __init__(self, smoothing: float = 0.2, floor: float = 0.3, beta: float = 1.0, feature: str = "fct_avg",
                 name: str | None = None):
        self.smoothing = check_float("smoothing", smoothing, low=0.0, high=1.0, low_open=True)
        self.floor = check_float("floor", floor, low=0.0, high=1.0, low_open=True)
        self.beta = check_float("beta", beta, low=0.0, low_open=True)
        self.feature = check_choice("feature", feature, FEATURE_NAMES[1:])
        self._col = FEATURE_NAMES.index(feature)
        self.name = name or f"FCT-adaptive SED ({feature}, a={smoothing:g}, floor={floor:g}, beta={beta:g})"
        self._cached = None
        self._w: np.ndarray | None = None

    def reset(self, seed: int | None = None) -> None:
        self._cached = None
        self._w = None

    def static(self) -> bool:
        return False

    def weights(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        codec = info["weight_codec"]
        f = np.asarray(obs, dtype=np.float64).reshape(codec.n, -1)
        if f.shape[1] < 11:
            raise ValueError(f"{self.name} needs the 11 MARLLB feature columns (feature_set='all'), got {f.shape[1]}")
        floor = self.floor
        if codec.action_type == "continuous":
            floor = max(floor, codec.w_min / codec.w_max)
        if self._w is None:
            cap = info.get("configured_capacity")
            self._w = np.ones(codec.n) if cap is None else np.asarray(cap, dtype=np.float64)
        x = f[:, self._col]
        ok = x > 0
        w = self._w / self._w.max()
        if ok.any():
            e = np.zeros(codec.n)
            e[ok] = x[ok] ** -self.beta
            e[~ok] = e[ok].max()
            w = (1.0 - self.smoothing) * w + self.smoothing * e / e.max()
        w = np.maximum(w / w.max(), floor)
        self._w = w
        return w


def all_baselines(oracles: bool = True) -> list[LBBaseline]:
    """One instance of every baseline (oracles last)."""
    out = [ECMP(), Maglev(), WCMP(), ActiveWCMP(), LSQ(), LSQ2(), SED(), SED2(), StaticWeights()]
    if oracles:
        out += [GSQ(), LWL(), SRT()]
    return out
