"""Tests of lwmecps_gym (simulator, scenarios, envs, baselines)."""
