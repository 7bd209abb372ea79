"""``LoadBalanceEnv``: one MARLLB load balancer's per-server weights, set every 250 ms."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lwmecps_gym.core.backend import PermanentBackendError
from lwmecps_gym.core.seeding import make_streams
from lwmecps_gym.core.validation import check_choice, check_float, check_int, check_positive
from marllb_env.backend import GT_NAMES, LBBackend, LBMeasurement, SimBackend, default_servers, fct_summary
from marllb_env.rewards import REWARD_FUNCTIONS, get_reward_function, jain
from marllb_env.scenarios import get_scenario
from marllb_env.sim import DISPATCH_MODES, FEATURE_NAMES, as_server_specs

#: MARLLB code's discrete weight levels (``src/lb/env.py: DISCRETE_ACTION_SPACE``).
CODE_WEIGHT_LEVELS = (1.0, 1.5, 2.0)
#: The paper's levels {1.0, 1.2, ..., 2.0}.
PAPER_WEIGHT_LEVELS = (1.0, 1.2, 1.4, 1.6, 1.8, 2.0)

REWARD_FIELDS = FEATURE_NAMES + GT_NAMES

#: Observation column subsets: all 11 MARLLB features, or the 6 the MARLLB agents use
#: (``feature_idx`` in ``sac_qmix.py``: n_flow_on and the five flow-duration statistics).
FEATURE_SETS: dict[str, list[int] | None] = {"all": None, "marllb_agents": [0, 6, 7, 8, 9, 10]}
_F32_MAX = float(np.finfo(np.float32).max)


class WeightCodec:
    """Maps actions to SED weights and back (used by the env and by baseline policies).

    * discrete: ``action[j]`` in ``{0..K-1}`` -> ``levels[action[j]]``.
    * continuous: ``action[j]`` in ``[-1, 1]`` -> ``w_min * (w_max / w_min) ** ((a + 1) / 2)``
      (log-uniform: ``a = 0`` is the geometric mid-point; SED is scale-invariant, so
      only weight *ratios* matter and a log scale spends the range evenly on them).
    """

    def __init__(self, action_type: str, levels: Sequence[float], weight_range: tuple[float, float], n: int):
        self.action_type = action_type
        self.levels = tuple(float(x) for x in levels)
        self.w_min, self.w_max = float(weight_range[0]), float(weight_range[1])
        self._lmin = math.log(self.w_min)
        self._lspan = math.log(self.w_max) - self._lmin
        self.n = n

    def decode(self, action: Any) -> list[float]:
        """Weights (list of ``n`` positive floats) for ``action``.

        Raises:
            ValueError: wrong shape, non-integer or out-of-range discrete action, NaN/inf or
                out-of-[-1, 1] continuous action.
        """
        a = action if type(action) is np.ndarray else np.asarray(action)
        if a.shape != (self.n,):
            raise ValueError(f"action must have shape ({self.n},) (one entry per server), got shape {a.shape}")
        if self.action_type == "discrete":
            if a.dtype.kind not in "iu":
                raise ValueError(f"discrete action must be integers (weight-level indices), got dtype {a.dtype}")
            al = a.tolist()
            lv = self.levels
            k = len(lv)
            for v in al:
                if v < 0 or v >= k:
                    raise ValueError(f"discrete action entries must be in [0, {k - 1}], got {al}")
            return [lv[v] for v in al]
        if a.dtype.kind != "f":
            raise ValueError(f"continuous action must be floats, got dtype {a.dtype}")
        al = a.tolist()
        for v in al:
            if not (-1.0 <= v <= 1.0):  # also catches NaN
                raise ValueError(f"continuous action entries must be finite and in [-1, 1], got {al}")
        lmin, span = self._lmin, self._lspan
        return [math.exp(lmin + 0.5 * (v + 1.0) * span) for v in al]

    def encode(self, weights: Sequence[float]) -> np.ndarray:
        """An action realising ``weights`` up to a common scale (SED/WCMP are scale-invariant).

        Discrete: weights are scaled so the largest maps to the largest level, then each
        is rounded to the nearest level (lossy when ratios fall between levels).
        Continuous: weights are scaled by their geometric mean to centre them on ``a = 0``.

        Raises:
            ValueError: non-positive weights, or (continuous) a max/min ratio beyond the range.
        """
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (self.n,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(f"weights must be {self.n} finite positive numbers, got {w.tolist()}")
        if self.action_type == "discrete":
            lv = np.asarray(self.levels)
            scaled = w / w.max() * lv.max()
            return np.abs(scaled[:, None] - lv[None, :]).argmin(axis=1).astype(np.int64)
        lw = np.log(w) - np.log(w).mean() + (self._lmin + 0.5 * self._lspan)
        a = 2.0 * (lw - self._lmin) / self._lspan - 1.0
        if np.any(a < -1 - 1e-9) or np.any(a > 1 + 1e-9):
            raise ValueError(
                f"weight ratio {w.max() / w.min():.3g} exceeds weight_range ratio {self.w_max / self.w_min:.3g}"
            )
        return np.clip(a, -1.0, 1.0).astype(np.float32)  # clip only float rounding (checked above)


class LoadBalanceEnv(gym.Env):
    """MARLLB single-agent load balancing: set per-server SED weights every ``step_interval``.

    ## Description

    A load balancer (LB) in front of heterogeneous servers dispatches every new flow
    to ``argmin_j (n_flow_on_j + 1) / w_j`` (shortest expected delay, as MARLLB's VPP
    data plane). Every ``step_interval`` seconds of simulated time the agent sets the
    weights ``w``, then observes the LB's MARLLB features for the interval: its own
    ongoing-flow counts and reservoir statistics of flow completion times (FCT) and
    flow durations. Flows arrive from a workload (Poisson or a real MARLLB trace);
    servers are processor-sharing CPUs with Apache's worker and backlog limits (see
    :mod:`marllb_env.sim`). With ``n_lbs > 1`` other LBs share the servers and the
    agent sees only its own flows (the paper's partial observability).
    Yao, Ding, Clausen, CIKM 2022, doi:10.1145/3511808.3557133.

    ## Action Space

    * ``action_type="discrete"`` (default): ``MultiDiscrete([K] * num_servers)``, index into
      ``weight_levels`` (default MARLLB code's ``(1.0, 1.5, 2.0)``; ``"paper"`` for
      ``1.0..2.0`` step 0.2).
    * ``action_type="continuous"``: ``Box(-1, 1, (num_servers,), float32)`` mapped
      log-uniformly onto ``weight_range`` (default ``(0.1, 10.0)``), see :class:`WeightCodec`.

    With ``dispatch`` other than ``"sed"``/``"sed2"``/``"wcmp"``/``"gsq"`` the weights are ignored
    (baselines).

    ## Observation Space

    ``Box(0, float32 max, (num_servers, 11), float32)``; ``(num_servers, 14)`` with
    ``use_ground_truth=True``; ``(num_servers, 6)`` with ``feature_set="marllb_agents"``
    (columns 0, 6-10); flattened to 1-D with ``flatten_obs=True``. Row ``j`` is server ``j``:

    | index | name | unit | min | max |
    |---|---|---|---|---|
    | 0 | n_flow_on (this LB's ongoing flows on the server) | flows | 0 | n_workers + backlog |
    | 1-5 | fct_avg, fct_90, fct_std, fct_avg_decay, fct_90_decay | s | 0 | inf (finite) |
    | 6-10 | flow_duration_avg, _90, _std, _avg_decay, _90_decay | s | 0 | inf (finite) |
    | 11 | cpu_util (ground truth, interval mean) | fraction | 0 | 1 |
    | 12 | busy_workers (ground truth) | flows | 0 | n_workers |
    | 13 | queue_length (ground truth, backlog) | flows | 0 | backlog |

    Reservoir statistics are over 128-sample random-replacement reservoirs, decayed ones
    weight a sample of age ``a`` seconds by ``0.9 ** a``; an empty reservoir gives 0.
    The SB3 ``check_env`` warns that a 2-D observation is "neither an image nor a 1D
    vector": that warning is expected for the default (the per-server layout is the
    MARLLB interface; SB3's ``MlpPolicy`` flattens it); ``flatten_obs=True`` avoids it.

    ## Rewards

    ``reward_type(x)`` with ``x`` = column ``reward_field`` (default
    ``flow_duration_avg_decay``; any feature or ground-truth name) over the active
    servers; see :mod:`marllb_env.rewards` for the ten functions and ranges. Default
    ``"jain"``: Jain's index in ``[1/N, 1]``. The reward is a Python float. Latency
    metrics are in ``info``, separate from the reward.

    ## Starting State

    Empty servers and reservoirs at simulated time 0 (``warmup_s`` runs the LB with
    equal weights first); the first observation has zero features.

    ## Episode End

    Never terminates. Truncated after ``max_steps`` steps or when a trace workload has
    been fully served. The last ``info`` carries ``episode_metrics``.

    ## Info

    ``metrics`` (per step: ``arrivals``, ``completed``, ``rejects`` (counts),
    ``cpu_util_mean``, ``jain_cpu_util``, ``jain_reward_field``, ``flows_in_system``),
    ``time_s``, ``weights`` (applied), ``active_mask``, ``ground_truth`` ((N, 3): cpu_util,
    busy_workers, queue_length), ``dispatch``, ``weight_codec``, ``configured_capacity``
    (per server, if the backend knows it); at the end
    ``episode_metrics``: ``fct_mean_s``, ``fct_p50_s``, ``fct_p90_s``, ``fct_p99_s`` (this
    LB's completed flows), ``flows_completed``, ``flows_rejected``, ``reject_rate``.

    ## Arguments

    | name | default | meaning |
    |---|---|---|
    | num_servers | 4 (scenario's) | servers; default cpus: first half 1, rest 2 |
    | action_type | "discrete" | "discrete" or "continuous" |
    | step_interval | 0.25 | simulated seconds per step |
    | reward_field | "flow_duration_avg_decay" | feature the fairness is computed over |
    | reward_type | "jain" | one of :data:`marllb_env.rewards.REWARD_FUNCTIONS` |
    | max_steps | 10000 | truncation (None: only trace end) |
    | use_ground_truth | False | append cpu_util, busy_workers, queue_length to obs |
    | scenario | None ("default") | :mod:`marllb_env.scenarios` name |
    | servers | None | list of cpus or ServerSpec/dicts (overrides scenario) |
    | workload | None | :func:`marllb_env.traces.make_workload` spec |
    | n_lbs | 1 | LBs sharing the servers; the agent drives LB 0 |
    | background_dispatch | "sed" | dispatch of the other LBs (capacity weights) |
    | dispatch | "sed" | the agent LB's dispatch mode (baselines use others) |
    | weight_levels | (1.0, 1.5, 2.0) | discrete levels or "paper" |
    | weight_range | (0.1, 10.0) | continuous weight range |
    | flatten_obs | False | 1-D observation |
    | capacity_events | () | [(time_s, server, cpus)] |
    | warmup_s | 0.0 | simulated seconds before the first observation |
    | sim_options | None | FlowSimulator options (reservoir_size, empty_slots, ...) |
    | feature_set | "all" | "all" (11 columns) or "marllb_agents" (n_flow_on + 5 flow-duration stats) |
    | reward_smoothing | None | gamma of the paper's F((1 - g) x_t + g x_{t+1}) (paper: 0.9) |
    | backend | "sim" | "sim", "shm", or an LBBackend instance |
    | backend_kwargs | None | for "shm": ``ShmBackend.from_env_kwargs`` arguments |
    | render_mode | None | ``"ansi"``: a text table per server; ``"rgb_array"``: a ``uint8 (720, 960, 3)`` frame (weights, flows, CPU use, FCT so far; :mod:`marllb_env.rendering`, needs matplotlib) |

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        num_servers: int | None = None,
        action_type: str = "discrete",
        step_interval: float = 0.25,
        reward_field: str = "flow_duration_avg_decay",
        reward_type: str = "jain",
        max_steps: int | None = 10000,
        use_ground_truth: bool = False,
        *,
        scenario: str | None = None,
        servers: Sequence[Any] | None = None,
        workload: Any = None,
        n_lbs: int | None = None,
        background_dispatch: str = "sed",
        dispatch: str = "sed",
        weight_levels: Sequence[float] | str = CODE_WEIGHT_LEVELS,
        weight_range: Sequence[float] = (0.1, 10.0),
        flatten_obs: bool = False,
        capacity_events: Sequence[Sequence[float]] | None = None,
        warmup_s: float = 0.0,
        sim_options: Mapping[str, Any] | None = None,
        feature_set: str = "all",
        reward_smoothing: float | None = None,
        backend: str | LBBackend = "sim",
        backend_kwargs: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
    ) -> None:
        self.action_type = check_choice("action_type", action_type, ("discrete", "continuous"))
        self.step_interval = check_positive("step_interval", step_interval)
        self.reward_field = check_choice("reward_field", reward_field, REWARD_FIELDS)
        self.reward_type = reward_type
        self._reward_fn = get_reward_function(reward_type)
        self.max_steps = None if max_steps is None else check_int("max_steps", max_steps, low=1)
        self.use_ground_truth = bool(use_ground_truth)
        self.flatten_obs = bool(flatten_obs)
        self.warmup_s = check_float("warmup_s", warmup_s, low=0.0)
        self.feature_set = check_choice("feature_set", feature_set, tuple(FEATURE_SETS))
        self._cols = FEATURE_SETS[self.feature_set]
        self.reward_smoothing = (
            None if reward_smoothing is None else check_float("reward_smoothing", reward_smoothing, low=0.0, high=1.0)
        )
        self._prev_x: list[float] | None = None
        self.render_mode = check_choice("render_mode", render_mode, [None, *self.metadata["render_modes"]])
        self._renderer = None
        if self.render_mode == "rgb_array":
            from marllb_env.rendering import LBRenderer

            self._renderer = LBRenderer()
        if isinstance(weight_levels, str):
            check_choice("weight_levels", weight_levels, ("code", "paper"))
            weight_levels = PAPER_WEIGHT_LEVELS if weight_levels == "paper" else CODE_WEIGHT_LEVELS
        levels = [check_positive(f"weight_levels[{i}]", v) for i, v in enumerate(weight_levels)]
        if len(levels) < 2:
            raise ValueError(f"weight_levels needs at least 2 levels, got {list(weight_levels)!r}")
        if len(weight_range) != 2:
            raise ValueError(f"weight_range must be (w_min, w_max), got {weight_range!r}")
        w_min = check_positive("weight_range[0]", weight_range[0])
        w_max = check_positive("weight_range[1]", weight_range[1])
        if not w_max > w_min:
            raise ValueError(f"weight_range must have w_max > w_min, got {tuple(weight_range)!r}")
        check_choice("dispatch", dispatch, DISPATCH_MODES)

        if isinstance(backend, str):
            check_choice("backend", backend, ("sim", "shm"))
            if backend == "sim":
                if backend_kwargs:
                    raise ValueError("backend_kwargs are for backend='shm'; use sim_options for the simulator")
                sc = get_scenario(scenario or "default")
                if servers is None:
                    if num_servers is not None and scenario is None:
                        servers = default_servers(num_servers)
                    else:
                        servers = sc["servers"]
                specs = as_server_specs(servers)
                if num_servers is not None and num_servers != len(specs):
                    raise ValueError(f"num_servers={num_servers} but {len(specs)} servers were given")
                self._backend: Any = SimBackend(
                    specs,
                    workload if workload is not None else sc["workload"],
                    n_lbs=n_lbs if n_lbs is not None else sc["n_lbs"],
                    lb=0,
                    dispatch=dispatch,
                    background_dispatch=background_dispatch,
                    capacity_events=capacity_events if capacity_events is not None else sc.get("capacity_events", ()),
                    **dict(sim_options or {}),
                )
            else:
                if any(v is not None for v in (scenario, servers, workload, n_lbs, capacity_events, sim_options)):
                    raise ValueError("scenario/servers/workload/n_lbs/capacity_events/sim_options apply to backend='sim'")
                if dispatch != "sed":
                    raise ValueError("backend='shm' dispatches by SED in the data plane; dispatch must be 'sed'")
                from marllb_env.shm_backend import ShmBackend  # lazy: optional data-plane backend

                self._backend = ShmBackend.from_env_kwargs(
                    num_servers=4 if num_servers is None else num_servers,
                    step_interval=self.step_interval,
                    **dict(backend_kwargs or {}),
                )
        else:
            if not isinstance(backend, LBBackend):
                raise TypeError(f"backend must be 'sim', 'shm' or an LBBackend, got {type(backend).__name__}")
            self._backend = backend
        self.backend = self._backend
        self.num_servers = int(self._backend.n_servers)
        if num_servers is not None and num_servers != self.num_servers:
            raise ValueError(f"num_servers={num_servers} but the backend has {self.num_servers} servers")
        n = self.num_servers
        self.weight_codec = WeightCodec(self.action_type, levels, (w_min, w_max), n)
        if self.action_type == "discrete":
            self.action_space = spaces.MultiDiscrete([len(levels)] * n)
        else:
            self.action_space = spaces.Box(-1.0, 1.0, (n,), dtype=np.float32)
        width = (11 if self._cols is None else len(self._cols)) + (3 if self.use_ground_truth else 0)
        shape = (n * width,) if self.flatten_obs else (n, width)
        self.observation_space = spaces.Box(0.0, _F32_MAX, shape, dtype=np.float32)
        self._field_gt = self.reward_field in GT_NAMES
        self._field_idx = GT_NAMES.index(self.reward_field) if self._field_gt else FEATURE_NAMES.index(self.reward_field)
        self._steps = 0
        self._weights = [1.0] * n
        self._w_arr = np.ones(n)
        self._last: LBMeasurement | None = None
        self._fast_sim = isinstance(self._backend, SimBackend)
        self._cap = getattr(self._backend, "configured_capacity", None)

    # ------------------------------------------------------------------ helpers
    @property
    def dispatch(self) -> str:
        return getattr(self._backend, "dispatch", "sed")

    def _obs(self, m: LBMeasurement) -> np.ndarray:
        o = m.features if self._cols is None else m.features[:, self._cols]
        if self.use_ground_truth:
            if np.isnan(m.ground_truth).any():
                raise PermanentBackendError(
                    f"{type(self._backend).__name__} reports no ground truth (NaN); use_ground_truth=True needs it"
                )
            o = np.concatenate((o, m.ground_truth), axis=1)
        if self.flatten_obs:
            o = o.reshape(-1)
        return o

    def _reward_info(self, m: LBMeasurement) -> tuple[float, dict[str, Any]]:
        gt = m.ground_truth
        gtl = gt.tolist()
        act = m.active.tolist()
        k = self._field_idx
        if self._field_gt:
            x = [row[k] for row, a in zip(gtl, act, strict=True) if a]
            if any(v != v for v in x):
                raise PermanentBackendError(
                    f"reward_field={self.reward_field!r} is ground truth, which {type(self._backend).__name__} "
                    "does not report (NaN); use a feature such as 'flow_duration_avg_decay'"
                )
        else:
            x = [v for v, a in zip(m.features[:, k].tolist(), act, strict=True) if a]
        jx = jain(x)
        su = sq = 0.0
        nq = 0.0
        for row, a in zip(gtl, act, strict=True):
            nq += row[1] + row[2]
            if a:
                su += row[0]
                sq += row[0] * row[0]
        nx = len(x)
        fs = m.flow_stats
        info = {
            "metrics": {
                "arrivals": fs.get("arrivals", math.nan),
                "completed": fs.get("completed", math.nan),
                "rejects": fs.get("rejects", math.nan),
                "cpu_util_mean": su / nx,
                "jain_cpu_util": su * su / (nx * sq) if su > 0 else (1.0 if su == 0 else math.nan),
                "jain_reward_field": jx,
                "flows_in_system": nq,
            },
            "time_s": m.time_s,
            "weights": self._w_arr.copy(),
            "active_mask": m.active,
            "ground_truth": gt,
            "dispatch": self.dispatch,
            "weight_codec": self.weight_codec,
        }
        if self._cap is not None:
            info["configured_capacity"] = self._cap.copy()
        if self._renderer is not None:
            self._renderer.record(m, info["weights"], self._cap)
        g = self.reward_smoothing
        if g is None and self._reward_fn is jain:
            return jx, info
        if g is not None:  # paper: r_{t+1} = F((1 - g) tau_t + g tau_{t+1}), r_1 = F(tau_0)
            prev = self._prev_x
            self._prev_x = x
            if prev is not None and len(prev) == len(x):
                x = [(1.0 - g) * a + g * b for a, b in zip(prev, x, strict=True)]
        return float(self._reward_fn(x)), info

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        rngs = make_streams(self.np_random)
        self._backend.reset(seed, rngs=rngs)
        self._steps = 0
        self._prev_x = None
        self._weights = [1.0] * self.num_servers
        self._w_arr = np.ones(self.num_servers)
        self._backend.apply_weights(np.ones(self.num_servers))
        if self.warmup_s > 0:
            self._backend.advance(self.warmup_s)
            self._backend.observe()  # start the next interval's counters after the warm-up
        m = self._backend.observe()
        self._last = m
        return self._obs(m), self._reward_info(m)[1]

    def step(self, action: Any):
        if self._last is None:
            raise RuntimeError("call reset() before step()")
        w = self.weight_codec.decode(action)
        if w != self._weights:
            if self._fast_sim:
                self._backend.sim.set_weights(self._backend.lb, w, check=False)
            else:
                self._backend.apply_weights(np.asarray(w))
            self._weights = w
            self._w_arr = np.array(w)
        self._backend.advance(self.step_interval)
        m = self._backend.observe()
        self._last = m
        self._steps += 1
        reward, info = self._reward_info(m)
        truncated = bool(m.exhausted or (self.max_steps is not None and self._steps >= self.max_steps))
        if truncated and getattr(self._backend, "flow_records", None) is not None:
            # per-flow FCT percentiles need flow records; the shm data plane does not export them
            info["episode_metrics"] = self.episode_metrics()
        return self._obs(m), reward, False, truncated, info

    def episode_metrics(self) -> dict[str, float]:
        """FCT percentiles, completions and rejects of the agent LB's flows so far this episode.

        Raises:
            NotImplementedError: the backend keeps no per-flow records.
        """
        rec = getattr(self._backend, "flow_records", None)
        if rec is None:
            raise NotImplementedError(f"{type(self._backend).__name__} keeps no per-flow records")
        return fct_summary(rec(), lb=getattr(self._backend, "lb", None))

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        if self.render_mode == "rgb_array":
            if self.spec is not None:
                self._renderer.title = self.spec.id
            return self._renderer.frame()
        if self._last is None:
            return None
        m = self._last
        lines = [f"t={m.time_s:.2f}s dispatch={self.dispatch}"]
        lines.append(" srv active weight n_on fd_avg_decay cpu_util busy queue")
        for j in range(self.num_servers):
            f, g = m.features[j], m.ground_truth[j]
            lines.append(
                f"{j:4d} {bool(m.active[j])!s:6} {self._weights[j]:6.2f} {int(f[0]):4d} "
                f"{f[9]:12.4f} {g[0]:8.2f} {int(g[1]):4d} {int(g[2]):5d}"
            )
        return "\n".join(lines)

    def close(self) -> None:
        self._backend.close()


__all__ = ["LoadBalanceEnv", "WeightCodec", "REWARD_FIELDS", "REWARD_FUNCTIONS"]
