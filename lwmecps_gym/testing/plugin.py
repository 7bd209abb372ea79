"""Pytest fixtures over :mod:`lwmecps_gym.testing`, registered as a ``pytest11`` plugin of the
distribution (also loadable with ``pytest -p lwmecps_gym.testing.plugin``).

| fixture | yields |
|---|---|
| ``lwmecps_http_stub`` | a started :class:`~lwmecps_gym.testing.http_stub.HttpStub` |
| ``lwmecps_kubernetes`` | a started :class:`~lwmecps_gym.testing.kubernetes.MockKubernetes`; ``lwmecps_kubernetes.env_kwargs(tmp_path)`` are the ``gym.make`` arguments |
| ``faas_openfaas`` | a started :class:`~lwmecps_gym.testing.openfaas.MockOpenFaaS` (exporter, real Prometheus, loopback Deployment); ``faas_openfaas.env_kwargs(tmp_path)`` are the ``gym.make`` arguments (skips the test without the ``prometheus`` binary) |
| ``lwmecps_prometheus`` | a factory ``start(targets, scrape_interval_s=1.0)`` of real Prometheus servers (skips the test without the binary) |
| ``marllb_shm_env`` | a factory ``make(**kwargs)`` of ``LoadBalanceEnv(backend="shm")`` over the data-plane emulator, closed afterwards |

Everything is stopped at teardown, also when the test fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def lwmecps_http_stub() -> Iterator[Any]:
    from lwmecps_gym.testing.http_stub import HttpStub

    with HttpStub() as stub:
        yield stub


@pytest.fixture
def lwmecps_kubernetes() -> Iterator[Any]:
    pytest.importorskip("kubernetes", reason='needs the k8s extra: pip install -e ".[k8s]"')
    from lwmecps_gym.testing.kubernetes import MockKubernetes

    with MockKubernetes() as mock:
        yield mock


@pytest.fixture
def faas_openfaas() -> Iterator[Any]:
    pytest.importorskip("kubernetes", reason='needs the prometheus extra: pip install -e ".[prometheus]"')
    pytest.importorskip("prometheus_client", reason='needs the test extra: pip install -e ".[test]"')
    from lwmecps_gym.testing.openfaas import MockOpenFaaS
    from lwmecps_gym.testing.prometheus import MISSING_REASON, prometheus_binary

    if prometheus_binary() is None:
        pytest.skip(MISSING_REASON)
    with MockOpenFaaS() as mock:
        yield mock


@pytest.fixture
def lwmecps_prometheus() -> Iterator[Callable[..., Any]]:
    from lwmecps_gym.testing.prometheus import MISSING_REASON, PrometheusServer, prometheus_binary

    if prometheus_binary() is None:
        pytest.skip(MISSING_REASON)
    servers: list[Any] = []

    def start(targets: list[str], scrape_interval_s: float = 1.0, **kwargs: Any) -> Any:
        server = PrometheusServer(targets=targets, scrape_interval_s=scrape_interval_s, **kwargs)
        servers.append(server)
        return server.__enter__()

    yield start
    for server in reversed(servers):
        server.__exit__(None, None, None)


@pytest.fixture
def marllb_shm_env() -> Iterator[Callable[..., Any]]:
    from marllb_env import LoadBalanceEnv

    envs: list[Any] = []

    def make(**kwargs: Any) -> Any:
        env = LoadBalanceEnv(backend="shm", **{"num_servers": 4, **kwargs})
        envs.append(env)
        return env

    yield make
    for env in envs:
        env.close()
