"""Scenarios: the shipped EUA data, edge-site choice, user-defined scenarios, network model."""

from __future__ import annotations

import numpy as np
import pytest

from lwmecps_gym.scenarios import (
    choose_edge_sites,
    from_coordinates,
    from_node_info,
    from_rtt_matrix,
    load_eua_sites,
    load_eua_users,
    make_scenario,
    melbourne_cbd,
    minikube_4,
)
from lwmecps_gym.scenarios.demand import CBD_DIURNAL_PROFILE, profile_at
from lwmecps_gym.scenarios.network import NetworkModel, haversine_km


def test_eua_data_is_shipped_with_its_licence():
    from importlib import resources

    sites, users = load_eua_sites(), load_eua_users()
    assert len(sites["site_id"]) == 125 and len(users["lat"]) == 816
    assert np.all((sites["lat"] > -37.83) & (sites["lat"] < -37.80))
    data = resources.files("lwmecps_gym.scenarios.data")
    assert "MIT License" in data.joinpath("LICENSE").read_text()
    assert "Lai" in data.joinpath("README.md").read_text()


def test_melbourne_scenario_structure():
    sc = make_scenario("melbourne-cbd")
    assert sc.n_bs == 125 and sc.n_users == 816 and sc.n_nodes == 8 and sc.max_replicas == 8
    assert sc.pinned and len(set(sc.node_names)) == 8
    home = sc.bs_home_node()
    users_per_site = np.bincount(home[sc.user_bs], minlength=8)
    assert users_per_site.sum() == 816 and users_per_site.min() > 0
    # a node's own base station is 0 hops away: access RTT only
    assert sc.bs_rtt_ms.min() == pytest.approx(NetworkModel().access_rtt_ms)


def test_edge_site_choice_is_seeded_and_spread():
    sites, users = load_eua_sites(), load_eua_users()
    d = haversine_km(users["lat"][:, None], users["lon"][:, None], sites["lat"][None], sites["lon"][None])
    a, b = choose_edge_sites(d, 8, seed=0), choose_edge_sites(d, 8, seed=0)
    np.testing.assert_array_equal(a, b)
    rand = np.random.default_rng(1).choice(125, size=8, replace=False)
    # k-medoids: users are closer to the chosen sites than to a random choice of 8 sites
    assert d[:, a].min(axis=1).mean() < d[:, rand].min(axis=1).mean()
    assert melbourne_cbd(n_nodes=5, site_seed=3).n_nodes == 5


def test_haversine_and_rtt_model():
    # Melbourne -> Sydney is ~713 km great-circle
    assert haversine_km(-37.8136, 144.9631, -33.8688, 151.2093) == pytest.approx(713.0, rel=0.01)
    net = NetworkModel()
    # 10 km away: access 10 ms + (2 + 10) hops x 1 ms + 2 x 2 x 10 km x 5 us/km = 22.2 ms
    assert net.rtt_ms(np.array(10.0), np.array(False)) == pytest.approx(22.2)


def test_diurnal_profile_shape():
    assert max(CBD_DIURNAL_PROFILE) == 1.0 and len(CBD_DIURNAL_PROFILE) == 24
    night, noon = profile_at(CBD_DIURNAL_PROFILE, np.array([4 * 3600.0, 12 * 3600.0]))
    assert night < 0.2 and noon == 1.0
    assert profile_at(CBD_DIURNAL_PROFILE, np.array([86400.0 + 3600.0]))[0] == CBD_DIURNAL_PROFILE[1]


def test_minikube_4_is_upstreams_example():
    sc = minikube_4()
    assert sc.node_names == ("minikube", "minikube-m02", "minikube-m03", "minikube-m04")
    assert sc.node_base_latency_ms.tolist() == [10, 20, 30, 40]
    assert sc.max_replicas == 4 and sc.pods_fit().tolist() == [4, 4, 4, 4]
    assert sc.bs_home_node().tolist() == [0, 1, 2, 3]


def test_user_defined_scenarios():
    sc = from_rtt_matrix([[5.0, 20.0], [20.0, 5.0]], node_names=["a", "b"], users_per_site=[10, 30])
    assert sc.n_users == 40 and sc.node_names == ("a", "b")
    sc2 = from_coordinates([-37.81, -37.82], [144.96, 144.97], user_lat=[-37.811, -37.819, -37.8199],
                           user_lon=[144.961, 144.969, 144.9699])
    assert np.bincount(sc2.user_bs).tolist() == [1, 2]
    sc3 = from_node_info(["n1", "n2"], node_info={"n1": {"cpu": 4, "avg_latency": 5}, "n2": {"cpu": 8, "avg_latency": 9}},
                         max_hardware={"cpu": 8}, pod_usage={"cpu": 2})
    assert sc3.pods_fit().tolist() == [2, 4] and sc3.max_replicas == 4


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: make_scenario("atlantis"), "scenario must be one of"),
        (lambda: from_node_info(["a"], node_info={"b": {"avg_latency": 1}}), "unknown nodes"),
        (lambda: from_node_info(["a"], node_info={"a": {"avg_latency": -1}}), "avg_latency"),
        (lambda: from_node_info(["a"], node_info={"a": {"avg_latency": 1, "gpu": 1}}), "unknown keys"),
        (lambda: from_node_info(["a"], pod_usage={"cpu": 0}), "pod_usage"),
        (lambda: from_rtt_matrix([1.0, 2.0]), "2-D matrix"),
        (lambda: from_rtt_matrix([[1.0, -2.0]]), "finite and >= 0"),
        (lambda: from_rtt_matrix([[1.0]], users_per_site=-3), "users_per_site"),
        (lambda: make_scenario("minikube-4", n_nodes=3), "takes no scenario_options"),
    ],
)
def test_bad_scenario_arguments(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
