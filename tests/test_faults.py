"""Faults: edge down (queue dropped, requests rerouted or failed, ops aborted with their cost kept),
link outage and degradation, cloud overload, battery exhaustion and recharge; masks and counters;
the FaultInjection wrapper (programmatic, random, seeded, isolated, snapshot/restore)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gaisnet_env.env import (
    OP_FINETUNE,
    OP_NONE,
    OP_RELAY_DOWN,
    OP_RELAY_TO_END,
    OP_RELAY_UP,
    ROUTE_CLOUD,
    ROUTE_EDGE,
    ROUTE_END,
    GaisNetEnv,
)
from gaisnet_env.masks import flat_mask, info_arrays
from gaisnet_env.scenario import load_scenario
from gaisnet_env.wrappers import FAULT_KINDS, FaultInjection

# tiny with 1 ms epochs: its real ops (~1-13 ms) then stay in flight for several epochs, and
# enough requests arrive per epoch to feed the edges
FAST = {"epoch_s": 0.001, "horizon": 400, "workload": {"rate_per_s": 20_000.0, "label_rate": 1.0}}


def make(**overrides) -> GaisNetEnv:
    env = GaisNetEnv("tiny", **overrides)
    env.reset(seed=0)
    return env


def masks(env: GaisNetEnv) -> tuple[np.ndarray, np.ndarray]:
    m = env.action_masks().reshape(env.n_edges, 8)
    return m[:, :3], m[:, 3:]


class Spy:
    """Counts the calls of a worker method (and forwards them)."""

    def __init__(self, fn) -> None:
        self.fn, self.calls = fn, []

    def __call__(self, *args):
        self.calls.append(args)
        return self.fn(*args)


def start_long_op(env: GaisNetEnv, op: int = OP_RELAY_TO_END) -> dict:
    """Feed the edge, then start ``op`` and return the info of the step that started it (op in flight)."""
    for _ in range(3):
        env.step([ROUTE_EDGE, OP_NONE])
    _, _, _, _, info = env.step([ROUTE_EDGE, op])
    assert info["ops_started"] == 1 and info["ops_in_flight"] == 1, info["ops_started"]
    assert env.state.op_remaining_s[0] > env.scenario.epoch_s  # still running next epoch
    return info


# ------------------------------------------------------------------------------------ edge down
def test_edge_down_aborts_op_in_flight_and_keeps_its_cost() -> None:
    env = FaultInjection(GaisNetEnv("tiny", **FAST))
    base = env.unwrapped
    env.reset(seed=0)
    spy = Spy(base.workers.abort_op)
    base.workers.abort_op = spy
    started = start_long_op(base)
    version = started["model_version_end"].copy()
    energy_before = base.state.cum["energy_j"]
    assert started["energy_edge_j"] > 0 and energy_before > 0
    env.inject("edge_down", 0, 3)
    routes, ops = masks(base)
    assert not routes[0, ROUTE_EDGE] and routes[0, ROUTE_CLOUD]
    assert ops[0].tolist() == [True, False, False, False, False]  # only "none" on a down edge
    _, _, _, _, info = env.step([ROUTE_CLOUD, OP_NONE])
    assert info["ops_aborted"] == 1 and spy.calls == [(0,)]
    assert info["ops_in_flight"] == 0 and info["ops_finished"] == 0
    assert not base.workers.has_pending(0)
    assert base.state.cum["energy_j"] >= energy_before  # the op's energy stays charged
    assert info["edges_down"] == 1 and info["faults_active"] == 1
    # the op never commits, even after the edge recovers
    for _ in range(20):
        _, _, _, _, info = env.step([ROUTE_EDGE if masks(base)[0][0, ROUTE_EDGE] else ROUTE_CLOUD, OP_NONE])
    assert np.array_equal(info["model_version_end"], version) and len(spy.calls) == 1


def test_edge_down_drops_queue_and_reroutes_requests() -> None:
    # heavy load on the edge builds a queue; the edge then fails for 2 epochs
    env = make(horizon=30, workload={"rate_per_s": 100.0, "generate_share": 0.5},
               reference_models={"edge": {"generate_flops": 1e13}},  # ~0.8 s per generated sample
               faults={"edges_down": [{"edge": 0, "start_epoch": 4, "duration_epochs": 2}]})
    for _ in range(4):
        _, _, _, _, info = env.step([ROUTE_EDGE, OP_NONE])
        assert info["edges_down"] == 0 and info["requests_dropped"] == 0
    backlog = float(env.state.edge_backlog_s[0])
    assert backlog > 0
    obs = env._observation()
    assert obs[15] == 0.0  # edge_up feature
    # the agent still asks for the edge: the fallback reroutes the cell's requests to the cloud
    _, _, _, _, info = env.step([ROUTE_EDGE, OP_NONE])
    assert info["edges_down"] == 1 and info["faults_active"] == 1
    assert info["actions_masked"] == 1 and info["route_counts"].tolist() == [0, 0, 1]
    assert info["requests_rerouted"] == info["requests"] > 0
    assert info["requests_dropped"] > 0  # the queued requests are lost
    assert info["edge_backlog_s"][0] == 0.0 and info["requests_failed"] == 0
    # second epoch down: nothing left to drop; energy of the down edge is not charged
    _, _, _, _, info = env.step([ROUTE_CLOUD, OP_NONE])
    assert info["requests_dropped"] == 0 and info["requests_rerouted"] == 0 and info["energy_edge_j"] == 0
    # back up
    _, _, _, _, info = env.step([ROUTE_EDGE, OP_NONE])
    assert info["edges_down"] == 0 and info["route_counts"].tolist() == [0, 1, 0]


def test_edge_down_generate_requests_go_to_cloud_or_fail() -> None:
    faults = {"edges_down": [{"edge": 0, "start_epoch": 0, "duration_epochs": 5}]}
    # end route: classify on the devices, generate forwarded to the cloud by the base station
    env = make(faults=faults)
    _, _, _, _, info = env.step([ROUTE_END, OP_NONE])
    assert info["requests_failed"] == 0 and info["requests_rerouted"] == info["requests_generate"]
    assert info["quality_generate"] > 0 and info["latency_mean_s"] > 0
    # backhaul out too: the cloud is unreachable, generate requests fail (SLA violations)
    env = make(faults={**faults, "links": [{"edge": 0, "link": "backhaul", "start_epoch": 0, "duration_epochs": 5}]})
    routes, _ = masks(env)
    assert routes[0].tolist() == [True, False, False]
    _, _, _, _, info = env.step([ROUTE_CLOUD, OP_NONE])
    assert info["route_counts"].tolist() == [1, 0, 0] and info["faults_active"] == 2
    assert info["requests_failed"] == info["requests_generate"] > 0
    assert info["sla_violations"] >= info["requests_failed"]
    assert 0 <= info["sla_violation_share"] <= 1


def test_masked_route_raises_under_raise_policy() -> None:
    env = GaisNetEnv("tiny", masked_action="raise",
                     faults={"edges_down": [{"edge": 0, "start_epoch": 0, "duration_epochs": 2}]})
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action\[0\].*route edge.*masked"):
        env.step([ROUTE_EDGE, OP_NONE])
    with pytest.raises(ValueError, match="op finetune.*masked"):
        env.step([ROUTE_CLOUD, OP_FINETUNE])
    env.step([ROUTE_CLOUD, OP_NONE])


# ------------------------------------------------------------------------------------ links
def test_access_outage_aborts_relay_to_end_and_masks_routes() -> None:
    env = FaultInjection(GaisNetEnv("tiny", **FAST))
    base = env.unwrapped
    env.reset(seed=0)
    start_long_op(base, OP_RELAY_TO_END)
    env.inject("link", 0, 2, link="access", bandwidth_factor=0.0)
    routes, ops = masks(base)
    assert routes[0].tolist() == [True, False, False]
    assert not ops[0, OP_RELAY_TO_END]
    _, _, _, _, info = env.step([ROUTE_END, OP_NONE])
    assert info["ops_aborted"] == 1 and info["links_degraded"] == 1 and info["requests_failed"] > 0
    obs = base._observation()
    assert obs[5] == 0.0  # access bandwidth feature


def test_backhaul_outage_aborts_relay_but_not_finetune() -> None:
    env = FaultInjection(GaisNetEnv("tiny", **{**FAST, "reference_models": {"edge": {
        "train_flops_per_sample": 1e12}}}))
    base = env.unwrapped
    env.reset(seed=0)
    start_long_op(base, OP_FINETUNE)  # made long by a heavy reference edge model
    env.inject("link", 0, 1, link="backhaul", bandwidth_factor=0.0)
    _, ops = masks(base)
    assert not ops[0, OP_RELAY_DOWN] and not ops[0, OP_RELAY_UP]
    _, _, _, _, info = env.step([ROUTE_EDGE, OP_NONE])
    assert info["ops_aborted"] == 0 and info["ops_in_flight"] == 1  # local training goes on


def test_link_degradation_slows_requests() -> None:
    fault = {"links": [{"edge": 0, "link": "access", "start_epoch": 0, "duration_epochs": 5,
                        "bandwidth_factor": 0.001}]}
    lat = {}
    for name, faults in (("ok", {}), ("degraded", fault)):
        env = make(faults=faults)
        _, _, _, _, info = env.step([ROUTE_EDGE, OP_NONE])
        lat[name] = info["latency_mean_s"]
        if faults:
            assert info["links_degraded"] == 1 and masks(env)[0][0, ROUTE_EDGE]
            assert env._observation()[5] == pytest.approx(0.001)
    assert lat["degraded"] > lat["ok"]


# ------------------------------------------------------------------------------------ cloud
def test_cloud_overload_reduces_capacity_and_slows_ops() -> None:
    env = FaultInjection(GaisNetEnv("tiny", **FAST))
    base = env.unwrapped
    env.reset(seed=0)
    for _ in range(3):
        env.step([ROUTE_CLOUD, OP_NONE])
    snap = env.snapshot()
    _, _, _, _, normal = env.step([ROUTE_CLOUD, OP_RELAY_UP])
    dur_normal = float(base.state.op_total_s[0])
    env.restore(snap)
    env.inject("cloud_overload", 0, 3, capacity_factor=0.1)
    assert base._observation()[base.n_edges * 19 + 1] == pytest.approx(0.1)  # global cloud_capacity
    _, _, _, _, over = env.step([ROUTE_CLOUD, OP_RELAY_UP])
    assert over["cloud_capacity"] == pytest.approx(0.1) and normal["cloud_capacity"] == 1.0
    assert over["faults_active"] == 1
    assert float(base.state.op_total_s[0]) > dur_normal  # the cloud part of relay_up takes longer
    assert over["latency_mean_s"] >= normal["latency_mean_s"]


def test_cloud_overload_builds_cloud_queue() -> None:
    heavy = {"horizon": 10, "workload": {"rate_per_s": 100.0}, "reference_models": {"cloud": {"inference_flops": 1e12}}}
    infos = {}
    for name, faults in (("ok", {}), ("over", {"cloud_overload": [{"start_epoch": 0, "duration_epochs": 10,
                                                                    "capacity_factor": 0.01}]})):
        env = make(faults=faults, **heavy)
        for _ in range(3):
            _, _, _, _, info = env.step([ROUTE_CLOUD, OP_NONE])
        infos[name] = info
    assert infos["over"]["cloud_backlog_s"] > infos["ok"]["cloud_backlog_s"]
    assert infos["over"]["latency_mean_s"] > infos["ok"]["latency_mean_s"]


# ------------------------------------------------------------------------------------ battery
def test_battery_exhaustion_masks_end_and_recharges() -> None:
    env = make(horizon=200, energy={"end_battery_j": 50.0, "end_recharge_w": 1.0},
               workload={"rate_per_s": 20.0, "generate_share": 0.0},
               reference_models={"end": {"inference_flops": 1e11}})  # heavy on-device inference
    empty_at = None
    for i in range(100):
        routes, _ = masks(env)
        if not routes[0, ROUTE_END]:
            empty_at = i
            break
        env.step([ROUTE_END, OP_NONE])
    assert empty_at is not None and env.state.battery_j[0] == 0.0
    assert env._observation()[16] == 0.0
    # the agent keeps asking for the end route: it falls back to the edge, counted
    _, _, _, _, info = env.step([ROUTE_END, OP_NONE])
    assert info["batteries_empty"] == 1 and info["actions_masked"] == 1
    assert info["route_counts"].tolist() == [0, 1, 0] and info["energy_end_j"] == 0
    assert info["requests_rerouted"] == info["requests"]
    # with nothing running on the devices the battery recharges and the end route comes back
    for _ in range(20):
        env.step([ROUTE_EDGE, OP_NONE])
    assert env.state.battery_j[0] > 0 and masks(env)[0][0, ROUTE_END]


def test_empty_battery_and_no_link_fails_the_requests() -> None:
    env = FaultInjection(GaisNetEnv("tiny", energy={"end_battery_j": 100.0, "end_recharge_w": 0.0}))
    env.reset(seed=0)
    env.inject("battery", 0)
    env.inject("link", 0, 2, link="access", bandwidth_factor=0.0)
    routes, _ = masks(env.unwrapped)
    assert routes[0].tolist() == [True, False, False]  # no feasible route: end stays selectable
    _, _, _, _, info = env.step([ROUTE_END, OP_NONE])
    assert info["requests_failed"] == info["requests"] > 0
    assert info["sla_violation_share"] == 1.0 and info["accuracy"] == 0.0 and info["energy_end_j"] == 0.0


# ------------------------------------------------------------------------------------ wrapper
def test_injection_isolated_from_other_envs_and_cleared_by_reset() -> None:
    sc = load_scenario("tiny")
    a = GaisNetEnv(sc)
    b = GaisNetEnv(sc)
    b.scenario = a.scenario  # even when two envs share one Scenario object
    w = FaultInjection(a)
    w.reset(seed=0)
    w.inject("edge_down", 0, 4)
    w.inject("link", 0, 4, link="backhaul", bandwidth_factor=0.5)
    w.inject("cloud_overload", 0, 4, capacity_factor=0.5)
    assert len(a.scenario.faults.edges_down) == 1 and len(a.scenario.faults.links) == 1
    assert b.scenario.faults.edges_down == [] and sc.faults.edges_down == []
    _, _, _, _, info = w.step([ROUTE_CLOUD, OP_NONE])
    assert info["faults_active"] == 3
    w.reset(seed=0)
    assert a.scenario.faults.edges_down == [] and a.scenario.faults.links == []


def test_injected_faults_start_relative_to_current_epoch_and_expire() -> None:
    w = FaultInjection(GaisNetEnv("tiny"))
    w.reset(seed=0)
    for _ in range(5):
        w.step([ROUTE_EDGE, OP_NONE])
    w.inject("edge_down", 0, 2, start_in=1)
    assert w.unwrapped.scenario.faults.edges_down[0].start_epoch == 6
    down = []
    for _ in range(5):
        _, _, _, _, info = w.step([ROUTE_CLOUD, OP_NONE])
        down.append(info["edges_down"])
    assert down == [0, 1, 1, 0, 0]
    w.inject("edge_down", 0, 1)  # prunes the expired one
    assert len(w.unwrapped.scenario.faults.edges_down) == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"kind": "meteor"}, "kind must be one of"),
        ({"kind": "edge_down", "edge": 1}, r"edge must be an integer in 0\.\.0"),
        ({"kind": "edge_down", "edge": 0.5}, "edge must be an integer"),
        ({"kind": "edge_down", "duration_epochs": 0}, "duration_epochs"),
        ({"kind": "link", "link": "satellite"}, "link must be"),
        ({"kind": "link", "bandwidth_factor": 1.5}, "bandwidth_factor"),
        ({"kind": "cloud_overload", "capacity_factor": 0.0}, "capacity_factor"),
        ({"kind": "edge_down", "start_in": -1}, "start_in"),
        ({"kind": "battery"}, "end_battery_j"),
    ],
)
def test_inject_validates_its_arguments(kwargs: dict, match: str) -> None:
    w = FaultInjection(GaisNetEnv("tiny"))
    with pytest.raises(RuntimeError, match="reset"):
        w.inject("edge_down")
    w.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        w.inject(**kwargs)


def test_wrapper_constructor_validation() -> None:
    env = GaisNetEnv("tiny")
    with pytest.raises(ValueError, match="rate"):
        FaultInjection(env, rate=2.0)
    with pytest.raises(ValueError, match="unknown kind"):
        FaultInjection(env, kinds=["flood"])
    with pytest.raises(ValueError, match="end_battery_j"):
        FaultInjection(env, kinds=["battery"])
    with pytest.raises(ValueError, match="max_duration"):
        FaultInjection(env, max_duration=0)
    assert "battery" not in FaultInjection(env).kinds
    assert FaultInjection(GaisNetEnv("tiny", energy={"end_battery_j": 10.0})).kinds == FAULT_KINDS


def _run_random(seed: int, steps: int = 60) -> list[str]:
    w = FaultInjection(GaisNetEnv("tiny", horizon=steps + 5, energy={"end_battery_j": 20.0, "end_recharge_w": 0.5}),
                       rate=0.5, seed=seed)
    w.reset(seed=3)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(steps):
        _, r, _, _, info = w.step(rng.integers([3, 1]))
        out.append(json.dumps([r, info.get("fault_injected"), info["faults_active"], info["actions_masked"],
                               flat_mask(info["action_mask"]).tolist()]))
    return out


def test_random_injection_is_seeded_and_visible_in_the_mask() -> None:
    a, b, c = _run_random(1), _run_random(1), _run_random(2)
    assert a == b and a != c
    kinds = {json.loads(x)[1] for x in a} - {None}
    assert len(kinds) >= 3
    w = FaultInjection(GaisNetEnv("tiny", horizon=500), rate=1.0, kinds=["edge_down"], max_duration=3, seed=0)
    w.reset(seed=0)
    for _ in range(20):
        _, _, _, _, info = w.step([ROUTE_CLOUD, OP_NONE])
        # the returned mask already shows the new fault: the edge route is masked
        routes = info["action_mask"][0]  # edge 0's route mask (Gymnasium's format)
        assert not routes[ROUTE_EDGE] and routes[ROUTE_CLOUD]
    assert len(w.unwrapped.scenario.faults.edges_down) <= 3  # expired injections are pruned


def test_wrapper_snapshot_restore_replays_injected_faults() -> None:
    w = FaultInjection(GaisNetEnv("tiny", **FAST), rate=0.3, seed=4)
    w.reset(seed=1)
    rng = np.random.default_rng(0)
    for _ in range(10):
        w.step(rng.integers([3, 5]))
    snap = w.snapshot()
    actions = [rng.integers([3, 5]) for _ in range(80)]

    def play() -> list[str]:
        out = []
        for a in actions:
            obs, r, _, _, info = w.step(a)
            out.append(obs.tobytes().hex() + json.dumps({k: v.tolist() for k, v in info_arrays(info).items()}))
        return out

    first = play()
    w.restore(snap)
    assert play() == first
