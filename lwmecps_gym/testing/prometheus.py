"""Start a real Prometheus server on 127.0.0.1 for integration tests.

Usage::

    with PrometheusServer(targets=["127.0.0.1:9101"], scrape_interval_s=1.0) as prom:
        prom.wait_for_series("up")          # first sample takes ~5.5 s (see below)
        requests.get(prom.url + "/api/v1/query", params={"query": "up"})

The server gets a temporary config file and TSDB directory, listens on a free
loopback port only, and is stopped by its own PID (SIGTERM, then SIGKILL after
a grace period) and its directory removed.

Timing facts (Debian prometheus 2.42, measured on this machine): ``/-/ready``
answers after ~0.1 s, but the first scraped sample is only queryable after
~5.5 s whatever the scrape interval, because the scrape manager throttles
target-discovery reloads to one per 5 s. Pay that once per session (a
session-scoped fixture).

If the ``prometheus`` binary is not on PATH, :func:`prometheus_binary` returns
``None`` and callers should ``pytest.skip`` with :data:`MISSING_REASON`.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MISSING_REASON = (
    "the 'prometheus' server binary is not on PATH (Debian/Ubuntu: apt-get install prometheus); "
    "integration tests against a real Prometheus are skipped"
)


def prometheus_binary() -> str | None:
    """Path of the ``prometheus`` executable, or ``None`` when it is not installed."""
    return shutil.which("prometheus")


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get_json(url: str, timeout: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (loopback only)
        return json.loads(resp.read())


class PrometheusServer:
    """A ``prometheus`` child process scraping static loopback targets.

    Args:
        targets: ``host:port`` strings to scrape (must be on 127.0.0.1).
        scrape_interval_s: scrape (and rule evaluation) interval in seconds.
        job: the ``job`` label given to the targets.
        binary: path of the executable; default: ``prometheus`` on PATH.
        startup_timeout_s: how long :meth:`start` waits for ``/-/ready``.
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        scrape_interval_s: float = 1.0,
        job: str = "exporter",
        binary: str | None = None,
        startup_timeout_s: float = 20.0,
    ) -> None:
        for t in targets:
            if not t.startswith("127.0.0.1:"):
                raise ValueError(f"targets must be on 127.0.0.1, got {t!r}")
        self.targets = list(targets)
        self.scrape_interval_s = float(scrape_interval_s)
        self.job = job
        self.binary = binary or prometheus_binary()
        if self.binary is None:
            raise FileNotFoundError(MISSING_REASON)
        self.startup_timeout_s = startup_timeout_s
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._dir: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _write_config(self, directory: Path) -> Path:
        interval = f"{int(round(self.scrape_interval_s * 1000))}ms"
        targets = ", ".join(f'"{t}"' for t in self.targets)
        cfg = (
            "global:\n"
            f"  scrape_interval: {interval}\n"
            f"  evaluation_interval: {interval}\n"
            "scrape_configs:\n"
            f"  - job_name: {self.job}\n"
            f"    scrape_timeout: {interval}\n"
            "    static_configs:\n"
            f"      - targets: [{targets}]\n"
        )
        path = directory / "prometheus.yml"
        path.write_text(cfg)
        return path

    def start(self) -> PrometheusServer:
        """Launch the server and wait until ``/-/ready`` answers 200."""
        self._dir = Path(tempfile.mkdtemp(prefix="lwmecps-prom-"))
        cfg = self._write_config(self._dir)
        self._log = open(self._dir / "prometheus.log", "wb")  # noqa: SIM115 (closed in stop)
        self._proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={self._dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self._dir,
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                log = self.log_text()
                self.stop()
                raise RuntimeError(f"prometheus exited with code {code}: {log[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1.0) as resp:  # noqa: S310
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"prometheus at {self.url} not ready after {self.startup_timeout_s} s")

    def log_text(self) -> str:
        if self._dir is None or not (self._dir / "prometheus.log").exists():
            return ""
        return (self._dir / "prometheus.log").read_text(errors="replace")

    def query(self, promql: str, at: float | None = None) -> list[dict]:
        """Instant query through the HTTP API (stdlib only); returns ``data.result``."""
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        body = _get_json(self.url + "/api/v1/query?" + urllib.parse.urlencode(params))
        if body.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {body}")
        return body["data"]["result"]

    def wait_for_series(self, selector: str, *, min_samples: int = 1, timeout_s: float = 30.0) -> None:
        """Block until the series selector ``selector`` has ``min_samples`` raw samples (in its first series).

        ``min_samples=1`` waits for the first scrape; ``k >= 2`` lets ``rate()`` over the series work.
        ``selector`` must be a plain series selector such as ``up{job="exporter"}``.
        """
        promql = f"count_over_time({selector}[1h])"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                res = self.query(promql)
            except (urllib.error.URLError, OSError, RuntimeError):
                res = []
            if res and float(res[0]["value"][1]) >= min_samples:
                return
            time.sleep(0.2)
        raise TimeoutError(f"no {min_samples} sample(s) of {selector!r} at {self.url} after {timeout_s} s;"
                           f" log: {self.log_text()[-1000:]}")

    def stop(self) -> None:
        """SIGTERM the server by PID (SIGKILL after 10 s), close the log, remove the temp dir."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
