"""Backends for the MEC envs: ``sim`` (default, seeded cluster model) and ``kubernetes`` (real cluster).

Only :mod:`.base` and :mod:`.sim` are imported by the envs' default path; the
Kubernetes backend is imported lazily when ``backend="kubernetes"`` is asked for.
"""
