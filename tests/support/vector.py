"""Shared checks of native Gymnasium vector envs (any family).

* :func:`check_vector_env`: the Gymnasium 1.x ``VectorEnv`` API (Gymnasium 1.2 ships ``check_env`` for
  single envs only): batched spaces, ``metadata["autoreset_mode"]``, shapes and dtypes of what
  ``reset``/``step`` return, info as a dict of arrays with ``_key`` bool masks, reproducible seeding,
  fresh (not aliased) observations, idempotent ``close``.
* :func:`assert_matches_single_env`: steps a vector env and ``num_envs`` single envs of the same id
  with the same seeds (sub-env ``i`` gets ``seed + i``) and the same actions, through autoresets
  (``NextStep`` or ``SameStep``), and asserts every sub-env's observations, rewards, flags and infos
  equal the single env's, bit for bit.

Comparisons use exact equality (NaN equals NaN); :func:`same` is the rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, iterate

__all__ = ["assert_matches_single_env", "check_info_masks", "check_vector_env", "info_row", "same"]


def same(a: Any, b: Any) -> bool:
    """Exact equality of two values (scalars, lists, arrays, dicts); NaN equals NaN."""
    if isinstance(a, dict) or isinstance(b, dict):
        return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    x, y = np.asarray(a), np.asarray(b)
    if x.shape != y.shape:
        return False
    if x.dtype == object or y.dtype == object:  # e.g. final_obs: one observation (or None) per sub-env
        return all(same(u, v) for u, v in zip(x.ravel().tolist(), y.ravel().tolist(), strict=True))
    if x.dtype.kind in "fc" or y.dtype.kind in "fc":
        return bool(np.array_equal(x, y, equal_nan=True))
    return bool(np.array_equal(x, y))


def info_row(infos: dict[str, Any], i: int) -> dict[str, Any]:
    """Sub-env ``i``'s info from a vector info dict (keys whose ``_key`` mask is set for ``i``)."""
    out = {}
    for key, value in infos.items():
        if key.startswith("_") and key[1:] in infos:
            continue
        mask = infos.get("_" + key)
        if mask is not None and not mask[i]:
            continue
        out[key] = info_row(value, i) if isinstance(value, dict) else value[i]
    return out


def check_info_masks(infos: dict[str, Any], num_envs: int, where: str = "info") -> None:
    """Every key of a vector info has a bool ``(num_envs,)`` mask ``_key`` and ``num_envs`` rows (recursively)."""
    assert isinstance(infos, dict), f"{where} must be a dict, got {type(infos).__name__}"
    for key, value in infos.items():
        if key.startswith("_") and key[1:] in infos:
            continue
        mask = infos.get("_" + key)
        assert mask is not None, f"{where}[{key!r}] has no mask {where}['_{key}']"
        assert isinstance(mask, np.ndarray) and mask.dtype == np.bool_ and mask.shape == (num_envs,), \
            f"{where}['_{key}'] must be a bool array of shape ({num_envs},), got {mask!r}"
        if isinstance(value, dict):
            check_info_masks(value, num_envs, f"{where}[{key!r}]")
        else:
            assert len(value) == num_envs, f"{where}[{key!r}] must have {num_envs} rows, got {len(value)}"


def check_vector_env(venv: VectorEnv, seed: int = 0, steps: int = 8) -> None:
    """Assert that ``venv`` follows the Gymnasium 1.x ``VectorEnv`` API (see the module docstring).

    Resets ``venv`` (it is left reset with ``seed``); closes nothing.
    """
    n = venv.num_envs
    assert isinstance(venv, VectorEnv), f"not a gymnasium VectorEnv: {type(venv).__name__}"
    assert isinstance(n, int) and n >= 1, f"num_envs must be an int >= 1, got {n!r}"
    assert venv.observation_space == batch_space(venv.single_observation_space, n), "observation_space is not batched"
    assert venv.action_space == batch_space(venv.single_action_space, n), "action_space is not batched"
    mode = venv.metadata.get("autoreset_mode")
    assert mode is not None, "metadata['autoreset_mode'] is missing"
    AutoresetMode(mode.value if isinstance(mode, AutoresetMode) else mode)

    def run() -> list:
        out = []
        obs, info = venv.reset(seed=seed)
        assert venv.observation_space.contains(obs), f"reset observation outside observation_space: {obs!r}"
        check_info_masks(info, n, "reset info")
        out.append((obs.copy() if isinstance(obs, np.ndarray) else obs, info))
        venv.action_space.seed(seed)
        for _ in range(steps):
            prev = obs
            prev_copy = _copy(obs)
            obs, rew, term, trunc, info = venv.step(venv.action_space.sample())
            assert data_equivalence(prev, prev_copy, exact=True), "step() changed the previous observation in place"
            assert venv.observation_space.contains(obs), "step observation outside observation_space"
            for name, arr in (("rewards", rew), ("terminations", term), ("truncations", trunc)):
                assert isinstance(arr, np.ndarray) and arr.shape == (n,), f"{name} must be an array of shape ({n},)"
            assert rew.dtype.kind == "f", f"rewards must be floats, got {rew.dtype}"
            assert term.dtype == np.bool_ and trunc.dtype == np.bool_, "terminations/truncations must be bool arrays"
            check_info_masks(info, n, "step info")
            out.append((_copy(obs), rew.copy(), term.copy(), trunc.copy(), info))
        return out

    first, second = run(), run()
    for a, b in zip(first, second, strict=True):
        assert all(same(x, y) for x, y in zip(a, b, strict=True)), "same seed and actions gave a different trajectory"
    venv.reset(seed=seed)


def assert_matches_single_env(
    env_id: str,
    num_envs: int,
    seeds: Iterable[int],
    steps: int,
    *,
    autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
    max_episode_steps: int | None = None,
    actions_seed: int = 0,
    info_keys: Sequence[str] | None = None,
    **kwargs: Any,
) -> dict[str, int]:
    """Sub-env ``i`` of ``gym.make_vec(env_id, num_envs, "vector_entry_point")`` equals ``gym.make(env_id)``.

    For each ``seed`` in ``seeds``: the vector env is reset with ``seed`` and single env ``i`` with
    ``seed + i``, then both take ``steps`` steps with the same actions (sampled from the vector
    action space seeded with ``actions_seed``). A single env whose episode ends is reset without a
    seed (continuing its own generator), as the vector env's autoreset does: in ``NextStep`` mode the
    vector step after the end must return the reset observation, reward 0, no flags and the reset
    info; in ``SameStep`` mode the ending step must return the reset observation with the final
    observation and info in ``info["final_obs"]`` / ``info["final_info"]``.

    Checked bit for bit: observations, rewards, terminated, truncated; step infos: every key of the
    single env's info (or only ``info_keys``) must be in the vector info for that sub-env with the
    same value (nested dicts too); reset infos: every key the vector env reports must equal the
    single env's (a vector env may leave out static reset info). ``max_episode_steps`` and
    ``kwargs`` go to both constructors.

    Returns:
        ``{"steps": sub-env steps compared, "autoresets": episode ends crossed}``.
    """
    mode = autoreset_mode if isinstance(autoreset_mode, AutoresetMode) else AutoresetMode(autoreset_mode)
    extra = {} if max_episode_steps is None else {"max_episode_steps": max_episode_steps}
    venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point",
                        autoreset_mode=mode, **extra, **kwargs)
    singles = [gym.make(env_id, **extra, **kwargs) for _ in range(num_envs)]
    venv.action_space.seed(actions_seed)
    counts = {"steps": 0, "autoresets": 0}
    try:
        for seed in seeds:
            obs, info = venv.reset(seed=seed)
            done = [False] * num_envs
            for i, env in enumerate(singles):
                o, inf = env.reset(seed=seed + i)
                where = f"seed {seed}, sub-env {i}, reset"
                assert same(obs[i], o), f"{where}: observation differs"
                _check_info(info_row(info, i), inf, where, require=False, keys=None)
            for t in range(steps):
                actions = venv.action_space.sample()
                obs, rew, term, trunc, info = venv.step(actions)
                for i, (env, a) in enumerate(zip(singles, iterate(venv.action_space, actions), strict=True)):
                    where = f"seed {seed}, sub-env {i}, step {t}"
                    row = info_row(info, i)
                    if mode is AutoresetMode.NEXT_STEP and done[i]:
                        o, inf = env.reset()
                        assert same(obs[i], o), f"{where}: autoreset observation differs"
                        assert rew[i] == 0.0 and not term[i] and not trunc[i], f"{where}: autoreset step not neutral"
                        _check_info(row, inf, where + " (autoreset)", require=False, keys=None)
                        done[i] = False
                        continue
                    o, r, te, tr, inf = env.step(a)
                    counts["steps"] += 1
                    assert rew[i] == r, f"{where}: reward {rew[i]!r} != {r!r}"
                    assert bool(term[i]) == te and bool(trunc[i]) == tr, f"{where}: flags {term[i], trunc[i]} != {te, tr}"
                    if mode is AutoresetMode.SAME_STEP and (te or tr):
                        assert same(row["final_obs"], o), f"{where}: final_obs differs"
                        _check_info(row["final_info"], inf, where + " final_info", require=True, keys=info_keys)
                        o, inf = env.reset()
                        assert same(obs[i], o), f"{where}: same-step reset observation differs"
                        row = {k: v for k, v in row.items() if k not in ("final_obs", "final_info")}
                        _check_info(row, inf, where + " (reset)", require=False, keys=None)
                        counts["autoresets"] += 1
                        continue
                    assert same(obs[i], o), f"{where}: observation differs"
                    _check_info(row, inf, where, require=True, keys=info_keys)
                    if te or tr:
                        done[i] = True
                        counts["autoresets"] += 1
    finally:
        venv.close()
        for env in singles:
            env.close()
    return counts


def _check_info(vec: dict[str, Any], single: dict[str, Any], where: str, require: bool,
                keys: Sequence[str] | None) -> None:
    """``require``: every key of ``single`` (or of ``keys``) is in ``vec`` and equal; else every key of ``vec``."""
    names = (keys if keys is not None else list(single)) if require else list(vec)
    for key in names:
        assert key in single, f"{where}: the vector env reports info[{key!r}], the single env does not"
        assert key in vec, f"{where}: info[{key!r}] missing from the vector env's info"
        a, b = vec[key], single[key]
        if isinstance(b, dict):
            assert isinstance(a, dict), f"{where}: info[{key!r}] should be a dict"
            _check_info(a, b, f"{where}[{key!r}]", require, None)
        else:
            assert same(a, b), f"{where}: info[{key!r}] = {a!r} != {b!r}"


def _copy(obs: Any) -> Any:
    if isinstance(obs, dict):
        return {k: _copy(v) for k, v in obs.items()}
    return np.array(obs, copy=True)
