"""Smoke runs of every example script with tiny budgets, and their one command-line vocabulary.

They check that the scripts run end to end on the real data and write what they promise (table
with every policy, CSV, PNG, model), not the quality of the learned policy. The ``--quick`` wall
times (under 2 minutes each on a 2-core CPU) are measured outside the suite, not asserted here.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ["quickstart.py", "lwmecps_train.py", "faas_train.py", "marllb_train.py", "marllb_qmix.py",
            "marllb_ppo_shared.py"]

pytest.importorskip("stable_baselines3")
pytest.importorskip("matplotlib")


def _run(args: list[str], timeout: int = 300, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.parametrize("script", TRAINING)
def test_training_examples_share_one_cli(script):
    src = (ROOT / "examples" / script).read_text()
    assert "_cli.parser(" in src and "_cli.finish(" in src, f"{script} does not use examples/_cli.py"
    for old in ("--steps", "--episodes\"", "--eval-seeds", "--save", "--checkpoint", "--episodes-train"):
        assert f'"{old.strip(chr(34))}"' not in src, f"{script} still defines {old}"
    # training shows a progress bar: SB3's, or tqdm's for the hand-written loops
    assert "progress_bar=True" in src or "tqdm(" in src
    assert "evaluate_all(" in src  # evaluation's tqdm bar


@pytest.mark.slow
def test_quickstart_writes_table_csv_and_plot(tmp_path):
    out = _run(["examples/quickstart.py", "--quick", "--timesteps", "512", "--n-envs", "2",
                "--out", str(tmp_path)]).stdout
    assert "8 edge sites" in out  # melbourne-cbd default
    table = (tmp_path / "table.md").read_text()
    for name in ("PPO", "static", "random", "nearest-site", "proportional"):
        assert f"| {name} |" in table
    rows = list(csv.DictReader(open(tmp_path / "episodes.csv")))
    assert len(rows) == 2 * 5 and all(float(r["latency_ms"]) > 0 for r in rows)  # --quick: 2 episodes
    assert (tmp_path / "comparison.png").stat().st_size > 10_000
    assert (tmp_path / "ppo_lwmecps_v3.zip").exists()


@pytest.mark.slow
def test_tabular_q_example_runs(tmp_path):
    proc = _run(["examples/lwmecps_train.py", "--algo", "Q", "--timesteps", "720", "--eval-episodes", "2",
                 "--out", str(tmp_path)])
    assert "tabular Q training" in proc.stderr and "3/3" in proc.stderr  # 720 steps = 3 episodes, with a bar
    table = (tmp_path / "table.md").read_text()
    assert "| Q |" in table and "| oracle |" in table  # minikube-4 is small enough for the oracle
    assert (tmp_path / "q_table.npz").exists()


@pytest.mark.slow
def test_faas_example_runs(tmp_path):
    _run(["examples/faas_train.py", "--timesteps", "256", "--eval-episodes", "1", "--env-id", "FaaSTrainGym-v1",
          "--out", str(tmp_path)])
    table = (tmp_path / "faas_results.md").read_text()
    assert "| dqn_0k |" in table and "| hpa |" in table
    assert (tmp_path / "faas_results.png").stat().st_size > 10_000


@pytest.mark.slow
def test_marllb_example_runs(tmp_path):
    proc = _run(["examples/marllb_train.py", "--algos", "PPO", "--timesteps", "256", "--eval-episodes", "2",
                 "--episode-steps", "40", "--out", str(tmp_path), "--tensorboard"])
    table = (tmp_path / "marllb_table.md").read_text()
    assert "| PPO (256 steps) |" in table and "| Active WCMP |" in table
    assert re.search(r"evaluation: 100%.*26/26", proc.stderr)  # 13 policies x 2 episodes, one bar
    assert any((tmp_path / "tb").rglob("events.out.tfevents.*"))


@pytest.mark.slow
def test_qmix_example_trains_saves_and_evaluates(tmp_path):
    _run(["examples/marllb_qmix.py", "--scenario", "seed_4x4", "--timesteps", "160", "--train-steps", "20",
          "--batch", "4", "--eval-episodes", "1", "--eval-steps", "20", "--out", str(tmp_path)])
    assert (tmp_path / "qmix.pt").exists()


def test_qmix_example_refuses_a_budget_that_cannot_update(tmp_path):
    proc = _run(["examples/marllb_qmix.py", "--timesteps", "300", "--out", str(tmp_path)], ok=False)
    assert proc.returncode == 2
    assert "fewer than --batch 8" in proc.stderr and "no gradient step" in proc.stderr
    assert not (tmp_path / "qmix.pt").exists()


def test_benchmark_measures_single_native_vector_and_ppo_share(tmp_path):
    out = tmp_path / "rows.json"
    _run(["examples/benchmark.py", "lwmecps_gym/Scaling-v0", "faas_gym/Autoscaling-v0", "--mode", "single", "vector",
          "ppo", "--chunk", "40", "--rounds", "2", "--num-envs", "4", "--ppo-steps", "512", "--out", str(out)])
    import json

    rows = json.loads(out.read_text())
    modes = {(r["id"], r["mode"]) for r in rows}
    for env_id in ("lwmecps_gym/Scaling-v0", "faas_gym/Autoscaling-v0"):
        # both ids register a native vector env: it is measured beside the sync one
        assert {(env_id, m) for m in ("single", "vector:sync", "vector:vector_entry_point", "ppo")} <= modes
    for r in rows:
        if r["mode"] == "ppo":
            assert 0.0 < r["env_share"] < 1.0
        else:
            assert r["steps_s"] > 0 and r["ratio_cpu"] > 0 and r["cartpole_steps_s"] > 0


def test_benchmark_rejects_bad_arguments():
    proc = _run(["examples/benchmark.py", "--chunk", "0"], ok=False)
    assert proc.returncode == 2 and "--chunk must be >= 1" in proc.stderr
    proc = _run(["examples/benchmark.py", "no-such-env-v0"], ok=False)
    assert proc.returncode == 2 and "unknown ids" in proc.stderr
