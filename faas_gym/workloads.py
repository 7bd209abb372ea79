"""Request workloads and service-time distributions for the faas_gym simulator.

A :class:`Workload` is an immutable description; :meth:`Workload.stream` starts a seeded
:class:`ArrivalStream` that yields arrival times (for the request-level DES) or per-interval
arrival counts (for the fast fluid model). All times are seconds since the episode start.

Workloads:

* :class:`PoissonWorkload` -- homogeneous Poisson arrivals, ``rate_rps``.
* :class:`DiurnalWorkload` -- non-homogeneous Poisson, sinusoidal day profile.
* :class:`SpikeWorkload` -- Poisson base load with (optionally periodic) bursts.
* :class:`AzureTraceReplay` -- per-minute invocation counts in the Azure Functions 2019 CSV
  format (``HashOwner,HashApp,HashFunction,Trigger,1..1440``), replayed as a Poisson process
  with the minute's rate (so each minute's total matches the trace in expectation).
* :class:`OrcBenchWorkload` -- renewal process whose inter-arrival times follow one of the 25
  OrcBench models fitted to the Azure Functions 2019 trace (package data, see
  ``faas_gym/data/orcbench/README.md`` for licence and units), optionally rescaled in time
  to a target mean rate; bursty (inter-arrival SCV 30-1000).
* :class:`DiurnalModulation` -- thins another workload with a day profile (used by the day
  scenario: an OrcBench model shaped by a diurnal cycle).

Service times (:class:`ServiceTime`): :class:`ExponentialService`, :class:`DeterministicService`,
:class:`LogNormalService`, :class:`EmpiricalService` (e.g. from an OrcBench model's execution
times via :func:`orcbench_service_time`).

Workloads and service times can be given to ``gym.make`` as plain dicts (they survive an
``EnvSpec`` round trip): see :func:`make_workload` and :func:`make_service_time`.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from faas_gym.backends.fluid import bisect_left_compiled, jit
from lwmecps_gym.core import pcg64
from lwmecps_gym.core.validation import (
    check_choice,
    check_float,
    check_int,
    check_keys,
    check_path,
    check_positive,
    decode_text,
)

#: Seconds per OrcBench inter-arrival unit (1/1000 minute; see the data README).
ORCBENCH_IAT_UNIT_S = 0.06
#: OrcBench inter-arrival quantiles at or above this value are a "no further invocation" sentinel.
ORCBENCH_SENTINEL = 1e7
#: Number of shipped OrcBench models (``0-model.json`` .. ``24-model.json``).
N_ORCBENCH_MODELS = 25
DAY_S = 86_400.0


# --------------------------------------------------------------------------- streams
def copy_generator(rng: np.random.Generator) -> np.random.Generator:
    """An independent generator in the same state as ``rng`` (same future draws); ~20 us, about 3x
    cheaper than ``copy.deepcopy``."""
    bg = rng.bit_generator
    twin = bg.__class__(0)
    twin.state = bg.state
    return np.random.Generator(twin)


class ArrivalStream(ABC):
    """A seeded, stateful source of arrivals; time only moves forward."""

    def __init__(self, rng: np.random.Generator, t0: float = 0.0):
        self.rng = rng
        self.t = float(t0)

    def fork(self) -> ArrivalStream:
        """An independent copy in the same state: it yields exactly the arrivals this stream will yield.

        Subclasses keep only immutable arrays (re-assigned, never written in place) besides ``rng``.
        """
        twin = copy.copy(self)
        twin.rng = copy_generator(self.rng)
        return twin

    @abstractmethod
    def arrivals_until(self, t1: float) -> np.ndarray:
        """Sorted ``float64`` arrival times (s) in ``[self.t, t1)``; advances ``self.t`` to ``t1``."""

    def counts(self, interval_s: float, n: int) -> np.ndarray:
        """``int64 (n,)`` arrival counts of the next ``n`` intervals of ``interval_s`` seconds."""
        t0 = self.t
        times = self.arrivals_until(t0 + n * interval_s)
        idx = np.minimum(((times - t0) / interval_s).astype(np.int64), n - 1)
        return np.bincount(idx, minlength=n).astype(np.int64)


class CountsStream(ArrivalStream):
    """Arrivals of given per-window counts (a forecast): window ``k``, ``[t0 + k dt, t0 + (k + 1) dt)``,
    gets ``counts[k]`` arrivals at uniform random times inside it; none after the last window.

    Args:
        counts: non-negative ints, one per window.
        interval_s: window length ``dt``, s.
        rng: draws the arrival times inside each window.
        t0: start of the first window, s.
    """

    def __init__(self, counts, interval_s: float, rng: np.random.Generator, t0: float = 0.0):
        super().__init__(rng, t0)
        parts = [np.sort(rng.uniform(t0 + k * interval_s, t0 + (k + 1) * interval_s, int(n)))
                 for k, n in enumerate(counts)]
        self._times = np.concatenate(parts) if parts else np.empty(0)

    def arrivals_until(self, t1: float) -> np.ndarray:
        t0, self.t = self.t, float(t1)
        times = self._times
        return times[np.searchsorted(times, t0):np.searchsorted(times, t1)]

    def counts(self, interval_s: float, n: int) -> np.ndarray:
        t0 = self.t
        times = self.arrivals_until(t0 + n * interval_s)
        edges = t0 + interval_s * np.arange(1, n + 1)
        return np.diff(np.searchsorted(times, edges, side="left"), prepend=0).astype(np.int64)


class _PoissonStream(ArrivalStream):
    def __init__(self, wl: _PoissonFamily, rng: np.random.Generator, t0: float):
        super().__init__(rng, t0)
        self.wl = wl
        #: expected counts of the intervals returned by the last ``counts`` call
        self.last_means: np.ndarray | None = None

    def arrivals_until(self, t1: float) -> np.ndarray:
        t0, self.t = self.t, float(t1)
        if t1 <= t0:
            return np.empty(0)
        lam_max = self.wl.rate_max()
        n = self.rng.poisson(lam_max * (t1 - t0))
        times = np.sort(self.rng.uniform(t0, t1, n))
        if self.wl.is_constant:
            return times
        keep = self.rng.random(n) * lam_max < self.wl.rate(times)  # Lewis-Shedler thinning (exact NHPP)
        return times[keep]

    def counts(self, interval_s: float, n: int) -> np.ndarray:
        edges = self.t + interval_s * np.arange(n + 1)
        self.t = float(edges[-1])
        means = np.maximum(np.diff(self.wl.cumulative(edges)), 0.0)
        self.last_means = means
        return self.rng.poisson(means).astype(np.int64)


# --------------------------------------------------------------------------- workloads
class Workload(ABC):
    """An arrival process description. Subclasses are frozen dataclasses."""

    kind: str = "workload"

    @abstractmethod
    def stream(self, rng: np.random.Generator, t0: float = 0.0) -> ArrivalStream:
        """Start a seeded arrival stream at time ``t0`` (s)."""

    @abstractmethod
    def mean_rate_rps(self) -> float:
        """Long-run mean arrival rate, requests/s (used for defaults and docs)."""

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that :func:`make_workload` turns back into this workload."""
        d = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        return {"kind": self.kind, **d}


class _PoissonFamily(Workload):
    """Poisson process with a deterministic rate function ``rate(t)`` (requests/s)."""

    is_constant = False

    @abstractmethod
    def rate(self, t: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def cumulative(self, t: np.ndarray) -> np.ndarray:
        """Expected arrivals in ``[0, t]`` (the integrated rate)."""

    @abstractmethod
    def rate_max(self) -> float: ...

    def stream(self, rng: np.random.Generator, t0: float = 0.0) -> ArrivalStream:
        return _PoissonStream(self, rng, t0)


@dataclass(frozen=True)
class PoissonWorkload(_PoissonFamily):
    """Homogeneous Poisson arrivals at ``rate_rps`` requests/s."""

    rate_rps: float = 5.0
    kind = "poisson"
    is_constant = True

    def __post_init__(self):
        check_float("rate_rps", self.rate_rps, low=0.0)

    def rate(self, t):
        return np.full(np.shape(t), float(self.rate_rps))

    def cumulative(self, t):
        return self.rate_rps * np.asarray(t, dtype=float)

    def rate_max(self):
        return float(self.rate_rps)

    def mean_rate_rps(self):
        return float(self.rate_rps)


@dataclass(frozen=True)
class DiurnalWorkload(_PoissonFamily):
    """Poisson arrivals with rate ``mean_rps * (1 + amplitude * cos(2 pi (t - peak_s) / period_s))``.

    ``amplitude`` in [0, 1]; the peak is at ``peak_s`` (default 14:00) and the trough half a
    period later.
    """

    mean_rps: float = 5.0
    amplitude: float = 0.6
    period_s: float = DAY_S
    peak_s: float = 14 * 3600.0
    kind = "diurnal"

    def __post_init__(self):
        check_float("mean_rps", self.mean_rps, low=0.0)
        check_float("amplitude", self.amplitude, low=0.0, high=1.0)
        check_positive("period_s", self.period_s)
        check_float("peak_s", self.peak_s)

    def rate(self, t):
        w = 2 * math.pi / self.period_s
        return self.mean_rps * (1.0 + self.amplitude * np.cos(w * (np.asarray(t, float) - self.peak_s)))

    def cumulative(self, t):
        t = np.asarray(t, float)
        w = 2 * math.pi / self.period_s
        return self.mean_rps * (t + self.amplitude / w * (np.sin(w * (t - self.peak_s)) - math.sin(-w * self.peak_s)))

    def rate_max(self):
        return self.mean_rps * (1.0 + self.amplitude)

    def mean_rate_rps(self):
        return float(self.mean_rps)


@dataclass(frozen=True)
class SpikeWorkload(_PoissonFamily):
    """Poisson base load ``base_rps`` with bursts of ``spike_rps`` (total rate) lasting ``spike_duration_s``.

    The first burst starts at ``spike_start_s``; with ``period_s`` set, bursts repeat every
    ``period_s`` seconds (``period_s > spike_duration_s``).
    """

    base_rps: float = 2.0
    spike_rps: float = 20.0
    spike_start_s: float = 600.0
    spike_duration_s: float = 300.0
    period_s: float | None = None
    kind = "spike"

    def __post_init__(self):
        check_float("base_rps", self.base_rps, low=0.0)
        check_float("spike_rps", self.spike_rps, low=0.0)
        check_float("spike_start_s", self.spike_start_s, low=0.0)
        check_positive("spike_duration_s", self.spike_duration_s)
        if self.period_s is not None:
            check_float("period_s", self.period_s, low=self.spike_duration_s, low_open=True)

    def _in_spike_time(self, t: np.ndarray) -> np.ndarray:
        """Seconds of burst in ``[0, t]``."""
        s = np.maximum(np.asarray(t, float) - self.spike_start_s, 0.0)
        d = self.spike_duration_s
        if self.period_s is None:
            return np.minimum(s, d)
        k, r = np.divmod(s, self.period_s)
        return k * d + np.minimum(r, d)

    def rate(self, t):
        t = np.asarray(t, float)
        s = t - self.spike_start_s
        if self.period_s is not None:
            s = np.where(s >= 0, np.mod(s, self.period_s), s)
        on = (s >= 0) & (s < self.spike_duration_s)
        return np.where(on, self.spike_rps, self.base_rps)

    def cumulative(self, t):
        t = np.asarray(t, float)
        return self.base_rps * t + (self.spike_rps - self.base_rps) * self._in_spike_time(t)

    def rate_max(self):
        return float(max(self.base_rps, self.spike_rps))

    def mean_rate_rps(self):
        if self.period_s is None:
            return float(self.base_rps)
        f = self.spike_duration_s / self.period_s
        return float(self.base_rps * (1 - f) + self.spike_rps * f)


@dataclass(frozen=True)
class AzureTraceReplay(_PoissonFamily):
    """Replay of per-minute invocation counts (Azure Functions 2019 format) as a Poisson process.

    Minute ``m`` (0-based) has rate ``scale * counts[m] / 60`` requests/s; after the last minute
    the trace wraps around (a 1440-minute day repeats). Build it with :meth:`from_csv`.

    Attributes:
        counts_per_minute: per-minute invocation counts (tuple of non-negative ints).
        scale: multiplies every count (e.g. 0.1 to thin a busy function).
        start_minute: minute of the trace played at episode time 0.
    """

    counts_per_minute: tuple = (60,)
    scale: float = 1.0
    start_minute: int = 0
    kind = "azure_trace"

    def __post_init__(self):
        if len(self.counts_per_minute) == 0:
            raise ValueError("counts_per_minute must not be empty")
        c = np.asarray(self.counts_per_minute, dtype=float)
        if not np.all(np.isfinite(c)) or np.any(c < 0):
            raise ValueError("counts_per_minute must be finite and non-negative")
        check_float("scale", self.scale, low=0.0)
        check_int("start_minute", self.start_minute, low=0, high=len(self.counts_per_minute) - 1)
        rates = np.roll(c, -self.start_minute) * self.scale / 60.0
        object.__setattr__(self, "_rates", rates)
        object.__setattr__(self, "_cum", np.concatenate([[0.0], np.cumsum(rates) * 60.0]))

    def to_dict(self):
        return {
            "kind": self.kind,
            "counts_per_minute": list(self.counts_per_minute),
            "scale": self.scale,
            "start_minute": self.start_minute,
        }

    def rate(self, t):
        n = len(self._rates)
        m = (np.asarray(t, float) // 60.0).astype(np.int64) % n
        return self._rates[m]

    def cumulative(self, t):
        t = np.asarray(t, float)
        n = len(self._rates)
        period = 60.0 * n
        k, r = np.divmod(t, period)
        m = np.minimum((r // 60.0).astype(np.int64), n - 1)
        return k * self._cum[-1] + self._cum[m] + self._rates[m] * (r - 60.0 * m)

    def rate_max(self):
        return float(self._rates.max())

    def mean_rate_rps(self):
        return float(self._rates.mean())

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        function: str | int | None = None,
        scale: float = 1.0,
        start_minute: int = 0,
    ) -> AzureTraceReplay:
        """Read ``invocations_per_function_md.anon.dNN.csv`` (or a file in the same format).

        Args:
            path: CSV with header ``HashOwner,HashApp,HashFunction,Trigger,1,2,...,N`` (N = 1440
                in the trace; any N >= 1 is accepted) and one row per function.
            function: which row to replay: a ``HashFunction`` value (or a unique prefix of one),
                a 0-based row index, or ``None`` to sum all rows (the whole file's load).
            scale: multiplies every count.
            start_minute: trace minute played at episode time 0.

        Raises:
            FileNotFoundError: no such file.
            ValueError: malformed header or row (message names the line and column), unknown
                or ambiguous ``function``, or no rows.
        """
        path = check_path("workload['path']", path)  # None, bytes or a missing file: named errors
        counts_rows: list[np.ndarray] = []
        names: list[str] = []
        # decoded strictly: a binary file names itself, the line and the column
        text = decode_text(path.read_bytes(), f"{path}")
        with io.StringIO(text, newline="") as fh:
            reader = csv.reader(fh)
            try:
                header = next(reader)
            except StopIteration:
                raise ValueError(f"{path}: empty file, expected a header line") from None
            header = [h.strip() for h in header]
            want = ["HashOwner", "HashApp", "HashFunction", "Trigger"]
            if header[:4] != want:
                raise ValueError(f"{path}: line 1: header must start with {','.join(want)}, got {','.join(header[:4])}")
            minutes = header[4:]
            if not minutes:
                raise ValueError(f"{path}: line 1: no minute columns after Trigger (expected 1..1440)")
            for j, h in enumerate(minutes, start=1):
                if h != str(j):
                    raise ValueError(f"{path}: line 1: minute column {j + 4} must be named '{j}', got {h!r}")
            for lineno, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(header):
                    raise ValueError(f"{path}: line {lineno}: expected {len(header)} fields, got {len(row)}")
                vals = np.empty(len(minutes), dtype=np.int64)
                for j, cell in enumerate(row[4:]):
                    cell = cell.strip()
                    try:
                        v = int(cell)
                    except ValueError:
                        try:
                            fv = float(cell)
                        except ValueError:
                            fv = float("nan")
                        if not (math.isfinite(fv) and fv == int(fv)):
                            raise ValueError(
                                f"{path}: line {lineno}: minute {j + 1}: expected a non-negative integer count, got {cell!r}"
                            ) from None
                        v = int(fv)
                    if v < 0:
                        raise ValueError(f"{path}: line {lineno}: minute {j + 1}: negative count {v}")
                    vals[j] = v
                counts_rows.append(vals)
                names.append(row[2].strip())
        if not counts_rows:
            raise ValueError(f"{path}: no data rows after the header")
        if function is None:
            counts = np.sum(counts_rows, axis=0)
        elif isinstance(function, (int, np.integer)) and not isinstance(function, bool):
            check_int("function", function, low=0, high=len(counts_rows) - 1)
            counts = counts_rows[int(function)]
        elif isinstance(function, str):
            hits = [i for i, n in enumerate(names) if n == function] or [
                i for i, n in enumerate(names) if n.startswith(function)
            ]
            if not hits:
                raise ValueError(f"{path}: function {function!r} is not a HashFunction in the file")
            if len(hits) > 1:
                raise ValueError(f"{path}: function {function!r} matches {len(hits)} rows; give a longer prefix")
            counts = counts_rows[hits[0]]
        else:
            raise TypeError(f"function must be a HashFunction string, a row index or None, got {function!r}")
        return cls(tuple(int(c) for c in counts), scale=scale, start_minute=start_minute)


# --------------------------------------------------------------------------- OrcBench
def _orcbench_file(model: int) -> Any:
    return resources.files("faas_gym.data.orcbench").joinpath(f"{model}-model.json")


def _check_quantiles(values: Any, key: str, where: str) -> np.ndarray:
    if not isinstance(values, list) or not values:
        raise ValueError(f"{where}: {key!r} must be a non-empty list of numbers")
    try:
        a = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: {key!r} must contain only numbers") from None
    if a.ndim != 1 or not np.all(np.isfinite(a)) or np.any(a <= 0):
        bad = int(np.argmax(~np.isfinite(a) | (a <= 0))) if a.ndim == 1 else 0
        raise ValueError(f"{where}: {key!r}[{bad}] must be a finite positive number, got {values[bad]!r}")
    if np.any(np.diff(a) < 0):
        bad = int(np.argmax(np.diff(a) < 0)) + 1
        raise ValueError(f"{where}: {key!r} must be sorted ascending (quantiles); {key}[{bad}] < {key}[{bad - 1}]")
    return a


def parse_orcbench_model(text: str, where: str = "<model>") -> dict[str, Any]:
    """Parse and check one OrcBench model JSON.

    Returns:
        dict with ``iat_s`` (inter-arrival quantiles, s, sentinel removed), ``service_s``
        (execution-time quantiles, s), ``memory_mb`` (quantiles, MB), ``num_functions`` (int).

    Raises:
        ValueError: invalid JSON (with line/column), missing keys, non-numeric, non-positive or
            unsorted quantiles.
    """
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(d, dict):
        raise ValueError(f"{where}: expected a JSON object with keys inverse_ecdf, cpu, mbs, num_functions")
    missing = [k for k in ("inverse_ecdf", "cpu", "mbs", "num_functions") if k not in d]
    if missing:
        raise ValueError(f"{where}: missing keys {missing}")
    iat = _check_quantiles(d["inverse_ecdf"], "inverse_ecdf", where)
    iat = iat[iat < ORCBENCH_SENTINEL]
    if iat.size == 0:
        raise ValueError(f"{where}: 'inverse_ecdf' has only sentinel values (>= 1e7)")
    nf = d["num_functions"]
    if isinstance(nf, bool) or not isinstance(nf, int) or nf < 1:
        raise ValueError(f"{where}: 'num_functions' must be a positive integer, got {nf!r}")
    return {
        "iat_s": iat * ORCBENCH_IAT_UNIT_S,
        "service_s": _check_quantiles(d["cpu"], "cpu", where) / 1000.0,
        "memory_mb": _check_quantiles(d["mbs"], "mbs", where),
        "num_functions": nf,
    }


@lru_cache(maxsize=N_ORCBENCH_MODELS)
def load_orcbench_model(model: int) -> dict[str, Any]:
    """Load shipped OrcBench model ``model`` (0..24); see :func:`parse_orcbench_model` for the keys."""
    check_int("model", model, low=0, high=N_ORCBENCH_MODELS - 1)
    f = _orcbench_file(model)
    return parse_orcbench_model(f.read_text(), where=f"{model}-model.json")


@jit(cache=True)
def _renewal_times(iat, idx, nxt, times):
    """Fill ``times`` (``float64 (n,)``) with the next ``n`` arrivals of a renewal process whose first
    arrival is at ``nxt``, gaps ``g = iat[idx]`` (``idx`` ``int64 (n,)``): ``times[k] = nxt + (g_0 +
    ... + g_{k-1})`` summed in order (as ``numpy.cumsum``); returns the arrival after them,
    ``times[n - 1] + g_{n - 1}``. Compiled (numba) where available."""
    n = times.shape[0]
    acc = 0.0
    for k in range(n):
        times[k] = acc + nxt
        acc += iat[idx[k]]
    return times[n - 1] + iat[idx[n - 1]]


class _RenewalStream(ArrivalStream):
    def __init__(self, iat_s: np.ndarray, cum: np.ndarray, mean: float, rng: np.random.Generator, t0: float):
        super().__init__(rng, t0)
        self.iat = iat_s
        self.mean = mean
        # stationary start (equilibrium renewal process): the interval covering t0 is length-biased
        # (drawn with probability proportional to its length) and t0 falls uniformly inside it.
        covering = iat_s[min(int(np.searchsorted(cum, rng.random() * cum[-1])), len(iat_s) - 1)]
        self._next = t0 + rng.random() * covering
        self._buf = np.empty(0)

    def arrivals_until(self, t1: float) -> np.ndarray:
        self.t = float(t1)
        parts = []
        if self._buf.size:
            cut = np.searchsorted(self._buf, t1)
            parts.append(self._buf[:cut])
            self._buf = self._buf[cut:]
            if self._buf.size:
                return parts[0]
        nxt = self._next
        while nxt < t1:
            n = int(max(64, 1.25 * (t1 - nxt) / self.mean))
            times = np.empty(n)
            nxt = float(_renewal_times(self.iat, self.rng.integers(0, len(self.iat), n), nxt, times))
            cut = np.searchsorted(times, t1)
            parts.append(times[:cut])
            if cut < n:
                self._buf = times[cut:]
                break
        self._next = nxt
        return np.concatenate(parts) if parts else np.empty(0)

    def counts(self, interval_s: float, n: int) -> np.ndarray:
        # same arrivals as ``arrivals_until`` (identical draws); compiled where numba is: the draws,
        # the batches' running sums and the counting in one pass, no array of arrival times
        t0 = self.t
        if not pcg64.AVAILABLE:
            times = self.arrivals_until(t0 + n * interval_s)
            return _interval_counts(times, t0, interval_s, n)
        st = pcg64.new_states(1)
        bitgen = self.rng.bit_generator
        pcg64.get_state(bitgen, st, 0)
        out = np.empty(n, dtype=np.int64)
        buf, nxt, drawn = renewal_counts_eager(st, self._buf, self._next, self.iat, self.mean, t0, interval_s, n, out)
        if drawn:
            pcg64.set_state(st[0], bitgen)
        self._buf = buf
        self._next = float(nxt)
        self.t = float(t0 + n * interval_s)
        return out

    def export_state(self, st: np.ndarray, rf: np.ndarray, ri: np.ndarray, i: int) -> None:
        """Write this stream's state into row ``i`` of the compiled renewal streams' arrays (see
        :func:`renewal_counts`): ``st`` its generator (:func:`lwmecps_gym.core.pcg64.get_state`), ``rf`` /
        ``ri`` the next arrival and the stream time. Only while no drawn arrival is buffered (e.g. a
        fresh stream): then the next batch of draws starts at the next arrival.

        Raises:
            RuntimeError: arrivals beyond the stream time are buffered.
        """
        if self._buf.size:
            raise RuntimeError("export_state needs a stream without buffered arrivals (e.g. a fresh one)")
        pcg64.get_state(self.rng.bit_generator, st, i)
        rf[i] = (self._next, 0.0, 0.0, self.t)
        ri[i] = -1


@jit(cache=True)
def _interval_counts(times, t0, interval_s, n):
    """``int64 (n,)``: how many of the sorted ``times`` fall in each ``[t0 + k dt, t0 + (k + 1) dt)``,
    the edges ``t0 + dt * (k + 1)`` computed as ``t0 + dt * numpy.arange(1, n + 1)`` (so
    ``numpy.diff(numpy.searchsorted(times, edges), prepend=0)``, in one pass). Compiled where available."""
    out = np.zeros(n, dtype=np.int64)
    j = 0
    prev = 0
    for k in range(n):
        edge = t0 + interval_s * (k + 1)
        while j < times.shape[0] and times[j] < edge:
            j += 1
        out[k] = j - prev
        prev = j
    return out


# --------------------------------------------------------------------------- compiled renewal streams
# The native vector env's copy of ``_RenewalStream.counts`` (tests/faas/test_compiled_streams.py holds
# them equal): the same draws from the same generator (lwmecps_gym.core.pcg64 re-states numpy's PCG64), the
# same batches of ``int(max(64, 1.25 * (t1 - next) / mean))`` gaps summed from each batch's start, but
# drawn lazily, one arrival ahead, so no buffer of arrival times is kept. State of stream ``i``:
# ``rf[i] = (next arrival, batch start, running sum of the batch's gaps, stream time)``,
# ``ri[i]`` = times of the current batch still to come (-1: the next arrival starts a new batch).
if pcg64.AVAILABLE:

    @jit
    def renewal_start(st, i, iat, cum, rf, ri, t0):
        """Start compiled renewal stream ``i`` at ``t0`` like ``_RenewalStream.__init__`` (two draws from
        generator row ``i`` of ``st``: the length-biased covering gap and the position inside it)."""
        u = pcg64.next_double(st, i) * cum[cum.shape[0] - 1]
        k = bisect_left_compiled(cum, u)
        covering = iat[min(k, iat.shape[0] - 1)]
        rf[i, 0] = t0 + pcg64.next_double(st, i) * covering
        rf[i, 1] = 0.0
        rf[i, 2] = 0.0
        rf[i, 3] = t0
        ri[i] = -1

    @jit
    def renewal_counts_eager(st, buf, nxt, iat, mean, t0, dt, n, out):
        """``_RenewalStream.counts(dt, n)`` compiled, for the single env: the same batches drawn whole
        (generator row 0 of ``st``), the same buffer of drawn arrivals beyond the window. ``buf`` /
        ``nxt``: the stream's buffered arrivals and the start of its next batch; ``t0`` its time.
        Fills ``out[:n]``; returns ``(new buffer, new next, whether anything was drawn)``."""
        t1 = t0 + n * dt
        n_iat = iat.shape[0]
        for k in range(n):
            out[k] = 0
        q = 0
        edge = t0 + dt * (q + 1)
        j = 0
        while j < buf.shape[0] and buf[j] < t1:
            while buf[j] >= edge:
                q += 1
                edge = t0 + dt * (q + 1)
            out[q] += 1
            j += 1
        if j < buf.shape[0]:
            return buf[j:].copy(), nxt, False
        rest = np.empty(0)
        drawn = False
        s = pcg64.load(st, 0)
        while nxt < t1:
            nb = int(max(64.0, 1.25 * (t1 - nxt) / mean))
            times = np.empty(nb)
            acc = 0.0
            g = 0.0
            for k in range(nb):  # _renewal_times on rng.integers(0, len(iat), nb)
                times[k] = acc + nxt
                s, u = pcg64.bounded32(s, n_iat)
                g = iat[u]
                acc += g
            drawn = True
            nxt = times[nb - 1] + g
            k = 0
            while k < nb and times[k] < t1:
                while times[k] >= edge:
                    q += 1
                    edge = t0 + dt * (q + 1)
                out[q] += 1
                k += 1
            if k < nb:
                rest = times[k:].copy()
                break
        pcg64.store(st, 0, s)
        return rest, nxt, drawn

    @jit
    def _arrivals_before(s, nxt, start, acc, left, edge, t1, iat, mean):
        """Consume a compiled renewal stream's arrivals before ``edge`` inside a request ending at ``t1``
        (which sizes new batches). Returns the new ``(generator state tuple, next arrival, batch start,
        running sum, batch times to come, arrivals consumed)``."""
        n_iat = iat.shape[0]
        c = 0
        while nxt < edge:
            c += 1
            if left < 0:  # a new batch starts at this arrival
                left = int(max(64.0, 1.25 * (t1 - nxt) / mean)) - 1
                start = nxt
                acc = 0.0
            if left == 0:  # the batch's last gap: the next batch starts after it
                s, u = pcg64.bounded32(s, n_iat)
                nxt = nxt + iat[u]
                left = -1
                continue
            s, u = pcg64.bounded32(s, n_iat)
            acc += iat[u]
            nxt = acc + start
            left -= 1
            while left > 0 and nxt < edge:  # the common case, without the branches above
                c += 1
                s, u = pcg64.bounded32(s, n_iat)
                acc += iat[u]
                nxt = acc + start
                left -= 1
        return s, nxt, start, acc, left, c

    @jit
    def renewal_counts(st, rows, iat, mean, rf, ri, dt, n, piece, out):
        """``out[j, :n]`` <- the next ``n`` per-interval arrival counts (intervals of ``dt`` s) of
        compiled renewal stream ``rows[j]``, requested ``piece`` intervals at a time (as
        ``_RenewalStream.counts(dt, piece)`` calls; the last piece shorter)."""
        for j in range(rows.shape[0]):
            i = rows[j]
            nxt = rf[i, 0]
            start = rf[i, 1]
            acc = rf[i, 2]
            t0 = rf[i, 3]
            left = ri[i]
            s = pcg64.load(st, i)
            k = 0
            while k < n:
                m = min(piece, n - k)
                t1 = t0 + m * dt
                for q in range(m):
                    s, nxt, start, acc, left, c = _arrivals_before(s, nxt, start, acc, left, t0 + dt * (q + 1), t1,
                                                                   iat, mean)
                    out[j, k + q] = c
                t0 = t1
                k += m
            pcg64.store(st, i, s)
            rf[i, 0] = nxt
            rf[i, 1] = start
            rf[i, 2] = acc
            rf[i, 3] = t0
            ri[i] = left

    @jit
    def thin_counts(st, rows, counts, keep):
        """``counts[j, k] <- Binomial(counts[j, k], keep[k])`` drawn from generator row ``rows[j]`` of ``st``
        in order (:meth:`_ThinnedStream.thin` compiled; needs :data:`lwmecps_gym.core.pcg64.BINOMIAL`)."""
        for j in range(rows.shape[0]):
            i = rows[j]
            s = pcg64.load(st, i)
            for k in range(keep.shape[0]):
                s, counts[j, k] = pcg64.binomial(s, counts[j, k], keep[k])
            pcg64.store(st, i, s)

    @jit(inline=True)
    def renewal_interval(st, i, iat, mean, rf, ri, q, length, dt):
        """The arrivals of interval ``q`` of the current request (chunk) of ``length`` intervals of
        compiled renewal stream ``i``, requested whole (as one ``_RenewalStream.counts(dt, length)``
        call) but drawn one interval at a time: nothing is drawn for the intervals an episode never
        reaches. ``rf[i, 3]`` stays the request's start until its last interval is counted."""
        t0 = rf[i, 3]
        t1 = t0 + length * dt
        s, nxt, start, acc, left, c = _arrivals_before(pcg64.load(st, i), rf[i, 0], rf[i, 1], rf[i, 2], ri[i],
                                                       t0 + dt * (q + 1), t1, iat, mean)
        pcg64.store(st, i, s)
        rf[i, 0] = nxt
        rf[i, 1] = start
        rf[i, 2] = acc
        ri[i] = left
        if q + 1 == length:
            rf[i, 3] = t1
        return c


@dataclass(frozen=True)
class OrcBenchWorkload(Workload):
    """Renewal arrivals with inter-arrival times from OrcBench model ``model`` (Azure Functions 2019).

    Inter-arrival times are drawn i.i.d. by inverse-transform sampling from the model's 2000
    quantiles (unit 0.06 s, sentinel removed). The trace's per-function rates are low (model 0:
    one request every 3.1 s on average); ``mean_rps`` rescales time so that the long-run mean
    rate is ``mean_rps`` while keeping the shape (burstiness, SCV) of the inter-arrival
    distribution. ``mean_rps=None`` keeps the trace's own time scale.
    """

    model: int = 0
    mean_rps: float | None = 8.0
    kind = "orcbench"

    def __post_init__(self):
        check_int("model", self.model, low=0, high=N_ORCBENCH_MODELS - 1)
        if self.mean_rps is not None:
            check_positive("mean_rps", self.mean_rps)

    def iat_s(self) -> np.ndarray:
        """Inter-arrival quantiles after rescaling, s (cached; do not modify)."""
        cached = self.__dict__.get("_iat")
        if cached is None:
            iat = load_orcbench_model(self.model)["iat_s"]
            if self.mean_rps is not None:
                iat = iat * (1.0 / (self.mean_rps * iat.mean()))
            iat.setflags(write=False)
            cached = (iat, np.cumsum(iat))
            object.__setattr__(self, "_iat", cached)
        return cached[0]

    def mean_rate_rps(self):
        return 1.0 / float(self.iat_s().mean())

    def renewal_tables(self) -> tuple[np.ndarray, np.ndarray, float]:
        """``(iat_s, cumsum(iat_s), mean gap s)``: what a stream of this workload draws from (cached; do
        not modify)."""
        iat = self.iat_s()
        cum = self.__dict__["_iat"][1]
        return iat, cum, float(cum[-1]) / len(iat)

    def stream(self, rng: np.random.Generator, t0: float = 0.0) -> ArrivalStream:
        return _RenewalStream(*self.renewal_tables(), rng, t0)


class _ThinnedStream(ArrivalStream):
    def __init__(self, base: ArrivalStream, wl: DiurnalModulation, rng: np.random.Generator, t0: float):
        super().__init__(rng, t0)
        self.base = base
        self.wl = wl

    def fork(self) -> ArrivalStream:
        twin = super().fork()
        twin.base = self.base.fork()
        return twin

    def arrivals_until(self, t1: float) -> np.ndarray:
        self.t = float(t1)
        times = self.base.arrivals_until(t1)
        return times[self.rng.random(times.size) < self.wl.keep_probability(times)]

    def counts(self, interval_s: float, n: int) -> np.ndarray:
        """Per-interval counts of the thinned process without thinning every arrival: interval ``k``
        keeps ``Binomial(N_k, p_k)`` of the base's ``N_k`` arrivals, with ``p_k`` the keep probability
        averaged over the interval (:meth:`DiurnalModulation.mean_keep_probability`).

        Exact in the mean for a stationary base (its arrivals fall uniformly within an interval on
        average); conditional on the base's arrival times the exact kept count is a sum of
        Bernoulli(``p(t_i)``), whose variance differs from the binomial's by at most
        ``N_k * (Delta p)^2 / 4`` with ``Delta p`` the change of ``p`` within the interval
        (<= 1.6e-3 for the day scenario's 60 s intervals: < 1e-6 relative). ``arrivals_until``
        (the DES) still thins every arrival.
        """
        # the base counted 16 intervals at a time: cache-sized arrays (~1.5x faster for the day
        # scenario's ~1000 base arrivals per interval); the same draws, only the running sum of the
        # gaps restarts its rounding at each piece
        base = np.concatenate([self.base.counts(interval_s, min(16, n - i)) for i in range(0, n, 16)])
        return self.thin(base, interval_s)

    def thin(self, base_counts: np.ndarray, interval_s: float) -> np.ndarray:
        """The kept counts (``int64``) of the next ``len(base_counts)`` intervals given the base's counts
        in them (the second half of :meth:`counts`; the native vector env draws the base's counts
        compiled, ``base`` requested 16 intervals at a time)."""
        keep, self.t = self.wl.interval_keep_probabilities(self.t, interval_s, base_counts.shape[0])
        return self.rng.binomial(base_counts, keep).astype(np.int64)

    def export_thinning(self, st: np.ndarray, i: int) -> float:
        """Write the generator of the thinning (:meth:`thin`'s binomials) into row ``i`` of ``st``
        (:func:`lwmecps_gym.core.pcg64.get_state`) and return the stream time: what :func:`thin_counts` needs."""
        pcg64.get_state(self.rng.bit_generator, st, i)
        return self.t


@dataclass(frozen=True)
class DiurnalModulation(Workload):
    """Thin ``base`` with a day profile: an arrival at ``t`` is kept with probability
    ``(1 + amplitude * cos(2 pi (t - peak_s) / period_s)) / (1 + amplitude)``.

    The base rate is the rate at the daily peak; the mean rate is ``base / (1 + amplitude)``.
    ``base`` is a Workload or a dict for :func:`make_workload`.
    """

    base: Any = field(default_factory=lambda: OrcBenchWorkload(0, 16.0))
    amplitude: float = 0.6
    period_s: float = DAY_S
    peak_s: float = 14 * 3600.0
    kind = "diurnal_modulation"

    def __post_init__(self):
        object.__setattr__(self, "base", make_workload(self.base))
        check_float("amplitude", self.amplitude, low=0.0, high=1.0)
        check_positive("period_s", self.period_s)

    def keep_probability(self, t: np.ndarray) -> np.ndarray:
        w = 2 * math.pi / self.period_s
        return (1.0 + self.amplitude * np.cos(w * (t - self.peak_s))) / (1.0 + self.amplitude)

    def mean_keep_probability(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """Time-average of :meth:`keep_probability` over each ``[t0, t1)`` (``t1 > t0``, s), in closed form."""
        w = 2 * math.pi / self.period_s
        a = self.amplitude
        span = np.sin(w * (t1 - self.peak_s)) - np.sin(w * (t0 - self.peak_s))
        return (1.0 + a * span / (w * (t1 - t0))) / (1.0 + a)

    def interval_keep_probabilities(self, t0: float, interval_s: float, n: int) -> tuple[np.ndarray, float]:
        """``(p, t1)``: :meth:`mean_keep_probability` of the ``n`` intervals of ``interval_s`` s from ``t0``
        (``float64 (n,)``) and the end of the last one, ``t0 + interval_s * n`` (s)."""
        edges = t0 + interval_s * np.arange(n + 1)
        return self.mean_keep_probability(edges[:-1], edges[1:]), float(edges[-1])

    def mean_rate_rps(self):
        return self.base.mean_rate_rps() / (1.0 + self.amplitude)

    def to_dict(self):
        return {
            "kind": self.kind,
            "base": self.base.to_dict(),
            "amplitude": self.amplitude,
            "period_s": self.period_s,
            "peak_s": self.peak_s,
        }

    def stream(self, rng: np.random.Generator, t0: float = 0.0) -> ArrivalStream:
        # children seeded from draws of ``rng`` (not ``rng.spawn``, which ignores a re-set state)
        base_rng = np.random.default_rng(int(rng.integers(0, 2**63 - 1)))
        own = np.random.default_rng(int(rng.integers(0, 2**63 - 1)))
        return _ThinnedStream(self.base.stream(base_rng, t0), self, own, t0)


WORKLOAD_KINDS: dict[str, type[Workload]] = {
    "poisson": PoissonWorkload,
    "diurnal": DiurnalWorkload,
    "spike": SpikeWorkload,
    "azure_trace": AzureTraceReplay,
    "orcbench": OrcBenchWorkload,
    "diurnal_modulation": DiurnalModulation,
}


def make_workload(spec: Workload | Mapping[str, Any]) -> Workload:
    """Return a :class:`Workload` from an instance or a dict ``{"kind": ..., **fields}``.

    ``{"kind": "azure_trace", "path": "...csv", "function": ..., "scale": ...}`` reads a CSV.

    Raises:
        ValueError: unknown kind or fields (names the allowed ones).
    """
    if isinstance(spec, Workload):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(f"workload must be a Workload or a dict with a 'kind', got {type(spec).__name__}")
    spec = dict(spec)
    kind = check_choice("workload['kind']", spec.pop("kind", None), WORKLOAD_KINDS)
    cls = WORKLOAD_KINDS[kind]
    if kind == "azure_trace" and "path" in spec:
        check_keys("workload", spec, allowed={"path", "function", "scale", "start_minute"})
        return AzureTraceReplay.from_csv(**spec)
    allowed = {k for k in cls.__dataclass_fields__}
    check_keys(f"workload (kind {kind!r})", spec, allowed=allowed)
    if kind == "azure_trace" and "counts_per_minute" in spec:
        spec["counts_per_minute"] = tuple(spec["counts_per_minute"])
    return cls(**spec)


# --------------------------------------------------------------------------- service times
class ServiceTime(ABC):
    """Distribution of a request's execution time on a warm replica, seconds."""

    kind: str = "service"

    @abstractmethod
    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``float64 (n,)`` service times, s."""

    @property
    @abstractmethod
    def mean_s(self) -> float: ...

    @property
    @abstractmethod
    def scv(self) -> float:
        """Squared coefficient of variation (variance / mean^2)."""

    def quantiles(self, k: int = 32) -> np.ndarray:
        """``k`` mid-point quantiles (used by the fluid model's tail estimate)."""
        return self._ppf((np.arange(k) + 0.5) / k)

    @abstractmethod
    def _ppf(self, p: np.ndarray) -> np.ndarray: ...

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **{k: v for k, v in self.__dict__.items() if not k.startswith("_")}}


@dataclass(frozen=True)
class ExponentialService(ServiceTime):
    """Exponential service times with mean ``mean`` seconds (the M/M/c case)."""

    mean: float = 0.5
    kind = "exponential"

    def __post_init__(self):
        check_positive("mean", self.mean)

    def sample(self, rng, n):
        return rng.exponential(self.mean, n)

    @property
    def mean_s(self):
        return float(self.mean)

    @property
    def scv(self):
        return 1.0

    def _ppf(self, p):
        return -self.mean * np.log1p(-p)


@dataclass(frozen=True)
class DeterministicService(ServiceTime):
    """Every request takes ``value`` seconds."""

    value: float = 0.5
    kind = "deterministic"

    def __post_init__(self):
        check_positive("value", self.value)

    def sample(self, rng, n):
        return np.full(n, float(self.value))

    @property
    def mean_s(self):
        return float(self.value)

    @property
    def scv(self):
        return 0.0

    def _ppf(self, p):
        return np.full(np.shape(p), float(self.value))


@dataclass(frozen=True)
class LogNormalService(ServiceTime):
    """Log-normal service times with the given ``mean`` (s) and coefficient of variation ``cv``."""

    mean: float = 0.5
    cv: float = 1.0
    kind = "lognormal"

    def __post_init__(self):
        check_positive("mean", self.mean)
        check_positive("cv", self.cv)
        s2 = math.log1p(self.cv**2)
        object.__setattr__(self, "_sigma", math.sqrt(s2))
        object.__setattr__(self, "_mu", math.log(self.mean) - s2 / 2)

    def sample(self, rng, n):
        return rng.lognormal(self._mu, self._sigma, n)

    @property
    def mean_s(self):
        return float(self.mean)

    @property
    def scv(self):
        return float(self.cv**2)

    def _ppf(self, p):
        from scipy.special import ndtri

        return np.exp(self._mu + self._sigma * ndtri(p))


@dataclass(frozen=True)
class EmpiricalService(ServiceTime):
    """Service times drawn uniformly from ``values`` (s), e.g. the 2000 quantiles of an OrcBench model."""

    values: tuple = (0.5,)
    kind = "empirical"

    def __post_init__(self):
        a = np.sort(np.asarray(self.values, dtype=float))
        if a.size == 0 or not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError("values must be a non-empty sequence of finite positive seconds")
        object.__setattr__(self, "_a", a)

    def sample(self, rng, n):
        return self._a[rng.integers(0, self._a.size, n)]

    @property
    def mean_s(self):
        return float(self._a.mean())

    @property
    def scv(self):
        return float(self._a.var() / self._a.mean() ** 2)

    def _ppf(self, p):
        return self._a[np.minimum((np.asarray(p) * self._a.size).astype(np.int64), self._a.size - 1)]

    def to_dict(self):
        return {"kind": self.kind, "values": [float(v) for v in self._a]}


def orcbench_service_time(model: int = 0, max_s: float | None = 10.0, min_s: float = 0.001) -> EmpiricalService:
    """Execution times of OrcBench model ``model`` (ms in the file, returned in s), clipped to ``[min_s, max_s]``.

    The trace's tail reaches the 10-minute Azure limit; the default ``max_s=10`` keeps the
    simulated function interactive (model 0: mean 1.63 s, SCV 3.1 after clipping at 10 s;
    the simulator default clips at 5 s: mean 1.17 s).
    """
    s = load_orcbench_model(model)["service_s"]
    s = np.clip(s, min_s, max_s if max_s is not None else np.inf)
    return EmpiricalService(tuple(float(v) for v in s))


SERVICE_KINDS: dict[str, type[ServiceTime]] = {
    "exponential": ExponentialService,
    "deterministic": DeterministicService,
    "lognormal": LogNormalService,
    "empirical": EmpiricalService,
}


def make_service_time(spec: ServiceTime | Mapping[str, Any]) -> ServiceTime:
    """Return a :class:`ServiceTime` from an instance or a dict ``{"kind": ..., **fields}``.

    ``{"kind": "orcbench", "model": 0, "max_s": 10}`` gives :func:`orcbench_service_time`.
    """
    if isinstance(spec, ServiceTime):
        return spec
    if not isinstance(spec, Mapping):
        raise TypeError(f"service_time must be a ServiceTime or a dict with a 'kind', got {type(spec).__name__}")
    spec = dict(spec)
    kind = check_choice("service_time['kind']", spec.pop("kind", None), [*SERVICE_KINDS, "orcbench"])
    if kind == "orcbench":
        check_keys("service_time (kind 'orcbench')", spec, allowed={"model", "max_s", "min_s"})
        return orcbench_service_time(**spec)
    cls = SERVICE_KINDS[kind]
    check_keys(f"service_time (kind {kind!r})", spec, allowed=set(cls.__dataclass_fields__))
    if "values" in spec:
        spec["values"] = tuple(spec["values"])
    return cls(**spec)


def orcbench_memory_mb(model: int = 0) -> float:
    """Median allocated memory of the apps in OrcBench model ``model``, MB."""
    return float(np.median(load_orcbench_model(model)["memory_mb"]))
