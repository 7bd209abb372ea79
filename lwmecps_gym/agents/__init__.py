"""Learning agents that SB3 does not provide. SB3 covers PPO/A2C/DQN/SAC/TD3 (see examples/)."""

from lwmecps_gym.agents.tabular_q import ObservationDiscretizer, TabularQLearning

__all__ = ["ObservationDiscretizer", "TabularQLearning"]
