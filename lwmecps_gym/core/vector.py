"""Stable-Baselines3 over a Gymnasium 1.x vector env: :func:`to_sb3_vecenv`.

SB3 (2.x) has its own ``VecEnv`` API: ``reset() -> obs``, ``step(actions) -> (obs, rewards,
dones, infos)`` with one info dict per sub-env, the sub-env reset inside ``step`` when its episode
ends, the last observation of the finished episode in ``infos[i]["terminal_observation"]`` and
``infos[i]["TimeLimit.truncated"]`` telling a time-limit truncation from a true termination.
Gymnasium's ``VectorEnv`` gives ``(obs, rewards, terminations, truncations, infos)`` with one info
dict of arrays (``infos[key][i]``, mask ``infos["_" + key][i]``).

The adapter needs the vector env to autoreset in ``AutoresetMode.SAME_STEP`` (the mode whose
``step`` returns the reset observation of a finished sub-env and its final observation in
``infos["final_obs"]``: exactly SB3's convention) or ``AutoresetMode.DISABLED`` (the adapter then
resets the finished sub-envs itself through ``reset(options={"reset_mask": mask})``). In
``NEXT_STEP`` mode (Gymnasium's default) the step after an episode's end ignores its action, which
SB3 would record as a transition: :func:`to_sb3_vecenv` refuses it. Ask for the mode when making the
env, e.g. ``gymnasium.make_vec(id, n, vectorization_mode="vector_entry_point",
autoreset_mode="SameStep")`` for a native vector env, or ``vector_kwargs={"autoreset_mode":
AutoresetMode.SAME_STEP}`` for ``"sync"``/``"async"``.

SB3 is imported only when :func:`to_sb3_vecenv` is called: this module imports without it.

Example::

    import gymnasium as gym
    from stable_baselines3 import PPO
    from lwmecps_gym.core.vector import to_sb3_vecenv

    venv = gym.make_vec("lwmecps_gym/Scaling-v0", 16, vectorization_mode="vector_entry_point",
                        autoreset_mode="SameStep")
    model = PPO("MlpPolicy", to_sb3_vecenv(venv), n_steps=64).learn(10_000)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv

#: Autoreset modes :func:`to_sb3_vecenv` accepts.
SUPPORTED_MODES = (AutoresetMode.SAME_STEP, AutoresetMode.DISABLED)

_ADAPTER: type | None = None


def autoreset_mode_of(vector_env: VectorEnv) -> AutoresetMode:
    """The ``AutoresetMode`` in ``vector_env.metadata["autoreset_mode"]`` (an enum or its string value).

    Raises:
        ValueError: the metadata has no ``autoreset_mode`` or an unknown value.
    """
    mode = getattr(vector_env, "metadata", {}).get("autoreset_mode")
    if mode is None:
        raise ValueError(f"vector_env {vector_env!r} declares no metadata['autoreset_mode'] "
                         f"(one of {[m.value for m in AutoresetMode]})")
    try:
        return mode if isinstance(mode, AutoresetMode) else AutoresetMode(mode)
    except ValueError:
        raise ValueError(f"vector_env metadata['autoreset_mode'] must be one of {[m.value for m in AutoresetMode]}, "
                         f"got {mode!r}") from None


def split_infos(infos: dict[str, Any], num_envs: int) -> list[dict[str, Any]]:
    """Gymnasium's vector info (dict of arrays with ``_key`` masks) as one dict per sub-env.

    ``infos[key][i]`` goes to sub-env ``i``'s dict when ``infos["_" + key][i]`` is true (a key
    without a mask goes to every sub-env); nested dicts are split the same way. Values are the
    array elements (NumPy scalars or rows), not copies of the whole array.
    """
    out: list[dict[str, Any]] = [{} for _ in range(num_envs)]
    for key, value in infos.items():
        if key.startswith("_") and key[1:] in infos:
            continue
        mask = infos.get("_" + key)
        rows = split_infos(value, num_envs) if isinstance(value, dict) else value
        for i in range(num_envs):
            if mask is None or mask[i]:
                out[i][key] = rows[i]
    return out


def to_sb3_vecenv(vector_env: VectorEnv):
    """Wrap a Gymnasium ``VectorEnv`` as a Stable-Baselines3 ``VecEnv`` (see the module docstring).

    Args:
        vector_env: a Gymnasium 1.x vector env with ``metadata["autoreset_mode"]`` ``SAME_STEP`` or
            ``DISABLED`` (a native one, or ``SyncVectorEnv``/``AsyncVectorEnv``).

    Returns:
        A ``stable_baselines3.common.vec_env.VecEnv`` with ``num_envs = vector_env.num_envs``,
        ``observation_space = vector_env.single_observation_space``, ``action_space =
        vector_env.single_action_space``. ``step`` returns ``(obs, float32 (num_envs,) rewards,
        bool (num_envs,) dones, list of num_envs info dicts)``; a finished sub-env's info is its
        last step's info plus ``terminal_observation`` and ``TimeLimit.truncated``, and its reset
        info is in ``reset_infos[i]``. ``seed(s)`` makes the next ``reset`` give sub-env ``i`` the
        seed ``s + i`` (SB3's and Gymnasium's rule alike).

    Raises:
        ImportError: Stable-Baselines3 is not installed.
        TypeError: ``vector_env`` is not a Gymnasium ``VectorEnv``.
        ValueError: its ``autoreset_mode`` is missing or ``NEXT_STEP``.
    """
    if not isinstance(vector_env, VectorEnv):
        raise TypeError(f"vector_env must be a gymnasium.vector.VectorEnv, got {type(vector_env).__name__}")
    mode = autoreset_mode_of(vector_env)
    if mode not in SUPPORTED_MODES:
        raise ValueError(
            f"vector_env autoreset_mode must be one of {[m.value for m in SUPPORTED_MODES]} for SB3, got {mode.value!r}: "
            "make it with autoreset_mode='SameStep' (vector_entry_point) or "
            "vector_kwargs={'autoreset_mode': AutoresetMode.SAME_STEP} (sync/async)"
        )
    return _adapter_class()(vector_env, mode)


def _adapter_class() -> type:
    """The adapter class, built on first use so that SB3 is imported lazily."""
    global _ADAPTER
    if _ADAPTER is not None:
        return _ADAPTER
    from lwmecps_gym.core.optional import require

    require("stable_baselines3", "sb3", "to_sb3_vecenv")
    from stable_baselines3.common.vec_env.base_vec_env import VecEnv

    class GymnasiumVecEnv(VecEnv):
        """SB3 ``VecEnv`` over a Gymnasium ``VectorEnv`` (built by :func:`to_sb3_vecenv`)."""

        def __init__(self, vector_env: VectorEnv, mode: AutoresetMode):
            self.vector_env = vector_env
            self.autoreset_mode = mode
            self._actions: np.ndarray | None = None
            super().__init__(vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space)

        # ------------------------------------------------------------ SB3 API
        def reset(self):
            seeds = self._seeds
            seed: Any = None
            if any(s is not None for s in seeds):
                first = seeds[0]
                consecutive = first is not None and all(s == first + i for i, s in enumerate(seeds))
                seed = int(first) if consecutive else list(seeds)
            options = self._options
            if any(o != options[0] for o in options):
                raise ValueError("the wrapped vector env takes one options dict for all sub-envs; "
                                 f"set_options was given different ones: {options}")
            obs, infos = self.vector_env.reset(seed=seed, options=dict(options[0]) or None)
            self.reset_infos = split_infos(infos, self.num_envs)
            self._reset_seeds()
            self._reset_options()
            return _copy(obs)

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = actions

        def step_wait(self):
            venv, n = self.vector_env, self.num_envs
            obs, rewards, terminated, truncated, infos = venv.step(self._actions)
            terminated = np.asarray(terminated, dtype=bool)
            truncated = np.asarray(truncated, dtype=bool)
            dones = terminated | truncated
            if self.autoreset_mode is AutoresetMode.SAME_STEP:
                final_obs = infos.get("final_obs")
                final_info = infos.get("final_info")
                reset_rows = split_infos(infos, n) if dones.any() else None
                step_infos = reset_rows if reset_rows is not None else split_infos(infos, n)
                if reset_rows is not None:
                    finals = split_infos(final_info, n) if final_info is not None else [{} for _ in range(n)]
                    for i in np.flatnonzero(dones).tolist():
                        reset_info = {k: v for k, v in reset_rows[i].items() if k not in ("final_obs", "final_info")}
                        self.reset_infos[i] = reset_info
                        step_infos[i] = dict(finals[i])
                        step_infos[i]["terminal_observation"] = _copy(final_obs[i])
                obs = _copy(obs)
            else:  # DISABLED: reset the finished sub-envs ourselves
                step_infos = split_infos(infos, n)
                obs = _copy(obs)
                if dones.any():
                    term_obs = _rows(obs, np.flatnonzero(dones))
                    new_obs, reset_infos = venv.reset(options={"reset_mask": dones.copy()})
                    reset_rows = split_infos(reset_infos, n)
                    for k, i in enumerate(np.flatnonzero(dones).tolist()):
                        step_infos[i]["terminal_observation"] = term_obs[k]
                        self.reset_infos[i] = reset_rows[i]
                    obs = _copy(new_obs)
            for i in range(n):
                step_infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            return obs, np.asarray(rewards, dtype=np.float32).copy(), dones, step_infos

        def close(self) -> None:
            self.vector_env.close()

        def get_images(self):
            frames = self.vector_env.render() if self.render_mode == "rgb_array" else None
            if frames is None:
                return [None] * self.num_envs
            return list(frames)

        def get_attr(self, attr_name: str, indices=None) -> list[Any]:
            idx = list(self._get_indices(indices))
            venv = self.vector_env
            if hasattr(venv, "get_attr"):  # Sync/AsyncVectorEnv: one value per sub-env
                values = venv.get_attr(attr_name)
                return [values[i] for i in idx]
            value = getattr(venv, attr_name)  # a native vector env: one value shared by its sub-envs
            return [value for _ in idx]

        def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
            idx = list(self._get_indices(indices))
            venv = self.vector_env
            if hasattr(venv, "set_attr"):
                current = list(venv.get_attr(attr_name)) if len(idx) < self.num_envs else [value] * self.num_envs
                for i in idx:
                    current[i] = value
                venv.set_attr(attr_name, current)
                return
            if len(idx) != self.num_envs:
                raise ValueError(f"a native vector env shares {attr_name!r} between its sub-envs; "
                                 f"set it for all indices, got indices={indices!r}")
            setattr(venv, attr_name, value)

        def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
            idx = list(self._get_indices(indices))
            venv = self.vector_env
            if not hasattr(venv, "call"):
                raise AttributeError(f"{type(venv).__name__} has no per-sub-env call(); "
                                     f"env_method({method_name!r}) needs a Sync/AsyncVectorEnv")
            values = venv.call(method_name, *method_args, **method_kwargs)
            return [values[i] for i in idx]

        def env_is_wrapped(self, wrapper_class: type, indices=None) -> list[bool]:
            return [False for _ in self._get_indices(indices)]

    _ADAPTER = GymnasiumVecEnv
    return _ADAPTER


def _copy(obs: Any) -> Any:
    """A fresh copy of a batched observation (array or dict of arrays): SB3 keeps references."""
    if isinstance(obs, dict):
        return {k: _copy(v) for k, v in obs.items()}
    return np.array(obs, copy=True)


def _rows(obs: Any, idx: np.ndarray) -> list[Any]:
    """Sub-env observations ``idx`` of a batched observation (array or dict of arrays)."""
    if isinstance(obs, dict):
        parts = {k: _rows(v, idx) for k, v in obs.items()}
        return [{k: parts[k][j] for k in parts} for j in range(len(idx))]
    return [obs[i] for i in idx.tolist()]
