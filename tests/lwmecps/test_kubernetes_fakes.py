"""Moved to the shipped :mod:`lwmecps_gym.testing.kubernetes` (users' tests use it too); re-exported here
(no tests here; named test_kubernetes_* to sit with them)."""

from lwmecps_gym.testing.kubernetes import DEPLOY_RE, NS, FakeCluster, FakeDeployment, FakeTestApp  # noqa: F401
