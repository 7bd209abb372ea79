"""Run inside a fresh venv holding only the wheel and the core deps (see check_packaging.sh).

Checks: the three packages import from site-packages (not a source tree), their data files and
licences are installed, the heavy optional dependencies stay off the import path, and every
registered id makes, resets and steps.
"""

import sys
from importlib import resources

import gymnasium as gym

import faas_gym
import lwmecps_gym
import marllb_env

for pkg in (lwmecps_gym, faas_gym, marllb_env):
    assert "site-packages" in pkg.__file__, f"{pkg.__name__} imported from {pkg.__file__}, not the wheel"

DATA = {
    "lwmecps_gym": "scenarios/data",
    "faas_gym": "data/orcbench",
    "marllb_env": "data",
}
for pkg, sub in DATA.items():
    folder = resources.files(pkg).joinpath(sub)
    names = [p.name for p in folder.iterdir()]
    data = [n for n in names if n.endswith((".csv", ".json", ".txt")) and not n.startswith("LICENSE")]
    licences = [n for n in names if n.upper().startswith(("LICENSE", "NOTICE")) or "licen" in n.lower()]
    assert data, f"{pkg}/{sub}: no data files installed ({names})"
    assert licences, f"{pkg}/{sub}: no licence file installed ({names})"
    print(f"{pkg}/{sub}: {len(data)} data files, licences {licences}")

heavy = {"torch", "stable_baselines3", "kubernetes", "prometheus_api_client", "matplotlib", "pettingzoo", "ray"}
loaded = heavy & set(sys.modules)
assert not loaded, f"importing the packages loaded heavy optional dependencies: {sorted(loaded)}"

ids = [i for i, spec in gym.registry.items()
       if isinstance(spec.entry_point, str) and spec.entry_point.split(".")[0].split(":")[0]
       in {"lwmecps_gym", "faas_gym", "marllb_env"}]
assert ids, "no id registered by the installed packages"
for env_id in sorted(ids):
    env = gym.make(env_id)
    obs, info = env.reset(seed=0)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert env.observation_space.contains(obs), env_id
    env.close()
    print(f"ok {env_id}")
print(f"{len(ids)} ids made from the installed wheel")
