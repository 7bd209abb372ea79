"""Multi-agent MARLLB: several load balancers share the servers (PettingZoo ``ParallelEnv``).

Use ``marllb_env.parallel_env(**kwargs)`` or :func:`parallel_env` here. The PettingZoo
import happens when this module is imported, not on ``import marllb_env``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded
from gymnasium.utils import EzPickle

from lwmecps_gym.core.backend import PermanentBackendError
from lwmecps_gym.core.optional import extra_hint
from lwmecps_gym.core.policy import BasePolicy
from lwmecps_gym.core.seeding import draw_seed
from lwmecps_gym.core.validation import check_choice, check_float, check_int, check_seed, resolve_alias, unset
from marllb_env.backend import MultiLBBackend, MultiLBMeasurement, MultiSimBackend
from marllb_env.rewards import REWARD_FUNCTIONS, get_reward_function, jain
from marllb_env.sim import FEATURE_NAMES, as_server_specs

with extra_hint("marllb_env's multi-agent env (parallel_env)"):  # names the 'marl' extra if pettingzoo is missing
    from pettingzoo import ParallelEnv

#: Named scenarios: servers (cpus each) and number of LBs.
SCENARIOS: dict[str, dict[str, Any]] = {
    # MARLLB paper, moderate scale (config/cluster/conf01-0.json: vCPUs [1,1,1,1,2,2,2])
    "moderate": {"n_lbs": 2, "servers": [1, 1, 1, 1, 2, 2, 2]},
    # MARLLB paper, large scale: 6 LBs, 12 x 4-CPU + 12 x 8-CPU servers
    "large": {"n_lbs": 6, "servers": [4] * 12 + [8] * 12},
    # the seed's "4 agents x 4 servers" (heterogeneous 1,1,2,2 CPUs)
    "seed_4x4": {"n_lbs": 4, "servers": [1, 1, 2, 2]},
}

#: Steps per episode (60 s at 0.25 s, the paper's moderate-scale episode): the parallel env's own
#: truncation (PettingZoo has no TimeLimit) and, times ``interval_s``, the bound of its seconds features.
MAX_STEPS = 240

#: the single-agent env's reward functions (:mod:`marllb_env.rewards`), one place for the formulas
REWARD_TYPES = tuple(REWARD_FUNCTIONS)
DISPATCH = ("sed", "sed2", "lsq", "lsq2", "wcmp", "ecmp", "maglev", "random", "gsq", "lwl", "srt")
N_FEATURES = len(FEATURE_NAMES)  # 11


class MultiLoadBalanceEnv(ParallelEnv, EzPickle):
    """## Description

    ``M`` load balancers (agents ``lb_0 .. lb_{M-1}``) in front of ``N`` shared heterogeneous
    servers, as MARLLB (Yao et al., CIKM'22). The edge router spreads flows over the LBs by
    ECMP (uniform hash); each LB dispatches its new flows by SED, argmin_j (n_j + 1) / w_j,
    with **its own** flow counts ``n_j`` and the weights ``w`` its agent sets every
    ``interval_s`` seconds of simulated time. Each LB sees only the flows it dispatched:
    its local ``n_flow_on`` and its own reservoirs of FCT and flow-duration samples. The
    simulator is :class:`marllb_env.sim.FlowSimulator` (processor-sharing servers with
    workers and a backlog).

    ``step`` follows the single-agent template over one backend (``self.backend``, a
    :class:`marllb_env.backend.MultiLBBackend`: :class:`marllb_env.backend.MultiSimBackend` or
    :class:`marllb_env.shm_backend.ShmLBGroup`; ``self.backend_name`` is ``"sim"`` or ``"shm"``):
    actions -> weights -> ``backend.apply`` -> ``backend.advance(interval_s)`` ->
    ``m = backend.observe()``; observations, reward, metrics and ``state()`` are functions of ``m``.

    ## Action Space

    Per agent ``MultiDiscrete([K] * N)``: index into ``weight_levels`` for every server
    (default levels ``[1.0, 1.5, 2.0]``, MARLLB's code; the paper's ``1.0..2.0`` step 0.2 via
    ``weight_levels``). All agents have the same space.

    ## Observation Space

    Per agent ``Box(0, high, (N * 11,), float32)``: the LB's ``(N, 11)`` MARLLB feature
    matrix flattened row by row (server-major):

    | index (per server j, offset 11 j) | name | unit | min | max |
    |---|---|---|---|---|
    | 0 | ``n_flow_on`` (this LB's flows on j) | flows | 0 | n_workers + backlog of j |
    | 1-5 | ``fct_{avg,90,std,avg_decay,90_decay}`` | s | 0 | episode length in s |
    | 6-10 | ``flow_duration_{avg,90,std,avg_decay,90_decay}`` | s | 0 | episode length in s |

    Reservoir statistics cannot exceed the elapsed simulated time, so the bounds are exact
    (simulator). Over ``backend="shm"`` the seconds bound is ``max_age_s`` (default 3600).

    ``state()`` / ``state_space``: the global view for centralised training, ``Box`` of
    length ``M * N * 11 + 2 N``: every LB's features, then per server the true flows in
    system (0..n_workers + backlog) and the CPU utilisation over the last step (0..1).

    ## Rewards

    Cooperative: every agent gets the same reward, MARLLB's QMIX reward: the per-server
    ``reward_field`` (default ``flow_duration_avg_decay``) **averaged over the LBs**, then a
    fairness function over the servers: ``jain`` (default, in [1/N, 1]), ``product`` (the
    paper's F, in [0, 1)), ``var`` (-variance), ``max`` (-max), or any other name of
    :data:`marllb_env.rewards.REWARD_FUNCTIONS` (the same functions as the single-agent env).

    ## Starting State

    Empty servers and reservoirs at t = 0, all weights 1.

    ## Episode End

    Truncation after ``max_steps`` steps (default :data:`MAX_STEPS` = 240; all agents at once),
    counted by the env because PettingZoo has no ``TimeLimit``; termination when a finite
    workload (trace) is exhausted. Agents leave ``agents`` when done.

    ## Info

    Every agent's info holds ``metrics`` (per step: ``fct_mean_s`` of flows completed in the
    step, ``completed``, ``rejects``, ``jain_util`` = Jain's index of per-server CPU
    utilisation over the step, ``utilization``; NaN over ``shm``, whose data plane carries
    features only) and, at the end, ``episode_metrics``
    (``fct_mean_s``, ``fct_p90_s``, ``fct_p99_s`` over all flows completed in the episode,
    ``rejects``, ``jain_util``).

    ## Arguments

    | Parameter | Type | Default | Description |
    |---|---|---|---|
    | scenario | str or None | ``"moderate"`` | ``moderate`` (2 LBs, 7 servers 1,1,1,1,2,2,2 CPUs), ``large`` (6 LBs, 12 x 4 + 12 x 8 CPUs), ``seed_4x4`` (4 LBs, 4 servers 1,1,2,2) |
    | n_lbs | int | from scenario | number of load balancers (agents) |
    | servers | list | from scenario | server specs: cpus, or dicts of ``ServerSpec`` fields |
    | workload | dict/str | Poisson, exp 0.5 CPU-s, rho 0.9 | see ``marllb_env.traces.make_workload`` |
    | interval_s | float | 0.25 | control period, simulated seconds per step; alias ``step_interval`` (seed) |
    | max_steps | int | 240 (:data:`MAX_STEPS`) | steps per episode (60 s, the paper's moderate episode) |
    | weight_levels | list[float] | [1.0, 1.5, 2.0] | weight of each action index |
    | reward_field | str | ``flow_duration_avg_decay`` | feature the reward is computed on |
    | reward_type | str | ``jain`` | fairness function |
    | dispatch | str | ``sed`` | LB dispatch mode; others serve the baselines (weights ignored unless weighted) |
    | backend | str | ``sim`` | ``sim`` (flow simulator) or ``shm``: one MARLLB shared-memory region per LB, driven by the data-plane emulator (``marllb_env.shm_backend.ShmLBGroup``) or, in principle, one VPP instance per LB; over ``shm`` there is no ``state()`` and no FCT metrics |
    | backend_kwargs | dict | None | ``shm`` only: ``speed``, ``publish_interval``, ``frame_timeout``, ``empty_slots``, ``max_age_s`` (bound of the seconds features, default 3600) |

    ## Example

    >>> from marllb_env import parallel_env
    >>> env = parallel_env(scenario="seed_4x4", max_steps=3)
    >>> obs, infos = env.reset(seed=0)
    >>> sorted(obs), obs["lb_0"].shape
    (['lb_0', 'lb_1', 'lb_2', 'lb_3'], (44,))
    >>> while env.agents:
    ...     obs, rewards, terms, truncs, infos = env.step({a: env.action_space(a).sample() for a in env.agents})
    >>> truncs["lb_0"], infos["lb_0"]["step"], env.state().shape
    (True, 3, (184,))

    ## Version History

    * v0: initial version.
    """

    metadata = {"name": "marllb_multi_lb_v0", "render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        scenario: str | None = "moderate",
        *,
        n_lbs: int | None = None,
        servers: Sequence[Any] | None = None,
        workload: Any = None,
        interval_s: float = unset(),
        max_steps: int = MAX_STEPS,
        weight_levels: Sequence[float] = (1.0, 1.5, 2.0),
        reward_field: str = "flow_duration_avg_decay",
        reward_type: str = "jain",
        dispatch: str = "sed",
        backend: str = "sim",
        backend_kwargs: dict[str, Any] | None = None,
        render_mode: str | None = None,
        step_interval: float = unset(),
    ):
        interval_s = resolve_alias("interval_s", interval_s, "step_interval", step_interval, 0.25)
        # pickles as its constructor arguments (the simulator holds generators), as PettingZoo envs do;
        # SuperSuit's concat_vec_envs_v1 copies envs by pickling
        EzPickle.__init__(
            self, scenario, n_lbs=n_lbs, servers=servers, workload=workload, interval_s=interval_s,
            max_steps=max_steps, weight_levels=weight_levels, reward_field=reward_field,
            reward_type=reward_type, dispatch=dispatch, backend=backend, backend_kwargs=backend_kwargs,
            render_mode=render_mode,
        )
        base: dict[str, Any] = {}
        if scenario is not None:
            base = dict(SCENARIOS[check_choice("scenario", scenario, tuple(SCENARIOS))])
        if n_lbs is not None:
            base["n_lbs"] = n_lbs
        if servers is not None:
            base["servers"] = list(servers)
        if "n_lbs" not in base or "servers" not in base:
            raise ValueError("give a scenario, or both n_lbs and servers")
        self.n_lbs = check_int("n_lbs", base["n_lbs"], low=1)
        self.server_specs = as_server_specs(base["servers"])
        self.n_servers = len(self.server_specs)
        self.interval_s = check_float(
            "interval_s" if step_interval is unset() else "step_interval", interval_s, low=0.0, low_open=True
        )
        self.max_steps = check_int("max_steps", max_steps, low=1)
        levels = np.asarray(weight_levels, dtype=np.float64)
        if levels.ndim != 1 or levels.size < 1 or not np.all(np.isfinite(levels)) or np.any(levels <= 0):
            raise ValueError(f"weight_levels must be a non-empty list of positive finite floats, got {weight_levels!r}")
        self.weight_levels = levels
        self.reward_field = check_choice("reward_field", reward_field, FEATURE_NAMES)
        self._field_idx = FEATURE_NAMES.index(self.reward_field)
        self.reward_type = check_choice("reward_type", reward_type, REWARD_TYPES)
        self._reward_fn = get_reward_function(self.reward_type)
        self.dispatch = check_choice("dispatch", dispatch, DISPATCH)
        self.backend_name = check_choice("backend", backend, ("sim", "shm"))
        if self.backend_name == "shm" and self.dispatch != "sed":
            raise ValueError("backend='shm' dispatches by SED in the (emulated) data plane; dispatch must be 'sed'")
        if backend_kwargs and self.backend_name != "shm":
            raise ValueError("backend_kwargs apply to backend='shm'")
        self.render_mode = check_choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))

        self.possible_agents = [f"lb_{i}" for i in range(self.n_lbs)]
        self.agents: list[str] = []
        n, m = self.n_servers, self.n_lbs
        cap = np.array([s.n_workers + s.backlog for s in self.server_specs], dtype=np.float32)
        bkw = dict(backend_kwargs or {})
        # seconds features are bounded by the data-plane time since the episode's start: exactly
        # max_steps * interval_s on the simulator; over shm the data plane runs on in real time
        # while the agent computes, so the bound is max_age_s (default 1 h of data-plane time)
        t_max = np.float32(self.max_steps * self.interval_s)
        if self.backend_name == "shm":
            t_max = np.float32(check_float("max_age_s", bkw.pop("max_age_s", 3600.0), low=0.0, low_open=True))
        high = np.empty((n, N_FEATURES), dtype=np.float32)
        high[:, 0] = cap
        high[:, 1:] = t_max
        self._obs_high = high.reshape(-1)
        self._obs_high_tol = self._obs_high * (1.0 + 1e-6)
        self._check_bounds = self.backend_name != "sim"
        self._levels = levels.tolist()
        self._level_of = dict(enumerate(self._levels))  # action index -> weight
        self._act_shape = (n,)
        self._obs_space = spaces.Box(0.0, self._obs_high, dtype=np.float32)
        self._act_space = spaces.MultiDiscrete([levels.size] * n)
        self.state_space = spaces.Box(
            0.0, np.concatenate([np.tile(self._obs_high, m), cap, np.ones(n, np.float32)]), dtype=np.float32
        )
        self.backend: MultiLBBackend
        if self.backend_name == "sim":
            self.backend = MultiSimBackend(self.server_specs, workload, n_lbs=m, dispatch=self.dispatch)
        else:
            from dataclasses import asdict

            from marllb_env.shm_backend import ShmLBGroup  # lazy: the data-plane path

            self.backend = ShmLBGroup(
                m, n, self.interval_s, servers=[asdict(sp) for sp in self.server_specs], workload=workload, **bkw,
            )
        self._t = 0
        self._m: MultiLBMeasurement | None = None
        self._renderer = None
        if self.render_mode == "rgb_array":
            from marllb_env.rendering import MultiLBRenderer

            self._renderer = MultiLBRenderer(m, [s.cpus for s in self.server_specs])

    @property
    def step_interval(self) -> float:
        """Alias of :attr:`interval_s` (the seed's name)."""
        return self.interval_s

    @property
    def last_measurement(self) -> MultiLBMeasurement | None:
        """The measurement behind the last observations (``None`` before ``reset``)."""
        return self._m

    # PettingZoo asks for the same space object on every call: these return pre-built spaces
    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_space

    def action_space(self, agent: str) -> spaces.MultiDiscrete:
        return self._act_space

    # ------------------------------------------------------------------ functions of the measurement
    def _features(self, m: MultiLBMeasurement) -> np.ndarray:
        """``m.features`` checked against the observation bounds (beyond float32 rounding: a broken data plane).

        Only the data plane's features are checked: the simulator's are within the bounds by
        construction (counts <= workers + backlog; seconds <= the episode's simulated time).
        """
        f = m.features
        if self._check_bounds and np.any(f.reshape(self.n_lbs, -1) > self._obs_high_tol):
            raise PermanentBackendError(
                "features exceed the observation bounds (flows > workers + backlog, or seconds "
                "features > max_age_s): raise backend_kwargs['max_age_s'] or check the data plane"
            )
        return f

    def _obs(self, m: MultiLBMeasurement) -> dict[str, np.ndarray]:
        # float32 rows within the bounds; every agent gets its row of one fresh array (the active
        # agents are all agents: they leave together); dtype=float32 rounds before the minimum,
        # as astype(float32) would
        f = np.minimum(self._features(m).reshape(self.n_lbs, -1), self._obs_high, dtype=np.float32)
        return dict(zip(self.agents, f, strict=False))  # n_lbs rows (strict=False: ~1 us cheaper over array rows)

    def _fairness(self, fn: Any, x: list[float]) -> float:
        """``fn`` (a :data:`marllb_env.rewards.REWARD_FUNCTIONS` entry) of ``x``, a non-empty list of floats."""
        if not x:
            raise ValueError("fairness needs at least one value")
        return float(fn(x))

    def _reward(self, m: MultiLBMeasurement, act: list[bool]) -> float:
        # the field averaged over LBs (MARLLB QMIX), over the active servers (``act``, a list);
        # Python floats: the arrays are tiny, and numpy's mean over axis 0 adds the LBs in this same order
        n = self.n_lbs
        x = [sum(c) / n for c in m.features[:, :, self._field_idx].T.tolist()]
        if False in act:
            x = [v for v, a in zip(x, act, strict=True) if a]
        return self._fairness(self._reward_fn, x)

    def _metrics(self, m: MultiLBMeasurement, act: list[bool]) -> dict[str, float]:
        util = m.cpu_util.tolist()
        if False in act:
            util = [u for u, a in zip(util, act, strict=True) if a]
        completed = m.completed
        return {
            "fct_mean_s": m.fct_sum_s / completed if completed else 0.0,
            "completed": float(completed),
            "rejects": float(m.rejects),
            "jain_util": self._fairness(jain, [u if u > 0.0 else 0.0 for u in util]),
            # numpy's float64 mean is a plain left-to-right sum below 8 values (pairwise beyond)
            "utilization": sum(util) / len(util) if len(util) < 8 else float(np.mean(util)),
        }

    def state(self) -> np.ndarray:
        """Global state ``(M * N * 11 + 2 N,)`` float32 (see the class docstring).

        Raises:
            NotImplementedError: with ``backend="shm"``: the data plane does not expose the
                servers' ground truth (train centrally on the simulator, execute over shm).
        """
        m = self._m
        if m is None:
            raise ResetNeeded("state() called before reset()")
        if np.isnan(m.flows_in_system).any():
            raise NotImplementedError("state() needs the servers' ground truth; backend='shm' has observations only")
        s = np.concatenate(
            [m.features.reshape(-1), m.flows_in_system, np.clip(m.cpu_util, 0.0, 1.0)]
        ).astype(np.float32)
        return np.minimum(s, self.state_space.high)

    def _weights(self, action: Any, agent: str) -> list[float]:
        """Agent ``agent``'s weights (``n_servers`` floats, a list: the simulator's cheap path) for ``action``.

        Raises:
            ValueError: not an integer array of shape ``(n_servers,)``, or an index outside ``[0, K)``.
        """
        a = action if type(action) is np.ndarray else np.asarray(action)
        if a.shape != self._act_shape or a.dtype.kind not in "iu":
            raise ValueError(
                f"action of {agent} must be an integer array of shape ({self.n_servers},), got {a.dtype} {a.shape}"
            )
        al = a.tolist()
        try:  # a dict, not the list of levels: a negative index is a KeyError, not the level from the end
            return [self._level_of[i] for i in al]
        except KeyError:
            raise ValueError(f"action of {agent} has indices outside [0, {len(self._levels)}): {al}") from None

    # ------------------------------------------------------------------ API
    def reset(self, seed: int | None = None, options: dict | None = None):
        check_seed("seed", seed)
        if seed is not None or not hasattr(self, "_rng"):
            self._rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self._t = 0
        self._jain_sum = 0.0
        self._rejects_total = 0.0
        self.backend.reset(seed=draw_seed(self._rng))
        m = self._m = self.backend.observe()
        self._features(m)
        self._record_frame(None, m, None)
        return self._obs(m), {a: {"step": 0} for a in self.agents}

    def step(self, actions: dict[str, Any]):
        agents = self.agents
        if not agents:
            raise RuntimeError("step() called on a finished episode; call reset()")
        if type(actions) is not dict and not isinstance(actions, Mapping):
            raise TypeError(f"actions must be a dict agent -> action for agents {agents}, "
                            f"got {type(actions).__name__}")
        if actions.keys() != set(agents):
            missing = [a for a in agents if a not in actions]
            if missing:
                raise ValueError(f"actions missing for agents {missing}")
            unknown = [a for a in actions if a not in agents]
            raise ValueError(f"actions given for unknown agents {unknown}; the agents are {agents}")
        weights = [self._weights(actions[a], a) for a in agents]  # agents leave together: all of them
        backend = self.backend
        backend.apply(weights)
        backend.advance(self.interval_s)
        m = self._m = backend.observe()
        self._t += 1
        act = m.active.tolist()
        reward = self._reward(m, act)
        metrics = self._metrics(m, act)
        self._jain_sum += metrics["jain_util"]
        self._rejects_total += metrics["rejects"]
        terminated = bool(m.workload_ended)
        truncated = self._t >= self.max_steps and not terminated
        info: dict[str, Any] = {"step": self._t, "time_s": m.time_s, "metrics": metrics}
        if terminated or truncated:
            info["episode_metrics"] = self.episode_metrics()
        obs = self._obs(m)
        if self._renderer is not None:
            self._record_frame(np.array(weights), m, metrics)
        rewards = dict.fromkeys(agents, reward)
        terms = dict.fromkeys(agents, terminated)
        truncs = dict.fromkeys(agents, truncated)
        infos = {a: {**info, "metrics": dict(metrics)} for a in agents}
        if terminated or truncated:
            self.agents = []
        return obs, rewards, terms, truncs, infos

    def episode_metrics(self) -> dict[str, float]:
        """FCT statistics over every flow completed so far in the episode, rejects, mean Jain
        (simulator only: the shared memory carries no per-flow records, so ``{}`` over shm)."""
        rec = getattr(self.backend, "flow_records", None)
        if rec is None:
            return {}
        fct = rec().fct_s
        return {
            "fct_mean_s": float(fct.mean()) if fct.size else 0.0,
            "fct_p90_s": float(np.percentile(fct, 90)) if fct.size else 0.0,
            "fct_p99_s": float(np.percentile(fct, 99)) if fct.size else 0.0,
            "rejects": self._rejects_total,
            "jain_util": self._jain_sum / max(1, self._t),
        }

    def _record_frame(self, weights: np.ndarray | None, m: MultiLBMeasurement, metrics: dict[str, float] | None) -> None:
        """Hand this interval to the ``rgb_array`` renderer (no-op in other render modes)."""
        if self._renderer is None:
            return
        in_system = float(m.flows_in_system.sum())  # NaN over shm: the data plane has no ground truth
        self._renderer.record(m.time_s, weights, m.features[:, :, 0], m.cpu_util, metrics, in_system)

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        if self.render_mode == "rgb_array":
            return self._renderer.frame()
        m = self._m
        if m is None:
            return None
        lines = [f"t={m.time_s:.2f}s step={self._t} ({self.backend_name}; nan: not measured by the backend)"]
        for j in range(self.n_servers):
            local = " ".join(f"{int(m.features[i, j, 0]):3d}" for i in range(self.n_lbs))
            lines.append(
                f"server {j:2d} cpus={self.server_specs[j].cpus:g} in_system={m.flows_in_system[j]:3.0f} "
                f"util={m.cpu_util[j]:.2f} local n_flow_on per LB: {local}"
            )
        return "\n".join(lines)

    def close(self) -> None:
        """Release the backend (over shm: stop the data-plane emulator and remove its regions)."""
        self.backend.close()


def parallel_env(**kwargs: Any) -> MultiLoadBalanceEnv:
    """PettingZoo-style constructor: ``parallel_env(scenario="moderate", ...)``."""
    return MultiLoadBalanceEnv(**kwargs)


class JointEnv(gym.Env):
    """The multi-agent env seen as one Gymnasium env (for the shared evaluation harness and
    centralised baselines): observation = all agents' observations stacked, ``(M * N * 11,)``;
    action = all agents' actions concatenated, ``MultiDiscrete([K] * (M * N))``; reward = the
    cooperative reward; ``info`` = agent ``lb_0``'s info (metrics are global).

    Args:
        env: a :class:`MultiLoadBalanceEnv` (or ``None`` to build one from ``**kwargs``).
    """

    metadata = {"render_modes": []}

    def __init__(self, env: MultiLoadBalanceEnv | None = None, **kwargs: Any):
        self.ma = env if env is not None else MultiLoadBalanceEnv(**kwargs)
        first = self.ma.possible_agents[0]
        m, o = self.ma.n_lbs, self.ma.observation_space(first)
        self.observation_space = spaces.Box(0.0, np.tile(o.high, m), dtype=np.float32)
        self.action_space = spaces.MultiDiscrete(np.tile(self.ma.action_space(first).nvec, m))

    def _join(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([obs[a] for a in self.ma.possible_agents])

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        obs, infos = self.ma.reset(seed=seed, options=options)
        return self._join(obs), infos[self.ma.possible_agents[0]]

    def step(self, action: Any):
        a = np.asarray(action).reshape(self.ma.n_lbs, self.ma.n_servers)
        obs, rew, term, trunc, infos = self.ma.step({ag: a[i] for i, ag in enumerate(self.ma.possible_agents)})
        first = self.ma.possible_agents[0]
        return self._join(obs), float(rew[first]), bool(term[first]), bool(trunc[first]), infos[first]


class StaticWeightsPolicy(BasePolicy):
    """Every agent sets the weight level nearest to each server's capacity relative to the
    smallest one (capacity-proportional SED/WCMP weights, as MARLLB's ``meta.weights``).

    For :class:`JointEnv`; pair with ``dispatch="sed"`` (SED), ``"wcmp"``, ``"gsq"``; the
    weights are ignored by ``lsq`` and ``ecmp``.
    """

    def __init__(self, env: MultiLoadBalanceEnv, name: str = "static"):
        caps = np.array([s.capacity for s in env.server_specs])
        ratio = caps / caps.min()
        idx = np.abs(env.weight_levels[None, :] - ratio[:, None]).argmin(axis=1)
        self.action = np.tile(idx, env.n_lbs).astype(np.int64)
        self.name = name

    def act(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        return self.action.copy()


#: Heuristic baselines for the multi-LB table: name -> dispatch mode of every LB, all with
#: capacity-proportional static weights (:class:`StaticWeightsPolicy`). GSQ is an oracle.
BASELINES: dict[str, str] = {"SED": "sed", "LSQ": "lsq", "WCMP": "wcmp", "ECMP": "ecmp", "GSQ (oracle)": "gsq"}


def evaluate_baselines(seeds: Sequence[int], names: Sequence[str] | None = None, **env_kwargs: Any) -> list:
    """Run the heuristic :data:`BASELINES` through the shared harness on :class:`JointEnv`.

    Args:
        seeds: reset seeds (one episode each; the same flows for every policy).
        names: subset of :data:`BASELINES` (default all).
        **env_kwargs: :class:`MultiLoadBalanceEnv` arguments (``dispatch`` is set per baseline).

    Returns:
        list of :class:`lwmecps_gym.core.evaluation.EvaluationResult`, one per baseline.
    """
    from lwmecps_gym.core.evaluation import evaluate

    results = []
    for name in names or list(BASELINES):
        mode = BASELINES[check_choice("baseline", name, tuple(BASELINES))]
        kw = {**env_kwargs, "dispatch": mode}
        policy = StaticWeightsPolicy(MultiLoadBalanceEnv(**kw), name=name)
        results.append(evaluate(lambda kw=kw: JointEnv(**kw), policy, seeds=list(seeds), name=name))
    return results
