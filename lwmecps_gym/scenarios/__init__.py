"""Scenarios for the MEC envs: which edge nodes exist, where users are, what the network costs.

A :class:`Scenario` is static (the same for every episode); the per-episode workload
(diurnal demand, user mobility, Poisson arrivals) is drawn by the simulator at ``reset``.

Built-in scenarios (:func:`make_scenario` names):

* ``"melbourne-cbd"`` (default): 125 real Optus base-station sites and 816 users of the
  EUA dataset (Lai et al., ICSOC 2018; ``scenarios/data``). ``n_nodes`` (default 8) of the
  sites host an edge Kubernetes node; they are chosen by a seeded k-medoids over the users
  (``site_seed``, default 0; see :func:`choose_edge_sites`). Every user is attached to its
  nearest base station; the base station's traffic is served by the nearest edge node.
* ``"minikube-4"``: the 4-node example of upstream's README (``minikube``,
  ``minikube-m02`` .. ``-m04``; ``avg_latency`` 10, 20, 30, 40 ms; 8 CPU / 2 CPU per pod ->
  4 replicas per deployment; deployments ``lwmecps-testapp-server-bs1..4``).
* user-defined: :func:`from_node_info` (the upstream constructor arguments),
  :func:`from_rtt_matrix` and :func:`from_coordinates`.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from lwmecps_gym.core.validation import check_choice, check_float, check_int, check_keys, check_positive
from lwmecps_gym.scenarios.demand import CBD_DIURNAL_PROFILE
from lwmecps_gym.scenarios.network import NetworkModel, haversine_km

#: Names accepted by :func:`make_scenario`.
SCENARIO_NAMES = ("melbourne-cbd", "minikube-4")

#: Resource keys of upstream's ``max_hardware`` / ``pod_usage`` / ``node_info``.
RESOURCE_KEYS = (
    "cpu",
    "ram",
    "tx_bandwidth",
    "rx_bandwidth",
    "read_disks_bandwidth",
    "write_disks_bandwidth",
)
NODE_INFO_KEYS = (*RESOURCE_KEYS, "avg_latency")
#: Resources that limit how many pods fit on a node (what kube-scheduler checks).
SCHEDULED_RESOURCES = ("cpu", "ram")

#: Upstream's example values (lwmecps-upstream.md section 1.1).
UPSTREAM_MAX_HARDWARE = {
    "cpu": 8,
    "ram": 16000,
    "tx_bandwidth": 1000,
    "rx_bandwidth": 1000,
    "read_disks_bandwidth": 500,
    "write_disks_bandwidth": 500,
    "avg_latency": 300,
}
UPSTREAM_POD_USAGE = {
    "cpu": 2,
    "ram": 2000,
    "tx_bandwidth": 20,
    "rx_bandwidth": 20,
    "read_disks_bandwidth": 100,
    "write_disks_bandwidth": 100,
}


@dataclass(frozen=True, eq=False)
class Scenario:
    """A static edge-cluster scenario.

    Attributes:
        name: scenario label.
        node_names: Kubernetes node names, ``(n_nodes,)``.
        deployments: deployment names. Either one per node (deployment ``i`` pinned to node
            ``i`` by nodeAffinity, as upstream's ``...-bsN``) or a single deployment spread
            over all nodes.
        node_capacity: resource -> ``float64 (n_nodes,)`` allocatable capacity (cpu cores,
            ram MB, bandwidths Mbit/s or MB/s as in upstream's ``node_info``).
        pod_usage: resource -> per-pod request (same units).
        max_replicas: largest replica count the v3 action may ask for per deployment.
        max_pods: normalisation bound of replica counts in v0/v2 observations.
        bs_rtt_ms: ``float64 (n_bs, n_nodes)`` RTT from a user at base station ``b`` to node ``j``, ms.
        user_bs: ``int64 (n_users,)`` home base station of each user.
        user_rate_rps: request rate of one user at the diurnal peak, req/s.
        service_rate_rps: service rate mu of one replica (exponential service), req/s.
        sla_ms: default end-to-end latency SLA, ms.
        profile: relative hourly demand profile (see :mod:`lwmecps_gym.scenarios.demand`).
        dwell_s: mean time a user stays at a location before moving (mobility model), s.
        bs_lat, bs_lon, node_lat, node_lon, user_lat, user_lon: coordinates in degrees for
            rendering (``None`` for scenarios without geography).
        source: where the data comes from (for docs and ``info``).
        node_base_latency_ms: per-node ``avg_latency`` of ``node_info`` scenarios, ms.
        bs_home: ``int64 (n_bs,)`` node whose deployment serves each base station's users
            (``None``: the node with the smallest RTT).
    """

    name: str
    node_names: tuple[str, ...]
    deployments: tuple[str, ...]
    node_capacity: dict[str, np.ndarray]
    pod_usage: dict[str, float]
    max_replicas: int
    max_pods: int
    bs_rtt_ms: np.ndarray
    user_bs: np.ndarray
    user_rate_rps: float = 1.0
    service_rate_rps: float = 50.0
    sla_ms: float = 100.0
    profile: tuple[float, ...] = CBD_DIURNAL_PROFILE
    dwell_s: float = 1800.0
    bs_lat: np.ndarray | None = None
    bs_lon: np.ndarray | None = None
    node_lat: np.ndarray | None = None
    node_lon: np.ndarray | None = None
    user_lat: np.ndarray | None = None
    user_lon: np.ndarray | None = None
    source: str = "user-defined"
    node_base_latency_ms: np.ndarray | None = field(default=None)
    bs_home: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.node_names)
        if n < 1:
            raise ValueError("node_names must contain at least one node")
        if len(set(self.node_names)) != n:
            raise ValueError(f"node_names must be unique, got {list(self.node_names)}")
        if len(self.deployments) not in (1, n):
            raise ValueError(
                f"deployments must have one name per node ({n}) or a single name, got {list(self.deployments)}"
            )
        if self.bs_rtt_ms.ndim != 2 or self.bs_rtt_ms.shape[1] != n:
            raise ValueError(f"bs_rtt_ms must have shape (n_bs, {n}), got {self.bs_rtt_ms.shape}")
        if np.any(~np.isfinite(self.bs_rtt_ms)) or np.any(self.bs_rtt_ms < 0):
            raise ValueError("bs_rtt_ms must be finite and >= 0")
        if self.user_bs.size and (self.user_bs.min() < 0 or self.user_bs.max() >= self.bs_rtt_ms.shape[0]):
            raise ValueError("user_bs refers to a base station that does not exist")
        check_int("max_replicas", self.max_replicas, low=1)
        check_positive("service_rate_rps", self.service_rate_rps)
        check_positive("sla_ms", self.sla_ms)
        check_float("user_rate_rps", self.user_rate_rps, low=0.0)

    @property
    def n_nodes(self) -> int:
        return len(self.node_names)

    @property
    def n_bs(self) -> int:
        return int(self.bs_rtt_ms.shape[0])

    @property
    def n_users(self) -> int:
        return int(self.user_bs.size)

    @property
    def pinned(self) -> bool:
        """True when each deployment is pinned to its own node (v3's per-site layout)."""
        return len(self.deployments) == self.n_nodes

    def pods_fit(self) -> np.ndarray:
        """``int64 (n_nodes,)``: pods that fit on each node, ``min_r floor(capacity_r / request_r)``.

        Only ``cpu`` and ``ram`` count: they are what the Kubernetes scheduler checks
        (resource requests); bandwidths are not schedulable resources.
        """
        fit = np.full(self.n_nodes, np.iinfo(np.int64).max, dtype=np.int64)
        for r, use in self.pod_usage.items():
            if r in SCHEDULED_RESOURCES and r in self.node_capacity and use > 0:
                fit = np.minimum(fit, np.floor(self.node_capacity[r] / use + 1e-9).astype(np.int64))
        return fit

    def bs_home_node(self) -> np.ndarray:
        """``int64 (n_bs,)``: the node serving each base station (``bs_home``, else smallest RTT, first on ties)."""
        if self.bs_home is not None:
            return np.asarray(self.bs_home, dtype=np.int64)
        return np.argmin(self.bs_rtt_ms, axis=1)

    def site_rtt_ms(self) -> np.ndarray:
        """``float64 (n_nodes, n_nodes)``: row ``d`` is the mean RTT (ms) from the users at home in
        site ``d`` (base stations served by node ``d``) to every node, unweighted by activity;
        without any user there, the best RTT to each node over all base stations.

        The simulator's failover order and the envs' ``info["site_rtt_ms"]`` (the diagonal: each
        site's users to their own node) use it.
        """
        rtt = self.bs_rtt_ms
        home = self.bs_home_node()
        users_home = home[self.user_bs] if self.n_users else home
        bs_of_users = self.user_bs if self.n_users else np.arange(self.n_bs)
        return np.array(
            [rtt[bs_of_users[users_home == d]].mean(axis=0) if np.any(users_home == d) else rtt.min(axis=0)
             for d in range(self.n_nodes)]
        )

    def mobility_digest(self) -> str:
        """A digest of what a day of user mobility depends on (users' base stations, base-station RTTs,
        dwell time): equal for scenarios equal in these values, e.g. two ``gym.make`` calls of the same
        id. The simulator's day-trace cache is keyed on it (not on ``id()``)."""
        import hashlib

        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.user_bs, dtype=np.int64).tobytes())
        h.update(np.asarray(self.bs_rtt_ms.shape, dtype=np.int64).tobytes())
        h.update(np.ascontiguousarray(self.bs_rtt_ms, dtype=np.float64).tobytes())
        h.update(np.float64(self.dwell_s).tobytes())
        return h.hexdigest()

    def describe(self) -> dict[str, Any]:
        """JSON-friendly summary (sizes, names, capacities) for ``info`` and docs."""
        return {
            "name": self.name,
            "source": self.source,
            "node_names": list(self.node_names),
            "deployments": list(self.deployments),
            "n_bs": self.n_bs,
            "n_users": self.n_users,
            "max_replicas": self.max_replicas,
            "service_rate_rps": self.service_rate_rps,
            "user_rate_rps": self.user_rate_rps,
        }


# --------------------------------------------------------------------------- EUA data


def _data_file(name: str):
    return resources.files("lwmecps_gym.scenarios.data").joinpath(name)


def load_eua_sites() -> dict[str, np.ndarray]:
    """The 125 EUA Melbourne CBD base-station sites: ``site_id`` (int64), ``lat``, ``lon`` (degrees), ``name``."""
    with _data_file("edge-servers.csv").open("r", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {
        "site_id": np.array([int(r["SITE_ID"]) for r in rows], dtype=np.int64),
        "lat": np.array([float(r["LATITUDE"]) for r in rows]),
        "lon": np.array([float(r["LONGITUDE"]) for r in rows]),
        "name": np.array([r["NAME"] for r in rows], dtype=object),
    }


def load_eua_users() -> dict[str, np.ndarray]:
    """The 816 EUA Melbourne CBD user locations: ``lat``, ``lon`` (degrees)."""
    with _data_file("users.csv").open("r", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return {
        "lat": np.array([float(r["Latitude"]) for r in rows]),
        "lon": np.array([float(r["Longitude"]) for r in rows]),
    }


def choose_edge_sites(dist_km: np.ndarray, k: int, seed: int = 0, iters: int = 50) -> np.ndarray:
    """Pick ``k`` edge sites among candidate sites by seeded k-medoids (Voronoi iteration).

    Minimises the summed user-to-nearest-chosen-site distance. Initialisation is k-means++
    (D^2 sampling, seeded by ``seed``); then alternately assign users to the nearest chosen
    site and move each medoid to the candidate site minimising its cluster's summed distance
    (Park & Jun, "A simple and fast algorithm for K-medoids clustering", 2009).

    Args:
        dist_km: ``(n_users, n_sites)`` distances.
        k: number of sites to choose, ``1 <= k <= n_sites``.
        seed: RNG seed of the initialisation.

    Returns:
        ``int64 (k,)`` sorted candidate indices.
    """
    n_sites = dist_km.shape[1]
    k = check_int("n_nodes", k, low=1, high=n_sites)
    rng = np.random.default_rng(seed)
    cost = dist_km.sum(axis=0)
    chosen = [int(np.argmin(cost))]
    while len(chosen) < k:
        d2 = dist_km[:, chosen].min(axis=1) ** 2
        # site weight = summed squared distance of users nearest to it (k-means++ on users)
        u = rng.choice(dist_km.shape[0], p=d2 / d2.sum()) if d2.sum() > 0 else rng.integers(dist_km.shape[0])
        order = np.argsort(dist_km[u])
        chosen.append(int(next(s for s in order if s not in chosen)))
    med = np.array(chosen)
    for _ in range(iters):
        assign = np.argmin(dist_km[:, med], axis=1)
        new = med.copy()
        for c in range(k):
            members = assign == c
            if members.any():
                cand_cost = dist_km[members].sum(axis=0)
                cand_cost[np.setdiff1d(med, med[c])] = np.inf
                new[c] = int(np.argmin(cand_cost))
        if np.array_equal(np.sort(new), np.sort(med)):
            break
        med = new
    return np.sort(med)


def melbourne_cbd(
    n_nodes: int = 8,
    site_seed: int = 0,
    network: NetworkModel | None = None,
    node_cpu: float = 16.0,
    node_ram_mb: float = 32000.0,
    node_bandwidth: float = 1000.0,
    pod_usage: Mapping[str, float] | None = None,
    user_rate_rps: float = 1.0,
    service_rate_rps: float = 50.0,
    sla_ms: float = 100.0,
) -> Scenario:
    """The default scenario: Melbourne CBD, EUA sites and users.

    Edge nodes: ``n_nodes`` sites chosen by :func:`choose_edge_sites` (seed ``site_seed``)
    among the 125 base stations, each a node of ``node_cpu`` cores and ``node_ram_mb`` MB;
    pods request 2 cores / 2000 MB (upstream's ``pod_usage``), so 8 replicas fit per node.
    Users: the 816 EUA users, attached to their nearest base station (great-circle).
    RTT: :class:`~lwmecps_gym.scenarios.network.NetworkModel` between each base station and
    each node site. Peak per-user rate 1 req/s and 50 req/s per replica (20 ms mean service time) are
    chosen so that at the diurnal peak the busiest site needs about half of its 8 replicas
    (more when users crowd in) and at night every site needs 1.
    """
    n_nodes = check_int("n_nodes", n_nodes, low=1)
    site_seed = check_int("site_seed", site_seed, low=0)
    node_cpu = check_positive("node_cpu", node_cpu)
    node_ram_mb = check_positive("node_ram_mb", node_ram_mb)
    node_bandwidth = check_float("node_bandwidth", node_bandwidth, low=0.0)
    network = network or NetworkModel()
    sites = load_eua_sites()
    users = load_eua_users()
    d_us = haversine_km(users["lat"][:, None], users["lon"][:, None], sites["lat"][None, :], sites["lon"][None, :])
    chosen = choose_edge_sites(d_us, n_nodes, seed=site_seed)
    user_bs = np.argmin(d_us, axis=1).astype(np.int64)
    d_bn = haversine_km(
        sites["lat"][:, None], sites["lon"][:, None], sites["lat"][chosen][None, :], sites["lon"][chosen][None, :]
    )
    colocated = np.arange(len(sites["lat"]))[:, None] == chosen[None, :]
    rtt = network.rtt_ms(d_bn, colocated)
    names = tuple(f"edge-{sid}" for sid in sites["site_id"][chosen])
    pu = dict(UPSTREAM_POD_USAGE if pod_usage is None else pod_usage)
    cap = {
        "cpu": np.full(n_nodes, float(node_cpu)),
        "ram": np.full(n_nodes, float(node_ram_mb)),
        "tx_bandwidth": np.full(n_nodes, float(node_bandwidth)),
        "rx_bandwidth": np.full(n_nodes, float(node_bandwidth)),
        "read_disks_bandwidth": np.full(n_nodes, 1000.0),
        "write_disks_bandwidth": np.full(n_nodes, 1000.0),
    }
    max_rep = int(node_cpu // pu["cpu"]) if pu.get("cpu", 0) > 0 else 8
    return Scenario(
        name="melbourne-cbd",
        node_names=names,
        deployments=tuple(f"edge-app-{sid}" for sid in sites["site_id"][chosen]),
        node_capacity=cap,
        pod_usage=pu,
        max_replicas=max_rep,
        max_pods=max_rep * n_nodes,
        bs_rtt_ms=rtt,
        user_bs=user_bs,
        user_rate_rps=user_rate_rps,
        service_rate_rps=service_rate_rps,
        sla_ms=sla_ms,
        bs_lat=sites["lat"],
        bs_lon=sites["lon"],
        node_lat=sites["lat"][chosen],
        node_lon=sites["lon"][chosen],
        user_lat=users["lat"],
        user_lon=users["lon"],
        source="EUA dataset, Melbourne CBD (Lai et al., ICSOC 2018), MIT licence",
    )


# --------------------------------------------------------------------------- user-defined


def _users_per_site(users_per_site: int | Sequence[int], n: int) -> np.ndarray:
    if isinstance(users_per_site, (int, np.integer)) and not isinstance(users_per_site, bool):
        counts = np.full(n, check_int("users_per_site", users_per_site, low=0), dtype=np.int64)
    else:
        counts = np.asarray(list(users_per_site), dtype=np.int64)
        if counts.shape != (n,) or np.any(counts < 0):
            raise ValueError(f"users_per_site must be a non-negative int or {n} non-negative ints, got {users_per_site!r}")
    return np.repeat(np.arange(n, dtype=np.int64), counts)


def from_rtt_matrix(
    rtt_ms: Sequence[Sequence[float]] | np.ndarray,
    node_names: Sequence[str] | None = None,
    deployments: Sequence[str] | None = None,
    users_per_site: int | Sequence[int] = 40,
    max_replicas: int = 4,
    node_capacity: Mapping[str, Sequence[float]] | None = None,
    pod_usage: Mapping[str, float] | None = None,
    user_rate_rps: float = 1.0,
    service_rate_rps: float = 50.0,
    sla_ms: float = 100.0,
    name: str = "user-defined",
) -> Scenario:
    """A scenario from an RTT matrix ``rtt_ms[b][j]`` (ms) between access site ``b`` and node ``j``.

    ``users_per_site[b]`` users sit at access site ``b``. Without ``node_capacity`` every
    node fits ``max_replicas`` pods.
    """
    rtt = np.asarray(rtt_ms, dtype=float)
    if rtt.ndim != 2 or rtt.size == 0:
        raise ValueError(f"rtt_ms must be a 2-D matrix (n_sites x n_nodes), got shape {rtt.shape}")
    n = rtt.shape[1]
    names = tuple(node_names) if node_names is not None else tuple(f"node-{j}" for j in range(n))
    if len(names) != n:
        raise ValueError(f"node_names must have {n} entries (columns of rtt_ms), got {len(names)}")
    deps = tuple(deployments) if deployments is not None else tuple(f"app-{nm}" for nm in names)
    pu = dict(pod_usage or {"cpu": 1.0})
    if node_capacity is None:
        cap = {r: np.full(n, float(u) * max_replicas) for r, u in pu.items()}
    else:
        cap = {r: np.asarray(v, dtype=float) for r, v in node_capacity.items()}
    return Scenario(
        name=name,
        node_names=names,
        deployments=deps,
        node_capacity=cap,
        pod_usage=pu,
        max_replicas=check_int("max_replicas", max_replicas, low=1),
        max_pods=max_replicas * n,
        bs_rtt_ms=rtt,
        user_bs=_users_per_site(users_per_site, rtt.shape[0]),
        user_rate_rps=user_rate_rps,
        service_rate_rps=service_rate_rps,
        sla_ms=sla_ms,
        source="user-defined RTT matrix",
    )


def from_coordinates(
    node_lat: Sequence[float],
    node_lon: Sequence[float],
    user_lat: Sequence[float] | None = None,
    user_lon: Sequence[float] | None = None,
    users_per_site: int | Sequence[int] = 40,
    network: NetworkModel | None = None,
    **kwargs: Any,
) -> Scenario:
    """A scenario from node site coordinates (degrees), RTT by :class:`NetworkModel`.

    Each node site is also an access site. With ``user_lat``/``user_lon`` users are attached
    to the nearest site; otherwise ``users_per_site`` users sit at each site. Other keyword
    arguments go to :func:`from_rtt_matrix`.
    """
    network = network or NetworkModel()
    nlat, nlon = np.asarray(node_lat, dtype=float), np.asarray(node_lon, dtype=float)
    if nlat.shape != nlon.shape or nlat.ndim != 1:
        raise ValueError("node_lat and node_lon must be 1-D sequences of equal length")
    d = haversine_km(nlat[:, None], nlon[:, None], nlat[None, :], nlon[None, :])
    rtt = network.rtt_ms(d, np.eye(nlat.size, dtype=bool))
    if user_lat is not None:
        ulat, ulon = np.asarray(user_lat, dtype=float), np.asarray(user_lon, dtype=float)
        du = haversine_km(ulat[:, None], ulon[:, None], nlat[None, :], nlon[None, :])
        counts = np.bincount(np.argmin(du, axis=1), minlength=nlat.size)
        users_per_site = [int(c) for c in counts]
    sc = from_rtt_matrix(rtt, users_per_site=users_per_site, name=kwargs.pop("name", "user-defined"), **kwargs)
    return _replace(sc, node_lat=nlat, node_lon=nlon, bs_lat=nlat, bs_lon=nlon, source="user-defined coordinates")


def _replace(sc: Scenario, **changes: Any) -> Scenario:
    from dataclasses import replace

    return replace(sc, **changes)


def from_node_info(
    node_name: Sequence[str],
    node_info: Mapping[str, Mapping[str, float]] | None = None,
    max_hardware: Mapping[str, float] | None = None,
    pod_usage: Mapping[str, float] | None = None,
    deployments: Sequence[str] | None = None,
    max_pods: int | None = None,
    users_per_site: int | Sequence[int] = 40,
    cross_site_rtt_ms: float = 5.0,
    user_rate_rps: float = 2.0,
    service_rate_rps: float = 50.0,
    sla_ms: float = 100.0,
    name: str = "user-defined",
) -> Scenario:
    """A scenario from upstream's constructor arguments.

    * ``node_name``: node names; each node is also an access site with ``users_per_site`` users.
    * ``node_info[node]``: capacities (``cpu`` cores, ``ram`` MB, bandwidths) and
      ``avg_latency`` (ms): the base RTT from a user to that node. The users at node ``i``'s
      site are served by deployment ``i`` (upstream's per-base-station deployments). Users reaching a node
      other than their own site's pay ``cross_site_rtt_ms`` more. Missing ``node_info``
      uses ``max_hardware`` as every node's capacity and 10, 20, 30, ... ms (upstream's rule
      ``10 + 10 * index``).
    * ``max_hardware``, ``pod_usage``: ``max_replicas = int(max_hardware["cpu"] // pod_usage["cpu"])``
      as upstream v3; a node fits ``min_r floor(node_info[node][r] / pod_usage[r])`` pods;
      pods beyond that stay Pending (never ready), as on Kubernetes.
    * ``deployments``: one per node (pinned) or one spread over all nodes.
    """
    if isinstance(node_name, str) or not isinstance(node_name, Sequence) or len(node_name) == 0:
        raise TypeError(f"node_name must be a non-empty list of node names, got {node_name!r}")
    names = tuple(str(x) for x in node_name)
    n = len(names)
    mh = dict(UPSTREAM_MAX_HARDWARE if max_hardware is None else max_hardware)
    check_keys("max_hardware", mh, allowed=NODE_INFO_KEYS, required=("cpu",))
    pu = dict(UPSTREAM_POD_USAGE if pod_usage is None else pod_usage)
    check_keys("pod_usage", pu, allowed=RESOURCE_KEYS, required=("cpu",))
    for k, v in {**mh, **pu}.items():
        check_float(f"max_hardware/pod_usage[{k!r}]", v, low=0.0)
    if pu["cpu"] <= 0:
        raise ValueError(f"pod_usage['cpu'] must be > 0, got {pu['cpu']!r}")
    if node_info is None:
        node_info = {
            nm: {**{r: mh[r] for r in RESOURCE_KEYS if r in mh}, "avg_latency": 10.0 + 10.0 * i}
            for i, nm in enumerate(names)
        }
    if not isinstance(node_info, Mapping):
        raise TypeError(f"node_info must be a mapping node -> resources, got {type(node_info).__name__}")
    unknown = sorted(set(node_info) - set(names))
    missing = [nm for nm in names if nm not in node_info]
    if unknown or missing:
        raise ValueError(
            f"node_info keys must be exactly the nodes in node_name {list(names)}; "
            f"unknown nodes {unknown}, missing nodes {missing}"
        )
    for nm in names:
        check_keys(f"node_info[{nm!r}]", node_info[nm], allowed=NODE_INFO_KEYS, required=("avg_latency",))
        for k, v in node_info[nm].items():
            check_float(f"node_info[{nm!r}][{k!r}]", v, low=0.0)
    base = np.array([float(node_info[nm]["avg_latency"]) for nm in names])
    rtt = base[None, :] + check_float("cross_site_rtt_ms", cross_site_rtt_ms, low=0.0) * (1.0 - np.eye(n))
    cap = {}
    for r in RESOURCE_KEYS:
        if all(r in node_info[nm] for nm in names):
            cap[r] = np.array([float(node_info[nm][r]) for nm in names])
        elif r in mh:
            cap[r] = np.full(n, float(mh[r]))
    max_rep = int(mh["cpu"] // pu["cpu"])
    if max_rep < 1:
        raise ValueError(f"max_hardware['cpu'] ({mh['cpu']}) fits no pod of pod_usage['cpu'] ({pu['cpu']})")
    deps = tuple(deployments) if deployments is not None else tuple(f"app-{nm}" for nm in names)
    mp = check_int("max_pods", max_pods, low=1) if max_pods is not None else max_rep * n
    return Scenario(
        name=name,
        node_names=names,
        deployments=deps,
        node_capacity=cap,
        pod_usage={k: float(v) for k, v in pu.items()},
        max_replicas=max_rep,
        max_pods=mp,
        bs_rtt_ms=rtt,
        user_bs=_users_per_site(users_per_site, n),
        user_rate_rps=user_rate_rps,
        service_rate_rps=service_rate_rps,
        sla_ms=sla_ms,
        source="user-defined (node_info)",
        node_base_latency_ms=base,
        bs_home=np.arange(n, dtype=np.int64),
    )


def minikube_4() -> Scenario:
    """Upstream README's 4-node minikube cluster (``minikube start --nodes 4``).

    Nodes ``minikube, minikube-m02, -m03, -m04`` with upstream's ``node_info`` rule
    (``avg_latency = 10 + 10 * index`` ms, 8 CPU, 16000 MB), ``max_hardware`` and
    ``pod_usage`` (2 CPU per pod -> 4 replicas). One base station per node; users per base
    station 46, 42, 40, 36 (the per-BS peak concurrent users of upstream's load profile A);
    2 req/s per user at the peak.
    """
    names = ["minikube", "minikube-m02", "minikube-m03", "minikube-m04"]
    info = {
        nm: {
            "cpu": 8,
            "ram": 16000,
            "tx_bandwidth": 100,
            "rx_bandwidth": 100,
            "read_disks_bandwidth": 300,
            "write_disks_bandwidth": 300,
            "avg_latency": 10 + 10 * i,
        }
        for i, nm in enumerate(names)
    }
    return from_node_info(
        names,
        node_info=info,
        deployments=[f"lwmecps-testapp-server-bs{i + 1}" for i in range(4)],
        users_per_site=[46, 42, 40, 36],
        name="minikube-4",
    )


def make_scenario(scenario: str | Scenario | None = None, **options: Any) -> Scenario:
    """Build a scenario by name (``"melbourne-cbd"``, ``"minikube-4"``) or pass one through.

    ``options`` go to the builder (e.g. ``n_nodes``, ``site_seed`` for ``melbourne-cbd``).
    Raises ``ValueError`` for an unknown name.
    """
    if isinstance(scenario, Scenario):
        if options:
            raise ValueError(f"scenario_options {sorted(options)} cannot be applied to a Scenario instance")
        return scenario
    name = "melbourne-cbd" if scenario is None else scenario
    if not isinstance(name, str):
        raise TypeError(f"scenario must be a name in {list(SCENARIO_NAMES)} or a Scenario, got {scenario!r}")
    check_choice("scenario", name, SCENARIO_NAMES)
    if name == "melbourne-cbd":
        return _melbourne_cached(**options)
    if options:
        raise ValueError(f"scenario 'minikube-4' takes no scenario_options, got {sorted(options)}")
    return minikube_4()


_CACHE: dict[tuple, Scenario] = {}


def _melbourne_cached(**options: Any) -> Scenario:
    allowed = ("n_nodes", "site_seed", "node_cpu", "node_ram_mb", "user_rate_rps", "service_rate_rps", "sla_ms")
    check_keys("scenario_options", options, allowed=allowed)
    key = tuple(sorted(options.items()))
    if key not in _CACHE:
        _CACHE[key] = melbourne_cbd(**options)
    return _CACHE[key]


__all__ = [
    "SCENARIO_NAMES",
    "Scenario",
    "choose_edge_sites",
    "from_coordinates",
    "from_node_info",
    "from_rtt_matrix",
    "load_eua_sites",
    "load_eua_users",
    "make_scenario",
    "melbourne_cbd",
    "minikube_4",
]
