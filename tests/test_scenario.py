"""Scenario loading: every built-in validates; bad input gets errors naming field, value, allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaisnet_env import profiles
from gaisnet_env.cost import compute_time_s, transfer_time_s
from gaisnet_env.scenario import Scenario, ScenarioError, builtin_names, load_scenario

BUILTINS = ["tiny", "metro", "city", "drift-storm", "green"]


def test_builtin_names() -> None:
    assert sorted(BUILTINS) == builtin_names()


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads(name: str) -> None:
    sc = load_scenario(name)
    assert isinstance(sc, Scenario) and sc.name == name and sc.description
    # round trip through a plain mapping
    assert load_scenario(sc.to_dict()) == sc
    assert load_scenario(sc) == sc


def test_builtin_shapes() -> None:
    assert load_scenario("tiny").topology.n_edges == 1
    assert load_scenario("tiny").horizon <= 30
    assert load_scenario("metro").topology.n_edges == 4
    city = load_scenario("city")
    assert city.topology.n_edges == 64 and city.topology.kind == "tree"
    storm = load_scenario("drift-storm")
    assert storm.drift.kind == "sudden" and storm.drift.every_epochs <= 10
    green = load_scenario("green")
    assert green.energy.end_battery_j is not None and green.energy.carbon_trace == "diurnal"
    assert green.energy.cloud_region != green.energy.edge_region and green.reward.w_carbon > 0
    for name in ("metro", "city", "drift-storm", "green"):
        ref = load_scenario(name).reference_models
        assert ref.cloud is not None and ref.edge is not None and ref.end is not None


def _classify_latency(sc: Scenario) -> tuple[float, float, float]:
    """Predicted classify latency (s) per route, no queueing, cell 0 (the YAML comments' figures)."""
    ref, hw = sc.reference_models, sc.hardware
    acc = profiles.LINKS[(sc.topology.edge_access_links or [sc.topology.access_link])[0]]
    bh = profiles.LINKS[sc.topology.backhaul_link]
    hops = 2 if sc.topology.kind == "tree" else 1
    w = sc.workload
    up_a = transfer_time_s(w.classify_in_bytes, acc.uplink_bps, acc.rtt_s)
    dn_a = transfer_time_s(w.classify_out_bytes, acc.downlink_bps, acc.rtt_s)
    up_b = transfer_time_s(w.classify_in_bytes, bh.uplink_bps, hops * bh.rtt_s)
    dn_b = transfer_time_s(w.classify_out_bytes, bh.downlink_bps, hops * bh.rtt_s)
    end = compute_time_s(ref.end.inference_flops, profiles.NODES[hw.end].effective_flops)
    edge = up_a + compute_time_s(ref.edge.inference_flops, profiles.NODES[hw.edge].effective_flops) + dn_a
    cloud = up_a + up_b + compute_time_s(ref.cloud.inference_flops, profiles.NODES[hw.cloud].effective_flops)
    return float(end), float(edge), float(cloud + dn_b + dn_a)


@pytest.mark.parametrize("name", ["metro", "city", "drift-storm", "green"])
def test_reference_tradeoffs(name: str) -> None:
    sc = load_scenario(name)
    end, edge, cloud = _classify_latency(sc)
    # end fastest, cloud slowest, all within the deadline when nothing queues
    assert end < edge < cloud < sc.workload.classify_deadline_s
    # one finetune on a full buffer by hand (declared FLOPs x samples x epochs of the classifier and the
    # generator adapter, on op_share of the edge): from 0.2 epochs to a tenth of the episode
    wc, ref = sc.workers, sc.reference_models.edge
    flops = wc.feedback_buffer * (ref.train_flops_per_sample * wc.finetune_epochs
                                  + ref.generator_train_flops_per_sample * wc.generator_epochs)
    speed = profiles.NODES[sc.hardware.edge].effective_flops * sc.hardware.op_share
    epochs = flops / speed / sc.epoch_s
    assert 0.2 <= epochs <= sc.horizon / 10, epochs
    # generated images are larger than uploads, which are tens of kB
    assert sc.workload.generate_out_bytes > sc.workload.classify_in_bytes >= 10_000


# ----------------------------------------------------------------------------------------
# bad files and overrides


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return p


def test_unknown_top_level_key(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"horizn: unknown key; allowed keys: .*horizon"):
        load_scenario(_write(tmp_path, "horizn: 10\n"))


def test_unknown_nested_key(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"workload\.rate: unknown key; allowed keys of workload: .*rate_per_s"):
        load_scenario(_write(tmp_path, "workload:\n  rate: 3\n"))
    with pytest.raises(ScenarioError, match=r"workload\.flash_crowds\[0\]\.start: unknown key"):
        load_scenario(_write(tmp_path, "workload:\n  flash_crowds:\n    - {start: 3}\n"))


def test_wrong_type(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"horizon: got 'ten'; expected an integer"):
        load_scenario(_write(tmp_path, "horizon: ten\n"))
    with pytest.raises(ScenarioError, match=r"epoch_s: got 'fast'; expected a number"):
        load_scenario({"epoch_s": "fast"})
    with pytest.raises(ScenarioError, match=r"drift\.stagger: got 'yes please'; expected true or false"):
        load_scenario({"drift": {"stagger": "yes please"}})
    with pytest.raises(ScenarioError, match=r"horizon: got 2\.5; expected an integer"):
        load_scenario({"horizon": 2.5})
    with pytest.raises(ScenarioError, match=r"workload: got 3; expected a mapping with keys rate_per_s"):
        load_scenario({"workload": 3})
    with pytest.raises(ScenarioError, match=r"workload\.flash_crowds: got 'often'; expected a list"):
        load_scenario({"workload": {"flash_crowds": "often"}})
    with pytest.raises(ScenarioError, match=r"epoch_s: got inf; expected a finite number"):
        load_scenario({"epoch_s": float("inf")})


def test_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"workload\.rate_per_s: got -1\.0; must be >= 0\.0"):
        load_scenario(_write(tmp_path, "workload:\n  rate_per_s: -1\n"))
    with pytest.raises(ScenarioError, match=r"topology\.n_edges: got 0; must be >= 1"):
        load_scenario({}, **{"topology.n_edges": 0})
    with pytest.raises(ScenarioError, match=r"workload\.rate_spread: got 1\.5; must be <= 1\.0"):
        load_scenario({"workload": {"rate_spread": 1.5}})
    with pytest.raises(ScenarioError, match=r"energy\.end_battery_j: got 0\.5; must be >= 1\.0"):
        load_scenario({"energy": {"end_battery_j": 0.5}})


def test_bad_literal(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"topology\.kind: got 'ring'; allowed values: 'star', 'tree'"):
        load_scenario(_write(tmp_path, "topology:\n  kind: ring\n"))
    with pytest.raises(ScenarioError, match=r"drift\.kind: got 'chaotic'; allowed values: 'none', 'gradual'"):
        load_scenario({"drift": {"kind": "chaotic"}})
    with pytest.raises(ScenarioError, match=r"drift\.styles\[1\]: got 'sepia'; allowed values: clean, rotate"):
        load_scenario({"drift": {"styles": ["clean", "sepia"]}})
    with pytest.raises(ScenarioError, match=r"workers\.relay_down_variant: got 'x'; allowed values: ship_samples"):
        load_scenario({"workers": {"relay_down_variant": "x"}})


def test_bad_profile_names() -> None:
    with pytest.raises(ScenarioError, match=r"hardware\.edge: got 'tpu_v9'; allowed values: .*jetson_agx_orin"):
        load_scenario({"hardware": {"edge": "tpu_v9"}})
    with pytest.raises(ScenarioError, match=r"topology\.backhaul_link: got 'carrier_pigeon'; allowed values: .*lte"):
        load_scenario({"topology": {"backhaul_link": "carrier_pigeon"}})
    with pytest.raises(ScenarioError, match=r"energy\.cloud_region: got 'atlantis'; allowed values: .*france"):
        load_scenario({"energy": {"cloud_region": "atlantis"}})
    with pytest.raises(ScenarioError, match=r"topology\.edge_access_links\[1\]: got '6g'; allowed values: .*wifi_6"):
        load_scenario({"topology": {"n_edges": 2, "edge_access_links": ["lte", "6g"]}})


def test_edge_index_out_of_range() -> None:
    with pytest.raises(ScenarioError, match=r"faults\.links\[0\]\.edge: got 4; must be in 0\.\.3"):
        load_scenario("metro", faults={"links": [{"edge": 4}]})
    with pytest.raises(ScenarioError, match=r"faults\.edges_down\[0\]\.edge: got 9; must be in 0\.\.0"):
        load_scenario("tiny", faults={"edges_down": [{"edge": 9}]})
    with pytest.raises(ScenarioError, match=r"workload\.flash_crowds\[0\]\.edges: got edge 5; must be in 0\.\.3"):
        load_scenario("metro", **{"workload.flash_crowds": [{"edges": [0, 5]}]})
    with pytest.raises(ScenarioError, match=r"faults\.links\[0\]\.edge: got -1; must be >= 0"):
        load_scenario("metro", faults={"links": [{"edge": -1}]})


def test_edge_access_links_length() -> None:
    with pytest.raises(ScenarioError, match=r"topology\.edge_access_links: got 2 entries; must have n_edges=4"):
        load_scenario("metro", **{"topology.edge_access_links": ["lte", "lte"]})
    # changing n_edges of city without its 64-entry list is caught too
    with pytest.raises(ScenarioError, match=r"edge_access_links: got 64 entries; must have n_edges=8"):
        load_scenario("city", **{"topology.n_edges": 8})
    assert load_scenario("metro", **{"topology.n_edges": 8}).topology.n_edges == 8


def test_duplicate_and_empty_styles() -> None:
    with pytest.raises(ScenarioError, match=r"drift\.styles: got \['noise', 'noise'\]; each style may appear once"):
        load_scenario({"drift": {"styles": ["noise", "noise"]}})
    with pytest.raises(ScenarioError, match=r"drift\.styles: got \[\]; must name at least one"):
        load_scenario({"drift": {"styles": []}})


def test_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"not valid YAML"):
        load_scenario(_write(tmp_path, "workload: [1, 2\n"))


def test_non_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"expected a mapping of sections, got list"):
        load_scenario(_write(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ScenarioError, match=r"expected a mapping of sections, got str"):
        load_scenario(_write(tmp_path, "just words\n"))


def test_missing_file(tmp_path: Path) -> None:
    msg = r"'.*nope\.yaml' is neither a built-in \(city, .*tiny\) nor an existing file"
    with pytest.raises(ScenarioError, match=msg):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ScenarioError, match=r"'metropolis' is neither a built-in"):
        load_scenario("metropolis")


def test_empty_file_and_sections_give_defaults(tmp_path: Path) -> None:
    assert load_scenario(_write(tmp_path, "")) == Scenario()
    sc = load_scenario(_write(tmp_path, "faults:\n  # nothing yet\nhorizon: 7\n"))
    assert sc.horizon == 7 and sc.faults.links == []


def test_yaml_exponent_floats(tmp_path: Path) -> None:
    # PyYAML (YAML 1.1) would read 1e3 as a string; the loader accepts YAML 1.2 floats
    text = "workload:\n  rate_per_s: 1e3\nreference_models:\n  edge:\n    update_bytes: 6e5\n"
    sc = load_scenario(_write(tmp_path, text))
    assert sc.workload.rate_per_s == 1000.0
    assert sc.reference_models.edge is not None and sc.reference_models.edge.update_bytes == 600_000


def test_file_path_as_string(tmp_path: Path) -> None:
    p = _write(tmp_path, "name: mine\nhorizon: 12\n")
    assert load_scenario(str(p)).horizon == 12


# ----------------------------------------------------------------------------------------
# overrides


def test_overrides_dotted_and_nested() -> None:
    sc = load_scenario("metro", horizon=50, **{"reward.w_lat": 1.5}, workload={"rate_per_s": 3.0})
    assert sc.horizon == 50 and sc.reward.w_lat == 1.5 and sc.workload.rate_per_s == 3.0
    # nested overrides merge: the rest of the section stays as the file says
    assert sc.workload.classify_deadline_s == load_scenario("metro").workload.classify_deadline_s
    sc = load_scenario("metro", **{"workload.flash_crowds": []})
    assert sc.workload.flash_crowds == []


def test_override_into_null_section() -> None:
    sc = load_scenario("tiny", **{"reference_models.edge.inference_flops": 1e9})
    assert sc.reference_models.edge is not None and sc.reference_models.edge.inference_flops == 1e9
    assert load_scenario("metro", **{"reference_models.end": None}).reference_models.end is None


def test_overrides_are_validated() -> None:
    with pytest.raises(ScenarioError, match=r"reward\.w_lat: got -1\.0; must be >= 0\.0"):
        load_scenario("metro", **{"reward.w_lat": -1.0})
    with pytest.raises(ScenarioError, match=r"reward\.w_latency: unknown key; allowed keys of reward"):
        load_scenario("metro", reward={"w_latency": 1.0})
    with pytest.raises(ScenarioError, match=r"horizon: got 'long'; expected an integer"):
        load_scenario("metro", horizon="long")
    with pytest.raises(ScenarioError, match=r"epoch_s\.x: epoch_s is not a section \(got 300\.0\)"):
        load_scenario("metro", **{"epoch_s.x": 1})


def test_overrides_do_not_mutate_the_source() -> None:
    data = {"workload": {"rate_per_s": 1.0}}
    load_scenario(data, **{"workload.rate_per_s": 5.0})
    assert data == {"workload": {"rate_per_s": 1.0}}
