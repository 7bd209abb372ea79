"""Moved to the shipped :mod:`lwmecps_gym.testing.http_stub` (users' tests use it too); re-exported here."""

from lwmecps_gym.testing.http_stub import Handler, HttpStub, Request, k8s_status  # noqa: F401
