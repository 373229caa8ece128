"""Property-based tests (hypothesis).

* Random VALID scenarios (every section, within the schema's ranges; 1-3 edges, short horizons,
  random faults, drift, workload, energy and reward) with random action sequences (masked choices
  included, handled by the fallback policy) never crash, and every metric stays finite and within
  physical bounds.
* Random INVALID scenarios (one field perturbed: wrong type, out of range, unknown key), given as
  a mapping or as an override, always raise ScenarioError whose message names the field's path.

The workers' section keeps its defaults and ``seed`` stays 0, so every example shares one
pre-trained model cache (pre-training happens once per process).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gaisnet_env.env import GaisNetEnv
from gaisnet_env.masks import flat_mask, info_arrays
from gaisnet_env.scenario import Scenario, ScenarioError, load_scenario
from gaisnet_env.worker_config import STYLES

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

# ------------------------------------------------------------------------------- valid scenarios
f01 = st.floats(0.0, 1.0)


@st.composite
def valid_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(1, 3))
    horizon = draw(st.integers(1, 8))
    edge = st.integers(0, n - 1)
    start = st.integers(0, horizon)
    dur = st.integers(1, 6)
    faults = {
        "links": draw(st.lists(st.fixed_dictionaries({
            "edge": edge, "link": st.sampled_from(["access", "backhaul"]), "start_epoch": start,
            "duration_epochs": dur, "bandwidth_factor": st.one_of(st.just(0.0), f01)}), max_size=3)),
        "edges_down": draw(st.lists(st.fixed_dictionaries({
            "edge": edge, "start_epoch": start, "duration_epochs": dur}), max_size=2)),
        "cloud_overload": draw(st.lists(st.fixed_dictionaries({
            "start_epoch": start, "duration_epochs": dur, "capacity_factor": st.floats(0.01, 1.0)}), max_size=2)),
    }
    styles = draw(st.lists(st.sampled_from(STYLES), min_size=1, max_size=len(STYLES), unique=True))
    ref = st.one_of(st.none(), st.fixed_dictionaries({
        "inference_flops": st.sampled_from([0.0, 1e6, 1e9, 1e12]),
        "generate_flops": st.sampled_from([0.0, 1e9, 1e12]),
        "train_flops_per_sample": st.sampled_from([0.0, 1e9, 1e12]),
        "update_bytes": st.sampled_from([0, 1000, 10**8]),
        "sample_bytes": st.sampled_from([0, 64, 10**5]),
    }))
    battery = draw(st.one_of(st.none(), st.floats(1.0, 1e4)))
    return {
        "seed": 0,
        "epoch_s": draw(st.sampled_from([0.001, 0.05, 1.0, 5.0, 60.0, 3600.0])),
        "horizon": horizon,
        "topology": {
            "kind": draw(st.sampled_from(["star", "tree", "random_geometric"])),
            "n_edges": n,
            "branching": draw(st.integers(1, 4)),
            "radius": draw(st.floats(0.01, 2.0)),
        },
        "hardware": {"op_share": draw(st.floats(0.05, 1.0)), "cloud_servers": draw(st.integers(1, 16))},
        "reference_models": {"cloud": draw(ref), "edge": draw(ref), "end": draw(ref)},
        "workload": {
            "rate_per_s": draw(st.sampled_from([0.0, 0.1, 2.0, 50.0, 2000.0])),
            "rate_spread": draw(f01),
            "diurnal_amplitude": draw(f01),
            "peak_hour": draw(st.floats(0.0, 24.0)),
            "start_hour": draw(st.floats(0.0, 24.0)),
            "flash_crowds": draw(st.lists(st.fixed_dictionaries({
                "start_epoch": start, "duration_epochs": dur, "multiplier": st.floats(0.0, 50.0),
                "edges": st.one_of(st.none(), st.lists(edge, max_size=n))}), max_size=2)),
            "generate_share": draw(f01),
            "classify_deadline_s": draw(st.floats(1e-4, 10.0)),
            "generate_deadline_s": draw(st.floats(1e-4, 100.0)),
            "classify_in_bytes": draw(st.integers(1, 10**6)),
            "generate_out_bytes": draw(st.integers(1, 10**6)),
            "feedback_per_epoch": draw(st.integers(0, 64)),
        },
        "drift": {
            "kind": draw(st.sampled_from(["none", "gradual", "sudden", "recurring"])),
            "every_epochs": draw(st.integers(1, 10)),
            "dirichlet_alpha": draw(st.sampled_from([1e-3, 0.1, 1.0, 1e3])),
            "styles": styles,
            "stagger": draw(st.booleans()),
        },
        "faults": faults,
        "energy": {
            "carbon_trace": draw(st.sampled_from(["flat", "diurnal"])),
            "end_battery_j": battery,
            "end_recharge_w": draw(st.floats(0.0, 10.0)),
        },
        "reward": {
            "w_acc": draw(st.floats(0.0, 10.0)),
            "w_lat": draw(st.floats(0.0, 10.0)),
            "w_energy": draw(st.floats(0.0, 10.0)),
            "w_sla": draw(st.floats(0.0, 10.0)),
            "w_carbon": draw(st.floats(0.0, 10.0)),
            "energy_reference_j": draw(st.sampled_from([0.0, 1.0, 1e6])),
            "carbon_reference_g": draw(st.sampled_from([0.0, 1.0, 1e3])),
            "latency_clip": draw(st.floats(1.0, 100.0)),
        },
    }


def check_info(env: GaisNetEnv, obs: np.ndarray, reward: float, info: dict[str, Any]) -> None:
    assert env.observation_space.contains(obs)
    assert np.isfinite(reward)
    for k, v in info_arrays(info).items():
        assert np.all(np.isfinite(v.astype(np.float64))), k
    for k in ("accuracy", "accuracy_end", "accuracy_edge", "accuracy_cloud", "accuracy_classify",
              "quality_generate", "sla_violation_share"):
        assert 0.0 <= info[k] <= 1.0, (k, info[k])
    for k in ("latency_mean_s", "latency_p50_s", "latency_p95_s", "latency_ratio", "energy_j", "energy_end_j",
              "energy_edge_j", "energy_cloud_j", "energy_radio_j", "carbon_g", "bytes_up", "bytes_down",
              "requests_failed", "requests_rerouted", "requests_dropped", "sla_violations", "cloud_backlog_s"):
        assert info[k] >= 0.0, (k, info[k])
    assert info["sla_violations"] <= info["requests"] + 1e-9
    assert info["requests_failed"] <= info["requests"] + 1e-9
    assert info["requests_rerouted"] <= info["requests"] + 1e-9
    assert np.all(info["edge_backlog_s"] >= 0)
    assert info["energy_j"] == pytest.approx(
        info["energy_end_j"] + info["energy_edge_j"] + info["energy_cloud_j"] + info["energy_radio_j"])
    assert 0.0 < info["cloud_capacity"] <= 1.0
    assert 0 <= info["edges_down"] <= env.n_edges and 0 <= info["batteries_empty"] <= env.n_edges
    for k in ("ops_started", "ops_finished", "ops_failed", "ops_aborted", "actions_masked", "faults_active"):
        assert info[k] >= 0, k
    assert info["reward_accuracy"] + info["reward_latency"] + info["reward_energy"] + info["reward_sla"] + info[
        "reward_carbon"] == pytest.approx(reward, abs=1e-9)
    assert flat_mask(info["action_mask"]).reshape(env.n_edges, 8)[:, :3].any(axis=1).all()


@SETTINGS
@given(data=valid_scenarios(), actions=st.lists(st.lists(st.integers(0, 4), min_size=6, max_size=6),
                                                min_size=8, max_size=8), seed=st.integers(0, 2**16))
def test_valid_scenarios_never_crash_and_stay_physical(data: dict, actions: list, seed: int) -> None:
    env = GaisNetEnv(data)
    obs, info = env.reset(seed=seed)
    assert env.observation_space.contains(obs)
    E = env.n_edges
    for t in range(env.scenario.horizon):
        a = np.array(actions[t][: 2 * E] + [0] * max(0, 2 * E - 6), dtype=np.int64).reshape(E, 2)
        a[:, 0] %= 3  # any route (masked ones fall back); ops 0..4
        obs, reward, terminated, truncated, info = env.step(a)
        check_info(env, obs, reward, info)
        assert not terminated
    assert truncated


# ------------------------------------------------------------------------------- invalid scenarios
def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X``; anything else unchanged."""
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _leaf_fields(cls: type, path: str = "") -> list[tuple[str, Any, dict]]:
    """(dotted path, type, metadata) of every leaf field of the schema; list-of-dataclass items as ``[0]``."""
    out = []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        p = f"{path}.{f.name}" if path else f.name
        args = [a for a in get_args(tp) if a is not type(None)] if get_origin(tp) in (Union, types.UnionType) else []
        inner = args[0] if len(args) == 1 else tp
        if dataclasses.is_dataclass(inner):
            out += _leaf_fields(inner, p)
        elif get_origin(tp) is list and dataclasses.is_dataclass(get_args(tp)[0]):
            out += _leaf_fields(get_args(tp)[0], f"{p}[0]")
        else:
            out.append((p, tp, dict(f.metadata)))
    return out


def _sections(cls: type, path: str = "") -> list[str]:
    out = [path]
    for f in dataclasses.fields(cls):
        inner = _unwrap(typing.get_type_hints(cls)[f.name])
        if dataclasses.is_dataclass(inner):
            out += _sections(inner, f"{path}.{f.name}" if path else f.name)
    return out


LEAVES = _leaf_fields(Scenario)
RANGED = [leaf for leaf in LEAVES if "min" in leaf[2] or "max" in leaf[2]]
SECTIONS = _sections(Scenario)


def _wrong_value(tp: Any) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return _wrong_value([a for a in get_args(tp) if a is not type(None)][0])
    if origin is list:
        return 7
    if origin is Literal or tp is str:
        return 12345
    if dataclasses.is_dataclass(tp):
        return 7
    return "not-a-number"  # int, float, bool


def _out_of_range(tp: Any, meta: dict, high: bool) -> Any:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        tp = [a for a in get_args(tp) if a is not type(None)][0]
    if high and "max" in meta or "min" not in meta:
        v = meta["max"] + max(1, abs(meta["max"]))
    else:
        v = meta["min"] - max(1, abs(meta["min"]))
    return int(v) if tp is int else float(v)


def _set(data: dict, path: str, value: Any) -> None:
    """Put ``value`` at a dotted path (``a.b[0].c``), creating sections and one-item lists."""
    parts = path.split(".")
    node = data
    for p in parts[:-1]:
        if p.endswith("[0]"):
            node = node.setdefault(p[:-3], [{}])[0]
        else:
            if node.get(p) is None:
                node[p] = {}
            node = node[p]
    node[parts[-1]] = value


@st.composite
def invalid_scenarios(draw: st.DrawFn) -> tuple[dict, str, bool]:
    """A valid base (tiny's fields) with one field broken; returns (data, path named, as override)."""
    kind = draw(st.sampled_from(["wrong_type", "out_of_range", "unknown_key"]))
    data: dict = {"topology": {"n_edges": 2}, "horizon": 5}
    if kind == "unknown_key":
        section = draw(st.sampled_from(SECTIONS))
        key = draw(st.from_regex(r"[a-z][a-z_]{2,10}", fullmatch=True).filter(lambda k: k not in {
            f.name for f in dataclasses.fields(Scenario)} and not k.startswith(("w_", "end", "edge"))))
        path = f"{section}.{key}" if section else key
        if section:
            _set(data, f"{section}.__probe", 0)  # make the section exist
            node = data
            for p in section.split("."):
                node = node[p]
            node.pop("__probe")
            # a known key of that section would not be unknown
            cls = _section_class(section)
            if key in {f.name for f in dataclasses.fields(cls)}:
                key = key + "_zz"
                path = f"{section}.{key}"
        _set(data, path, 1)
    elif kind == "wrong_type":
        path, tp, _ = draw(st.sampled_from(LEAVES))
        _set(data, path, _wrong_value(tp))
    else:
        path, tp, meta = draw(st.sampled_from(RANGED))
        _set(data, path, _out_of_range(tp, meta, draw(st.booleans())))
    as_override = "[0]" not in path and draw(st.booleans())
    return data, path, as_override


def _section_class(section: str) -> type:
    cls: Any = Scenario
    for p in section.split("."):
        cls = _unwrap(typing.get_type_hints(cls)[p])
    return cls



def _flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in data.items():
        p = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and v:
            out.update(_flatten(v, p))
        else:
            out[p] = v
    return out


@settings(SETTINGS, max_examples=100)  # cheap: no env is built
@given(case=invalid_scenarios())
def test_invalid_scenarios_raise_naming_the_field(case: tuple[dict, str, bool]) -> None:
    data, path, as_override = case
    with pytest.raises(ScenarioError) as exc:
        if as_override:
            load_scenario("tiny", **_flatten(data))
        else:
            load_scenario(data)
    msg = str(exc.value)
    assert msg.startswith(path + ":") or f"{path}:" in msg, (path, msg)


def test_schema_walk_covers_every_section() -> None:
    assert len(LEAVES) > 80 and len(RANGED) > 50
    for p in ("workload.rate_per_s", "faults.links[0].bandwidth_factor", "reference_models.edge.update_bytes",
              "workers.finetune_lr", "energy.end_battery_j", "drift.styles"):
        assert p in {leaf[0] for leaf in LEAVES}, p
    assert {"", "topology", "workers", "reference_models.cloud", "faults"} <= set(SECTIONS)
    assert "faults.links" not in SECTIONS  # a list, not a section


# ------------------------------------------------------------------------------- random actions
_ENV: dict[str, GaisNetEnv] = {}


def _two_edge_env() -> GaisNetEnv:
    if "env" not in _ENV:
        _ENV["env"] = GaisNetEnv("tiny", horizon=10_000, topology={"n_edges": 2})
    return _ENV["env"]


actions_any = st.one_of(
    st.lists(st.integers(-3, 7), min_size=0, max_size=6),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=4, max_size=4),
    st.lists(st.sampled_from([0.0, 1.0, 2.0, 1.5]), min_size=4, max_size=4),
    st.lists(st.booleans(), min_size=4, max_size=4),
    st.text(max_size=4),
    st.none(),
)


@settings(SETTINGS, max_examples=60)
@given(action=actions_any, shape=st.sampled_from(["flat", "matrix"]))
def test_any_action_is_accepted_or_rejected_with_a_clear_error(action: Any, shape: str) -> None:
    """Valid actions step; anything else raises ValueError naming the action and changes nothing."""
    env = _two_edge_env()
    if env.state is None:
        env.reset(seed=0)
    arr = action
    if isinstance(action, list) and len(action) == 4 and shape == "matrix":
        arr = np.asarray(action).reshape(2, 2)
    epoch = env.state.epoch
    try:
        obs, reward, _, _, info = env.step(arr)
    except ValueError as e:
        assert str(e).startswith("action"), str(e)
        assert env.state.epoch == epoch  # a rejected action does not advance the simulation
        return
    a = np.asarray(action)
    assert a.size == 4 and np.all(a == np.round(a)) and np.all(a >= 0)
    assert env.state.epoch == epoch + 1
    check_info(env, obs, reward, info)
