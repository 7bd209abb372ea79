"""Package data for faas_gym (workload models)."""
