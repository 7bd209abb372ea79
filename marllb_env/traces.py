"""Workloads: synthetic Poisson arrivals and replays of real request traces.

A workload is an object with ``batches(rng, capacity) -> Iterator[(times_s, sizes_s)]``
(return a picklable iterator object rather than a generator if the env must pickle):
arrival times in seconds (ascending, from 0 at the start of the episode) and job
sizes in **CPU-seconds** (time the job needs on one core of speed 1). The
simulator pulls batches lazily and draws nothing else from ``rng`` except the
flows' hashes, so with the workload on its own RNG stream two policies see an
identical input for the same seed.

Job-size unit and the MARLLB calibration
----------------------------------------
The MARLLB Poisson traces request ``/dummy.php/?n=<iterations>``: a CPU-bound PHP
loop of ``n`` iterations. The paper calls this workload "exp(200 ms)" job time and
the traces' mean ``n`` is about 3.67e6, so we use
``seconds_per_iteration = 0.2 / 3.67e6 = 5.45e-8 s`` (one 2.6 GHz core; see
``marllb_env/data/README.md``). Change it with ``seconds_per_iteration=`` to model
faster or slower servers.

Wikibench traces (``<unix_ts> <url>`` per line) carry no job size; a size is drawn
per request from an exponential distribution whose mean depends on the page class
(``/wiki/`` pages are CPU/DB-bound, everything else static), on the workload stream.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import MISSING, dataclass
from functools import lru_cache
from importlib import resources
from typing import Protocol, runtime_checkable

import numpy as np

from lwmecps_gym.core.validation import (
    check_choice,
    check_float,
    check_int,
    check_keys,
    check_positive,
    decode_text,
)

SIZE_DISTRIBUTIONS = ("exponential", "deterministic", "pareto", "lognormal")

#: Seconds of one-core CPU time per ``dummy.php`` loop iteration (0.2 s / 3.67e6).
MARLLB_SECONDS_PER_ITERATION = 0.2 / 3.67e6

#: Traces shipped in ``marllb_env/data`` (name -> file).
BUNDLED_TRACES = {"rate_150": "rate_150.csv", "rate_400": "rate_400.csv"}


@runtime_checkable
class Workload(Protocol):
    """What the simulator needs from a workload."""

    def batches(self, rng: np.random.Generator, capacity: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(times_s, sizes_s)`` float64 arrays; ``capacity`` is the total CPU-seconds/s."""
        ...


def _draw_sizes(rng: np.random.Generator, dist: str, mean: float, n: int, shape: float, sigma: float) -> np.ndarray:
    if dist == "exponential":
        return rng.exponential(mean, n)
    if dist == "deterministic":
        return np.full(n, mean)
    if dist == "pareto":  # Pareto(x_m, alpha) with mean alpha*x_m/(alpha-1) = mean
        x_m = mean * (shape - 1.0) / shape
        return (rng.pareto(shape, n) + 1.0) * x_m
    # lognormal with E = exp(mu + sigma^2/2) = mean
    return rng.lognormal(math.log(mean) - 0.5 * sigma * sigma, sigma, n)


@dataclass(frozen=True)
class PoissonWorkload:
    """Poisson arrivals with i.i.d. job sizes, at a load normalised to capacity.

    The arrival rate is ``rate`` if given, else ``lambda = rho * C / E[size]`` with
    ``C`` the total capacity (sum of ``cpus * speed``, CPU-seconds per second), as
    SimLB does; ``rho`` is then the offered load of the whole cluster.

    Args:
        rho: offered load in (0, inf) (used when ``rate`` is None). Default 0.9.
        rate: arrival rate in flows/s, overrides ``rho``.
        size_dist: ``"exponential"``, ``"deterministic"``, ``"pareto"`` (x_m set so
            the mean is ``mean_size_s``; shape ``pareto_shape`` > 1; 1.5 as Park:
            infinite variance) or ``"lognormal"`` (``lognormal_sigma``).
        mean_size_s: mean job size in CPU-seconds (default 0.5 s, SimLB's default).
        duration_s: stop generating after this time (``None``: endless).
        batch: flows per generated batch (performance only; does not change the draw order's result
            for a given seed).
    """

    rho: float = 0.9
    rate: float | None = None
    size_dist: str = "exponential"
    mean_size_s: float = 0.5
    pareto_shape: float = 1.5
    lognormal_sigma: float = 1.0
    duration_s: float | None = None
    batch: int = 512

    def __post_init__(self) -> None:
        check_choice("size_dist", self.size_dist, SIZE_DISTRIBUTIONS)
        check_positive("mean_size_s", self.mean_size_s)
        if self.rate is None:
            check_positive("rho", self.rho)
        else:
            check_positive("rate", self.rate)
        if self.size_dist == "pareto":
            check_float("pareto_shape", self.pareto_shape, low=1.0, low_open=True)
        check_positive("lognormal_sigma", self.lognormal_sigma)
        if self.duration_s is not None:
            check_positive("duration_s", self.duration_s)
        check_int("batch", self.batch, low=1)

    def arrival_rate(self, capacity: float) -> float:
        """Flows per second for a cluster of total ``capacity`` CPU-seconds/s."""
        return float(self.rate) if self.rate is not None else self.rho * capacity / self.mean_size_s

    def batches(self, rng: np.random.Generator, capacity: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        return _PoissonBatches(self, rng, self.arrival_rate(capacity))


class _PoissonBatches:
    """Iterator of Poisson batches (a class, not a generator, so simulators stay picklable)."""

    def __init__(self, wl: PoissonWorkload, rng: np.random.Generator, lam: float):
        self.wl, self.rng, self.lam, self.t0, self.done = wl, rng, lam, 0.0, False

    def __iter__(self) -> _PoissonBatches:
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray]:
        wl, rng = self.wl, self.rng
        if self.done:
            raise StopIteration
        times = self.t0 + np.cumsum(rng.exponential(1.0 / self.lam, wl.batch))
        sizes = _draw_sizes(rng, wl.size_dist, wl.mean_size_s, wl.batch, wl.pareto_shape, wl.lognormal_sigma)
        self.t0 = float(times[-1])
        if wl.duration_s is not None and self.t0 >= wl.duration_s:
            self.done = True
            keep = times < wl.duration_s
            return times[keep], sizes[keep]
        return times, sizes


class _ArrayBatches:
    """Iterator over pre-computed (times, sizes) arrays in chunks (picklable)."""

    def __init__(self, times: np.ndarray, sizes: np.ndarray, chunk: int = 4096):
        self.times, self.sizes, self.chunk, self.pos = times, sizes, chunk, 0

    def __iter__(self) -> _ArrayBatches:
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray]:
        k = self.pos
        if k >= len(self.times):
            raise StopIteration
        self.pos = k + self.chunk
        return self.times[k : k + self.chunk], self.sizes[k : k + self.chunk]


class TraceFormatError(ValueError):
    """A trace file line could not be parsed; the message names the file and line number."""


_N_RE = re.compile(r"[?&]n=(\d+)")


def _trace_path(trace: str | os.PathLike, name: str = "trace") -> str:
    if isinstance(trace, str) and trace in BUNDLED_TRACES:
        return str(resources.files("marllb_env") / "data" / BUNDLED_TRACES[trace])
    if not isinstance(trace, (str, os.PathLike)):
        raise TypeError(f"{name} must be a bundled trace name {sorted(BUNDLED_TRACES)} or a file path "
                        f"(str or os.PathLike), got {trace!r}")
    path = os.fspath(trace)
    if not isinstance(path, str):
        raise TypeError(f"{name} must be a str path, got bytes {trace!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"{name} {trace!r} is neither a bundled trace {sorted(BUNDLED_TRACES)} nor an existing file"
        )
    return path


def _lines(path: str) -> list[str]:
    """The file's lines, decoded strictly: bad bytes raise naming the file, line and column."""
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        # split on "\n" only, so that line numbers agree with the decoder's
        return decode_text(data, f"trace file {path!r}").split("\n")
    except ValueError as exc:
        raise TraceFormatError(str(exc)) from None


def _stamp(path: str) -> tuple[int, int]:
    """Cache key part: a rewritten file (new mtime or size) is parsed again."""
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size


@lru_cache(maxsize=8)
def _parse_marllb(path: str, stamp: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    times: list[float] = []
    iters: list[float] = []
    lines = _lines(path)
    header = lines[0] if lines else ""
    if header.rstrip("\r\n").split("\t") != ["time", "query"]:
        raise TraceFormatError(f"{path}:1: expected header 'time\\tquery', got {header.rstrip()!r}")
    last = -math.inf
    for lineno, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r\n")
        if not line:
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise TraceFormatError(f"{path}:{lineno}: expected 'time<TAB>query', got {line!r}")
        try:
            t = float(parts[0])
        except ValueError:
            raise TraceFormatError(f"{path}:{lineno}: time {parts[0]!r} is not a number") from None
        if not math.isfinite(t) or t < 0:
            raise TraceFormatError(f"{path}:{lineno}: time must be finite and >= 0, got {parts[0]!r}")
        if t < last:
            raise TraceFormatError(f"{path}:{lineno}: time {t} is earlier than the previous line's {last}")
        m = _N_RE.search(parts[1])
        if m is None:
            raise TraceFormatError(f"{path}:{lineno}: query {parts[1]!r} has no 'n=<iterations>' parameter")
        last = t
        times.append(t)
        iters.append(float(m.group(1)))
    if not times:
        raise TraceFormatError(f"{path}: no requests after the header")
    return np.asarray(times), np.asarray(iters)


def load_marllb_trace(trace: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Parse a MARLLB trace (``time\\tquery`` header, ``/dummy.php/?n=<iterations>`` rows).

    Args:
        trace: a bundled name (``"rate_150"``, ``"rate_400"``) or a file path.

    Returns:
        ``(times_s, iterations)`` float64 arrays (read-only cached copies).

    Raises:
        FileNotFoundError: unknown name / missing file.
        TraceFormatError: malformed header or line (message: ``path:line: reason``).
    """
    path = _trace_path(trace)
    t, n = _parse_marllb(path, _stamp(path))
    return t.copy(), n.copy()


def _window(times: np.ndarray, offset: float, time_scale: float) -> tuple[np.ndarray, int]:
    i0 = int(np.searchsorted(times, offset, side="left"))
    return (times[i0:] - offset) * time_scale, i0


@dataclass(frozen=True)
class MarllbTraceWorkload:
    """Replay of a MARLLB request trace.

    Args:
        trace: bundled name (``"rate_150"`` 145.9 req/s, ``"rate_400"`` 390.4 req/s) or a path.
        seconds_per_iteration: CPU-seconds per ``n`` iteration (default 0.2 s / 3.67e6).
        time_scale: multiply inter-arrival times (2.0 halves the rate).
        start: ``"zero"`` replays from the first request; ``"random"`` starts at an
            offset drawn uniformly from the first half of the trace (workload stream),
            so different seeds replay different segments.
        max_flows: replay at most this many requests (MARLLB's ``clip_n``).
    """

    trace: str = "rate_150"
    seconds_per_iteration: float = MARLLB_SECONDS_PER_ITERATION
    time_scale: float = 1.0
    start: str = "random"
    max_flows: int | None = None

    def __post_init__(self) -> None:
        check_positive("seconds_per_iteration", self.seconds_per_iteration)
        check_positive("time_scale", self.time_scale)
        check_choice("start", self.start, ("zero", "random"))
        if self.max_flows is not None:
            check_int("max_flows", self.max_flows, low=1)
        _trace_path(self.trace)
        load_marllb_trace(self.trace)  # a malformed file fails here, naming the file and line

    def batches(self, rng: np.random.Generator, capacity: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        times, iters = load_marllb_trace(self.trace)
        offset = float(rng.uniform(0.0, 0.5 * times[-1])) if self.start == "random" else 0.0
        t, i0 = _window(times, offset, self.time_scale)
        sizes = iters[i0:] * self.seconds_per_iteration
        if self.max_flows is not None:
            t, sizes = t[: self.max_flows], sizes[: self.max_flows]
        return _ArrayBatches(t, sizes)


@lru_cache(maxsize=8)
def _parse_wikibench(path: str, stamp: tuple[int, int], skip_header: int) -> tuple[np.ndarray, np.ndarray]:
    times: list[float] = []
    is_wiki: list[bool] = []
    for lineno, line in enumerate(_lines(path), start=1):
        if lineno <= skip_header:
            continue
        line = line.strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2:
            raise TraceFormatError(f"{path}:{lineno}: expected '<unix_ts> <url>', got {line!r}")
        try:
            t = float(parts[0])
        except ValueError:
            raise TraceFormatError(f"{path}:{lineno}: timestamp {parts[0]!r} is not a number") from None
        if not math.isfinite(t):
            raise TraceFormatError(f"{path}:{lineno}: timestamp must be finite, got {parts[0]!r}")
        if times and t < times[-1]:
            raise TraceFormatError(f"{path}:{lineno}: timestamp {t} is earlier than the previous {times[-1]}")
        times.append(t)
        is_wiki.append("/wiki/" in parts[1])
    if not times:
        raise TraceFormatError(f"{path}: no requests")
    arr = np.asarray(times)
    return arr - arr[0], np.asarray(is_wiki)


@dataclass(frozen=True)
class WikibenchWorkload:
    """Replay of a Wikibench-style trace: one ``<unix_ts> <url>`` request per line.

    Times are taken relative to the first request. Sizes are drawn per request
    (workload stream): exponential with mean ``wiki_mean_s`` for URLs containing
    ``/wiki/`` (dynamic MediaWiki pages) and ``static_mean_s`` otherwise.

    Args:
        path: trace file.
        wiki_mean_s / static_mean_s: mean CPU-seconds per dynamic / static request.
        skip_header: number of leading lines to skip (MARLLB's client skips 1).
        time_scale: multiply inter-arrival times.
        max_flows: replay at most this many requests.
    """

    path: str
    wiki_mean_s: float = 0.05
    static_mean_s: float = 0.005
    skip_header: int = 0
    time_scale: float = 1.0
    max_flows: int | None = None

    def __post_init__(self) -> None:
        check_positive("wiki_mean_s", self.wiki_mean_s)
        check_positive("static_mean_s", self.static_mean_s)
        check_int("skip_header", self.skip_header, low=0)
        check_positive("time_scale", self.time_scale)
        if self.max_flows is not None:
            check_int("max_flows", self.max_flows, low=1)
        _trace_path(self.path, "path")
        _parse_wikibench(self.path, _stamp(self.path), self.skip_header)  # fails here, naming file and line

    def batches(self, rng: np.random.Generator, capacity: float) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        t, wiki = _parse_wikibench(self.path, _stamp(self.path), self.skip_header)
        if self.max_flows is not None:
            t, wiki = t[: self.max_flows], wiki[: self.max_flows]
        t = t * self.time_scale
        means = np.where(wiki, self.wiki_mean_s, self.static_mean_s)
        sizes = rng.exponential(1.0, len(t)) * means
        return _ArrayBatches(t, sizes)


def make_workload(spec: Workload | dict | str | None) -> Workload:
    """Build a workload from an instance, a dict ``{"kind": ..., **kwargs}`` or a bundled trace name.

    ``kind`` is ``"poisson"``, ``"marllb_trace"`` or ``"wikibench"``. A string is a
    bundled MARLLB trace name. ``None`` gives ``PoissonWorkload()``.
    """
    if spec is None:
        return PoissonWorkload()
    if isinstance(spec, str):
        return MarllbTraceWorkload(trace=spec)
    if isinstance(spec, dict):
        kw = dict(spec)
        kind = check_choice("workload['kind']", kw.pop("kind", "poisson"), ("poisson", "marllb_trace", "wikibench"))
        cls = {"poisson": PoissonWorkload, "marllb_trace": MarllbTraceWorkload, "wikibench": WikibenchWorkload}[kind]
        fields = set(cls.__dataclass_fields__)
        check_keys(f"workload (kind {kind!r})", kw, allowed=fields,
                   required=[f for f, d in cls.__dataclass_fields__.items() if d.default is MISSING
                             and d.default_factory is MISSING])
        return cls(**kw)
    if hasattr(spec, "batches"):
        return spec
    raise TypeError(f"workload must be a Workload, dict, bundled trace name or None, got {type(spec).__name__}")
