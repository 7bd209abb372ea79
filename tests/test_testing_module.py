"""The shipped mocked backends (lwmecps_gym.testing): a user's own pytest file drives the real
Kubernetes backend and the shm data plane through the plugin's fixtures, end to end."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("kubernetes")
pytest.importorskip("requests")

USER_TEST = textwrap.dedent('''
    import gymnasium as gym
    import numpy as np
    import faas_gym
    import lwmecps_gym


    def test_my_controller_on_a_mocked_cluster(lwmecps_kubernetes, tmp_path):
        env = gym.make("lwmecps-v3", **lwmecps_kubernetes.env_kwargs(tmp_path))
        obs, info = env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step(np.array([3, 1]))  # my controller's action
        env.close()
        assert info["metrics"]["latency_ms"] == 40.0
        assert lwmecps_kubernetes.cluster.deps["lwmecps-testapp-server-bs1"].replicas == 3
        scales = lwmecps_kubernetes.stub.calls("PATCH", r".*/scale")
        assert [c.body["spec"]["replicas"] for c in scales][-2:] == [3, 1]


    def test_my_autoscaler_on_a_mocked_openfaas(faas_openfaas, tmp_path):
        env = gym.make("faas_gym/Autoscaling-v0", initial_replicas=3, **faas_openfaas.env_kwargs(tmp_path, 1.5))
        obs, info = env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step(2)  # +1 replica
        env.close()
        assert faas_openfaas.deployment["spec"]["replicas"] == 4
        assert abs(info["metrics"]["request_rate_rps"] - 21.5) < 1.0  # the exporter's known traffic


    def test_my_policy_over_shared_memory(marllb_shm_env):
        env = marllb_shm_env(num_servers=4)
        obs, info = env.reset(seed=0)
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert obs.shape == env.observation_space.shape
''')


def test_a_users_pytest_file_runs_on_the_shipped_fixtures(tmp_path):
    (tmp_path / "test_user.py").write_text(USER_TEST)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "lwmecps_gym.testing.plugin", "-p", "no:cacheprovider",
         "-o", "addopts=", "test_user.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    # the OpenFaaS test needs the prometheus binary (the README's test command installs it)
    from lwmecps_gym.testing.prometheus import prometheus_binary

    assert ("3 passed" if prometheus_binary() else "2 passed, 1 skipped") in proc.stdout


def test_old_test_support_paths_reexport_the_shipped_module():
    from lwmecps_gym.testing import http_stub, kubernetes, prometheus
    from tests.lwmecps import test_kubernetes_fakes
    from tests.support import http_stub as old_stub
    from tests.support import prometheus as old_prom

    assert old_stub.HttpStub is http_stub.HttpStub
    assert old_prom.PrometheusServer is prometheus.PrometheusServer
    assert test_kubernetes_fakes.FakeCluster is kubernetes.FakeCluster
