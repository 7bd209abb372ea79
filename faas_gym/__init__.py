"""faas_gym: FaaS autoscaling environments (OpenFaaS on Kubernetes)."""
