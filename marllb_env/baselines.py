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
from marllb_env.sim import DISPATCH_MODES


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


def all_baselines(oracles: bool = True) -> list[LBBaseline]:
    """One instance of every baseline (oracles last)."""
    out = [ECMP(), Maglev(), WCMP(), ActiveWCMP(), LSQ(), LSQ2(), SED(), SED2(), StaticWeights()]
    if oracles:
        out += [GSQ(), LWL(), SRT()]
    return out
