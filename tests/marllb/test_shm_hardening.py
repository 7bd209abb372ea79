"""Honest failures of the shared-memory data plane: the child's real error, not "exit code 1"."""

from __future__ import annotations

import os
import uuid

import pytest

from marllb_env.emulator import EmulatorProcess
from marllb_env.shm import SharedMemoryRegion

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs /dev/shm")]


@pytest.mark.parametrize(("config", "error", "match"), [
    ({"servers": [1, 1], "workload": {"kind": "bogus"}}, ValueError, r"workload\['kind'\] must be one of"),
    ({"servers": [1, 1], "workload": {"kind": "poisson", "rho": "0.9"}}, TypeError, "rho must be a real number"),
    ({"servers": [1, 1], "workload": "no-such-trace.csv"}, FileNotFoundError, "no-such-trace.csv"),
])
def test_emulator_config_errors_surface_in_the_parent(config, error, match):
    name = f"test_marllb_hard_{uuid.uuid4().hex[:10]}"
    region = SharedMemoryRegion.create(name)
    try:
        with pytest.raises(error, match=match):
            EmulatorProcess(name, config, start_timeout=30.0)
    finally:
        region.close(unlink=True)
