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


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"publish_interval": -1}, "publish_interval"),
    ({"publish_interval": "0.05"}, "publish_interval"),
    ({"frame_timeout": float("nan")}, "frame_timeout"),
    ({"frame_timeout": 0}, "frame_timeout"),
    ({"speed": float("inf")}, "speed"),
    ({"decay": 1.5}, "decay"),
    ({"empty_slots": "drop"}, "empty_slots"),
    ({"emulate": "no"}, "emulate"),
    ({"num_servers": 65}, "num_servers"),
    ({"num_servers": 2.0}, "num_servers"),
    ({"interval_s": 0.0}, "interval_s"),
    ({"servers": 5}, "servers"),
])
def test_shm_backend_options_are_checked_before_anything_starts(kwargs, name):
    from marllb_env.shm_backend import ShmBackend

    before = set(os.listdir("/dev/shm"))
    args = {"num_servers": 2, **kwargs}
    with pytest.raises((ValueError, TypeError), match=name):
        ShmBackend(**args)
    assert set(os.listdir("/dev/shm")) <= before  # no region left behind


def test_shm_group_options_are_checked():
    from marllb_env.shm_backend import ShmLBGroup

    with pytest.raises(ValueError, match="frame_timeout"):
        ShmLBGroup(2, 2, frame_timeout=-1.0)
    with pytest.raises(TypeError, match="n_lbs"):
        ShmLBGroup(2.5, 2)
