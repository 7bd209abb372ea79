"""Mocked cluster backends for tests of your own agents and controllers (shipped with the library).

Everything listens on 127.0.0.1 only and runs in the test process (threads) or its children:

* :class:`~lwmecps_gym.testing.http_stub.HttpStub`: a loopback HTTP server with routes you define,
  recording every request (method, path, query, headers, JSON body).
* :class:`~lwmecps_gym.testing.kubernetes.MockKubernetes`: a Kubernetes API (nodes, deployments, the
  scale subresource, pods) plus the lwmecps test app's API, ready for
  ``gym.make("lwmecps-v3", backend="kubernetes", **mock.env_kwargs(tmp_dir))``; its parts
  :class:`~lwmecps_gym.testing.kubernetes.FakeCluster` and
  :class:`~lwmecps_gym.testing.kubernetes.FakeTestApp` can be driven directly.
* :class:`~lwmecps_gym.testing.openfaas.MockOpenFaaS`: an OpenFaaS gateway + cAdvisor metrics exporter
  stub scraped by a real Prometheus, and a loopback Kubernetes API for the function's Deployment,
  ready for ``gym.make("faas_gym/Autoscaling-v0", **mock.env_kwargs(tmp_dir))``.
* :class:`~lwmecps_gym.testing.prometheus.PrometheusServer`: a real Prometheus on a free loopback
  port when the ``prometheus`` binary is installed (:func:`~lwmecps_gym.testing.prometheus.prometheus_binary`).
* ``marllb_env``'s ``backend="shm"`` starts its own data-plane emulator (no VPP needed).

Pytest fixtures over these (``lwmecps_kubernetes``, ``faas_openfaas``, ``lwmecps_http_stub``,
``lwmecps_prometheus``, ``marllb_shm_env``) are registered through the ``pytest11`` entry point of the distribution (or
``-p lwmecps_gym.testing.plugin``); see ``docs/testing.md``. The library's own tests use the same
module. Needs the ``k8s`` extra for the Kubernetes client the envs use.
"""

from lwmecps_gym.testing.http_stub import HttpStub, Request, k8s_status
from lwmecps_gym.testing.kubernetes import FakeCluster, FakeTestApp, MockKubernetes
from lwmecps_gym.testing.prometheus import PrometheusServer, prometheus_binary

__all__ = ["FakeCluster", "FakeTestApp", "HttpStub", "MockKubernetes", "PrometheusServer", "Request",
           "k8s_status", "prometheus_binary"]
