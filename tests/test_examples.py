"""Smoke runs of the README's main job and the lwmecps training script with tiny budgets.

They check that the scripts run end to end on the real Melbourne data and write what they
promise (table with every policy, CSV, PNG), not the quality of the learned policy.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("stable_baselines3")
pytest.importorskip("matplotlib")


def _run(args: list[str], timeout: int = 300) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.mark.slow
def test_quickstart_writes_table_csv_and_plot(tmp_path):
    out = _run(["examples/quickstart.py", "--timesteps", "512", "--n-envs", "2", "--episodes", "2",
                "--out", str(tmp_path)])
    assert "8 edge sites" in out  # melbourne-cbd default
    table = (tmp_path / "table.md").read_text()
    for name in ("PPO", "static", "random", "nearest-site", "proportional"):
        assert f"| {name} |" in table
    rows = list(csv.DictReader(open(tmp_path / "episodes.csv")))
    assert len(rows) == 2 * 5 and all(float(r["latency_ms"]) > 0 for r in rows)
    assert (tmp_path / "comparison.png").stat().st_size > 10_000
    assert (tmp_path / "ppo_lwmecps_v3.zip").exists()


@pytest.mark.slow
def test_tabular_q_example_runs(tmp_path):
    _run(["examples/lwmecps_train.py", "--algo", "Q", "--episodes-train", "3", "--episodes", "2",
          "--out", str(tmp_path)])
    table = (tmp_path / "table.md").read_text()
    assert "| Q |" in table and "| oracle |" in table  # minikube-4 is small enough for the oracle
    assert (tmp_path / "q_table.npz").exists()
