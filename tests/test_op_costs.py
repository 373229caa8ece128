"""Every op's charge against values computed by hand from the declared profiles (scenarios/metro.yaml).

The FLOP figures below are copied from metro.yaml's ``reference_models``; the sample counts are the
default workers' settings; the hardware figures are the datasheet numbers of gaisnet_env.profiles.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gaisnet_env import op_costs, profiles
from gaisnet_env.env import OP_NONE, OP_RELAY_UP, ROUTE_CLOUD, GaisNetEnv
from gaisnet_env.scenario import load_scenario
from gaisnet_env.worker_config import N_CLASSES, STYLES
from gaisnet_env.workers import REPORT_BYTES, WorkerSystem

UNIFORM = np.full(N_CLASSES, 1.0 / N_CLASSES)
ROTATE = np.eye(len(STYLES))[STYLES.index("rotate")]  # a public style: the cloud generator renders it
MIRROR = np.eye(len(STYLES))[STYLES.index("mirror")]  # a personal style: only the edges' generators can
# metro.yaml, reference_models
CLOUD_INFER, CLOUD_GEN, CLOUD_TRAIN, CLOUD_GEN_TRAIN = 1.23e11, 3.6e13, 2.5e11, 2.0e12
EDGE_INFER, EDGE_TRAIN, EDGE_GEN, EDGE_GEN_TRAIN = 3.52e10, 7.0e10, 8.0e11, 1.4e12
END_TRAIN = 1.3e9
SAMPLE_BYTES, EDGE_UPDATE_BYTES, END_UPDATE_BYTES = 30000, 589824, 10800000
NO_FAULTS = {"access": np.ones(4), "backhaul": np.ones(4), "cloud_capacity": 1.0}


@pytest.fixture(scope="module")
def metro() -> GaisNetEnv:
    env = GaisNetEnv("metro")
    env.reset(seed=0)
    return env


def _filled(env: GaisNetEnv, style: np.ndarray = ROTATE) -> WorkerSystem:
    ws = env.workers
    ws.reset(0)
    rng = np.random.default_rng(0)
    for e in range(ws.n_edges):
        ws.add_feedback(e, UNIFORM, style, 200, rng)
    return ws


def _charge(env: GaisNetEnv, res) -> dict[str, float]:
    return op_costs.op_charge(res, env.scenario.reference_models)


def test_every_op_is_charged_the_declared_profiles(metro: GaisNetEnv) -> None:
    ws = _filled(metro)
    cfg, n = ws.config, ws.config.feedback_buffer  # a full 128-sample buffer
    counts = (cfg.finetune_epochs, cfg.generator_epochs, cfg.relay_down_samples, cfg.relay_up_samples)
    assert counts == (4, 10, 256, 512)
    res = ws.start_op("finetune", 0)
    assert _charge(metro, res) == pytest.approx({"edge": 4 * n * EDGE_TRAIN + 10 * n * EDGE_GEN_TRAIN, "cloud": 0.0})
    ws.abort_op(0)
    res = ws.start_op("relay_down", 0)  # 256 synthetic samples + one local batch per batch, 4 epochs
    assert _charge(metro, res) == pytest.approx({
        "cloud": 256 * CLOUD_GEN + 256 * CLOUD_INFER,
        "edge": 4 * (256 + 256) * EDGE_TRAIN + 10 * 256 * EDGE_GEN_TRAIN})
    ws.abort_op(0)
    res = ws.start_op("relay_up", 0)  # 512 synthetic + 256 public samples, cloud model trained 4 epochs
    assert _charge(metro, res) == pytest.approx({
        "cloud": 512 * CLOUD_GEN + 512 * EDGE_INFER + 768 * CLOUD_INFER + 4 * 768 * CLOUD_TRAIN, "edge": 0.0})
    ws.abort_op(0)
    res = ws.start_op("relay_to_end", 0)  # charged at the end model's profile although it runs on the edge
    assert _charge(metro, res) == pytest.approx({"edge": 256 * EDGE_INFER + 4 * 256 * END_TRAIN, "cloud": 0.0})
    ws.abort_op(0)


def test_personal_styles_add_the_generators_parts(metro: GaisNetEnv) -> None:
    ws = _filled(metro, MIRROR)
    res = ws.start_op("relay_up", 0)  # every sample of the mirror domain is rendered by the edge's generator
    assert _charge(metro, res) == pytest.approx({
        "cloud": 512 * EDGE_GEN + 512 * EDGE_INFER + 768 * CLOUD_INFER + 4 * 768 * CLOUD_TRAIN
        + 256 * CLOUD_GEN + 10 * 768 * CLOUD_GEN_TRAIN, "edge": 0.0})
    ws.abort_op(0)
    res = ws.start_op("relay_down", 0)  # the cloud knows nothing of mirror: refused, nothing charged
    assert not res.ok and res.work == [] and _charge(metro, res) == {"edge": 0.0, "cloud": 0.0}
    ws = _filled(metro, 0.5 * (ROTATE + MIRROR))
    styles = ws.domain_report(0)[1]
    n_rep = round(256 * styles[STYLES.index("mirror")] / styles.sum())  # ~128: the reported mirror share
    assert 100 < n_rep < 156
    res = ws.start_op("relay_down", 0)  # the cloud relays 256 rotate samples; the edge generator replays
    # n_rep of its own mirror samples and is distilled on all 256 + n_rep
    assert res.ok and _charge(metro, res)["edge"] == pytest.approx(
        4 * (256 + 256) * EDGE_TRAIN + n_rep * EDGE_GEN + 10 * (256 + n_rep) * EDGE_GEN_TRAIN)
    ws.abort_op(0)


def test_counted_flops_are_the_sum_of_the_parts(metro: GaisNetEnv) -> None:
    ws = _filled(metro)
    for op in ("finetune", "relay_down", "relay_up", "relay_to_end"):
        res = ws.start_op(op, 0)
        assert res.flops == op_costs.counted_by_tier(res.work)
        for part in res.work:
            assert part.flops > 0 and part.samples > 0, (op, part)
        ws.abort_op(0)
    # no declared profile (tiny): the counted FLOPs are charged
    tiny = GaisNetEnv("tiny")
    tiny.reset(seed=0)
    tw = _filled(tiny)
    res = tw.start_op("finetune", 0)
    assert _charge(tiny, res) == pytest.approx({"edge": res.flops["edge"], "cloud": 0.0})
    assert res.flops["edge"] == pytest.approx(
        tw.config.feedback_buffer * (4 * tw.training_flops("edge") + 10 * tw.gens.flops["edge"][1]))


def test_the_env_charges_time_energy_and_bytes_from_the_profiles(metro: GaisNetEnv) -> None:
    ws = _filled(metro)
    orin, a100 = profiles.NODES["jetson_agx_orin"], profiles.NODES["nvidia_a100_sxm"]
    wan, nr = profiles.LINKS["wan_internet"], profiles.LINKS["5g_nr_midband"]
    res = ws.start_op("relay_down", 0)
    dur, e_edge, e_cloud, up, down, cloud_s = metro._op_cost("relay_down", 0, res, NO_FAULTS)
    fl_edge = 4 * 512 * EDGE_TRAIN + 10 * 256 * EDGE_GEN_TRAIN
    fl_cloud = 256 * (CLOUD_GEN + CLOUD_INFER)
    assert (up, down) == (REPORT_BYTES, 256 * SAMPLE_BYTES)
    # each leg: bytes / bandwidth + half the RTT
    t_net = wan.rtt_s + 8 * REPORT_BYTES / wan.uplink_bps + 8 * 256 * SAMPLE_BYTES / wan.downlink_bps
    assert dur == pytest.approx(fl_edge / (0.5 * orin.effective_flops) + fl_cloud / a100.effective_flops + t_net)
    assert cloud_s == pytest.approx(fl_cloud / a100.effective_flops)
    assert e_cloud == pytest.approx(a100.active_w * fl_cloud / a100.effective_flops * a100.pue)
    assert e_edge == pytest.approx((orin.active_w - orin.idle_w) * fl_edge / orin.effective_flops
                                   + 8 * (REPORT_BYTES + 256 * SAMPLE_BYTES) * wan.j_per_bit)
    ws.abort_op(0)
    for op, bytes_up in (("relay_up", EDGE_UPDATE_BYTES), ("finetune", 0)):
        res = ws.start_op(op, 0)
        assert metro._op_cost(op, 0, res, NO_FAULTS)[3:5] == (bytes_up, 0.0), op
        ws.abort_op(0)
    res = ws.start_op("relay_to_end", 0)
    _, e_edge, _, up, down, cloud_s = metro._op_cost("relay_to_end", 0, res, NO_FAULTS)
    assert (up, down, cloud_s) == (0.0, END_UPDATE_BYTES, 0.0)
    fl = 256 * EDGE_INFER + 4 * 256 * END_TRAIN
    assert e_edge == pytest.approx((orin.active_w - orin.idle_w) * fl / orin.effective_flops
                                   + 8 * END_UPDATE_BYTES * nr.j_per_bit)
    ws.abort_op(0)


def test_lte_radio_energy_is_charged_per_direction(metro: GaisNetEnv) -> None:
    lte = profiles.LINKS["lte"]
    # Huang et al., MobiSys'12: 438 mW per Mbit/s up, 52 mW per Mbit/s down
    assert (lte.up_j_per_bit, lte.down_j_per_bit) == (4.38e-7, 5.2e-8)
    env = GaisNetEnv("metro", topology={"access_link": "lte"})
    env.reset(seed=0)
    ws = _filled(env)
    res = ws.start_op("relay_to_end", 0)  # the end model goes down the access link
    _, e_edge, *_ = env._op_cost("relay_to_end", 0, res, NO_FAULTS)
    orin = profiles.NODES["jetson_agx_orin"]
    fl = 256 * EDGE_INFER + 4 * 256 * END_TRAIN
    assert e_edge == pytest.approx((orin.active_w - orin.idle_w) * fl / orin.effective_flops
                                   + 8 * END_UPDATE_BYTES * 5.2e-8)


def test_a_round_splits_its_energy_and_every_sender_waits_for_it(metro: GaisNetEnv) -> None:
    ws = _filled(metro)
    alone = ws.start_op("relay_up", 0)
    ws.abort_op(0)
    pair = ws.start_ops([("relay_up", 0), ("relay_up", 1)])
    assert [r.share for r in pair] == [0.5, 0.5]
    a = metro._op_cost("relay_up", 0, alone, NO_FAULTS)
    b = metro._op_cost("relay_up", 0, pair[0], NO_FAULTS)
    assert _charge(metro, pair[0]) == pytest.approx(_charge(metro, alone))  # one round: the work of one
    assert b[0] == pytest.approx(a[0])  # each sender waits for the whole round
    assert b[2] == pytest.approx(0.5 * a[2]) and b[5] == pytest.approx(0.5 * a[5])  # and pays half of it
    for e in (0, 1):
        ws.abort_op(e)


def test_cloud_op_compute_takes_cloud_serving_capacity() -> None:
    """A relay_up's cloud compute takes cloud server time: with every request at the cloud, the cloud's
    queue is longer than in the same epoch without it."""
    sc = load_scenario("metro")
    waits = []
    for with_op in (False, True):
        env = GaisNetEnv(dataclasses.replace(sc, faults=dataclasses.replace(sc.faults, links=[], cloud_overload=[])),
                         workload={"rate_per_s": 40.0, "flash_crowds": []})
        env.reset(seed=0)
        env.step(np.array([[ROUTE_CLOUD, OP_NONE]] * 4).ravel())  # a first epoch of feedback
        op = OP_RELAY_UP if with_op else OP_NONE
        _, _, _, _, info = env.step(np.array([[ROUTE_CLOUD, op]] * 4).ravel())
        assert (env.state.op_cloud_share > 0).all() == with_op
        waits.append(info["cloud_backlog_s"])
    assert waits[1] > waits[0]
