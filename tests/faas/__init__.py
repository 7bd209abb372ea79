"""Tests of the faas_gym family (simulator, workloads, env, baselines)."""
