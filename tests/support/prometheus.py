"""Moved to the shipped :mod:`lwmecps_gym.testing.prometheus` (users' tests use it too); re-exported here."""

from lwmecps_gym.testing.prometheus import MISSING_REASON, PrometheusServer, free_port, prometheus_binary  # noqa: F401
