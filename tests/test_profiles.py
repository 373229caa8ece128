"""Profiles: required names, sane physical values, a source for each, carbon traces."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gaisnet_env import profiles
from gaisnet_env.scenario import Scenario

REQUIRED_NODES = {
    "nvidia_a100_sxm", "nvidia_h100_sxm", "nvidia_l4", "nvidia_t4",
    "jetson_agx_orin", "jetson_orin_nano", "snapdragon_8_gen_2", "raspberry_pi_5",
}  # fmt: skip
REQUIRED_LINKS = {"5g_nr_midband", "lte", "wifi_6", "fibre_metro", "wan_internet"}
REQUIRED_GRID = {"us_average", "eu_average", "france", "poland", "california", "india"}


def test_required_names() -> None:
    assert REQUIRED_NODES <= set(profiles.NODES)
    assert REQUIRED_LINKS <= set(profiles.LINKS)
    assert REQUIRED_GRID <= set(profiles.GRID)
    for table in (profiles.NODES, profiles.LINKS, profiles.GRID):
        for key, p in table.items():
            assert p.name == key
            assert len(p.source) > 20  # names a document


def test_schema_defaults_are_known() -> None:
    sc = Scenario()
    assert {sc.hardware.cloud, sc.hardware.edge, sc.hardware.end} <= set(profiles.NODES)
    assert {sc.topology.access_link, sc.topology.backhaul_link} <= set(profiles.LINKS)
    assert {sc.energy.cloud_region, sc.energy.edge_region} <= set(profiles.GRID)


@pytest.mark.parametrize("node", list(profiles.NODES.values()), ids=lambda p: p.name)
def test_node_values(node: profiles.NodeProfile) -> None:
    assert 1e9 < node.peak_flops < 1e16
    assert 0.0 < node.utilisation <= 1.0
    assert node.effective_flops == pytest.approx(node.peak_flops * node.utilisation)
    assert 0.0 < node.idle_w < node.active_w
    assert node.memory_bytes > 1e9
    assert 1.0 <= node.pue < 2.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.peak_flops = 0.0  # type: ignore[misc]


def test_relative_order() -> None:
    n = profiles.NODES
    assert n["nvidia_h100_sxm"].peak_flops > n["nvidia_a100_sxm"].peak_flops > n["nvidia_l4"].peak_flops
    assert n["jetson_agx_orin"].effective_flops > n["jetson_orin_nano"].effective_flops
    assert n["jetson_orin_nano"].effective_flops > n["snapdragon_8_gen_2"].effective_flops
    assert n["snapdragon_8_gen_2"].effective_flops > n["raspberry_pi_5"].effective_flops


@pytest.mark.parametrize("link", list(profiles.LINKS.values()), ids=lambda p: p.name)
def test_link_values(link: profiles.LinkProfile) -> None:
    assert 1e6 <= link.uplink_bps <= link.downlink_bps <= 1e11
    assert 1e-4 < link.rtt_s < 0.5
    assert 1e-10 < link.j_per_bit < 1e-5


def test_link_order() -> None:
    li = profiles.LINKS
    assert li["fibre_metro"].rtt_s < li["wifi_6"].rtt_s < li["5g_nr_midband"].rtt_s < li["lte"].rtt_s
    assert li["lte"].j_per_bit > li["5g_nr_midband"].j_per_bit > li["wifi_6"].j_per_bit


@pytest.mark.parametrize("grid", list(profiles.GRID.values()), ids=lambda p: p.name)
def test_carbon_traces(grid: profiles.GridProfile) -> None:
    assert 0 < grid.min_g_per_kwh < grid.mean_g_per_kwh < grid.max_g_per_kwh < 1200
    hours = np.linspace(0.0, 24.0, 24 * 60, endpoint=False)
    flat = profiles.carbon_intensity(grid.name, hours, "flat")
    np.testing.assert_allclose(flat, grid.mean_g_per_kwh)
    di = profiles.carbon_intensity(grid.name, hours, "diurnal")
    assert di.shape == hours.shape
    assert di.min() >= grid.min_g_per_kwh - 1e-9 and di.max() <= grid.max_g_per_kwh + 1e-9
    assert di.mean() == pytest.approx(grid.mean_g_per_kwh, rel=1e-3)  # daily mean = annual mean
    assert hours[np.argmin(di)] == pytest.approx(profiles.SOLAR_PEAK_HOUR)  # solar trough
    assert di[hours == 2.0][0] > di[hours == 13.0][0]  # night dirtier than midday
    # scalars and wrap-around past 24 h
    assert float(profiles.carbon_intensity(grid.name, 37.0, "diurnal")) == pytest.approx(di[hours == 13.0][0])


def test_carbon_california_duck() -> None:
    # the deepest range reaches the minimum at 13:00
    assert float(profiles.carbon_intensity("california", 13.0, "diurnal")) == pytest.approx(100.0)


def test_carbon_bad_trace() -> None:
    with pytest.raises(ValueError, match="trace"):
        profiles.carbon_intensity("france", 12.0, "hourly")
    with pytest.raises(KeyError):
        profiles.carbon_intensity("mars", 12.0)
