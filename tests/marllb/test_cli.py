"""The pipeline CLI: ``python -m marllb_env.train`` / ``python -m marllb_env.evaluate``."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("pettingzoo")

from marllb_env import evaluate as ev  # noqa: E402
from marllb_env import train  # noqa: E402
from marllb_env.pipeline import AGENT_TYPES, load_policy, resolve_setup  # noqa: E402


def test_help_lists_the_agent_types():
    out = subprocess.run([sys.executable, "-m", "marllb_env.train", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0
    for t in AGENT_TYPES:
        assert t in out.stdout
    for opt in ("--num-servers", "--num-agents", "--trace-type", "--episodes", "--save-path", "--tensorboard"):
        assert opt in out.stdout
    out = subprocess.run([sys.executable, "-m", "marllb_env.evaluate", "--help"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and "--model" in out.stdout and "--episodes" in out.stdout


@pytest.mark.parametrize("agent_type", ["i-sac", "sac-gru", "qmix"])
def test_tiny_run_saves_the_best_model_and_evaluates_it(tmp_path, capsys, agent_type):
    path = str(tmp_path / "run" / f"{agent_type}.pt")
    rc = train.main(["--agent-type", agent_type, "--quick", "--episodes", "2", "--save-path", path, "--no-progress",
                     "--tensorboard", str(tmp_path / "tb")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "SED" in out and "GSQ (oracle)" in out and "SRT (oracle)" in out  # the harness table with baselines
    meta = json.loads(open(path[:-3] + ".json").read())
    assert meta["extra"]["agent_type"] == agent_type and "val_return" in meta["extra"]
    assert os.path.exists(path[:-3] + "_last.pt") and os.path.exists(path[:-3] + "_eval.md")
    assert os.listdir(tmp_path / "tb")  # TensorBoard event files
    policy, setup, _ = load_policy(path)
    assert setup.agent_type == agent_type and setup.family == ("single" if agent_type == "sac-gru" else "multi")
    assert ev.main(["--model", path, "--episodes", "1", "--no-baselines"]) == 0
    assert "return" in capsys.readouterr().out


def test_bad_arguments_fail_with_a_clear_message(tmp_path, capsys):
    p = str(tmp_path / "x.pt")
    assert train.main(["--agent-type", "qmix", "--trace-type", "wikibench", "--save-path", p]) == 2
    assert "no Wikibench trace is shipped" in capsys.readouterr().err
    assert train.main(["--agent-type", "qmix", "--scenario", "moderate", "--num-agents", "3", "--save-path", p]) == 2
    assert "contradicts scenario 'moderate'" in capsys.readouterr().err
    assert train.main(["--agent-type", "ppo", "--save-path", p]) == 2
    assert "must end in .zip" in capsys.readouterr().err
    assert train.main(["--agent-type", "qmix", "--scenario", "nope", "--save-path", p]) == 2
    assert "scenario must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--agent-type", "dqn", "--save-path", p])
    assert ev.main(["--model", str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_seed_configuration_is_a_named_scenario():
    named = resolve_setup("qmix", "seed_16x4")
    custom = resolve_setup("qmix", None, num_servers=16, num_agents=4)
    assert (named.n_lbs, len(named.servers)) == (4, 16)
    assert (named.servers, named.workload) == (custom.servers, custom.workload)


def test_marllb_trace_is_rescaled_to_the_offered_load():
    s = resolve_setup("i-sac", "moderate", trace_type="marllb", rho=0.9)
    assert s.workload["kind"] == "marllb_trace" and s.workload["trace"] == "rate_150"
    # rate_150 offers ~29 CPU-s/s (145.9 req/s x 0.2 s); moderate has 10 CPUs: time_scale = 29 / 9 ~ 3.2
    assert 3.0 < s.workload["time_scale"] < 3.4
    own = resolve_setup("sac-gru", "trace_rate_400", trace_type="marllb")
    assert own.workload == {"kind": "marllb_trace", "trace": "rate_400"}  # a trace scenario keeps its rate


def test_hard_scenario_runs_on_its_env_with_discrete_weights():
    s = resolve_setup("sac-gru", "hidden_drift")
    assert s.env_id == "marllb_env/LoadBalanceHard-v0" and s.episode_steps == 800 and s.family == "single"
    env = s.make_env(3)
    assert env.action_space.nvec.tolist() == [3] * 8  # the SAC-GRU's discrete weight levels, not the Box default
    obs, info = env.reset(seed=0)
    assert "true_capacity" in info and obs.shape == (8 * 11,)
    with pytest.raises(ValueError, match="single-LB env"):
        resolve_setup("i-sac", "hidden_drift")
    with pytest.raises(ValueError, match="own workload"):
        resolve_setup("sac-gru", "hidden_drift", trace_type="marllb")


def test_weight_levels_by_name_or_list():
    assert resolve_setup("i-sac", "moderate", weight_levels="paper").weight_levels == [1.0, 1.2, 1.4, 1.6, 1.8, 2.0]
    assert resolve_setup("sac-gru", "hidden_drift", weight_levels="0.25,0.5,1,2,4").weight_levels == [
        0.25, 0.5, 1.0, 2.0, 4.0]
    for bad in ("wide", "1", "1,-2", "1,x"):
        with pytest.raises(ValueError, match="weight-levels"):
            resolve_setup("i-sac", "moderate", weight_levels=bad)
