"""The 25 OrcBench Azure Functions workload models (MIT, see LICENSE and README.md)."""
