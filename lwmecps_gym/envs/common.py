"""Argument handling shared by the MEC envs: upstream's constructor arguments -> scenario + backend.

One place turns ``node_name, max_hardware, pod_usage, node_info, num_nodes, namespace,
deployment_name, deployments, max_pods, group_id, env_config`` (upstream's names) plus
``scenario``, ``backend``, ``sim_config`` into a :class:`~lwmecps_gym.scenarios.Scenario`
and a :class:`~lwmecps_gym.backends.base.ClusterBackend`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lwmecps_gym.backends.base import ClusterBackend
from lwmecps_gym.core.validation import check_float, check_int, check_keys
from lwmecps_gym.scenarios import Scenario, from_node_info, make_scenario

#: ``env_config`` keys the simulator understands (the Kubernetes backend validates its own).
SIM_ENV_CONFIG_KEYS = ("base_url", "stabilization_time")
#: Default control window of the simulator, simulated seconds.
DEFAULT_SIM_WINDOW_S = 30.0
BACKENDS = ("sim", "kubernetes")


@dataclass
class Setup:
    scenario: Scenario
    backend: Any
    is_sim: bool
    window_s: float
    sla_ms: float
    max_replicas: int


def _check_str(name: str, value: Any, allow_none: bool = True) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _check_names(name: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(f"{name} must be a list of names, got {value!r}")
    out = [_check_str(f"{name}[{i}]", v, allow_none=False) for i, v in enumerate(value)]
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not contain duplicates, got {out}")
    return out


def build_setup(
    *,
    mode: str,
    node_name: Sequence[str] | None,
    max_hardware: Mapping[str, float] | None,
    pod_usage: Mapping[str, float] | None,
    node_info: Mapping[str, Mapping[str, float]] | None,
    num_nodes: int | None,
    namespace: str,
    deployment_name: str | None,
    deployments: Sequence[str] | None,
    max_pods: int | None,
    group_id: str | None,
    base_url: str | None,
    env_config: Mapping[str, Any] | None,
    stabilization_time: float | None,
    scenario: str | Scenario | None,
    scenario_options: Mapping[str, Any] | None,
    backend: str | ClusterBackend,
    sim_config: Mapping[str, Any] | None,
    sla_ms: float | None,
    max_replicas: int | None,
    placement_replicas: int | None = None,
) -> Setup:
    """Validate the constructor arguments and build the scenario and backend (see module docstring)."""
    node_names = _check_names("node_name", node_name)
    deps = _check_names("deployments", deployments)
    _check_str("namespace", namespace, allow_none=False)
    _check_str("deployment_name", deployment_name)
    _check_str("group_id", group_id)
    _check_str("base_url", base_url)
    if env_config is None:
        env_config = {}
    if not isinstance(env_config, Mapping):
        raise TypeError(f"env_config must be a mapping (dict), got {type(env_config).__name__}")
    env_config = dict(env_config)
    if base_url is not None:
        if "base_url" in env_config and env_config["base_url"] != base_url:
            raise ValueError("base_url is given both as an argument and in env_config with different values")
        env_config["base_url"] = base_url
    if stabilization_time is not None:
        if "stabilization_time" in env_config and env_config["stabilization_time"] != stabilization_time:
            raise ValueError("stabilization_time is given both as an argument and in env_config with different values")
        env_config["stabilization_time"] = stabilization_time
    if "stabilization_time" in env_config:
        env_config["stabilization_time"] = check_float(
            "env_config['stabilization_time']", env_config["stabilization_time"], low=0.0, low_open=True
        )
    if "base_url" in env_config:
        _check_str("env_config['base_url']", env_config["base_url"], allow_none=False)

    # ---- scenario
    if node_names is not None or node_info is not None:
        if scenario is not None:
            raise ValueError("give either scenario= or the node arguments (node_name/node_info), not both")
        if node_names is None:
            if not isinstance(node_info, Mapping):
                raise TypeError(f"node_info must be a mapping node -> resources, got {type(node_info).__name__}")
            node_names = list(node_info)
        if num_nodes is not None and check_int("num_nodes", num_nodes, low=1) != len(node_names):
            raise ValueError(f"num_nodes={num_nodes} does not match len(node_name)={len(node_names)}")
        sc_deps = deps
        if mode == "placement":
            sc_deps = None
        elif deps is not None and len(deps) not in (1, len(node_names)):
            raise ValueError(
                f"deployments must have one name per node ({len(node_names)}: deployment i is pinned to "
                f"node_name[i]) or a single name (spread over all nodes), got {deps}"
            )
        sc = from_node_info(
            node_names, node_info=node_info, max_hardware=max_hardware, pod_usage=pod_usage,
            deployments=sc_deps, max_pods=max_pods, **dict(scenario_options or {}),
        )
    else:
        if max_hardware is not None or pod_usage is not None:
            raise ValueError("max_hardware/pod_usage need node_name (a user-defined scenario); "
                             "use scenario_options for a named scenario")
        sc = make_scenario(scenario, **dict(scenario_options or {}))
        if num_nodes is not None and check_int("num_nodes", num_nodes, low=1) != sc.n_nodes:
            raise ValueError(f"num_nodes={num_nodes} does not match scenario {sc.name!r} with {sc.n_nodes} nodes")
        if deps is not None and mode == "scaling":
            if len(deps) not in (1, sc.n_nodes):
                raise ValueError(
                    f"deployments must have one name per node of scenario {sc.name!r} ({sc.n_nodes}) or a single name, got {deps}"
                )
            from dataclasses import replace

            sc = replace(sc, deployments=tuple(deps))
        if max_pods is not None:
            from dataclasses import replace

            sc = replace(sc, max_pods=check_int("max_pods", max_pods, low=1))
    if max_replicas is not None:
        from dataclasses import replace

        sc = replace(sc, max_replicas=check_int("max_replicas", max_replicas, low=1))
    if sc.max_replicas > sc.max_pods:
        raise ValueError(f"max_replicas ({sc.max_replicas}) must not exceed max_pods ({sc.max_pods})")
    sla = sc.sla_ms if sla_ms is None else check_float("sla_ms", sla_ms, low=0.0, low_open=True)
    if deployment_name is not None and mode == "placement" and deps is not None and deployment_name not in deps:
        raise ValueError(f"deployment_name {deployment_name!r} is not in deployments {deps}")

    # ---- backend
    if isinstance(backend, str):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)} or a ClusterBackend instance, got {backend!r}")
        if backend == "sim":
            check_keys("env_config", env_config, allowed=SIM_ENV_CONFIG_KEYS)
            from lwmecps_gym.backends.sim import SimBackend, SimConfig
            from lwmecps_gym.core.validation import coerce_dataclass

            cfg = coerce_dataclass(SimConfig, sim_config, "sim_config")
            window = env_config.get("stabilization_time", None)
            changes: dict[str, Any] = {"sla_ms": sla}
            if window is not None:
                changes["window_s"] = float(window)
            from dataclasses import replace

            cfg = replace(cfg, **changes)
            be = SimBackend(sc, cfg, mode=mode, placement_deployment=deployment_name,
                            placement_replicas=placement_replicas)
            return Setup(sc, be, True, be.tau, sla, sc.max_replicas)
        if sim_config is not None:
            raise ValueError("sim_config is only used by backend='sim'")
        from lwmecps_gym.backends.kubernetes import KubernetesBackend  # lazy: imports the kubernetes client

        k8s_deps = list(sc.deployments) if mode == "scaling" else (deps or [deployment_name or sc.deployments[0]])
        be = KubernetesBackend.from_env_kwargs(
            node_name=list(sc.node_names), namespace=namespace, deployments=k8s_deps,
            deployment_name=deployment_name, group_id=group_id, env_config=env_config, sla_ms=sla,
        )
        window = float(env_config.get("stabilization_time", 10.0))
        return Setup(sc, be, False, window, sla, sc.max_replicas)
    if not isinstance(backend, ClusterBackend):
        raise TypeError(
            f"backend must be 'sim', 'kubernetes' or an object implementing ClusterBackend, got {type(backend).__name__}"
        )
    if list(backend.node_names) != list(sc.node_names):
        raise ValueError(f"backend.node_names {list(backend.node_names)} differ from the scenario's {list(sc.node_names)}")
    window = float(env_config.get("stabilization_time", DEFAULT_SIM_WINDOW_S))
    return Setup(sc, backend, False, window, sla, sc.max_replicas)


def wallclock_time_of_day_s() -> float:
    """Local wall-clock time of day in seconds (time features on real backends)."""
    lt = time.localtime()
    return lt.tm_hour * 3600.0 + lt.tm_min * 60.0 + lt.tm_sec


def time_features(tod_s: float) -> tuple[float, float]:
    """``(sin, cos)`` of the time of day (period 24 h)."""
    a = 2.0 * math.pi * tod_s / 86400.0
    return math.sin(a), math.cos(a)
