"""Argument handling shared by the MEC envs: constructor arguments -> scenario, backend, control period.

One place turns upstream's ``node_name, max_hardware, pod_usage, node_info, num_nodes, namespace,
deployment_name, deployments, max_pods, group_id, env_config, stabilization_time`` plus this
library's ``scenario``, ``scenario_options``, ``backend``, ``sim_config``, ``backend_kwargs`` and
``interval_s`` into a :class:`~lwmecps_gym.scenarios.Scenario` (:func:`build_scenario`) and a
:class:`~lwmecps_gym.backends.base.ClusterBackend` (:func:`build_backend`).

The control period is ``interval_s`` (seconds; simulated seconds on ``backend="sim"``).
Documented aliases: ``stabilization_time`` (upstream's argument and ``env_config`` key) and
``window_s`` (this library's earlier name); giving two of them with different values raises.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from lwmecps_gym.backends.base import ClusterBackend
from lwmecps_gym.core.optional import extra_hint
from lwmecps_gym.core.validation import check_float, check_int, check_keys, resolve_alias, unset
from lwmecps_gym.scenarios import Scenario, from_node_info, make_scenario

#: ``env_config`` keys the simulator understands (the Kubernetes backend validates its own).
SIM_ENV_CONFIG_KEYS = ("base_url", "stabilization_time")
#: Default control period of the simulator and of user-supplied backends, seconds.
DEFAULT_INTERVAL_S = 30.0
#: Default control period on Kubernetes (upstream's ``stabilization_time``), seconds.
DEFAULT_K8S_INTERVAL_S = 10.0
BACKENDS = ("sim", "kubernetes")
_TWO_PI_DAY = 2.0 * math.pi / 86400.0


@dataclass(frozen=True)
class Setup:
    """What :func:`build_backend` returns: the backend, its control period (s) and the SLA (ms)."""

    backend: Any
    interval_s: float
    sla_ms: float


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


def resolve_interval(interval_s: Any, stabilization_time: Any, window_s: Any,
                     env_config: Mapping[str, Any] | None) -> tuple[float | None, dict[str, Any]]:
    """The control period from ``interval_s`` and its aliases, and the checked ``env_config``.

    ``None`` for an argument means "not given" (upstream passed ``stabilization_time=None``).

    Returns:
        ``(interval_s or None if none was given, env_config as a dict)``.

    Raises:
        TypeError: two of ``interval_s`` / ``stabilization_time`` / ``window_s`` given, or
            ``env_config`` not a mapping.
        ValueError: the period is not a positive number, or differs from ``env_config['stabilization_time']``.
    """
    def given(v: Any) -> Any:
        return unset() if v is None else v

    v = resolve_alias("interval_s", given(interval_s), "stabilization_time", given(stabilization_time), unset())
    v = resolve_alias("interval_s", v, "window_s", given(window_s), None)
    if env_config is None:
        env_config = {}
    if not isinstance(env_config, Mapping):
        raise TypeError(f"env_config must be a mapping (dict), got {type(env_config).__name__}")
    env_config = dict(env_config)
    if "stabilization_time" in env_config:
        env_config["stabilization_time"] = check_float(
            "env_config['stabilization_time']", env_config["stabilization_time"], low=0.0, low_open=True
        )
        if v is not None and float(v) != env_config["stabilization_time"]:
            raise ValueError(
                f"the control period is given as interval_s={v!r} and as env_config['stabilization_time']="
                f"{env_config['stabilization_time']!r}; give it once"
            )
        v = env_config["stabilization_time"]
    if v is not None:
        v = check_float("interval_s", v, low=0.0, low_open=True)
    return v, env_config


def build_scenario(
    *,
    mode: str,
    node_name: Sequence[str] | None,
    max_hardware: Mapping[str, float] | None,
    pod_usage: Mapping[str, float] | None,
    node_info: Mapping[str, Mapping[str, float]] | None,
    num_nodes: int | None,
    deployments: Sequence[str] | None,
    max_pods: int | None,
    scenario: str | Scenario | None,
    scenario_options: Mapping[str, Any] | None,
    max_replicas: int | None,
) -> Scenario:
    """The scenario of the constructor arguments (upstream's node arguments, or a named/given scenario).

    Raises:
        TypeError / ValueError: naming the argument and the allowed values.
    """
    node_names = _check_names("node_name", node_name)
    deps = _check_names("deployments", deployments)
    if scenario_options is not None and not isinstance(scenario_options, Mapping):
        raise TypeError(f"scenario_options must be a mapping (dict) of builder options, got {type(scenario_options).__name__}")
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
            sc = replace(sc, deployments=tuple(deps))
        if max_pods is not None:
            sc = replace(sc, max_pods=check_int("max_pods", max_pods, low=1))
    if max_replicas is not None:
        sc = replace(sc, max_replicas=check_int("max_replicas", max_replicas, low=1))
    if sc.max_replicas > sc.max_pods:
        raise ValueError(f"max_replicas ({sc.max_replicas}) must not exceed max_pods ({sc.max_pods})")
    return sc


@extra_hint("backend='kubernetes'")  # a missing kubernetes/requests/prometheus client names its extra
def build_backend(
    sc: Scenario,
    *,
    mode: str,
    backend: str | ClusterBackend,
    namespace: str,
    deployment_name: str | None,
    deployments: Sequence[str] | None,
    group_id: str | None,
    base_url: str | None,
    env_config: Mapping[str, Any] | None,
    interval_s: Any,
    stabilization_time: Any,
    window_s: Any,
    sim_config: Mapping[str, Any] | None,
    backend_kwargs: Mapping[str, Any] | None,
    sla_ms: float | None,
    placement_replicas: int | None = None,
) -> Setup:
    """Build the backend over scenario ``sc`` (see the module docstring for the arguments).

    * ``"sim"``: :class:`~lwmecps_gym.backends.sim.SimBackend` with ``sim_config`` (its control
      period replaced by ``interval_s`` if given); ``backend_kwargs`` must be empty.
    * ``"kubernetes"``: :meth:`KubernetesBackend.from_env_kwargs
      <lwmecps_gym.backends.kubernetes.KubernetesBackend.from_env_kwargs>` with ``env_config``
      merged with ``backend_kwargs`` (settings of
      :class:`~lwmecps_gym.backends.kubernetes.KubernetesConfig`, plus ``api_client``).
    * an object implementing :class:`ClusterBackend`: used as it is; its ``node_names`` must be
      the scenario's.

    Raises:
        TypeError / ValueError: naming the argument and the allowed values.
    """
    deps = _check_names("deployments", deployments)
    _check_str("namespace", namespace, allow_none=False)
    _check_str("deployment_name", deployment_name)
    _check_str("group_id", group_id)
    _check_str("base_url", base_url)
    interval, env_config = resolve_interval(interval_s, stabilization_time, window_s, env_config)
    if base_url is not None:
        if "base_url" in env_config and env_config["base_url"] != base_url:
            raise ValueError("base_url is given both as an argument and in env_config with different values")
        env_config["base_url"] = base_url
    if "base_url" in env_config:
        _check_str("env_config['base_url']", env_config["base_url"], allow_none=False)
    sla = sc.sla_ms if sla_ms is None else check_float("sla_ms", sla_ms, low=0.0, low_open=True)
    if deployment_name is not None and mode == "placement" and deps is not None and deployment_name not in deps:
        raise ValueError(f"deployment_name {deployment_name!r} is not in deployments {deps}")
    if backend_kwargs is not None and not isinstance(backend_kwargs, Mapping):
        raise TypeError(f"backend_kwargs must be a mapping (dict), got {type(backend_kwargs).__name__}")
    if isinstance(backend, str):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)} or a ClusterBackend instance, got {backend!r}")
        if backend == "sim":
            return _sim_backend(sc, mode, env_config, interval, sim_config, backend_kwargs, sla,
                                deployment_name, placement_replicas)
        if sim_config is not None:
            raise ValueError("sim_config is only used by backend='sim'")
        from lwmecps_gym.backends.kubernetes import KubernetesBackend  # lazy: imports the kubernetes client

        extra = dict(backend_kwargs or {})
        api_client = extra.pop("api_client", None)
        for key, value in extra.items():
            if key in env_config and env_config[key] != value:
                raise ValueError(f"{key!r} is given in env_config and in backend_kwargs with different values")
            env_config[key] = value
        if interval is not None:
            env_config["stabilization_time"] = interval
        k8s_deps = list(sc.deployments) if mode == "scaling" else (deps or [deployment_name or sc.deployments[0]])
        be = KubernetesBackend.from_env_kwargs(
            node_name=list(sc.node_names), namespace=namespace, deployments=k8s_deps,
            deployment_name=deployment_name, group_id=group_id, env_config=env_config, sla_ms=sla,
            api_client=api_client,
        )
        return Setup(be, DEFAULT_K8S_INTERVAL_S if interval is None else interval, sla)
    if not isinstance(backend, ClusterBackend):
        raise TypeError(
            f"backend must be 'sim', 'kubernetes' or an object implementing ClusterBackend "
            f"(reset/apply/advance/observe/close, node_names, deployments), got {type(backend).__name__}"
        )
    if sim_config is not None or backend_kwargs:
        raise ValueError("sim_config and backend_kwargs apply to backend='sim' / 'kubernetes', not to a backend instance")
    if list(backend.node_names) != list(sc.node_names):
        raise ValueError(f"backend.node_names {list(backend.node_names)} differ from the scenario's {list(sc.node_names)}")
    return Setup(backend, DEFAULT_INTERVAL_S if interval is None else interval, sla)


def _sim_backend(sc: Scenario, mode: str, env_config: dict[str, Any], interval: float | None,
                 sim_config: Any, backend_kwargs: Mapping[str, Any] | None, sla: float,
                 deployment_name: str | None, placement_replicas: int | None) -> Setup:
    from lwmecps_gym.backends.sim import SimBackend, SimConfig

    if backend_kwargs:
        raise ValueError("backend_kwargs apply to backend='kubernetes'; configure the simulator with sim_config")
    check_keys("env_config", env_config, allowed=SIM_ENV_CONFIG_KEYS)
    cfg = SimConfig.coerce(sim_config)
    if interval is not None:
        if sim_config is not None and cfg.interval_s not in (SimConfig.interval_s, interval):
            raise ValueError(
                f"the control period is given as interval_s={interval!r} and as sim_config interval_s="
                f"{cfg.interval_s!r}; give it once"
            )
        cfg = replace(cfg, interval_s=interval)
    cfg = replace(cfg, sla_ms=sla)
    be = SimBackend(sc, cfg, mode=mode, placement_deployment=deployment_name, placement_replicas=placement_replicas)
    return Setup(be, be.tau, sla)


def wallclock_time_of_day_s() -> float:
    """Local wall-clock time of day in seconds (time features when a backend reports none)."""
    lt = time.localtime()
    return lt.tm_hour * 3600.0 + lt.tm_min * 60.0 + lt.tm_sec


def time_features(tod_s: float) -> tuple[float, float]:
    """``(sin, cos)`` of the time of day ``tod_s`` (seconds; period 24 h)."""
    a = tod_s * _TWO_PI_DAY
    return math.sin(a), math.cos(a)
