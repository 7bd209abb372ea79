"""Thin Stable-Baselines3 training helper shared by the example scripts (needs the ``sb3`` extra).

SB3/torch are imported inside the functions, never at ``import lwmecps_gym``.
TensorBoard logging goes through SB3 (``tensorboard_log``); Weights & Biases is
used only when asked for (``wandb_project``) and installed.
"""

from __future__ import annotations

from typing import Any

from lwmecps_gym.core.optional import extra_hint
from lwmecps_gym.core.validation import check_choice, check_int

#: Algorithm name -> (module, class). RecurrentPPO comes from sb3-contrib.
ALGORITHMS = {
    "PPO": ("stable_baselines3", "PPO"),
    "A2C": ("stable_baselines3", "A2C"),
    "DQN": ("stable_baselines3", "DQN"),
    "SAC": ("stable_baselines3", "SAC"),
    "TD3": ("stable_baselines3", "TD3"),
    "RecurrentPPO": ("sb3_contrib", "RecurrentPPO"),
}


def algorithm_class(algo: str) -> type:
    """The SB3 class for ``algo`` (one of :data:`ALGORITHMS`)."""
    import importlib

    check_choice("algo", algo, ALGORITHMS)
    module, cls = ALGORITHMS[algo]
    return getattr(importlib.import_module(module), cls)


@extra_hint("train_sb3")  # a missing stable_baselines3/torch names the 'sb3' extra
def train_sb3(
    algo: str,
    env_id: str,
    total_timesteps: int,
    *,
    env_kwargs: dict[str, Any] | None = None,
    n_envs: int = 1,
    seed: int = 0,
    algo_kwargs: dict[str, Any] | None = None,
    tensorboard_log: str | None = None,
    progress_bar: bool = True,
    wandb_project: str | None = None,
) -> Any:
    """Train an SB3 model on ``gym.make(env_id, **env_kwargs)`` and return it.

    Args:
        algo: one of ``PPO, A2C, DQN, SAC, TD3, RecurrentPPO``.
        env_id: registered Gymnasium id (the package defining it must be imported).
        total_timesteps: environment steps to train for (>= 1).
        env_kwargs: passed to ``gym.make``.
        n_envs: parallel copies in a ``DummyVecEnv`` (off-policy algorithms use 1).
        seed: seeds the model and the training envs (``seed + i`` for copy ``i``).
        algo_kwargs: extra constructor arguments (e.g. ``n_steps``, ``learning_rate``).
        tensorboard_log: directory for TensorBoard event files, or ``None``.
        progress_bar: show SB3's tqdm/rich progress bar.
        wandb_project: log to Weights & Biases (synced TensorBoard) if given; raises
            ``ImportError`` if ``wandb`` is not installed.
    """
    from stable_baselines3.common.env_util import make_vec_env

    total_timesteps = check_int("total_timesteps", total_timesteps, low=1)
    n_envs = check_int("n_envs", n_envs, low=1)
    cls = algorithm_class(algo)
    run = None
    if wandb_project is not None:
        try:
            import wandb
        except ImportError as e:
            raise ImportError("wandb_project was given but wandb is not installed (pip install wandb)") from e
        run = wandb.init(project=wandb_project, sync_tensorboard=True,
                         config={"algo": algo, "env_id": env_id, "env_kwargs": env_kwargs or {}})
        tensorboard_log = tensorboard_log or f"runs/{run.id}"
    venv = make_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs=env_kwargs or {})
    policy = "MlpLstmPolicy" if algo == "RecurrentPPO" else "MlpPolicy"
    model = cls(policy, venv, seed=seed, verbose=0, tensorboard_log=tensorboard_log, **(algo_kwargs or {}))
    model.learn(total_timesteps=total_timesteps, progress_bar=progress_bar)
    venv.close()
    if run is not None:
        run.finish()
    return model
