"""Suite-wide pytest configuration: the Python blocks of README.md and docs/ run as tests.

pytest-markdown-docs (``--markdown-docs`` in ``pyproject.toml``) turns every ```` ```python ````
block of the Markdown files under ``testpaths`` into a test. A block that needs a real system
starts with a comment line ``# needs: <system>``; it runs only where that system is reachable
and is skipped with the reason otherwise:

| ``# needs:`` | runs when |
|---|---|
| ``kubernetes`` | ``KUBECONFIG`` names a kubeconfig file and ``LWMECPS_DOCS_LIVE=1`` |
| ``openfaas`` | as ``kubernetes``, plus ``FAAS_GYM_LIVE_FUNCTION`` is set |
| ``vpp`` | MARLLB's VPP data plane has its region ``/dev/shm/shm_vip_1`` and ``LWMECPS_DOCS_LIVE=1`` |

(``LWMECPS_DOCS_LIVE=1`` keeps a developer's everyday kubeconfig from being scaled by the suite.)
"""

from __future__ import annotations

import os
import re

import pytest

_NEEDS = re.compile(r"^\s*#\s*needs:\s*([a-z0-9_-]+)", re.MULTILINE)


def _live() -> bool:
    return os.environ.get("LWMECPS_DOCS_LIVE") == "1"


def _kube() -> bool:
    return _live() and os.path.isfile(os.path.expanduser(os.environ.get("KUBECONFIG", "")))


REQUIREMENTS = {
    "kubernetes": (_kube, "needs a Kubernetes cluster (set KUBECONFIG and LWMECPS_DOCS_LIVE=1)"),
    "openfaas": (
        lambda: _kube() and bool(os.environ.get("FAAS_GYM_LIVE_FUNCTION")),
        "needs an OpenFaaS cluster with Prometheus (set KUBECONFIG, FAAS_GYM_LIVE_FUNCTION, LWMECPS_DOCS_LIVE=1)",
    ),
    "vpp": (
        lambda: _live() and os.path.exists("/dev/shm/shm_vip_1"),
        "needs MARLLB's VPP data plane (/dev/shm/shm_vip_1) and LWMECPS_DOCS_LIVE=1",
    ),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        code = getattr(item, "code", None)
        if not isinstance(code, str) or "markdown-docs" not in item.keywords:
            continue
        item.add_marker(pytest.mark.docs)
        first = code.lstrip().splitlines()[0] if code.strip() else ""
        m = _NEEDS.match(first)
        if m is None:
            continue
        need = m.group(1)
        if need not in REQUIREMENTS:
            raise pytest.UsageError(
                f"{item.nodeid}: unknown '# needs: {need}'; known: {sorted(REQUIREMENTS)} (see conftest.py)"
            )
        available, reason = REQUIREMENTS[need]
        if not available():
            item.add_marker(pytest.mark.skip(reason=reason))
