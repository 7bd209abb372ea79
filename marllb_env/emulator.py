"""A Python stand-in for MARLLB's VPP data plane, driving a shared-memory region in real time.

The emulator runs in its own process. It attaches to a :class:`~marllb_env.shm.SharedMemoryRegion`
and loops over short ticks of simulated time:

1. take the newest ``msg_in`` frame, if any, and hand its ``score`` (the server weights) to
   the load balancer of the flow simulator, which dispatches new flows by SED with them;
2. advance the simulator by one tick (``tick_s`` simulated seconds);
3. every ``publish_interval`` simulated seconds, copy the LB's reservoirs into ``res_as``
   and publish a ``msg_out`` frame (``n_flow_on`` per server, active bitmap, timestamp);
4. sleep so that simulated time runs at ``speed`` times wall-clock time (``speed=1``:
   real time, as a real data plane).

The data plane's clock (``ts`` in frames, ``t`` in reservoirs) is the simulated time in
seconds since the emulator started. The emulator exits when told to stop, when its parent
process dies, or when the region disappears.

Defaults: ``publish_interval`` 0.05 s (VPP publishes every ``SHM_UPT_DT`` = 0.2 s; a
shorter period keeps frames fresh when the agent's step is 0.25 s), ``tick_s`` 0.01 s.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from marllb_env.shm import SharedMemoryRegion


class DataPlaneModel(Protocol):
    """What the emulator needs from a simulated data plane with one or more LBs."""

    num_servers: int
    n_lbs: int

    def set_weights(self, lb: int, weights: np.ndarray) -> None:
        """SED weights ``(num_servers,)`` float, >= 0, for LB ``lb``'s flows from now on."""

    def advance(self, dt: float) -> None:
        """Run the simulation for ``dt`` simulated seconds."""

    def snapshot(self, lb: int) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(now_s, n_flow_on int (n,), active bool (n,), fct (n,128,2), flow_duration (n,128,2))``."""


class SimDataPlane:
    """:class:`marllb_env.sim.FlowSimulator` as a :class:`DataPlaneModel`.

    Every LB dispatches by SED with the weights its region's agent writes (capacity-
    proportional until the first ``msg_in``). Reservoirs are exported in VPP's form: 128
    ``(t, v)`` slots, unfilled slots ``(0, 0)``.

    Args:
        servers: server specs (cpus or ``ServerSpec`` field dicts); default: 4 servers ``[1, 1, 2, 2]``.
        workload: workload spec (``marllb_env.traces.make_workload``).
        n_lbs: load balancers.
        seed: seed of the simulator's streams.
    """

    def __init__(self, servers=None, workload=None, n_lbs: int = 1, seed: int | None = None):
        from marllb_env.shm import RESERVOIR_N_BIN
        from marllb_env.sim import FlowSimulator

        self.sim = FlowSimulator(servers or [1, 1, 2, 2], workload, n_lbs=n_lbs, seed=seed, dispatch="sed",
                                 reservoir_size=RESERVOIR_N_BIN)
        self.num_servers, self.n_lbs = self.sim.n_servers, n_lbs
        for lb in range(n_lbs):
            self.sim.set_weights(lb, self.sim.capacities())

    def set_weights(self, lb: int, weights: np.ndarray) -> None:
        self.sim.set_weights(lb, weights)

    def advance(self, dt: float) -> None:
        self.sim.advance(dt)

    def snapshot(self, lb: int):
        from marllb_env.shm import RESERVOIR_N_BIN

        n = self.num_servers
        res = np.zeros((2, n, RESERVOIR_N_BIN, 2), dtype=np.float32)
        for j in range(n):
            for k, kind in enumerate(("fct", "flow_duration")):
                t, v = self.sim.reservoir(lb, j, kind)
                res[k, j, : t.size, 0] = t
                res[k, j, : t.size, 1] = v
        return self.sim.now, self.sim.n_flow_on(lb), self.sim.active_mask(), res[0], res[1]


def build_model(config: Mapping[str, Any]) -> DataPlaneModel:
    """Build the data-plane model named by ``config["model"]`` (default ``"sim"``: :class:`SimDataPlane`).

    ``config`` is a plain dict (it crosses a process boundary); the other keys go to the model.
    """
    cfg = dict(config)
    kind = cfg.pop("model", "sim")
    if kind == "sim":
        return SimDataPlane(**cfg)
    raise ValueError(f"unknown emulator model {kind!r}; known: 'sim'")


def run_emulator(
    names: str | Sequence[str],
    config: Mapping[str, Any],
    *,
    publish_interval: float = 0.05,
    tick_s: float = 0.01,
    speed: float = 1.0,
    stop=None,
    ready=None,
    directory: str | None = None,
    max_sim_time: float | None = None,
) -> int:
    """The emulator's main loop (runs in the child process; callable in-process for tests).

    Args:
        names: region file name(s), one per LB (LB ``i`` uses ``names[i]``); the regions
            must exist (the emulator only attaches).
        config: model config for :func:`build_model` (``n_lbs`` defaults to ``len(names)``).
        publish_interval: simulated seconds between two ``msg_out`` frames.
        tick_s: simulated seconds per tick (weights are picked up once per tick).
        speed: simulated seconds per wall-clock second.
        stop: a ``multiprocessing.Event``; the loop ends when it is set.
        ready: a ``multiprocessing.Event`` set after the first frames are published.
        directory: region directory (default ``/dev/shm``).
        max_sim_time: end after this much simulated time; ``None``: run until stopped.

    Returns:
        The number of frames published per region.
    """
    names = [names] if isinstance(names, str) else list(names)
    kw = {} if directory is None else {"directory": directory}
    regions = [SharedMemoryRegion.attach(nm, **kw) for nm in names]
    parent = os.getppid()
    try:
        model = build_model({"n_lbs": len(names), **dict(config)})
        n = model.num_servers
        frames = 0

        def publish() -> None:
            nonlocal frames
            for lb, region in enumerate(regions):
                now, q, active, fct, fd = model.snapshot(lb)
                region.write_reservoirs(fct, fd)
                region.write_msg_out(q, active, ts=now)
            frames += 1

        publish()
        if ready is not None:
            ready.set()
        sim_t = 0.0
        next_pub = publish_interval
        wall0 = time.monotonic()
        while True:
            if stop is not None and stop.is_set():
                break
            if os.getppid() != parent or not all(os.path.exists(r.path) for r in regions):
                break
            if max_sim_time is not None and sim_t >= max_sim_time - 1e-12:
                break
            for lb, region in enumerate(regions):
                msg = region.read_msg_in()
                if msg is not None:
                    w = msg.score[:n].astype(np.float64)
                    if np.all(np.isfinite(w)) and np.all(w >= 0) and np.any(w > 0):
                        model.set_weights(lb, w)
            model.advance(tick_s)
            sim_t += tick_s
            if sim_t >= next_pub - 1e-9:
                publish()
                next_pub += publish_interval
            lag = wall0 + sim_t / speed - time.monotonic()
            if lag > 0:
                time.sleep(lag)
        return frames
    finally:
        for r in regions:
            r.close(unlink=False)


def _child_main(names: Any, config: Mapping[str, Any], errors: Any, **kwargs: Any) -> int:
    """The child's entry point: run the loop; an exception is sent to the parent before exiting."""
    try:
        return run_emulator(names, config, **kwargs)
    except BaseException as exc:
        try:
            errors.send(exc)
        except Exception:  # an unpicklable exception: send its text
            errors.send(RuntimeError(f"{type(exc).__name__}: {exc}"))
        raise


class EmulatorProcess:
    """Start and stop :func:`run_emulator` in a child process (``spawn`` start method).

    Args:
        names: region file name(s), one per LB; the regions must already exist (created by the caller).
        config: model config (a JSON-like dict).
        start_timeout: seconds to wait for the first frame.
        **loop_kwargs: ``publish_interval``, ``tick_s``, ``speed``, ``directory``.

    Raises:
        ValueError / TypeError / FileNotFoundError: the child rejected ``config`` (e.g. a bad workload
            kind): the child's own exception, re-raised here with its message.
        RuntimeError: the child did not publish its first frame within ``start_timeout``, or failed
            otherwise (its exit code and error are in the message).
    """

    def __init__(
        self, names: str | Sequence[str], config: Mapping[str, Any], start_timeout: float = 60.0, **loop_kwargs: Any
    ):
        ctx = mp.get_context("spawn")
        self._stop = ctx.Event()
        ready = ctx.Event()
        receive, send = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_child_main,
            args=(names, dict(config), send),
            kwargs={"stop": self._stop, "ready": ready, **loop_kwargs},
            daemon=True,
            name="marllb-emulator",
        )
        self.process.start()
        send.close()
        deadline = time.monotonic() + start_timeout
        try:
            while not ready.wait(0.05):
                if not self.process.is_alive() or time.monotonic() > deadline:
                    self.process.join(1.0)
                    code = self.process.exitcode
                    try:
                        child_error = receive.recv() if receive.poll(1.0) else None
                    except (EOFError, OSError):  # the child died without a word
                        child_error = None
                    self.stop()
                    if isinstance(child_error, (ValueError, TypeError, FileNotFoundError)):
                        raise child_error  # the real error (e.g. a bad workload), not "exit code 1"
                    why = f": {type(child_error).__name__}: {child_error}" if child_error is not None else (
                        ": the child died before running the emulator. It is started with 'spawn', which "
                        "re-imports your main module: a script that makes a backend='shm' env must keep its "
                        "top level under `if __name__ == \"__main__\":` (Python's rule for spawn)"
                    )
                    raise RuntimeError(f"data-plane emulator for {names!r} did not start (exit code {code}){why}")
        finally:
            receive.close()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to end; kill the child (by its PID) if it does not within ``timeout``."""
        self._stop.set()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
