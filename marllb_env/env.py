"""``LoadBalanceEnv``: one MARLLB load balancer's per-server weights, set every 250 ms.

The env is :class:`lwmecps_gym.core.env.BackendEnv`'s template over an :class:`marllb_env.backend.LBBackend`
(the flow simulator by default, or the MARLLB shared-memory data plane): decode the action to
weights, ``backend.apply(weights)``, ``backend.advance(interval_s)``, ``m = backend.observe()``,
then observation, reward (:mod:`marllb_env.rewards`) and info are functions of ``m``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import RecordConstructorArgs

from lwmecps_gym.core.backend import PermanentBackendError
from lwmecps_gym.core.env import BackendEnv
from lwmecps_gym.core.validation import (
    check_bool,
    check_choice,
    check_float,
    check_positive,
    resolve_alias,
    unset,
)
from marllb_env.backend import GT_NAMES, LBBackend, LBMeasurement, SimBackend, default_servers, fct_summary
from marllb_env.rewards import REWARD_FUNCTIONS, get_reward_function, jain, smoothed
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

#: ``max_episode_steps`` of the registered single-agent ids (Gymnasium's ``TimeLimit``): 10,000
#: steps of 0.25 s, about 42 simulated minutes (the seed's ``max_steps`` default).
MAX_EPISODE_STEPS = 10_000


class WeightCodec:
    """Maps actions to SED weights and back (used by the env and by baseline policies).

    * discrete: ``action[j]`` in ``{0..K-1}`` -> ``levels[action[j]]``.
    * continuous: ``action[j]`` in ``[-1, 1]`` -> ``w_min * (w_max / w_min) ** ((a + 1) / 2)``
      (log-uniform: ``a = 0`` is the geometric mid-point; SED is scale-invariant, so
      only weight *ratios* matter and a log scale spends the range evenly on them).
    """

    def __init__(self, action_mode: str, levels: Sequence[float], weight_range: tuple[float, float], n: int):
        self.action_mode = action_mode
        self.levels = tuple(float(x) for x in levels)
        self._level_of = dict(enumerate(self.levels))  # action index -> weight (decode's lookup)
        self.w_min, self.w_max = float(weight_range[0]), float(weight_range[1])
        self._lmin = math.log(self.w_min)
        self._lspan = math.log(self.w_max) - self._lmin
        self.n = n

    @property
    def action_type(self) -> str:
        """Alias of :attr:`action_mode` (the seed's name)."""
        return self.action_mode

    def decode(self, action: Any) -> list[float]:
        """Weights (list of ``n`` positive floats) for ``action``.

        Raises:
            ValueError: wrong shape, non-integer or out-of-range discrete action, NaN/inf or
                out-of-[-1, 1] continuous action.
        """
        a = action if type(action) is np.ndarray else np.asarray(action)
        if a.shape != (self.n,):
            raise ValueError(f"action must have shape ({self.n},) (one entry per server), got shape {a.shape}")
        if self.action_mode == "discrete":
            if a.dtype.kind not in "iu":
                raise ValueError(f"discrete action must be integers (weight-level indices), got dtype {a.dtype}")
            al = a.tolist()
            try:  # a dict, not the tuple of levels: a negative index is a KeyError, not the level from the end
                return [self._level_of[v] for v in al]
            except KeyError:
                raise ValueError(f"discrete action entries must be in [0, {len(self.levels) - 1}], got {al}") from None
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
        Continuous: weights are scaled so that the middle of their log range is at ``a = 0`` (every
        ratio up to ``w_max / w_min`` is representable).

        Raises:
            ValueError: non-positive weights, or (continuous) a max/min ratio beyond the range.
        """
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (self.n,) or not np.all(np.isfinite(w)) or np.any(w <= 0):
            raise ValueError(f"weights must be {self.n} finite positive numbers, got {w.tolist()}")
        if self.action_mode == "discrete":
            lv = np.asarray(self.levels)
            scaled = w / w.max() * lv.max()
            return np.abs(scaled[:, None] - lv[None, :]).argmin(axis=1).astype(np.int64)
        lw = np.log(w)
        lw = lw - 0.5 * (lw.max() + lw.min()) + (self._lmin + 0.5 * self._lspan)  # mid-range at a = 0
        a = 2.0 * (lw - self._lmin) / self._lspan - 1.0
        if np.any(a < -1 - 1e-9) or np.any(a > 1 + 1e-9):
            raise ValueError(
                f"weight ratio {w.max() / w.min():.3g} exceeds weight_range ratio {self.w_max / self.w_min:.3g}"
            )
        return np.clip(a, -1.0, 1.0).astype(np.float32)  # clip only float rounding (checked above)


class LoadBalanceEnv(BackendEnv[LBMeasurement]):
    """MARLLB single-agent load balancing: set per-server SED weights every ``interval_s``.

    ## Description

    A load balancer (LB) in front of heterogeneous servers dispatches every new flow
    to ``argmin_j (n_flow_on_j + 1) / w_j`` (shortest expected delay, as MARLLB's VPP
    data plane). Every ``interval_s`` seconds of simulated time the agent sets the
    weights ``w``, then observes the LB's MARLLB features for the interval: its own
    ongoing-flow counts and reservoir statistics of flow completion times (FCT) and
    flow durations. Flows arrive from a workload (Poisson or a real MARLLB trace);
    servers are processor-sharing CPUs with Apache's worker and backlog limits (see
    :mod:`marllb_env.sim`). With ``n_lbs > 1`` other LBs share the servers and the
    agent sees only its own flows (the paper's partial observability).
    Yao, Ding, Clausen, CIKM 2022, doi:10.1145/3511808.3557133.

    ## Action Space

    * ``action_mode="discrete"`` (default): ``MultiDiscrete([K] * num_servers)``, index into
      ``weight_levels`` (default MARLLB code's ``(1.0, 1.5, 2.0)``; ``"paper"`` for
      ``1.0..2.0`` step 0.2).
    * ``action_mode="continuous"``: ``Box(-1, 1, (num_servers,), float32)`` mapped
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
    ``"jain"``: Jain's index in ``[1/N, 1]``. The reward is a Python float and a function of
    the step's measurement only; with ``reward_smoothing=g`` it is the paper's
    ``F((1 - g) x_t + g x_{t+1})`` of this and the previous step's measurement
    (:func:`marllb_env.rewards.smoothed`). Latency metrics are in ``info``, separate from the reward.

    ## Starting State

    Empty servers and reservoirs at simulated time 0, all weights 1 (``warmup_s`` runs the
    LB with equal weights first); the first observation has zero features.

    ## Episode End

    Never terminates. Truncation is Gymnasium's ``TimeLimit``: the ids are registered with
    ``max_episode_steps=10000`` (:data:`MAX_EPISODE_STEPS`); pass
    ``gym.make(id, max_episode_steps=N)`` for another length. The env itself truncates
    only when a trace workload has been fully served. The registered ids add
    :class:`EpisodeMetricsInfo`, so the last ``info`` of an episode (however it ends)
    carries ``episode_metrics``; a directly constructed env offers :meth:`episode_metrics`.

    ## Info

    ``metrics`` (per step: ``arrivals``, ``completed``, ``rejects`` (counts),
    ``cpu_util_mean``, ``jain_cpu_util``, ``jain_reward_field``, ``flows_in_system``),
    ``time_s``, ``weights`` (applied), ``active_mask``, ``ground_truth`` ((N, 3): cpu_util,
    busy_workers, queue_length), ``dispatch``, ``weight_codec``, ``configured_capacity``
    (per server, if the backend knows it); at the end (registered ids)
    ``episode_metrics``: ``fct_mean_s``, ``fct_p50_s``, ``fct_p90_s``, ``fct_p99_s`` (this
    LB's completed flows), ``flows_completed``, ``flows_rejected``, ``reject_rate``.

    ## Arguments

    | name | default | meaning |
    |---|---|---|
    | num_servers | 4 (scenario's) | servers; default cpus: first half 1, rest 2 |
    | action_mode | "discrete" | "discrete" or "continuous"; alias ``action_type`` (seed) |
    | interval_s | 0.25 | control period, simulated seconds per step; alias ``step_interval`` (seed) |
    | reward_field | "flow_duration_avg_decay" | feature the fairness is computed over |
    | reward_type | "jain" | one of :data:`marllb_env.rewards.REWARD_FUNCTIONS` |
    | use_ground_truth | False | append cpu_util, busy_workers, queue_length to obs |
    | scenario | None ("default") | :mod:`marllb_env.scenarios` name |
    | servers | None | list of cpus or ServerSpec/dicts (overrides scenario) |
    | workload | None | :func:`marllb_env.traces.make_workload` spec |
    | n_lbs | 1 | LBs sharing the servers; the agent drives LB 0 |
    | background_dispatch | "sed" | dispatch of the other LBs (capacity weights) |
    | dispatch | "sed" | the agent LB's dispatch mode (baselines use others) |
    | weight_levels | (1.0, 1.5, 2.0) | discrete levels, "code" or "paper" |
    | weight_range | (0.1, 10.0) | continuous weight range |
    | flatten_obs | False | 1-D observation |
    | capacity_events | () | [(time_s, server, cpus)] |
    | warmup_s | 0.0 | simulated seconds before the first observation |
    | sim_config | None | :class:`marllb_env.sim.FlowSimulator` options (reservoir_size, empty_slots, ...); alias ``sim_options`` |
    | feature_set | "all" | "all" (11 columns) or "marllb_agents" (n_flow_on + 5 flow-duration stats) |
    | reward_smoothing | None | gamma of the paper's F((1 - g) x_t + g x_{t+1}) (paper: 0.9) |
    | backend | "sim" | "sim", "shm", or an :class:`marllb_env.backend.LBBackend` instance |
    | backend_kwargs | None | for "shm": ``ShmBackend.from_env_kwargs`` arguments |
    | render_mode | None | ``"ansi"``: a text table per server; ``"rgb_array"``: a ``uint8 (720, 960, 3)`` frame (weights, flows, CPU use, FCT so far; :mod:`marllb_env.rendering`, needs matplotlib) |

    ``max_steps`` (the seed's episode length) is not an env argument: truncation is
    Gymnasium's ``TimeLimit``, so it raises ``TypeError`` naming ``max_episode_steps``.
    Giving an argument and its alias together raises ``TypeError``.

    ## Example

    >>> import gymnasium as gym
    >>> import marllb_env
    >>> env = gym.make("marllb_env/LoadBalance-v0", max_episode_steps=8)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, obs.dtype
    ((4, 11), dtype('float32'))
    >>> steps = 0
    >>> while True:
    ...     obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    ...     steps += 1
    ...     if terminated or truncated:
    ...         break
    >>> steps, info["time_s"], 0.25 <= reward <= 1.0
    (8, 2.0, True)
    >>> sorted(info["episode_metrics"])[:2]
    ['fct_mean_s', 'fct_p50_s']

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        num_servers: int | None = None,
        *,
        action_mode: str = unset(),
        interval_s: float = unset(),
        reward_field: str = "flow_duration_avg_decay",
        reward_type: str = "jain",
        use_ground_truth: bool = False,
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
        sim_config: Mapping[str, Any] | None = unset(),
        feature_set: str = "all",
        reward_smoothing: float | None = None,
        backend: str | LBBackend = "sim",
        backend_kwargs: Mapping[str, Any] | None = None,
        render_mode: str | None = None,
        action_type: str = unset(),
        step_interval: float = unset(),
        sim_options: Mapping[str, Any] | None = unset(),
        max_steps: Any = unset(),
    ) -> None:
        if max_steps is not unset():
            raise TypeError(
                "max_steps is not a LoadBalanceEnv argument: episodes are truncated by Gymnasium's TimeLimit. "
                f"Use gym.make('marllb_env/LoadBalance-v0', max_episode_steps={max_steps!r}) "
                "(registered default 10000) or gymnasium.wrappers.TimeLimit(env, max_episode_steps)"
            )
        # errors name the argument as the caller spelled it (the field's name or the seed's alias)
        self.action_mode = check_choice(
            "action_mode" if action_type is unset() else "action_type",
            resolve_alias("action_mode", action_mode, "action_type", action_type, "discrete"),
            ("discrete", "continuous"),
        )
        self.interval_s = check_positive(
            "interval_s" if step_interval is unset() else "step_interval",
            resolve_alias("interval_s", interval_s, "step_interval", step_interval, 0.25),
        )
        sim_config = resolve_alias("sim_config", sim_config, "sim_options", sim_options, None)
        self.reward_field = check_choice("reward_field", reward_field, REWARD_FIELDS)
        self.reward_type = reward_type
        self._reward_fn = get_reward_function(reward_type)
        self.use_ground_truth = check_bool("use_ground_truth", use_ground_truth)  # "no" is not True
        self.flatten_obs = check_bool("flatten_obs", flatten_obs)
        if sim_config is not None and not isinstance(sim_config, Mapping):
            raise TypeError(f"sim_config must be a mapping of FlowSimulator options, got {sim_config!r}")
        self.warmup_s = check_float("warmup_s", warmup_s, low=0.0)
        self.feature_set = check_choice("feature_set", feature_set, tuple(FEATURE_SETS))
        self._cols = FEATURE_SETS[self.feature_set]
        self.reward_smoothing = (
            None if reward_smoothing is None else check_float("reward_smoothing", reward_smoothing, low=0.0, high=1.0)
        )
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
                    raise ValueError("backend_kwargs are for backend='shm'; use sim_config for the simulator")
                sc = get_scenario(scenario or "default")
                if servers is None:
                    if num_servers is not None and scenario is None:
                        servers = default_servers(num_servers)
                    else:
                        servers = sc["servers"]
                specs = as_server_specs(servers)
                if num_servers is not None and num_servers != len(specs):
                    raise ValueError(f"num_servers={num_servers} but {len(specs)} servers were given")
                self.backend: LBBackend = SimBackend(
                    specs,
                    workload if workload is not None else sc["workload"],
                    n_lbs=n_lbs if n_lbs is not None else sc["n_lbs"],
                    lb=0,
                    dispatch=dispatch,
                    background_dispatch=background_dispatch,
                    capacity_events=capacity_events if capacity_events is not None else sc.get("capacity_events", ()),
                    **dict(sim_config or {}),
                )
            else:
                if any(v is not None for v in (scenario, servers, workload, n_lbs, capacity_events, sim_config)):
                    raise ValueError("scenario/servers/workload/n_lbs/capacity_events/sim_config apply to backend='sim'")
                if dispatch != "sed":
                    raise ValueError("backend='shm' dispatches by SED in the data plane; dispatch must be 'sed'")
                from marllb_env.shm_backend import ShmBackend  # lazy: optional data-plane backend

                self.backend = ShmBackend.from_env_kwargs(
                    num_servers=4 if num_servers is None else num_servers,
                    interval_s=self.interval_s,
                    **dict(backend_kwargs or {}),
                )
        else:
            if not isinstance(backend, LBBackend):
                raise TypeError(f"backend must be 'sim', 'shm' or an LBBackend, got {type(backend).__name__}")
            self.backend = backend
        self.num_servers = int(self.backend.n_servers)
        if num_servers is not None and num_servers != self.num_servers:
            raise ValueError(f"num_servers={num_servers} but the backend has {self.num_servers} servers")
        n = self.num_servers
        self.weight_codec = WeightCodec(self.action_mode, levels, (w_min, w_max), n)
        if self.action_mode == "discrete":
            self.action_space = spaces.MultiDiscrete([len(levels)] * n)
        else:
            self.action_space = spaces.Box(-1.0, 1.0, (n,), dtype=np.float32)
        width = (11 if self._cols is None else len(self._cols)) + (3 if self.use_ground_truth else 0)
        shape = (n * width,) if self.flatten_obs else (n, width)
        self.observation_space = spaces.Box(0.0, _F32_MAX, shape, dtype=np.float32)
        self._field_gt = self.reward_field in GT_NAMES
        self._field_idx = GT_NAMES.index(self.reward_field) if self._field_gt else FEATURE_NAMES.index(self.reward_field)
        self._weights = [1.0] * n
        self._x_prev: Sequence[float] | None = None  # previous step's reward input (reward_smoothing)
        # (m, reward input, its Jain index, m.active as a list): the reward and info share one pass over m
        self._x_memo: tuple[Any, list[float], float, list[bool]] = (None, [], 1.0, [])
        self._cap = getattr(self.backend, "configured_capacity", None)

    # ------------------------------------------------------------------ aliases (seed names)
    @property
    def action_type(self) -> str:
        """Alias of :attr:`action_mode` (the seed's name)."""
        return self.action_mode

    @property
    def step_interval(self) -> float:
        """Alias of :attr:`interval_s` (the seed's name)."""
        return self.interval_s

    @property
    def dispatch(self) -> str:
        """The agent LB's dispatch mode (``"sed"`` for backends that do not say)."""
        return getattr(self.backend, "dispatch", "sed")

    # ------------------------------------------------------------------ BackendEnv hooks
    def start_episode(self, options: dict[str, Any] | None) -> LBMeasurement:
        """Equal weights; run ``warmup_s`` first if asked; the first measurement starts at the warm-up's end."""
        n = self.num_servers
        self._weights = [1.0] * n
        self.backend.apply(self._weights)
        if self.warmup_s > 0:
            self.backend.advance(self.warmup_s)
            self.backend.observe()  # start the next interval's counters after the warm-up
        m = self.backend.observe()
        self._x_prev = self._reward_input(m)[0]
        return m

    def decode_action(self, action: Any) -> list[float]:
        """The ``(num_servers,)`` weights (list of floats) of ``action`` (see :class:`WeightCodec`).

        Raises:
            ValueError: wrong shape or dtype, out-of-range or NaN entries.
        """
        w = self._weights = self.weight_codec.decode(action)
        return w

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = super().step(action)
        m = self.last_measurement
        if self.reward_smoothing is not None:  # the next step's reward mixes this step's input in
            self._x_prev = self._reward_input(m)[0]
        return obs, reward, terminated, truncated or m.exhausted, info

    def observation(self, m: LBMeasurement) -> np.ndarray:
        """``m.features`` (selected columns), with ``m.ground_truth`` appended if asked; float32.

        Raises:
            PermanentBackendError: ``use_ground_truth=True`` over a backend that reports none (NaN).
        """
        o = m.features if self._cols is None else m.features[:, self._cols]
        if self.use_ground_truth:
            if np.isnan(m.ground_truth).any():
                raise PermanentBackendError(
                    f"{type(self.backend).__name__} reports no ground truth (NaN); use_ground_truth=True needs it"
                )
            o = np.concatenate((o, m.ground_truth), axis=1)
        if self.flatten_obs:
            o = o.reshape(-1)
        return o

    def _reward_input(self, m: LBMeasurement) -> tuple[list[float], float, list[bool]]:
        """Column ``reward_field`` of ``m`` over the active servers, its Jain index and ``m.active`` as a
        list (memoised for the last ``m``)."""
        memo = self._x_memo
        if memo[0] is m:
            return memo[1], memo[2], memo[3]
        k = self._field_idx
        act = m.active.tolist()
        if self._field_gt:
            x = [row[k] for row, a in zip(m.ground_truth.tolist(), act, strict=True) if a]
            if any(v != v for v in x):
                raise PermanentBackendError(
                    f"reward_field={self.reward_field!r} is ground truth, which {type(self.backend).__name__} "
                    "does not report (NaN); use a feature such as 'flow_duration_avg_decay'"
                )
        else:
            x = m.features[:, k].tolist()
            if False in act:
                x = [v for v, a in zip(x, act, strict=True) if a]
        jx = jain(x)
        self._x_memo = (m, x, jx, act)
        return x, jx, act

    def reward(self, m: LBMeasurement) -> float:
        """``reward_type`` of column ``reward_field`` over the active servers (smoothed if asked)."""
        x, jx, _ = self._reward_input(m)
        if self.reward_smoothing is None and self._reward_fn is jain:
            return jx
        return float(self._reward_fn(smoothed(self._x_prev, x, self.reward_smoothing)))

    def info(self, m: LBMeasurement) -> dict[str, Any]:
        gt = m.ground_truth
        x, jx, act = self._reward_input(m)
        su = sq = 0.0
        nq = 0.0
        for row, a in zip(gt.tolist(), act, strict=True):
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
            "weights": np.array(self._weights),
            "active_mask": m.active,
            "ground_truth": gt,
            "dispatch": self.dispatch,
            "weight_codec": self.weight_codec,
        }
        if self._cap is not None:
            info["configured_capacity"] = self._cap.copy()
        if self._renderer is not None:  # the renderer keeps its own history of what the env hands it
            self._renderer.record(m, info["weights"], self._cap)
        return info

    # ------------------------------------------------------------------ episode summary, rendering
    def episode_metrics(self) -> dict[str, float]:
        """FCT percentiles, completions and rejects of the agent LB's flows so far this episode.

        Returns:
            ``fct_mean_s``, ``fct_p50_s``, ``fct_p90_s``, ``fct_p99_s`` (s; NaN before the first
            completion), ``flows_completed``, ``flows_rejected``, ``reject_rate``
            (see :func:`marllb_env.backend.fct_summary`).

        Raises:
            NotImplementedError: the backend keeps no per-flow records (the shm data plane).
        """
        rec = getattr(self.backend, "flow_records", None)
        if rec is None:
            raise NotImplementedError(f"{type(self.backend).__name__} keeps no per-flow records")
        return fct_summary(rec(), lb=getattr(self.backend, "lb", None))

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        if self.render_mode == "rgb_array":
            if self.spec is not None:
                self._renderer.title = self.spec.id
            return self._renderer.frame()
        m = self.last_measurement
        if m is None:
            return None
        lines = [f"t={m.time_s:.2f}s dispatch={self.dispatch}"]
        lines.append(" srv active weight n_on fd_avg_decay cpu_util busy queue")
        for j in range(self.num_servers):
            f, g = m.features[j], m.ground_truth[j]
            lines.append(
                f"{j:4d} {bool(m.active[j])!s:6} {self._weights[j]:6.2f} {int(f[0]):4d} "
                f"{f[9]:12.4f} {g[0]:8.2f} {int(g[1]):4d} {int(g[2]):5d}"
            )
        return "\n".join(lines)


class EpisodeMetricsInfo(gym.Wrapper, RecordConstructorArgs):
    """Adds ``info["episode_metrics"]`` (:meth:`LoadBalanceEnv.episode_metrics`) to the last step of an episode.

    Registered as an additional wrapper of the marllb ids, outside Gymnasium's ``TimeLimit``, so
    the FCT percentiles over the whole episode are computed once, at the step that ends it
    (terminated, truncated by ``TimeLimit`` or by the end of a trace), for the evaluation
    harness (:mod:`lwmecps_gym.core.evaluation`). Backends without per-flow records (shm) get no
    ``episode_metrics``.
    """

    def __init__(self, env: gym.Env):
        RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if terminated or truncated:
            try:
                info["episode_metrics"] = self.env.unwrapped.episode_metrics()
            except NotImplementedError:  # the data plane keeps no per-flow records
                pass
        return obs, reward, terminated, truncated, info


__all__ = ["EpisodeMetricsInfo", "LoadBalanceEnv", "MAX_EPISODE_STEPS", "WeightCodec", "REWARD_FIELDS",
           "REWARD_FUNCTIONS"]
