"""A native batched :class:`gymnasium.vector.VectorEnv` of the FaaS autoscaling env (fluid simulator).

``gymnasium.make_vec("faas_gym/Autoscaling-v0", num_envs=64, vectorization_mode="vector_entry_point")``
builds a :class:`FaasVectorEnv`: ``num_envs`` independent functions stepped together by one compiled
loop over the sub-envs (numba, :func:`faas_gym.backends.fluid.jit`). Each sub-env is the single env
(:class:`faas_gym.env.FaasAutoscalingEnv` with the simulator's fluid model) run with the same seed
and actions: the per-interval model math (:mod:`faas_gym.backends.fluid`), the ready slot-seconds
(:func:`faas_gym.backends.sim.ready_slot_seconds`), the observation and the reward
(:func:`faas_gym.env.observation_values`, :func:`faas_gym.env.reward_value`) are compiled from the
same source the single env runs (:func:`faas_gym.backends.fluid.compiled_variant`), the arrival
counts come from one workload stream per sub-env seeded exactly as the single env seeds its
simulator. For OrcBench workloads (``Autoscaling-v0``, ``FaaSTrainGym-v1``) and an OrcBench base under
a diurnal modulation (``AutoscalingDay-v0``) those streams run compiled for all sub-envs at once
(:func:`faas_gym.workloads.renewal_interval` / ``renewal_counts`` and ``thin_counts`` on
:mod:`lwmecps_gym.core.pcg64`, numpy's generator and draws re-stated), seeding and resets included: the same
draws and counts as the Python streams (tests/faas/test_compiled_streams.py), which other workloads
and installs without numba use. The one piece NOT shared is the replica life cycle (cold starts, keep-alive pool):
``_apply_row`` re-implements :meth:`SimBackend.apply <faas_gym.backends.sim.SimBackend.apply>`'s
fluid-model branch over array rows of ready and expiry times (the single env keeps lists and, for the
DES, a slot heap); tests/faas/test_vector.py holds the two equal, including cold starts longer than
an interval and keep-alive revivals. Observations, rewards and info match the single env's bit for bit.

Only the fluid model (``sim_config["model"] == "fluid"``, the default) with the simulator backend is
batched; the exact DES (``model="des"``, e.g. ``faas_gym/AutoscalingBursty-v0``) and real backends are
refused: use ``vectorization_mode="sync"`` for them.

Autoreset follows Gymnasium 1.x: ``autoreset_mode="NextStep"`` (default) or ``"SameStep"`` (then
``info["final_obs"]`` / ``info["final_info"]`` hold the finished episodes' last observation and
info). ``reset(seed=s)`` seeds sub-env ``i`` with ``s + i`` (like :class:`~gymnasium.vector.SyncVectorEnv`);
a list gives one seed per sub-env. ``info`` is Gymnasium's vector format: the single env's keys,
each an array over the env axis, with a boolean ``_key`` mask (nested for ``metrics`` and
``episode_metrics``; the latter is absent, mask false, in a sub-env that was just reset).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from faas_gym.backends import fluid
from faas_gym.backends.base import FaasMeasurement
from faas_gym.backends.sim import (
    MAX_CHUNK_INTERVALS,
    SimBackend,
    chunk_length,
    draw_counts,
    ready_slot_seconds,
    seed_pcg64_pair,
)
from faas_gym.env import FaasAutoscalingEnv, observation_values, reward_value
from faas_gym.workloads import DiurnalModulation, OrcBenchWorkload
from lwmecps_gym.core import pcg64
from lwmecps_gym.core.seeding import draw_seed
from lwmecps_gym.core.validation import check_int, check_seed

_FIELDS = tuple(FaasMeasurement.__dataclass_fields__)
_F_COLS = ("time_s", "cpu_utilization", "memory_utilization", "response_time_ms", "request_rate_rps",
           "throughput_rps", "slo_violation_rate")
_I_COLS = ("replicas", "replicas_desired", "cold_starts", "queue_length", "dropped", "arrived", "completed",
           "in_system")
#: rows of the float state block ``FaasVectorEnv._fs`` (one column per sub-env)
_FS = ("t", "q", "wait_area", "tot_completed", "tot_resp", "tot_viol", "tot_replica_s", "tot_arrived")
#: rows of the int state block ``FaasVectorEnv._is``
_IS = ("live", "cold", "in_system", "steps", "cpos", "clen", "nchunks", "tot_cold", "tot_dropped",
       "renewal_left")
#: a reset's values of the int state rows before the streams' ones, in units of initial replicas
_IS_RESET = np.array([[1], [0], [0], [0], [0], [0], [0], [0], [0]], dtype=np.int64)
#: rows of the float output block of a step: the measurement's float fields, then these
_F_OUT = (*_F_COLS, "replica_seconds", "window_s", "ep_response_time_ms", "ep_slo_violation_rate", "ep_drop_rate",
          "ep_replica_seconds")
#: rows of the int output block: the measurement's int fields, then these
_I_OUT = (*_I_COLS, "ep_cold_starts", "ep_dropped")
#: ``(field, index in (*_F_OUT, *_I_OUT))`` in ``FaasMeasurement`` order, then replica-seconds
_LAYOUT = tuple((name, (*_F_OUT, *_I_OUT).index(name)) for name in (*_FIELDS, "replica_seconds"))
_METRIC_MASKS = tuple("_" + name for name in (*_FIELDS, "replica_seconds"))
_slot_seconds = fluid.jit(ready_slot_seconds)
_fluid_window = fluid.compiled.fluid_window
_window_counts = fluid.compiled.window_counts
_window_metrics = fluid.compiled.window_metrics
_bisect_right = fluid.bisect_right_compiled


_obs_values = fluid.compiled_variant(observation_values)
_reward_value = fluid.compiled_variant(reward_value)


@fluid.jit
def _sort_prefix(a, n):
    """Sort ``a[:n]`` in place (insertion sort: the rows are short and nearly sorted; the same result
    as ``a[:n].sort()``, the values being neither NaN nor -0.0)."""
    for k in range(1, n):
        v = a[k]
        j = k - 1
        while j >= 0 and a[j] > v:
            a[j + 1] = a[j]
            j -= 1
        a[j + 1] = v


@fluid.jit
def _apply_row(i, n, t, ready, pool, live, cold, cold_start_s, keep_alive_s):
    """The fluid branch of :meth:`SimBackend.apply` (scale to ``n`` replicas now; a second copy, tested
    equal) for sub-env ``i``, on its rows of ``ready``
    (sorted ready times of the live replicas first, ``+inf`` padding) and ``pool`` (expiry times of
    kept-alive replicas, ``-inf`` for free slots; live + kept <= max_replicas always)."""
    cur = live[i]
    if n == cur:
        return
    now = t[i]
    row = ready[i]
    kept = pool[i]
    alive = 0
    for c in range(kept.shape[0]):
        if kept[c] <= now:  # kept-alive replicas that expired
            kept[c] = -np.inf
        else:
            alive += 1
    if n > cur:
        k = n - cur
        warm = min(k, alive)  # revived without a cold start, newest (largest expiry) first
        if warm > 0:
            _sort_prefix(kept, kept.shape[0])
            kept[kept.shape[0] - warm:] = -np.inf
        cold[i] += k - warm
        row[cur:cur + warm] = now
        row[cur + warm:n] = now + cold_start_s
        _sort_prefix(row, n)
    else:
        if keep_alive_s > 0:  # removed ready replicas stay warm for keep_alive_s
            c = 0
            for r in row[n:cur]:
                if r <= now:
                    while kept[c] != -np.inf:
                        c += 1
                    kept[c] = now + keep_alive_s
        row[n:cur] = np.inf  # scale-down: the latest ready times (cold-starting first) go
    live[i] = n


_chunk_length = fluid.jit(chunk_length)


@fluid.jit
def _advance_kernel(rows, target, step_mask, requested, fs, is_, ready, pool, cbuf, mbuf, arrivals, c,
                    p, memo, fout, iout, obs, reward, flags):
    """One interval of sub-envs ``rows``: scale to ``target`` (``_apply_row``), then
    ``SimBackend._advance_fluid`` + the observation and reward per sub-env, the same functions
    (compiled), with the arrivals ``cbuf[i, cpos]`` (expected: ``mbuf``) of the current chunk.

    State: ``fs`` / ``is_`` (rows :data:`_FS` / :data:`_IS`, a column per sub-env), ``ready`` /
    ``pool`` (``_apply_row``), updated in place. ``arrivals``: ``None`` where the chunk's counts are
    already in ``cbuf`` (drawn in Python), else ``(generator states, gap table, mean gap, stream
    floats)`` of the compiled renewal streams: a used-up chunk is opened (``chunk_length``) and the
    interval drawn here (:func:`faas_gym.workloads.renewal_interval`). ``c``: float64 constants
    ``(dt, concurrency, cold_start_s, keep_alive_s, start_time_of_day_s, max_replicas,
    response_time_cap_ms, rate_cap_rps, queue_cap, w_slo, w_cost, w_cold_start, w_drop,
    max_episode_steps or -1)``.

    ``step_mask`` None (a reset: no episode totals, no step count) or bool per row: false for a
    sub-env reset in this step (reward 0, its step count 0, nothing added to its totals), true
    otherwise (totals added, step count + 1). Outputs, column ``j`` for sub-env ``rows[j]``:
    ``fout`` / ``iout`` rows :data:`_F_OUT` / :data:`_I_OUT` (the episode rows only with a
    ``step_mask``), ``obs[j]`` (float32, rounded from float64 like ``astype``), ``reward[j]``;
    ``flags[0, j]`` clipped (``target != requested``) and ``flags[1, j]`` truncated (with a
    ``step_mask``)."""
    dt = c[0]
    conc = int(c[1])
    cold_start_s = c[2]
    keep_alive_s = c[3]
    mx = int(c[5])
    max_steps = int(c[13])
    t = fs[0]
    q = fs[1]
    wa = fs[2]
    live = is_[0]
    cold = is_[1]
    in_system = is_[2]
    cpos = is_[4]
    clen = is_[5]
    nchunks = is_[6]
    if arrivals is not None:
        st, iat, mean_gap, rf = arrivals
        left = is_[9]
        for j in range(rows.shape[0]):
            i = rows[j]
            pos = cpos[i]
            if pos >= clen[i]:  # open the next chunk (its intervals are drawn one at a time)
                clen[i] = _chunk_length(nchunks[i])
                nchunks[i] += 1
                pos = 0
                cpos[i] = 0
            cbuf[i, pos] = renewal_interval(st, i, iat, mean_gap, rf, left, pos, clen[i], dt)
    for j in range(rows.shape[0]):
        i = rows[j]
        _apply_row(i, target[j], t, ready, pool, live, cold, cold_start_s, keep_alive_s)
        pos = cpos[i]
        cpos[i] = pos + 1
        t0 = t[i]
        t1 = t0 + dt
        n = live[i]
        row = ready[i]
        slot = _slot_seconds(row, n, t0, t1, conc)
        a = cbuf[i, pos]
        q1, wa1, dropped, busy, resp, viol, lq = _fluid_window(q[i], wa[i], slot, a, mbuf[i, pos], dt, p, memo)
        q[i] = q1
        wa[i] = wa1
        completed, in_end, queue, resp_sum, viol_out = _window_counts(
            q1, lq, busy, slot, dt, in_system[i], a, dropped, resp, viol, memo
        )
        n_ready = n if (n == 0 or row[n - 1] <= t1) else _bisect_right(row[:n], t1)
        cpu, mem, resp_ms, rate, thr = _window_metrics(n_ready, busy, slot, dt, a, completed, resp_sum, p, memo)
        n_cold = cold[i]
        fout[0, j] = t1
        fout[1, j] = cpu
        fout[2, j] = mem
        fout[3, j] = resp_ms
        fout[4, j] = rate
        fout[5, j] = thr
        fout[6, j] = viol_out
        fout[7, j] = n * dt
        fout[8, j] = dt
        iout[0, j] = n_ready
        iout[1, j] = n
        iout[2, j] = n_cold
        iout[3, j] = queue
        iout[4, j] = dropped
        iout[5, j] = a
        iout[6, j] = completed
        iout[7, j] = in_end
        o = _obs_values(t1, n_ready, cpu, mem, resp_ms, rate, thr, n_cold, queue, n,
                        c[4], mx, c[6], c[7], c[8], memo)
        obs[j, 0] = o[0]
        obs[j, 1] = o[1]
        obs[j, 2] = o[2]
        obs[j, 3] = o[3]
        obs[j, 4] = o[4]
        obs[j, 5] = o[5]
        obs[j, 6] = o[6]
        obs[j, 7] = o[7]
        obs[j, 8] = o[8]
        obs[j, 9] = o[9]
        obs[j, 10] = o[10]
        reward[j] = _reward_value(viol_out, n, n_cold, dropped, a, mx, c[9], c[10], c[11], c[12])
        flags[0, j] = n != requested[j]
        cold[i] = 0
        in_system[i] = in_end
        t[i] = t1
        if step_mask is not None:
            stepped = step_mask[j]
            if stepped:
                is_[3, i] += 1
            else:
                reward[j] = 0.0
                is_[3, i] = 0
            flags[1, j] = max_steps >= 0 and is_[3, i] >= max_steps
            _episode_totals(i, j, stepped, resp_ms, viol_out, completed, n, n_cold, dropped, a, dt, fs, is_,
                            fout, iout)


@fluid.jit
def _targets(actions, deltas, desired, lo, hi, requested, target):
    """``requested = desired + deltas[actions]``, ``target`` = it clipped to ``[lo, hi]``; returns the
    first sub-env whose action is outside ``[0, len(deltas) - 1]`` (then nothing is written), else -1."""
    n_act = deltas.shape[0]
    for i in range(actions.shape[0]):
        if actions[i] < 0 or actions[i] >= n_act:
            return i
    for i in range(actions.shape[0]):
        r = desired[i] + deltas[actions[i]]
        requested[i] = r
        target[i] = min(max(r, lo), hi)
    return -1


@fluid.jit
def _episode_totals(i, j, stepped, resp_ms, viol, completed, desired, cold, dropped, arrived, interval_s, fs, is_,
                    fout, iout):
    """Add one step of sub-env ``i`` to its episode totals (rows of ``fs`` / ``is_``; nothing if it was
    reset in this step, ``stepped`` false) and write column ``j`` of the episode rows of ``fout`` /
    ``iout``: response time (ms) and violation rate (both per completed request, 0.0 before any),
    drop rate (0.0 before any arrival), replica-seconds, cold starts, drops."""
    w = 1 if stepped else 0
    fs[3, i] += completed * w
    fs[4, i] += resp_ms * completed * w
    fs[5, i] += viol * completed * w
    fs[6, i] += desired * interval_s * w
    is_[7, i] += cold * w
    is_[8, i] += dropped * w
    fs[7, i] += arrived * w
    n = fs[3, i]
    fout[9, j] = fs[4, i] / n if n != 0 else 0.0
    fout[10, j] = fs[5, i] / n if n != 0 else 0.0
    a = fs[7, i]
    fout[11, j] = is_[8, i] / a if a != 0 else 0.0
    fout[12, j] = fs[6, i]
    iout[8, j] = is_[7, i]
    iout[9, j] = is_[8, i]


if pcg64.AVAILABLE:
    from faas_gym.workloads import renewal_counts, renewal_interval, renewal_start, thin_counts

    #: ``draw_seed``'s exclusive upper bound (lwmecps_gym.core.seeding.draw_seed; tested equal)
    _SEED_HIGH = 2**63 - 1

    @fluid.jit
    def _draw_seeds(np_st, rows):
        """``draw_seed(np_random)`` of sub-envs ``rows`` (their env generators: rows of ``np_st``)."""
        out = np.empty(rows.shape[0], dtype=np.int64)
        for j in range(rows.shape[0]):
            out[j] = pcg64.integers64(np_st, rows[j], _SEED_HIGH)
        return out

    @fluid.jit
    def _reset_renewal(np_st, wl_st, rows, iat, cum, rf, ri):
        """``SimBackend.reset(draw_seed(np_random))`` of sub-envs ``rows`` for a renewal workload: seed
        the workload generator (``seed_pcg64_pair``'s first) and start the compiled stream at 0 s."""
        for j in range(rows.shape[0]):
            i = rows[j]
            pcg64.seed_splitmix(wl_st, i, pcg64.integers64(np_st, i, _SEED_HIGH))
            renewal_start(wl_st, i, iat, cum, rf, ri, 0.0)


def _compiled_arrivals(workload) -> str | None:
    """``"renewal"`` (OrcBench), ``"thinned"`` (OrcBench under a diurnal modulation) where the compiled
    streams reproduce the workload, else None (one Python stream per sub-env)."""
    if not pcg64.AVAILABLE:
        return None
    if isinstance(workload, OrcBenchWorkload):
        return "renewal"
    if isinstance(workload, DiurnalModulation) and isinstance(workload.base, OrcBenchWorkload):
        return "thinned"
    return None


_EPISODE_KEYS = ("response_time_ms", "slo_violation_rate", "replica_seconds", "cold_starts", "dropped", "drop_rate")
_EPISODE_MASKS = tuple("_" + k for k in _EPISODE_KEYS)
#: ``(episode field, index in (*_F_OUT, *_I_OUT))``
_EPISODE_LAYOUT = tuple((k, (*_F_OUT, *_I_OUT).index("ep_" + k)) for k in _EPISODE_KEYS)


class FaasVectorEnv(VectorEnv):
    """``num_envs`` copies of :class:`~faas_gym.env.FaasAutoscalingEnv` (fluid simulator), batched.

    Args:
        num_envs: number of sub-envs, >= 1.
        max_episode_steps: truncation after this many steps (``None``: never), like ``TimeLimit``.
        autoreset_mode: ``"NextStep"`` (default) or ``"SameStep"`` (an :class:`~gymnasium.vector.AutoresetMode`
            or its value).
        **env_kwargs: the single env's arguments (see :class:`~faas_gym.env.FaasAutoscalingEnv`),
            validated by it; ``backend`` must be ``"sim"`` and ``sim_config["model"]`` ``"fluid"``.

    Spaces: ``single_observation_space`` / ``single_action_space`` are the single env's; the batched
    ones are ``Box(num_envs, 11)`` float32 and ``MultiDiscrete([n_actions] * num_envs)``.

    Raises:
        ValueError: bad ``num_envs``, ``max_episode_steps`` or ``autoreset_mode``, a backend other than
            the simulator, or the DES model (named in the message).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int = 1,
        max_episode_steps: int | None = None,
        autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
        **env_kwargs: Any,
    ):
        self.num_envs = check_int("num_envs", num_envs, low=1)
        if max_episode_steps is not None:
            check_int("max_episode_steps", max_episode_steps, low=1)
        self.max_episode_steps = max_episode_steps
        modes = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            mode = None
        if mode not in modes:
            raise ValueError(
                f"autoreset_mode must be one of {[m.value for m in modes]}, got {autoreset_mode!r}"
            )
        self.autoreset_mode = mode
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        if "render_mode" in env_kwargs and env_kwargs["render_mode"] is not None:
            raise ValueError("render_mode is not supported by the vector env; use vectorization_mode='sync'")
        template = FaasAutoscalingEnv(**env_kwargs)  # validates every argument like the single env
        backend = template.backend
        if not isinstance(backend, SimBackend):
            raise ValueError("the native vector env needs backend='sim'; use vectorization_mode='sync' for others")
        if backend.config.model != "fluid":
            raise ValueError(
                f"the native vector env batches sim_config model='fluid' only, got model={backend.config.model!r}; "
                "use vectorization_mode='sync' for the exact DES"
            )
        self.template = template
        self.config = backend.config
        self.params = backend.params
        self.workload = backend.workload
        self.single_observation_space = template.observation_space
        self.single_action_space = template.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.render_mode = None
        t = template
        self._cparams = fluid.compiled_params(self.params)
        self._memo = fluid.erlang_memo(t.max_replicas * backend.config.concurrency)  # Erlang B rows per load
        self.interval_s = t.interval_s
        self._deltas = np.asarray(t.deltas, dtype=np.int64)
        self._obs_consts = (t.start_time_of_day_s, t.max_replicas, t.response_time_cap_ms, t.rate_cap_rps, t.queue_cap)
        self._reward_consts = (t.max_replicas, t.w_slo, t.w_cost, t.w_cold_start, t.w_drop)
        n, m = self.num_envs, t.max_replicas
        self._m = m
        self._cols = np.arange(m)
        self._rows = np.arange(n)
        self._np_randoms: list[np.random.Generator | None] = [None] * n
        self._bitgens = [(np.random.PCG64(0), np.random.PCG64(0)) for _ in range(n)]
        self._rng_wl = [np.random.Generator(b[0]) for b in self._bitgens]
        self._streams: list[Any] = [None] * n
        self._arrivals = _compiled_arrivals(self.workload)
        if self._arrivals is not None:  # compiled streams: generator states and stream states as arrays
            base = self.workload if self._arrivals == "renewal" else self.workload.base
            self._iat, self._cum, self._mean_gap = base.renewal_tables()
            self._np_st = pcg64.new_states(n)  # the sub-envs' np_random generators
            self._seeded = np.zeros(n, dtype=bool)
            self._wl_st = pcg64.new_states(n)  # their renewal streams' generators
            self._rf = np.zeros((n, 4))
            self._thin_st = pcg64.new_states(n)  # thinned: the thinning's generators (pcg64.BINOMIAL)
            self._thin_t = np.zeros(n)  # and the thinned streams' times
        width = MAX_CHUNK_INTERVALS
        self._cbuf = np.zeros((n, width), dtype=np.int64)
        self._mbuf = np.full((n, width), -1.0)
        # per-sub-env state: two blocks (rows _FS / _IS, so the compiled step takes two arrays), and views
        self._fs = np.zeros((len(_FS), n))
        self._is = np.zeros((len(_IS), n), dtype=np.int64)
        (self._t, self._q, self._wa) = self._fs[:3]
        # _live: the desired (= live) replicas, the last step's target (the next step's deltas apply to it)
        (self._live, self._cold, self._in_system, self._steps, self._cpos, self._clen, self._nchunks) = self._is[:7]
        self._ri = self._is[9]  # compiled renewal streams: batch times still to come
        self._ready = np.full((n, m), np.inf)  # sorted ready times of live replicas, +inf padding
        self._pool = np.full((n, m), -np.inf)  # expiry times of kept-alive replicas, -inf padding
        init = t.initial_replicas
        self._is_init = np.array([[init]], dtype=np.int64)
        self._ready_init = np.where(np.arange(m) < init, 0.0, np.inf)  # a reset row of _ready
        self._consts = np.array([
            t.interval_s, backend.config.concurrency, backend.config.cold_start_s, backend.config.keep_alive_s,
            *self._obs_consts, *self._reward_consts[1:], -1 if max_episode_steps is None else max_episode_steps,
        ], dtype=np.float64)
        self._renewal = (self._wl_st, self._iat, self._mean_gap, self._rf) if self._arrivals == "renewal" else None
        self._autoreset = np.zeros(n, dtype=bool)
        self._obs: np.ndarray | None = None
        self._all = np.ones(n, dtype=bool)

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Reset every sub-env; ``seed`` an int (sub-env ``i`` gets ``seed + i``), a list of ``num_envs``
        ints/None, or None.

        Raises:
            ValueError: a negative or non-integer seed, or a list of the wrong length.
        """
        n = self.num_envs
        if seed is None:
            seeds: list[int | None] = [None] * n
        elif isinstance(seed, (list, tuple)):
            if len(seed) != n:
                raise ValueError(f"seed must be an int, None or a list of num_envs={n} seeds, got {len(seed)} seeds")
            seeds = list(seed)
        else:
            check_seed("seed", seed)
            seeds = [seed + i for i in range(n)]
        for i, s in enumerate(seeds):
            check_seed(f"seed[{i}]", s)
        if seed is not None and not isinstance(seed, (list, tuple)):
            self._np_random, self._np_random_seed = seeding.np_random(seed)
        rows = self._rows
        self._reset_rows(rows, seeds)
        meas, obs, _, _ = self._advance(rows, None)
        self._autoreset[:] = False
        self._obs = obs
        return obs, self._reset_info(meas)

    def step(self, actions):
        """Step every sub-env with ``actions`` (``num_envs`` integers in ``[0, n_actions - 1]``).

        Raises:
            ResetNeeded: before :meth:`reset`.
            ValueError / TypeError: ``actions`` of the wrong shape, dtype or range (names the sub-env).
        """
        if self._obs is None:
            raise ResetNeeded("step() called before reset(); call env.reset(seed=...) first")
        n = self.num_envs
        requested = np.empty(n, dtype=np.int64)
        target = np.empty(n, dtype=np.int64)
        self._check_actions(actions, requested, target)
        done_before = self._autoreset
        next_step = self.autoreset_mode is AutoresetMode.NEXT_STEP
        resetting = done_before.any() if next_step else False
        t = self.template
        if resetting:
            idx = np.flatnonzero(done_before)
            self._reset_rows(idx, [None] * idx.size)
            target[idx] = t.initial_replicas
            requested[idx] = t.initial_replicas
        step_mask = ~done_before if resetting else self._all
        meas, obs, reward, extra = self._advance(self._rows, target, step_mask, requested)
        info = self._step_info(meas, requested, step_mask, extra)
        terminated = np.zeros(n, dtype=bool)
        truncated = extra["truncated"]
        done = truncated.copy()
        if next_step:
            self._autoreset = done
        elif done.any():
            obs, info = self._same_step_reset(np.flatnonzero(done), obs, info)
        self._obs = obs
        return obs, reward, terminated, truncated, info

    def close_extras(self, **kwargs: Any) -> None:
        template = getattr(self, "template", None)  # absent if __init__ raised
        if template is not None:
            template.close()

    # ------------------------------------------------------------------ helpers: state
    def _check_actions(self, actions, requested, target) -> None:
        """Check ``actions`` and fill ``requested`` (desired + delta) and ``target`` (clipped to
        ``[min_replicas, max_replicas]``) for every sub-env."""
        n_act = self._deltas.size
        a = np.asarray(actions)
        if a.shape != (self.num_envs,):
            raise ValueError(f"actions must have shape ({self.num_envs},) (one per sub-env), got shape {a.shape}")
        if a.dtype.kind not in "iu":
            raise TypeError(f"actions must be integers in [0, {n_act - 1}], got dtype {a.dtype}")
        t = self.template
        i = _targets(a.astype(np.int64, copy=False), self._deltas, self._live, t.min_replicas, t.max_replicas,
                     requested, target)
        if i >= 0:
            raise ValueError(f"actions[{i}] must be an integer in [0, {n_act - 1}], got {a[i]!r}")

    def _reset_rows(self, idx, seeds) -> None:
        """Rewind sub-envs ``idx`` like ``FaasAutoscalingEnv.reset`` + ``SimBackend.reset``."""
        if self._arrivals is None:
            for i, s in zip(np.asarray(idx).tolist(), seeds, strict=True):
                if s is not None:
                    self._np_randoms[i], _ = seeding.np_random(s)
                elif self._np_randoms[i] is None:
                    self._np_randoms[i], _ = seeding.np_random()
                seed_pcg64_pair(draw_seed(self._np_randoms[i]), self._bitgens[i])
                self._streams[i] = self.workload.stream(self._rng_wl[i], 0.0)
        else:
            self._reset_compiled_streams(np.asarray(idx, dtype=np.int64), seeds)
        self._fs[:, idx] = 0.0  # time, fluid backlog and its waiting area, episode totals
        self._is[:_IS_RESET.size, idx] = _IS_RESET * self._is_init  # all but the streams' rows
        self._ready[idx] = self._ready_init
        self._pool[idx] = -np.inf

    def _reset_compiled_streams(self, idx: np.ndarray, seeds) -> None:
        """``_reset_rows``' seeding with the compiled streams (same draws as the per-sub-env Python ones)."""
        if not self._seeded[idx].all() or seeds.count(None) != len(seeds):
            for i, s in zip(idx.tolist(), seeds, strict=True):
                if s is not None or not self._seeded[i]:
                    rng, _ = seeding.np_random(s)
                    pcg64.get_state(rng.bit_generator, self._np_st, i)
                    self._seeded[i] = True
        if self._arrivals == "renewal":
            _reset_renewal(self._np_st, self._wl_st, idx, self._iat, self._cum, self._rf, self._ri)
            return
        # thinned: the day-scale episodes reset rarely; the stream is built in Python (its generators are
        # seeded from SeedSequence), then its base and (pcg64.BINOMIAL) its thinning run compiled
        for i, sd in zip(idx.tolist(), _draw_seeds(self._np_st, idx).tolist(), strict=True):
            seed_pcg64_pair(sd, self._bitgens[i])
            stream = self.workload.stream(self._rng_wl[i], 0.0)
            stream.base.export_state(self._wl_st, self._rf, self._ri, i)
            if pcg64.BINOMIAL:
                self._thin_t[i] = stream.export_thinning(self._thin_st, i)
            else:
                self._streams[i] = stream

    def _draw_chunks(self, idx: np.ndarray) -> None:
        """Draw the next chunk of arrival counts of sub-envs ``idx`` (the single env's chunks)."""
        dt = self.interval_s
        if self._arrivals is None:
            for i in idx.tolist():
                n = chunk_length(int(self._nchunks[i]))
                counts, means = draw_counts(self._streams[i], dt, n)
                self._cbuf[i, :n] = counts
                self._mbuf[i, :n] = -1.0 if means is None else means
                self._clen[i] = n
            self._nchunks[idx] += 1
            self._cpos[idx] = 0
            return
        nch = self._nchunks[idx]
        for c in np.unique(nch).tolist():
            sub = idx[nch == c]
            n = chunk_length(c)
            self._clen[sub] = n
            if self._arrivals == "renewal":  # opened only: renewal_interval draws each interval when it comes
                continue
            out = np.empty((sub.size, n), dtype=np.int64)
            # the thinned stream's base, requested 16 intervals at a time as _ThinnedStream.counts does
            renewal_counts(self._wl_st, sub, self._iat, self._mean_gap, self._rf, self._ri, dt, n, 16, out)
            if pcg64.BINOMIAL:  # thinned per interval, compiled: _ThinnedStream.thin's draws
                t0 = self._thin_t[sub]
                for t in np.unique(t0).tolist():  # (one start time per chunk index in practice)
                    same = sub[t0 == t]
                    keep, self._thin_t[same] = self.workload.interval_keep_probabilities(t, dt, n)
                    part = out[t0 == t]
                    thin_counts(self._thin_st, same, part, keep)
                    out[t0 == t] = part
            else:
                for j, i in enumerate(sub.tolist()):
                    out[j] = self._streams[i].thin(out[j], dt)
            self._cbuf[sub, :n] = out  # (_mbuf stays -1.0: renewal workloads give no expected counts)
        self._nchunks[idx] += 1
        self._cpos[idx] = 0

    def _refill_chunks(self, rows):
        """Draw the next chunk of those sub-envs ``rows`` whose current chunk is used up (counts drawn in
        Python or a chunk at a time; the compiled renewal streams open theirs in the step kernel)."""
        if rows.size == self.num_envs:  # every row, in order
            need = self._cpos >= self._clen
            if need.any():
                self._draw_chunks(np.flatnonzero(need))
        else:
            need = self._cpos[rows] >= self._clen[rows]
            if need.any():
                self._draw_chunks(rows[need])

    def _advance(self, rows, target, step_mask=None, requested=None):
        """Scale sub-envs ``rows`` to ``target`` replicas (None: keep) and simulate one interval
        (``SimBackend.apply`` + ``advance`` + ``observe``, then the observation and reward); with a
        ``step_mask`` (a step, not a reset) also the episode totals and step counts
        (:func:`_advance_kernel`).

        Returns:
            ``(measurement fields as arrays, float32 observations (len(rows), 11), float64 rewards,
            with a step_mask: {"episode": episode fields, "clipped", "truncated"} else None)``.
        """
        rows = np.asarray(rows, dtype=np.int64)
        if target is None:
            target = self._live[rows]
        if self._renewal is None:
            self._refill_chunks(rows)
        k = rows.size
        fout = np.empty((len(_F_OUT), k))
        iout = np.empty((len(_I_OUT), k), dtype=np.int64)
        obs = np.empty((k, 11), dtype=np.float32)
        reward = np.empty(k)
        flags = np.zeros((2, k), dtype=bool)
        target = np.asarray(target, dtype=np.int64)
        _advance_kernel(
            rows, target, step_mask, target if requested is None else requested, self._fs, self._is, self._ready,
            self._pool, self._cbuf, self._mbuf, self._renewal, self._consts, self._cparams, self._memo, fout, iout,
            obs, reward, flags,
        )
        cols = (*fout, *iout)  # rows of fout / iout: contiguous per field
        meas = {name: cols[c] for name, c in _LAYOUT}
        if step_mask is None:
            return meas, obs, reward, None
        episode = {name: cols[c] for name, c in _EPISODE_LAYOUT}
        return meas, obs, reward, {"episode": episode, "clipped": flags[0], "truncated": flags[1]}

    def _metrics(self, m, mask) -> dict[str, Any]:
        d: dict[str, Any] = dict(m)
        d.update(dict.fromkeys(_METRIC_MASKS, mask))
        return d

    def _reset_info(self, m) -> dict[str, Any]:
        mask = self._all.copy()
        n = self.num_envs
        return {
            "metrics": self._metrics(m, mask), "_metrics": mask,
            "clipped": np.zeros(n, dtype=bool), "_clipped": mask,
            "requested_replicas": self._live.copy(), "_requested_replicas": mask,
        }

    def _step_info(self, m, requested, step_mask, extra) -> dict[str, Any]:
        mask = self._all.copy()
        ep_mask = step_mask.copy()
        episode = extra["episode"]
        episode.update(dict.fromkeys(_EPISODE_MASKS, ep_mask))
        return {
            "metrics": self._metrics(m, mask), "_metrics": mask,
            "episode_metrics": episode, "_episode_metrics": ep_mask,
            "clipped": extra["clipped"], "_clipped": mask,
            "requested_replicas": requested, "_requested_replicas": mask,
        }

    def _same_step_reset(self, idx, obs, info):
        """SAME_STEP: reset the finished sub-envs ``idx`` now; their last observation and info go to
        ``final_obs`` / ``final_info`` (object array / nested dict-of-arrays with masks)."""
        n = self.num_envs
        done = np.zeros(n, dtype=bool)
        done[idx] = True
        final_obs = np.full(n, None, dtype=object)
        for i in idx.tolist():
            final_obs[i] = obs[i].copy()
        final_info = _masked_copy(info, done)
        self._reset_rows(idx, [None] * idx.size)
        meas, obs_idx, _, _ = self._advance(idx, None)
        obs = obs.copy()
        obs[idx] = obs_idx
        info["metrics"] = {k: v.copy() for k, v in info["metrics"].items()}
        for k, v in meas.items():
            info["metrics"][k][idx] = v
        info["clipped"] = info["clipped"].copy()
        info["clipped"][idx] = False
        info["requested_replicas"] = info["requested_replicas"].copy()
        info["requested_replicas"][idx] = self._live[idx]
        ep = {k: (v.copy() if not k.startswith("_") else v) for k, v in info["episode_metrics"].items()}
        ep_mask = info["_episode_metrics"] & ~done
        for k in _EPISODE_KEYS:
            ep[k][idx] = 0
            ep["_" + k] = ep_mask
        info["episode_metrics"] = ep
        info["_episode_metrics"] = ep_mask
        info["final_obs"] = final_obs
        info["_final_obs"] = done
        info["final_info"] = final_info
        info["_final_info"] = done.copy()
        return obs, info


def _masked_copy(info: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    """A copy of a vector info dict whose ``_key`` masks are ANDed with ``mask``."""
    out: dict[str, Any] = {}
    for k, v in info.items():
        if isinstance(v, dict):
            out[k] = _masked_copy(v, mask)
        elif k.startswith("_"):
            out[k] = v & mask
        else:
            out[k] = v.copy()
    return out

