"""Scale-out on Ray RLlib: examples/rllib_train.py on a local 2-CPU multi-process Ray cluster.

Needs the ``rllib`` extra (part of ``all``). Two PPO iterations with 2 env runners each for
lwmecps-v3 and for MARLLB's PettingZoo env (one policy shared by the load balancers), then the
shared harness evaluates the trained modules. Runs in a subprocess so Ray's workers and state
end with it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("ray.rllib", reason='needs the rllib extra: pip install -e ".[rllib]"')


@pytest.mark.slow
def test_rllib_ppo_trains_with_two_env_runners_and_evaluates(tmp_path):
    out = tmp_path / "rllib.json"
    proc = subprocess.run([sys.executable, "examples/rllib_train.py", "--quick", "--num-cpus", "2",
                           "--env-runners", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(out.read_text())
    for key, label in (("lwmecps", "RLlib PPO"), ("marllb", "RLlib PPO (shared)")):
        run = summary[key]
        assert run["env_runners"] == 2 and len(run["history"]) == 2
        assert run["history"][-1]["env_steps"] >= 2 * 500 * 2  # 2 iterations x 2 runners x 500 steps
        assert f"| {label} |" in run["evaluation"]
