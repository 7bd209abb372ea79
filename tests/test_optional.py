"""Friendly failures: a missing optional dependency names the extra that installs it."""

from __future__ import annotations

import sys

import gymnasium as gym
import pytest

import faas_gym  # noqa: F401
import lwmecps_gym  # noqa: F401
from lwmecps_gym.core.optional import extra_hint, import_optional


def test_missing_kubernetes_names_the_k8s_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # as if not installed
    with pytest.raises(ImportError, match=r"backend='kubernetes' needs .*'kubernetes' of the 'k8s' extra.*"
                                          r'pip install -e "\.\[k8s\]"'):
        gym.make("lwmecps-v3", backend="kubernetes", group_id="g",
                 env_config={"base_url": "http://127.0.0.1:1", "stabilization_time": 1})


def test_missing_prometheus_client_names_the_prometheus_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "kubernetes", None)
    with pytest.raises(ImportError, match=r"backend='openfaas' needs .*'kubernetes' of the 'prometheus' extra"):
        gym.make("faas_gym/Autoscaling-v0", backend="openfaas", function_name="figlet")


def test_missing_sb3_names_the_sb3_extra(monkeypatch):
    from lwmecps_gym.core.training import train_sb3

    monkeypatch.setitem(sys.modules, "stable_baselines3", None)
    with pytest.raises(ImportError, match=r"train_sb3 needs .*'stable_baselines3' of the 'sb3' extra"):
        train_sb3("PPO", "lwmecps-v3", 10)


def test_missing_matplotlib_names_the_plot_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    env = gym.make("faas_gym/Autoscaling-v0", render_mode="rgb_array")
    env.reset(seed=0)
    with pytest.raises(ImportError, match=r"render_mode='rgb_array' needs .*'matplotlib' of the 'plot' extra"):
        env.render()


def test_other_import_errors_pass_through_unchanged():
    with pytest.raises(ModuleNotFoundError, match="no_such_module_xyz"), extra_hint("x"):
        import no_such_module_xyz  # noqa: F401
    with pytest.raises(ImportError, match="'no_such_pkg' of the 'all' extra"):
        import_optional("no_such_pkg")


def test_shm_emulator_without_main_guard_says_why(tmp_path):
    import subprocess

    script = tmp_path / "no_guard.py"
    script.write_text("from marllb_env import LoadBalanceEnv\n"
                      "env = LoadBalanceEnv(backend='shm', num_servers=4)\n"
                      "env.reset(seed=0)\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "spawn" in proc.stderr and 'if __name__ == "__main__":' in proc.stderr


def test_missing_pettingzoo_names_the_marl_extra(monkeypatch):
    import marllb_env

    monkeypatch.setitem(sys.modules, "pettingzoo", None)
    monkeypatch.delitem(sys.modules, "marllb_env.multi_agent", raising=False)
    monkeypatch.delattr(marllb_env, "multi_agent", raising=False)  # force a fresh import of the submodule
    with pytest.raises(ImportError, match=r"multi-agent env .*'pettingzoo' of the 'marl' extra"):
        marllb_env.parallel_env()
