"""Backends for the faas_gym envs: ``sim`` (default, seeded request-level model) and ``openfaas`` (real).

:mod:`.base` holds the contract (:class:`~faas_gym.backends.base.FaasBackend`,
:class:`~faas_gym.backends.base.FaasMeasurement`). Only :mod:`.base` and :mod:`.sim`
are on the default import path; :mod:`.openfaas` (Kubernetes scale subresource +
Prometheus) is imported lazily by the env when ``backend="openfaas"`` is asked for,
so ``import faas_gym`` never imports ``kubernetes`` or ``prometheus_api_client``.
Backends never import envs.
"""
