"""Scenario schema and validation (files are read by :mod:`gaisnet_env.scenario_files`).

A scenario is a YAML file (see ``scenarios/``) that maps onto :class:`Scenario`. Every
field is validated on load: unknown keys, wrong types, out-of-range values and
inconsistent topology raise :class:`ScenarioError` naming the field (a dotted path such as
``workload.rate_per_s``), the value and what is allowed.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from gaisnet_env.scenario_files import ScenarioArgumentError as ScenarioArgumentError
from gaisnet_env.scenario_files import ScenarioError as ScenarioError
from gaisnet_env.scenario_files import builtin_names as builtin_names
from gaisnet_env.scenario_files import merge_overrides, read_yaml
from gaisnet_env.worker_config import STYLES, WorkerConfig


def _f(default: Any, **meta: Any) -> Any:
    """A dataclass field with validation metadata (min, max, choices, doc)."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: copy.deepcopy(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TopologyConfig:
    """Who connects to whom. The cloud is node ``cloud``; edges are ``edge0..edge{E-1}``."""

    kind: Literal["star", "tree", "random_geometric"] = _f("star", doc="how edges reach the cloud")
    n_edges: int = _f(4, min=1, max=256, doc="number of edge servers (one cell each)")
    branching: int = _f(4, min=1, max=256, doc="tree: edges per metro aggregation switch")
    radius: float = _f(0.35, min=0.01, max=2.0, doc="random_geometric: radius in the unit square")
    access_link: str = _f("5g_nr_midband", doc="end<->edge link profile (profiles.LINKS)")
    backhaul_link: str = _f("fibre_metro", doc="edge<->cloud link profile (profiles.LINKS)")
    edge_access_links: list[str] | None = _f(None, doc="per-edge access link profiles (length n_edges)")


@dataclass
class HardwareConfig:
    """Node hardware profiles (names in profiles.NODES)."""

    cloud: str = _f("nvidia_a100_sxm")
    edge: str = _f("jetson_agx_orin")
    end: str = _f("snapdragon_8_gen_2")
    op_share: float = _f(0.5, min=0.05, max=1.0, doc="share of an edge's compute an in-flight op takes")
    cloud_servers: int = _f(8, min=1, max=100_000, doc="cloud accelerators serving this system")


@dataclass
class ReferenceModel:
    """A real-world model whose costs the tier's small worker stands in for."""

    name: str = _f("", doc="e.g. 'Llama-2-7B' with the source of its figures")
    inference_flops: float = _f(0.0, min=0.0, doc="FLOPs per served classify request")
    generate_flops: float = _f(0.0, min=0.0, doc="FLOPs per served generate request (0 = no generator)")
    train_flops_per_sample: float = _f(0.0, min=0.0, doc="FLOPs per training sample")
    generator_train_flops_per_sample: float = _f(
        0.0, min=0.0, doc="FLOPs per generator training sample (0 = 3 x generate_flops)")
    update_bytes: int = _f(0, min=0, doc="bytes of the shipped update (adapter / model), bytes")
    sample_bytes: int = _f(0, min=0, doc="bytes of one synthetic training sample, bytes")


@dataclass
class ReferenceModels:
    """Per tier, an optional reference profile; costs are then scaled to it."""

    cloud: ReferenceModel | None = _f(None)
    edge: ReferenceModel | None = _f(None)
    end: ReferenceModel | None = _f(None)


@dataclass
class FlashCrowd:
    start_epoch: int = _f(0, min=0)
    duration_epochs: int = _f(1, min=1)
    multiplier: float = _f(3.0, min=0.0, max=1000.0)
    edges: list[int] | None = _f(None, doc="affected edges; null = all")


@dataclass
class WorkloadConfig:
    """Requests arriving at the end devices of each cell."""

    rate_per_s: float = _f(2.0, min=0.0, max=1e6, doc="mean arrivals per second per cell")
    rate_spread: float = _f(0.5, min=0.0, max=1.0, doc="cells' rates vary by +-spread around the mean")
    diurnal_amplitude: float = _f(0.5, min=0.0, max=1.0, doc="relative swing of the daily profile")
    peak_hour: float = _f(14.0, min=0.0, max=24.0)
    start_hour: float = _f(8.0, min=0.0, max=24.0, doc="time of day at reset")
    flash_crowds: list[FlashCrowd] = _f([])
    generate_share: float = _f(0.2, min=0.0, max=1.0, doc="share of requests that are generate")
    classify_deadline_s: float = _f(0.15, min=1e-4, max=3600.0, doc="seconds")
    generate_deadline_s: float = _f(6.0, min=1e-4, max=3600.0, doc="seconds")
    classify_in_bytes: int = _f(64, min=1, doc="bytes uploaded per classify request")
    classify_out_bytes: int = _f(16, min=1, doc="bytes returned per classify request")
    generate_in_bytes: int = _f(64, min=1, doc="bytes uploaded per generate request (the prompt)")
    generate_out_bytes: int = _f(256, min=1, doc="bytes returned per generate request (the sample)")
    feedback_per_epoch: int = _f(16, min=0, max=100_000, doc="at most this many labelled samples per cell and epoch")
    label_rate: float = _f(0.05, min=0.0, max=1.0,
                           doc="share of served classify requests whose user returns a label (binomial per epoch)")


@dataclass
class DriftConfig:
    """How each cell's domain (class mix x input style) changes over time."""

    kind: Literal["none", "gradual", "sudden", "recurring"] = _f("sudden")
    every_epochs: int = _f(40, min=1, max=1_000_000, doc="epochs between changes (gradual: ramp length)")
    dirichlet_alpha: float = _f(0.5, min=1e-3, max=1e3, doc="non-IID-ness of class mixes (small = skewed)")
    styles: list[str] = _f(list(STYLES), choices=STYLES, doc="styles a domain may take")
    stagger: bool = _f(True, doc="cells drift at different epochs")


@dataclass
class LinkFault:
    edge: int = _f(0, min=0)
    link: Literal["access", "backhaul"] = _f("backhaul")
    start_epoch: int = _f(0, min=0)
    duration_epochs: int = _f(1, min=1)
    bandwidth_factor: float = _f(0.0, min=0.0, max=1.0, doc="0 = outage, else degradation")


@dataclass
class EdgeDown:
    edge: int = _f(0, min=0)
    start_epoch: int = _f(0, min=0)
    duration_epochs: int = _f(1, min=1)


@dataclass
class CloudOverload:
    start_epoch: int = _f(0, min=0)
    duration_epochs: int = _f(1, min=1)
    capacity_factor: float = _f(0.3, min=0.01, max=1.0)


@dataclass
class FaultConfig:
    links: list[LinkFault] = _f([])
    edges_down: list[EdgeDown] = _f([])
    cloud_overload: list[CloudOverload] = _f([])


@dataclass
class EnergyConfig:
    cloud_region: str = _f("us_average", doc="grid region of the cloud (profiles.GRID)")
    edge_region: str = _f("eu_average", doc="grid region of the edges (profiles.GRID)")
    carbon_trace: Literal["flat", "diurnal"] = _f("flat")
    end_battery_j: float | None = _f(None, min=1.0, doc="battery energy of a cell's end devices, J")
    end_recharge_w: float = _f(0.0, min=0.0, doc="average recharge power per cell, W")


@dataclass
class RewardConfig:
    """r = w_acc*acc - w_lat*lat/deadline - w_energy*E/E_ref - w_sla*viol - w_carbon*C/C_ref."""

    w_acc: float = _f(1.0, min=0.0, max=1e6)
    w_lat: float = _f(0.2, min=0.0, max=1e6)
    w_energy: float = _f(0.2, min=0.0, max=1e6)
    w_sla: float = _f(1.0, min=0.0, max=1e6)
    w_carbon: float = _f(0.0, min=0.0, max=1e6)
    energy_reference_j: float = _f(0.0, min=0.0, doc="J per epoch; 0 = derived from idle power")
    carbon_reference_g: float = _f(0.0, min=0.0, doc="g per epoch; 0 = derived from the energy reference")
    latency_clip: float = _f(10.0, min=1.0, max=1e6, doc="latency/deadline is clipped to this")


@dataclass
class Scenario:
    """A whole scenario. ``gaisnet_env.scenario.load_scenario`` builds one from YAML."""

    name: str = _f("custom")
    description: str = _f("")
    seed: int = _f(0, min=0, max=2**31 - 1, doc="seed of the scenario's random layout and pre-training")
    epoch_s: float = _f(60.0, min=1e-3, max=86_400.0, doc="decision epoch length, seconds")
    horizon: int = _f(200, min=1, max=10_000_000, doc="epochs per episode (truncation)")
    topology: TopologyConfig = _f(None)
    hardware: HardwareConfig = _f(None)
    reference_models: ReferenceModels = _f(None)
    workload: WorkloadConfig = _f(None)
    drift: DriftConfig = _f(None)
    faults: FaultConfig = _f(None)
    energy: EnergyConfig = _f(None)
    reward: RewardConfig = _f(None)
    workers: WorkerConfig = _f(None)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if getattr(self, f.name) is None and dataclasses.is_dataclass(_hint(Scenario, f.name)):
                setattr(self, f.name, _hint(Scenario, f.name)())

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------------------
# validation


def _hint(cls: type, name: str) -> Any:
    hints = typing.get_type_hints(cls)
    return hints[name]


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        return f"a list of {_type_name(get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    if dataclasses.is_dataclass(tp):
        return f"a mapping with keys {', '.join(f.name for f in dataclasses.fields(tp))}"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, path: str, meta: dict[str, Any]) -> Any:
    """Check ``value`` against type ``tp`` and metadata; return the typed value."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(value, a, path, meta)
            except ScenarioError as e:
                errors.append(str(e))
        raise ScenarioError(errors[0] if len(errors) == 1 else f"{path}: got {value!r}; expected {_type_name(tp)}")
    if origin is Literal:
        if value not in get_args(tp):
            raise ScenarioError(f"{path}: got {value!r}; allowed values: {', '.join(map(repr, get_args(tp)))}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ScenarioError(f"{path}: got {value!r}; expected {_type_name(tp)}")
        (item_tp,) = get_args(tp)
        return [_convert(v, item_tp, f"{path}[{i}]", meta) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        if value is None:  # an empty section (e.g. every entry commented out): the defaults
            value = {}
        if isinstance(value, tp):
            value = dataclasses.asdict(value)
        if not isinstance(value, dict):
            raise ScenarioError(f"{path}: got {value!r}; expected {_type_name(tp)}")
        return _build(tp, value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise ScenarioError(f"{path}: got {value!r}; expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ScenarioError(f"{path}: got {value!r}; expected an integer")
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScenarioError(f"{path}: got {value!r}; expected a number")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ScenarioError(f"{path}: got {value!r}; expected a finite number")
    elif tp is str:
        if not isinstance(value, str):
            raise ScenarioError(f"{path}: got {value!r}; expected a string")
    if "min" in meta and value < meta["min"]:
        raise ScenarioError(f"{path}: got {value!r}; must be >= {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise ScenarioError(f"{path}: got {value!r}; must be <= {meta['max']}")
    if "choices" in meta and value not in meta["choices"]:
        raise ScenarioError(f"{path}: got {value!r}; allowed values: {', '.join(map(str, meta['choices']))}")
    return value


def _build(cls: type, data: dict[str, Any], path: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise ScenarioError(
            f"{where}{unknown[0]}: unknown key; allowed keys{' of ' + path if path else ''}: {', '.join(fields)}"
        )
    kwargs = {}
    for name, value in data.items():
        f = fields[name]
        kwargs[name] = _convert(value, _hint(cls, name), f"{path}.{name}" if path else name, dict(f.metadata))
    return cls(**kwargs)


def _check_consistency(sc: Scenario) -> None:
    """Cross-field checks: topology indices, known profile names."""
    from gaisnet_env import profiles
    from gaisnet_env.models.compute_device import resolve_device

    n = sc.topology.n_edges
    for section, name, table in (
        ("hardware.cloud", sc.hardware.cloud, profiles.NODES),
        ("hardware.edge", sc.hardware.edge, profiles.NODES),
        ("hardware.end", sc.hardware.end, profiles.NODES),
        ("topology.access_link", sc.topology.access_link, profiles.LINKS),
        ("topology.backhaul_link", sc.topology.backhaul_link, profiles.LINKS),
        ("energy.cloud_region", sc.energy.cloud_region, profiles.GRID),
        ("energy.edge_region", sc.energy.edge_region, profiles.GRID),
    ):
        if name not in table:
            raise ScenarioError(f"{section}: got {name!r}; allowed values: {', '.join(sorted(table))}")
    try:
        resolve_device(sc.workers.device)
    except ValueError as e:
        raise ScenarioError(str(e)) from None
    links = sc.topology.edge_access_links
    if links is not None:
        if len(links) != n:
            raise ScenarioError(f"topology.edge_access_links: got {len(links)} entries; must have n_edges={n} entries")
        for i, name in enumerate(links):
            if name not in profiles.LINKS:
                allowed = ", ".join(sorted(profiles.LINKS))
                raise ScenarioError(f"topology.edge_access_links[{i}]: got {name!r}; allowed values: {allowed}")
    for i, fc in enumerate(sc.workload.flash_crowds):
        for e in fc.edges or []:
            if not 0 <= e < n:
                raise ScenarioError(f"workload.flash_crowds[{i}].edges: got edge {e}; must be in 0..{n - 1}")
    for kind, items in (("links", sc.faults.links), ("edges_down", sc.faults.edges_down)):
        for i, item in enumerate(items):
            if not 0 <= item.edge < n:
                raise ScenarioError(f"faults.{kind}[{i}].edge: got {item.edge}; must be in 0..{n - 1}")
    if not sc.drift.styles:
        raise ScenarioError("drift.styles: got []; must name at least one of " + ", ".join(STYLES))
    if len(set(sc.drift.styles)) != len(sc.drift.styles):
        raise ScenarioError(f"drift.styles: got {sc.drift.styles!r}; each style may appear once")


def scenario_from_dict(data: dict[str, Any]) -> Scenario:
    """Validate a plain mapping (as read from YAML) and build a :class:`Scenario`."""
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario: got {type(data).__name__}; expected a mapping of sections")
    sc = _build(Scenario, data, "")
    _check_consistency(sc)
    return sc


def load_scenario(source: str | Path | dict[str, Any] | Scenario = "metro", **overrides: Any) -> Scenario:
    """Load a built-in name, a YAML path, a mapping or a Scenario, apply overrides, validate.

    Overrides are section mappings (``reward={"w_lat": 1.0}``) or dotted keys
    (``**{"reward.w_lat": 1.0}``); top-level fields (``horizon=50``) work too.
    """
    if isinstance(source, Scenario):
        data = source.to_dict()
    elif isinstance(source, dict):
        data = source
    elif isinstance(source, (str, Path)):
        data = read_yaml(source)
    else:
        raise TypeError(
            f"scenario: got {source!r} ({type(source).__name__}); expected a built-in name "
            f"({', '.join(builtin_names())}), a YAML path, a mapping or a Scenario"
        )
    if not isinstance(data, dict):
        raise ScenarioError(f"scenario {source!r}: expected a mapping of sections, got {type(data).__name__}")
    check_override_keys(overrides)
    return scenario_from_dict(merge_overrides(data, overrides))


def check_override_keys(
    overrides: dict[str, Any], owner: str = "load_scenario", arguments: tuple[str, ...] = ()
) -> None:
    """Raise :class:`ScenarioArgumentError` (a TypeError) for a keyword that is not a top-level scenario field.

    ``owner`` and its own ``arguments`` only word the message. Unknown keys *inside* a section
    (``reward={"w_x": 1}``, ``**{"reward.w_x": 1}``) are left to the validation (plain ScenarioError).
    """
    fields = [f.name for f in dataclasses.fields(Scenario)]
    for key in overrides:
        top = str(key).split(".")[0]
        if top not in fields:
            own = f"its arguments {', '.join(arguments)}, or " if arguments else ""
            raise ScenarioArgumentError(
                f"{top}: unknown key; {owner}() got an unexpected keyword argument {key!r}; "
                f"allowed: {own}a scenario field ({', '.join(fields)})"
            )
