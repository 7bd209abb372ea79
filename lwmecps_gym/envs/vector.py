"""Native batched vector env of ``lwmecps_gym/Scaling-v0`` (``lwmecps-v3``): :class:`ScalingVectorEnv`.

``gymnasium.make_vec("lwmecps_gym/Scaling-v0", num_envs=N, vectorization_mode="vector_entry_point")``
builds it: ``N`` simulated clusters stepped together by the simulator's one kernel
(:mod:`lwmecps_gym.backends.sim.batched`, compiled with numba) over arrays with the env axis first.
Sub-env ``i`` is the single env (``gymnasium.make(id, **kwargs)``, ``backend="sim"``) bit for bit:
reset with ``seed + i`` and given the same actions, it returns the same observations, rewards,
flags and info values (tested in ``tests/lwmecps/test_vector.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from lwmecps_gym.backends.sim import SimBackend
from lwmecps_gym.backends.sim.batched import (
    DELAY_RING,
    ScalingState,
    reset_clusters,
    scaling_features,
    step_clusters,
)
from lwmecps_gym.backends.sim.workload import Windows, draw_windows
from lwmecps_gym.core.compiled import JIT_ENABLED, grown, jit
from lwmecps_gym.core.seeding import draw_seed
from lwmecps_gym.core.validation import check_int, check_seed
from lwmecps_gym.envs.scaling import LWMECPSEnv3

#: the per-step info keys (besides ``metrics``), all ``(num_envs, n)`` arrays but ``time_of_day_s`` ``(num_envs,)``
INFO_KEYS = ("demand_rps", "replicas_ready", "replicas_desired", "latency_ms", "load", "time_of_day_s")
#: sub-envs whose episodes :meth:`ScalingVectorEnv.reset` draws together (their arrays stay in cache)
RESET_BLOCK = 16
#: ``info["metrics"]`` keys, each ``float64 (num_envs,)``
METRIC_KEYS = ("latency_ms", "replicas", "replicas_ready", "demand_rps", "failed_rps", "imbalance",
               "sla_violation_rate")


class ScalingVectorEnv(VectorEnv):
    """``num_envs`` copies of :class:`~lwmecps_gym.envs.scaling.LWMECPSEnv3` (simulator) in one batched env.

    Args:
        num_envs: number of sub-envs ``N`` (int >= 1).
        max_episode_steps: truncation after this many steps of a sub-env's episode (``None``: never);
            ``gymnasium.make_vec`` passes the registered 240.
        autoreset_mode: ``"NextStep"`` (Gymnasium's default: the step after an episode's end
            returns the reset observation, reward 0, no flags, and ignores that sub-env's action) or
            ``"SameStep"`` (the ending step returns the reset observation, with the final one in
            ``info["final_obs"]`` and the final info in ``info["final_info"]``; what
            :func:`lwmecps_gym.core.vector.to_sb3_vecenv` needs), or the ``AutoresetMode``.
        **kwargs: the single env's arguments (:class:`~lwmecps_gym.envs.scaling.LWMECPSEnv3`), with
            ``backend="sim"`` (the default; real clusters are not batched), ``obs_mode="flat"`` and no
            ``render_mode``.

    Spaces: ``single_observation_space`` / ``single_action_space`` are the single env's
    (``Box(float32, (5n + 2,))``; ``MultiDiscrete([max_replicas + 1] * n)`` or ``Box(-1, 1, (n,))``);
    ``observation_space`` / ``action_space`` are them batched: actions ``(N, n)``, observations
    ``float32 (N, 5n + 2)``.

    ``step`` returns ``(obs float32 (N, 5n + 2), rewards float64 (N,), terminated bool (N,),
    truncated bool (N,), info)``; ``info`` is Gymnasium's dict of arrays with ``_key`` masks: the
    single env's step info batched (``demand_rps``, ``latency_ms``, ``load`` float64 ``(N, n)``;
    ``replicas_ready``, ``replicas_desired`` int64 ``(N, n)``; ``time_of_day_s`` float64 ``(N,)``;
    ``metrics``: a dict of float64 ``(N,)`` arrays). Reset info holds the same keys; the single env's
    static reset info (scenario, names, bounds, weights) are attributes of this env
    (:attr:`deployments`, :attr:`node_names`, :attr:`max_replicas`, ...).

    Seeding (as Gymnasium's ``SyncVectorEnv``): ``reset(seed=s)`` seeds sub-env ``i`` with ``s + i``
    (a list gives one seed per sub-env), ``seed=None`` continues each sub-env's generator; an
    autoreset draws the next episode from the sub-env's own generator, as the single env's
    ``reset()`` does.

    Raises:
        ValueError / TypeError: bad arguments, naming them; wrongly shaped or out-of-range ``actions``.
        gymnasium.error.ResetNeeded: ``step`` before ``reset``.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int = 1, *, max_episode_steps: int | None = None,
                 autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP, **kwargs: Any):
        self.num_envs = N = check_int("num_envs", num_envs, low=1)
        if max_episode_steps is not None:
            max_episode_steps = check_int("max_episode_steps", max_episode_steps, low=1)
        self.max_episode_steps = max_episode_steps
        try:
            mode = autoreset_mode if isinstance(autoreset_mode, AutoresetMode) else AutoresetMode(autoreset_mode)
        except ValueError:
            raise ValueError(f"autoreset_mode must be one of {[m.value for m in AutoresetMode if m.value != 'Disabled']}, "
                             f"got {autoreset_mode!r}") from None
        if mode is AutoresetMode.DISABLED:
            raise ValueError("autoreset_mode='Disabled' is not supported; use 'NextStep' or 'SameStep'")
        self.autoreset_mode = mode
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        for name, allowed in (("backend", "sim"), ("obs_mode", "flat"), ("render_mode", None)):
            if name in kwargs and kwargs[name] != allowed:
                raise ValueError(f"the native vector env needs {name}={allowed!r}, got {kwargs[name]!r}; "
                                 "gymnasium.make_vec(..., vectorization_mode='sync') vectorizes any single env")
        #: the single env these sub-envs copy (its arguments checked, its constants read)
        self.template = env = LWMECPSEnv3(**kwargs)
        be = env.backend
        if not isinstance(be, SimBackend):  # pragma: no cover - guarded above
            raise ValueError("the native vector env needs backend='sim'")
        self._backend = be
        self._model = be.model
        self.render_mode = None
        self.single_observation_space = env.observation_space
        self.single_action_space = env.action_space
        self.observation_space = batch_space(env.observation_space, N)
        self.action_space = batch_space(env.action_space, N)
        self.n = n = env.n
        self.max_replicas = env.max_replicas
        self.deployments = list(env.deployments)
        self.node_names = list(env.node_names)
        self.interval_s = env.interval_s
        self.sla_ms = env.sla_ms
        self.service_rate_rps = env.mu
        self._discrete = env.action_mode == "discrete"
        self._consts, self._scale, self._low, self._high = env.feature_constants
        self._initial = be.cfg.initial_replicas
        self._st = ScalingState(N, n)
        self._rngs: list[np.random.Generator | None] = [None] * N
        self._streams = np.zeros((N, 4), dtype=np.uint64)  # the sub-envs' workload streams (PCG64 states)
        self._carries: list[Any] = [None] * N  # their demand-event models' state
        H = be.cfg.horizon_windows
        # windows drawn at reset: an episode truncated sooner never reads more (without demand events the
        # later windows, drawn if ever needed, are the same either way: SimBackend.draw_episodes)
        self._first_chunk = H if (max_episode_steps is None or be.cfg.demand_events is not None) \
            else min(H, max_episode_steps)
        n_nodes = len(self.node_names)
        # the sub-envs' workloads, window first (sub-envs step in lockstep: one contiguous slab per step)
        self._rate = np.zeros((H, N, n))
        self._lam = np.zeros((H, N, n))
        self._rtt = np.zeros((H, N, n))
        self._rtt_all = None if be.pinned else np.zeros((H, N, n_nodes))
        self._start_s = np.zeros(N)
        self._drawn = np.zeros(N, dtype=np.int64)  # windows of workload drawn per sub-env
        self._elapsed = np.zeros(N, dtype=np.int64)
        self._autoreset = np.zeros(N, dtype=bool)
        self._to_extend = 0  # steps left before the stacked workload must be checked for sub-envs past its end
        self._stepping_all = np.zeros(N, dtype=bool)  # no sub-env skipped (SameStep); read only
        self._started = False

    # ------------------------------------------------------------------ episodes
    def _new_episodes(self, ks: Sequence[int]) -> None:
        """Draw and start the next episode of sub-envs ``ks`` from their own generators.

        Each sub-env's episode is the single env's: a seed from its generator, then
        ``SimBackend.draw_episodes`` (as ``SimBackend.reset``), here for :data:`RESET_BLOCK`
        sub-envs at once so that a block's arrays stay in cache.
        """
        be = self._backend
        ks = np.asarray(ks, dtype=np.int64)
        delays = np.empty((len(ks), DELAY_RING))
        T = self._first_chunk
        for b in range(0, len(ks), RESET_BLOCK):
            block = ks[b:b + RESET_BLOCK]
            lo, hi = int(block[0]), int(block[-1]) + 1
            run = hi - lo == len(block)  # a run of sub-envs: the windows are written straight into the stacked arrays
            out = (self._rate[:T, lo:hi], self._lam[:T, lo:hi], self._rtt[:T, lo:hi]) \
                if run and self._rtt_all is None else None
            ep = be.draw_episodes([draw_seed(self._rngs[k]) for k in block.tolist()], T, out=out)
            self._streams[block] = ep.streams
            self._start_s[block] = ep.start_s
            delays[b:b + len(block)] = ep.delays
            self._store(block, 0, ep.windows, written=out is not None)
        reset_clusters(self._model, self._st, ks, self._initial, self._lam[0, ks], self._rtt[0, ks], delays)
        self._to_extend = min(self._to_extend, T - 1)  # steps before a sub-env can run past its drawn windows
        self._elapsed[ks] = 0
        self._autoreset[ks] = False

    def _store(self, idx: np.ndarray, t0: int, w: Windows, written: bool = False) -> None:
        """Copy windows ``w`` of sub-envs ``idx`` (from window ``t0`` on) into the stacked arrays (grown as needed);
        ``written``: they were drawn into them already (only the bookkeeping is left)."""
        T = t0 + w.rate.shape[0]
        if written:
            self._drawn[idx] = T
            for k, carry in zip(idx.tolist(), w.carries, strict=True):
                self._carries[k] = carry
            return
        self._rate, self._lam, self._rtt = grown(self._rate, T), grown(self._lam, T), grown(self._rtt, T)
        if self._rtt_all is not None:
            self._rtt_all = grown(self._rtt_all, T)
        self._drawn[idx] = T
        if len(idx) and idx[-1] - idx[0] == len(idx) - 1 and np.all(np.diff(idx) == 1):
            idx = slice(int(idx[0]), int(idx[-1]) + 1)  # a run of sub-envs: a block copy, not a scatter
        self._rate[t0:T, idx] = w.rate
        self._lam[t0:T, idx] = w.lam
        self._rtt[t0:T, idx] = w.rtt
        if self._rtt_all is not None:
            self._rtt_all[t0:T, idx] = w.rtt_all[:, :, 0]
        for k, carry in zip(np.arange(self.num_envs)[idx].tolist(), w.carries, strict=True):
            self._carries[k] = carry

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None):
        """Reset every sub-env: ``seed`` int (sub-env ``i`` gets ``seed + i``), a list of ``num_envs``
        seeds/``None``, or ``None`` (continue each sub-env's generator). ``options`` is not used.

        Returns ``(obs float32 (N, 5n + 2), info)``.
        """
        N = self.num_envs
        if seed is None:
            seeds: list[int | None] = [None] * N
        elif isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
            check_seed("seed", int(seed))
            seeds = [int(seed) + i for i in range(N)]
        elif (isinstance(seed, Sequence) and not isinstance(seed, str)) or isinstance(seed, np.ndarray):
            if len(seed) != N:
                raise ValueError(f"seed as a list must have num_envs={N} entries, got {len(seed)}")
            seeds = list(seed)
            for i, s in enumerate(seeds):
                check_seed(f"seed[{i}]", s)
                seeds[i] = None if s is None else int(s)
        else:
            raise TypeError(f"seed must be an int >= 0, a list of {N} seeds or None, got {seed!r}")
        if options:
            raise ValueError(f"options are not used by {type(self).__name__}, got {options!r}")
        for i, s in enumerate(seeds):
            if s is not None or self._rngs[i] is None:
                self._rngs[i], _ = seeding.np_random(s)
        self._new_episodes(range(N))
        self._started = True
        obs, _, info = self._observe()
        return obs, info

    # ------------------------------------------------------------------ step
    def _replicas(self, actions: Any) -> np.ndarray:
        """``int64 (N, n)`` replica counts of ``actions`` (the single env's decoding, batched)."""
        N, n, m = self.num_envs, self.n, self.max_replicas
        arr = actions if isinstance(actions, np.ndarray) else np.asarray(actions)
        if arr.shape != (N, n):
            raise ValueError(f"actions must have shape (num_envs, n_deployments) = ({N}, {n}), got {arr.shape}")
        if self._discrete:
            if arr.dtype == np.int64 and JIT_ENABLED and _within(arr, m):  # the usual case in one compiled pass
                return arr
            if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)
            if arr.dtype.kind not in "iu":
                raise ValueError(f"actions must contain integer replica counts, got dtype {arr.dtype}")
            if arr.min() < 0 or arr.max() > m:
                raise ValueError(f"actions replica counts must be in [0, {m}] (max_replicas), got {arr.min()}..{arr.max()}")
            return arr.astype(np.int64, copy=False)
        try:
            a = np.asarray(arr, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("actions must be target replica fractions in [-1, 1]") from None
        if not np.all(np.isfinite(a)) or a.min() < -1.0 or a.max() > 1.0:
            raise ValueError("continuous actions must be finite and in [-1, 1]")
        return np.floor((a + 1.0) * 0.5 * m + 0.5).astype(np.int64)

    def step(self, actions: Any):
        """Step every sub-env with ``actions`` (``(N, n)``); see the class docstring for what returns."""
        if not self._started:
            raise ResetNeeded("step() called before reset(); call envs.reset(seed=...) first")
        replicas = self._replicas(actions)
        st, N, n = self._st, self.num_envs, self.n
        next_step = self.autoreset_mode is AutoresetMode.NEXT_STEP
        # NextStep: sub-envs whose episode ended last step are reset now, not stepped (their action is ignored)
        redo = self._autoreset.copy() if next_step else self._stepping_all
        self._to_extend -= 1
        if self._to_extend < 0:  # a sub-env may have run past its drawn windows: check (and draw) now
            if (st.t >= self._drawn).any():
                self._extend(redo)
            self._to_extend = int((self._drawn - st.t).min()) - 1
        obs = np.empty((N, 5 * n + 2), dtype=np.float32)
        out = np.empty((5, N))  # reward, imbalance, total desired, total ready, total demand (fresh rows)
        load = np.empty((N, n))
        scalars = np.empty((3, N))  # mean latency, SLA-violation rate, time of day (fresh rows)
        # scale, serve the window and compute observation, reward and metric sums: one compiled pass
        step_clusters(self._model, st, replicas, self._rate, self._rtt, self._lam, self._rtt_all, redo, self._start_s,
                      self._consts, self._scale, self._low, self._high, obs, out, load, scalars)
        self._elapsed += 1
        terminated = np.zeros(N, dtype=bool)
        truncated = (self._elapsed >= self.max_episode_steps) if self.max_episode_steps is not None \
            else np.zeros(N, dtype=bool)
        if next_step:
            if redo.any():
                ks = np.flatnonzero(redo).tolist()
                self._new_episodes(ks)
                truncated[ks] = False
                obs, rewards, info = self._observe()  # the reset sub-envs' first observations among the others'
                rewards[redo] = 0.0
            else:
                rewards, info = out[0], self._info(out, load, scalars)
            self._autoreset = truncated | terminated
            return obs, rewards, terminated, truncated, info
        rewards, info = out[0], self._info(out, load, scalars)
        done = truncated | terminated
        if done.any():
            ks = np.flatnonzero(done)
            final_obs = np.full(self.num_envs, None, dtype=object)
            for k in ks.tolist():
                final_obs[k] = obs[k]
            final_info = _masked(info, done)
            self._new_episodes(ks.tolist())
            obs, _, info = self._observe()
            info["final_obs"], info["_final_obs"] = final_obs, done.copy()
            info["final_info"], info["_final_info"] = final_info, done.copy()
        return obs, rewards, terminated, truncated, info

    def _extend(self, skip: np.ndarray) -> None:
        """Draw the next chunk of windows of sub-envs (not in ``skip``) that ran past their workload (long episodes)."""
        be, cfg = self._backend, self._backend.cfg
        ks = np.flatnonzero((self._st.t >= self._drawn) & ~skip)
        for t0 in np.unique(self._drawn[ks]).tolist():  # sub-envs in lockstep: usually one chunk for all
            grp = ks[self._drawn[ks] == t0]
            streams = self._streams[grp]  # a copy: advanced by the draw, then written back
            w = draw_windows(be.trace, be.sc, streams, self._start_s[grp], np.full(len(grp), t0),
                             cfg.horizon_windows, cfg.demand_events, [self._carries[k] for k in grp.tolist()])
            self._streams[grp] = streams
            self._store(grp, t0, w)

    def _observe(self) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Observations, rewards and info of the clusters' last windows (the single env's formulas)."""
        st, N, n = self._st, self.num_envs, self.n
        obs = np.empty((N, 5 * n + 2), dtype=np.float32)
        out = np.empty((5, N))  # reward, imbalance, total desired, total ready, total demand (fresh rows)
        load = np.empty((N, n))
        # mean latency, SLA-violation rate and time of day (fresh rows: the info's arrays are views of them)
        scalars = np.empty((3, N))
        scalars[0] = st.mean_latency_ms
        scalars[1] = st.sla_violation_rate
        tod = scalars[2]
        np.add(self._start_s, st.now, out=tod)
        np.fmod(tod, 86400.0, out=tod)  # the single env's `% 86400.0` (equal for times >= 0)
        scaling_features(st.demand_rps, st.ready, st.desired, st.latency_ms, scalars, self._consts, self._scale,
                         self._low, self._high, obs, out, load)
        return obs, out[0], self._info(out, load, scalars)

    def _info(self, out: np.ndarray, load: np.ndarray, scalars: np.ndarray) -> dict[str, Any]:
        """The step info of the last windows from :func:`scaling_features`' outputs (fresh arrays)."""
        st = self._st
        every = np.ones(self.num_envs, dtype=bool)  # every sub-env has every key: one mask array, shared by the keys
        metrics = {
            "latency_ms": scalars[0], "replicas": out[2], "replicas_ready": out[3], "demand_rps": out[4],
            "failed_rps": st.failed_rps.copy(), "imbalance": out[1], "sla_violation_rate": scalars[1],
            "_latency_ms": every, "_replicas": every, "_replicas_ready": every, "_demand_rps": every,
            "_failed_rps": every, "_imbalance": every, "_sla_violation_rate": every,
        }
        return {"metrics": metrics, "_metrics": every,
                "demand_rps": st.demand_rps.copy(), "_demand_rps": every,
                "replicas_ready": st.ready.copy(), "_replicas_ready": every,
                "replicas_desired": st.desired.copy(), "_replicas_desired": every,
                "latency_ms": st.latency_ms.copy(), "_latency_ms": every,
                "load": load, "_load": every,
                "time_of_day_s": scalars[2], "_time_of_day_s": every}

    def close_extras(self, **kwargs: Any) -> None:
        template = getattr(self, "template", None)  # absent when __init__ refused its arguments
        if template is not None:
            template.close()


@jit
def _within(arr, high):
    """Whether every value of the 2-D integer array ``arr`` is in ``[0, high]``."""
    for i in range(arr.shape[0]):
        for j in range(arr.shape[1]):
            v = arr[i, j]
            if v < 0 or v > high:
                return False
    return True


def _masked(info: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    """``info`` with every ``_key`` mask replaced by ``mask`` (a copy; Gymnasium's ``final_info``)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_"):
            out[key] = mask.copy()
        elif isinstance(value, dict):
            out[key] = _masked(value, mask)
        else:
            out[key] = value
    return out
