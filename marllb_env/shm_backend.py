"""``backend="shm"``: drive one load balancer through MARLLB's shared-memory data plane.

:class:`ShmBackend` implements :class:`marllb_env.backend.LBBackend` (the core backend contract)
over a :class:`~marllb_env.shm.SharedMemoryRegion`, the way MARLLB's agent talks to its VPP plugin
(``src/lb/env.py``): ``apply`` writes a ``msg_in`` frame (SED scores + alias
table) every step, ``advance`` sleeps for the control period (wall-clock time: the data plane runs in
real time), ``observe`` reads the newest whole ``msg_out`` frame and the reservoirs and
computes the 11 MARLLB features per active server.

Two ways to get a data plane:

* ``emulate=True`` (default via :meth:`ShmBackend.from_env_kwargs`): the backend creates a
  uniquely named region and starts :mod:`marllb_env.emulator` in a child process, which
  runs the flow simulator in real time (``speed`` x wall clock) and is restarted with a
  new seed on every ``reset``;
* ``emulate=False``: attach to an existing region (the real VPP plugin's ``shm_vip_1``).

What the shared memory does not carry (and this backend therefore does not invent):
ground truth (MARLLB gets it from server agents over TCP; here ``ground_truth`` is NaN),
per-interval flow counts (``flow_stats`` is empty) and per-flow records (no
``flow_records``; the env's FCT episode metrics need the simulator backend).
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import numpy as np

from lwmecps_gym.core.backend import PermanentBackendError, TransientBackendError
from lwmecps_gym.core.seeding import streams_from_seed
from lwmecps_gym.core.validation import (
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_sequence,
    check_str,
    resolve_alias,
    unset,
)
from marllb_env.backend import LBMeasurement, MultiLBMeasurement
from marllb_env.reservoir import reservoir_stats
from marllb_env.shm import DEFAULT_NAME, SHM_DIR, SHM_N_BIN, SharedMemoryRegion


def _features(frame, bins: np.ndarray, decay: float, empty_slots: str) -> np.ndarray:
    """``(len(bins), 11)`` float32: ``n_flow_on`` + 5 FCT + 5 flow-duration statistics."""
    out = np.empty((bins.size, 11), dtype=np.float32)
    out[:, 0] = np.maximum(frame.n_flow_on[bins], 0)
    for c, res in ((1, frame.fct), (6, frame.flow_duration)):
        with np.errstate(invalid="ignore"):  # empty reservoirs: inf - inf in the p90 step, then set to 0
            out[:, c : c + 5] = np.maximum(_stats(res[bins], frame.ts, decay, empty_slots), 0.0)
    return out


def _stats(res: np.ndarray, now: float, decay: float, empty_slots: str) -> np.ndarray:
    """The 5 reservoir statistics of ``res (n, 128, 2)`` ``(t, v)`` pairs at data-plane time ``now``."""
    r = res.astype(np.float64)
    t, v = r[..., 0], r[..., 1]
    if empty_slots == "zero":  # VPP/shm_proxy: all 128 slots, empty (0, 0) ones included
        return reservoir_stats(v, t, None, now, decay)
    # statistics over filled slots: move (0, 0) slots to the end and count the rest
    filled = (t != 0) | (v != 0)
    order = np.argsort(~filled, axis=1, kind="stable")
    return reservoir_stats(np.take_along_axis(v, order, 1), np.take_along_axis(t, order, 1), filled.sum(1), now, decay)


def _check_common(speed: Any, publish_interval: Any, frame_timeout: Any, empty_slots: Any, decay: Any) -> None:
    """The data-plane options shared by :class:`ShmBackend` and :class:`ShmLBGroup` (ValueError/TypeError
    naming the option)."""
    check_float("speed", speed, low=0.0, low_open=True)
    check_float("publish_interval", publish_interval, low=0.0, low_open=True)
    check_float("frame_timeout", frame_timeout, low=0.0, low_open=True)
    check_choice("empty_slots", empty_slots, ("mask", "zero"))
    check_float("decay", decay, low=0.0, high=1.0)


class ShmBackend:
    """One LB's view of a MARLLB shared-memory data plane (see the module docstring).

    Args:
        num_servers: servers the env controls; must equal the number of active bins in
            ``msg_out`` (active bins in ascending order are servers ``0..n-1``).
        interval_s: the env's control period, seconds of data-plane time (alias ``step_interval``).
        name: region file name; default: ``shm_vip_1`` when attaching, a fresh unique
            name when emulating.
        directory: region directory (``/dev/shm``).
        emulate: start the Python data-plane emulator (``True``) or attach to an existing
            data plane (``False``).
        speed: emulator only: data-plane seconds per wall second (1 = real time).
        servers, workload: emulator only: the simulated cluster (default 4 servers
            with 1, 1, 2, 2 CPUs and Poisson load 0.9), see :class:`marllb_env.emulator.SimDataPlane`.
        publish_interval: emulator only: data-plane seconds between ``msg_out`` frames.
        frame_timeout: seconds (wall) to wait for a fresh frame before raising.
        empty_slots: ``"mask"`` (statistics over filled reservoir slots) or ``"zero"``
            (MARLLB's ``shm_proxy``: empty ``(0, 0)`` slots included).
        decay: freshness base of the decayed statistics (0.9).

    Raises:
        PermanentBackendError: region missing / wrong number of active servers.
        TransientBackendError: no fresh frame within ``frame_timeout`` (data plane stalled).
    """

    def __init__(
        self,
        num_servers: int,
        interval_s: float = unset(),
        *,
        step_interval: float = unset(),
        name: str | None = None,
        directory: str = SHM_DIR,
        emulate: bool = True,
        speed: float = 1.0,
        servers: Any = None,
        workload: Any = None,
        publish_interval: float = 0.05,
        frame_timeout: float = 5.0,
        empty_slots: str = "mask",
        decay: float = 0.9,
    ):
        _check_common(speed, publish_interval, frame_timeout, empty_slots, decay)
        self.n_servers = check_int("num_servers", num_servers, low=1, high=SHM_N_BIN)
        self.interval_s = check_float("interval_s", resolve_alias("interval_s", interval_s, "step_interval",
                                                                  step_interval, 0.25), low=0.0, low_open=True)
        self.emulate = check_bool("emulate", emulate)
        if name is not None:
            check_str("name", name)
        if servers is not None:
            check_sequence("servers", servers, min_length=1)
        self.speed = float(speed) if emulate else 1.0
        self.frame_timeout = float(frame_timeout)
        self.empty_slots, self.decay = empty_slots, float(decay)
        self.publish_interval = float(publish_interval)
        self._emulator: Any = None
        self._bins = np.arange(num_servers)
        self._last_frame = None
        self.dispatch = "sed"
        if emulate:
            if servers is None:  # the env's default cluster: first ceil(n/2) servers 1 CPU, the rest 2
                servers = [1.0 if j < num_servers - num_servers // 2 else 2.0 for j in range(num_servers)]
            self._config = {"servers": list(servers), "workload": workload}
            self.name = name or f"marllb_emu_{os.getpid()}_{uuid.uuid4().hex[:8]}"
            self.region = SharedMemoryRegion.create(self.name, directory=directory)
            self._directory = directory
        else:
            self.name = name or DEFAULT_NAME
            try:
                self.region = SharedMemoryRegion.attach(self.name, directory=directory)
            except FileNotFoundError as e:
                raise PermanentBackendError(f"no data-plane region {directory}/{self.name}: is VPP running?") from e

    @classmethod
    def from_env_kwargs(cls, num_servers: int, interval_s: float, **backend_kwargs: Any) -> ShmBackend:
        """What :class:`marllb_env.env.LoadBalanceEnv` calls for ``backend="shm"``."""
        return cls(num_servers, interval_s, **backend_kwargs)

    @property
    def step_interval(self) -> float:
        """Alias of :attr:`interval_s`."""
        return self.interval_s

    @property
    def emulator_pid(self) -> int | None:
        """Process id of the running data-plane emulator (``None`` if none runs)."""
        return None if self._emulator is None else self._emulator.pid

    # --- LBBackend --------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """Emulator: restart it with a seed drawn from the workload stream of
        ``streams_from_seed(seed)`` (``None``: fresh entropy). Real data plane: nothing to reset;
        the next observation is the newest frame."""
        if self.emulate:
            from marllb_env.emulator import EmulatorProcess

            if self._emulator is not None:
                self._emulator.stop()
            s = int(streams_from_seed(seed).workload.integers(0, 2**31 - 1))
            self._emulator = EmulatorProcess(
                self.name,
                {**self._config, "seed": s},
                speed=self.speed,
                publish_interval=self.publish_interval,
                directory=self._directory,
            )
        self._last_frame = None

    def apply(self, weights: np.ndarray) -> None:
        """Write this LB's ``(n_servers,)`` weights (finite, >= 0) as a ``msg_in`` frame.

        Raises:
            ValueError: wrong shape, NaN/inf or negative weights.
        """
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (self.n_servers,):
            raise ValueError(f"weights must have shape ({self.n_servers},), got {w.shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise ValueError(f"weights must be finite and >= 0, got {w.tolist()}")
        full = np.zeros(SHM_N_BIN)
        full[self._bins] = w
        self.region.write_msg_in(full[: int(self._bins.max()) + 1])

    #: alias of :meth:`apply` (the name before the core backend contract)
    apply_weights = apply

    def advance(self, seconds: float) -> None:
        """Sleep ``seconds`` of data-plane time (``seconds / speed`` wall seconds)."""
        time.sleep(max(0.0, seconds / self.speed))

    def observe(self) -> LBMeasurement:
        if self._emulator is not None and not self._emulator.alive():
            raise PermanentBackendError(f"the data-plane emulator (pid {self._emulator.pid}) has exited")
        try:
            frame = self.region.read_msg_out(timeout=self.frame_timeout)
        except TimeoutError as e:
            raise TransientBackendError(f"data plane stalled: {e}") from e
        bins = frame.active_bins
        if bins.size != self.n_servers:
            raise PermanentBackendError(
                f"the data plane reports {bins.size} active servers (bins {bins.tolist()}); the env expects {self.n_servers}"
            )
        self._bins = bins
        self._last_frame = frame
        return LBMeasurement(
            time_s=frame.ts,
            features=_features(frame, bins, self.decay, self.empty_slots),
            active=np.ones(self.n_servers, dtype=bool),
            ground_truth=np.full((self.n_servers, 3), np.nan, dtype=np.float32),
            flow_stats={},
            exhausted=False,
        )

    def close(self) -> None:
        if self._emulator is not None:
            self._emulator.stop()
            self._emulator = None
        if not self.region.closed:
            self.region.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


class ShmLBGroup:
    """``M`` load balancers over shared memory: one region per LB, one emulator for all.

    The emulator runs one flow simulator with ``M`` LBs (ECMP over LBs at the edge, as
    :class:`marllb_env.sim.FlowSimulator`); LB ``i`` reads weights from and publishes
    features to region ``i``. :attr:`backends` holds one attached :class:`ShmBackend` per
    LB. A :class:`marllb_env.backend.MultiLBBackend` (the core backend contract); used by
    :class:`marllb_env.multi_agent.MultiLoadBalanceEnv` with ``backend="shm"``. The data plane
    carries features only: ground truth, utilisation and flow counts of the measurement are NaN.

    Args:
        n_lbs: number of LBs (regions).
        num_servers: servers (active bins) per region.
        interval_s: seconds of data-plane time per env step (the control period).
        speed, servers, workload, publish_interval, frame_timeout, empty_slots, decay:
            as :class:`ShmBackend`.
        directory: region directory.
    """

    def __init__(
        self,
        n_lbs: int,
        num_servers: int,
        interval_s: float = 0.25,
        *,
        directory: str = SHM_DIR,
        speed: float = 1.0,
        servers: Any = None,
        workload: Any = None,
        publish_interval: float = 0.05,
        frame_timeout: float = 5.0,
        empty_slots: str = "mask",
        decay: float = 0.9,
    ):
        _check_common(speed, publish_interval, frame_timeout, empty_slots, decay)
        self.n_lbs = check_int("n_lbs", n_lbs, low=1)
        self.n_servers = check_int("num_servers", num_servers, low=1, high=SHM_N_BIN)
        self.speed, self.publish_interval, self._directory = float(speed), float(publish_interval), directory
        stem = f"marllb_emu_{os.getpid()}_{uuid.uuid4().hex[:8]}"
        self.names = [f"{stem}_lb{i}" for i in range(self.n_lbs)]
        self.regions: list[SharedMemoryRegion] = []
        self.backends: list[ShmBackend] = []
        try:
            for nm in self.names:
                self.regions.append(SharedMemoryRegion.create(nm, directory=directory))
            for nm in self.names:
                self.backends.append(
                    ShmBackend(num_servers, interval_s, name=nm, directory=directory, emulate=False,
                               frame_timeout=frame_timeout, empty_slots=empty_slots, decay=decay)
                )
        except BaseException:
            self.close()
            raise
        self._config = {"servers": list(servers) if servers is not None else None, "workload": workload}
        self._emulator: Any = None

    @property
    def emulator_pid(self) -> int | None:
        """Process id of the running data-plane emulator (``None`` if none runs)."""
        return None if self._emulator is None else self._emulator.pid

    def reset(self, seed: int | None = None) -> None:
        """(Re)start the emulator with a seed drawn from the workload stream of
        ``streams_from_seed(seed)`` (as :meth:`ShmBackend.reset`); the next observations are of the new run."""
        from marllb_env.emulator import EmulatorProcess

        if self._emulator is not None:
            self._emulator.stop()
        cfg = {k: v for k, v in self._config.items() if v is not None}
        s = int(streams_from_seed(seed).workload.integers(0, 2**31 - 1))
        self._emulator = EmulatorProcess(
            self.names, {**cfg, "seed": s}, speed=self.speed, publish_interval=self.publish_interval,
            directory=self._directory,
        )

    def advance(self, seconds: float) -> None:
        """Sleep ``seconds`` of data-plane time."""
        time.sleep(max(0.0, seconds / self.speed))

    def apply(self, weights: Any) -> None:
        """Write LB ``i``'s weights ``weights[i]`` to region ``i`` (see :meth:`ShmBackend.apply`).

        Raises:
            ValueError: not one vector per LB, or a bad vector.
        """
        if len(weights) != self.n_lbs:
            raise ValueError(f"weights must hold one vector per LB ({self.n_lbs}), got {len(weights)}")
        for b, w in zip(self.backends, weights, strict=True):
            b.apply(w)

    def observe_each(self) -> list[LBMeasurement]:
        """One measurement per LB (each the newest whole frame of its region)."""
        if self._emulator is not None and not self._emulator.alive():
            raise PermanentBackendError(f"the data-plane emulator (pid {self._emulator.pid}) has exited")
        return [b.observe() for b in self.backends]

    def observe(self) -> MultiLBMeasurement:
        """Every LB's features (newest frames); what the data plane does not carry is NaN."""
        ms = self.observe_each()
        n, nan = self.n_servers, float("nan")
        return MultiLBMeasurement(
            time_s=float(ms[0].time_s),
            features=np.stack([m.features for m in ms]).astype(np.float64),
            active=np.ones(n, dtype=bool),
            flows_in_system=np.full(n, nan),
            cpu_util=np.full(n, nan),
            completed=nan,
            rejects=nan,
            fct_sum_s=nan,
        )

    def close(self) -> None:
        if getattr(self, "_emulator", None) is not None:
            self._emulator.stop()
            self._emulator = None
        for b in self.backends:
            b.close()
        for r in self.regions:
            r.close()
        self.backends, self.regions = [], []
