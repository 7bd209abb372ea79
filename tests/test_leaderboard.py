"""The leaderboard pipeline end to end in smoke mode (tiny budgets: checks plumbing, not results)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("rliable", reason="needs the bench extra: pip install -e '.[bench]'")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from leaderboard import load_tasks  # noqa: E402

sys.path.pop(0)


def test_every_family_declares_a_hard_task_with_oracle_baselines_and_recipes():
    tasks = load_tasks()
    assert {t.family for t in tasks} == {"lwmecps_gym", "faas_gym", "marllb_env"}
    for t in tasks:
        env = t.make_env()
        assert t.baselines(env), f"{t.scenario}: no baseline"
        assert t.oracles(env), f"{t.scenario}: no clairvoyant oracle"
        assert t.recipes, f"{t.scenario}: no training recipe"
        assert not set(t.eval_seeds) & set(range(16)), "evaluation seeds must be held out from training seeds"
        env.close()


@pytest.mark.slow
def test_smoke_run_writes_results_page_json_and_figures(tmp_path):
    out = tmp_path / "results.md"
    cache = tmp_path / "jobs.jsonl"
    cmd = [sys.executable, "benchmarks/leaderboard.py", "--smoke", "--jobs", "2", "--out", str(out), "--cache", str(cache)]
    subprocess.run(cmd, check=True, timeout=600)
    report = json.loads(out.with_suffix(".json").read_text())
    n_jobs = len(cache.read_text().splitlines())
    assert n_jobs == sum(2 * len(t.recipes) for t in load_tasks()) + sum(
        len(e["baselines"]) + len(e["oracles"]) for e in report["tasks"])
    # resuming from a complete cache runs nothing and reproduces every raw score
    subprocess.run(cmd, check=True, timeout=600)
    assert len(cache.read_text().splitlines()) == n_jobs
    again = json.loads(out.with_suffix(".json").read_text())
    assert [e["recipes"][n]["scores"] for e in again["tasks"] for n in e["recipes"]] == [
        e["recipes"][n]["scores"] for e in report["tasks"] for n in e["recipes"]]
    assert [e["baselines"] for e in again["tasks"]] == [e["baselines"] for e in report["tasks"]]
    text = out.read_text()
    assert len(report["tasks"]) == len(load_tasks())
    for e in report["tasks"]:
        assert f"## {e['family']} / {e['scenario']}" in text
        assert (tmp_path / e["figure"]).stat().st_size > 5000
        for name, s in e["recipes"].items():
            assert len(s["scores"]) == 2 and s["iqm_ci"][0] <= s["iqm"] <= s["iqm_ci"][1], name
            assert 0.0 <= s["p_improve_ci"][0] <= s["p_improve"] <= s["p_improve_ci"][1] <= 1.0
        assert "headroom" in e
