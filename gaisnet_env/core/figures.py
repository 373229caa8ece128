"""Static cost figures of a scenario: per-tier nodes, link figures per edge, per-request compute and the
reward normalisers. They do not change during an episode."""

from __future__ import annotations

from typing import Any

import numpy as np

from gaisnet_env import cost, profiles
from gaisnet_env.worker_config import TIERS


def static_figures(sc: Any, hops: np.ndarray, inference_flops: dict[str, float],
                   generation_flops: dict[str, float]) -> dict[str, Any]:
    """The cost figures of scenario ``sc`` by name (the env's attributes of the same names): ``node``
    (profiles per tier), access and backhaul ``*_up_bps`` / ``*_down_bps`` (bit/s), ``*_rtt_s`` (s) and
    ``*_j_up`` / ``*_j_down`` (J/bit) per edge (the backhaul's over ``hops`` hops), ``classify_flops`` /
    ``generate_flops`` per request (the reference models' where declared, else the workers' counted
    ``inference_flops`` / ``generation_flops``), ``t_classify`` / ``t_generate`` (s on one node),
    ``deadline`` (classify, generate; s), ``energy_ref_j`` (J), ``carbon_ref_g`` (g), ``mean_rate`` (1/s)."""
    E = sc.topology.n_edges
    out: dict[str, Any] = {"node": {t: profiles.NODES[getattr(sc.hardware, t)] for t in TIERS}}
    node = out["node"]
    access = sc.topology.edge_access_links or [sc.topology.access_link] * E
    acc_links = [profiles.LINKS[name] for name in access]
    bh = profiles.LINKS[sc.topology.backhaul_link]
    out.update(
        access_up_bps=np.array([lk.uplink_bps for lk in acc_links]),
        access_down_bps=np.array([lk.downlink_bps for lk in acc_links]),
        access_rtt_s=np.array([lk.rtt_s for lk in acc_links]),
        access_j_up=np.array([lk.up_j_per_bit for lk in acc_links]),  # J/bit per direction
        access_j_down=np.array([lk.down_j_per_bit for lk in acc_links]),
        backhaul_up_bps=np.full(E, bh.uplink_bps),
        backhaul_down_bps=np.full(E, bh.downlink_bps),
        backhaul_rtt_s=bh.rtt_s * hops,
        backhaul_j_up=bh.up_j_per_bit * hops,
        backhaul_j_down=bh.down_j_per_bit * hops,
    )
    refs = sc.reference_models
    classify_flops = {}
    for t in TIERS:  # ops are charged part by part (gaisnet_env.op_costs)
        ref = getattr(refs, t)
        classify_flops[t] = ref.inference_flops if ref and ref.inference_flops > 0 else inference_flops[t]
    generate_flops = {}
    for where in ("edge", "cloud"):
        ref = getattr(refs, where)
        generate_flops[where] = ref.generate_flops if ref and ref.generate_flops > 0 else generation_flops[where]
    wl = sc.workload
    energy_ref_j = sc.reward.energy_reference_j or E * node["edge"].active_w * sc.epoch_s
    mean_ci = profiles.GRID[sc.energy.edge_region].mean_g_per_kwh
    out.update(
        classify_flops=classify_flops,
        generate_flops=generate_flops,
        # seconds of compute per request on one node of each tier
        t_classify={t: classify_flops[t] / node[t].effective_flops for t in TIERS},
        t_generate={t: generate_flops[t] / node[t].effective_flops for t in ("edge", "cloud")},
        deadline=np.array([wl.classify_deadline_s, wl.generate_deadline_s]),
        energy_ref_j=energy_ref_j,  # reward normalisers
        carbon_ref_g=sc.reward.carbon_reference_g or cost.carbon_g(energy_ref_j, mean_ci),
        mean_rate=max(wl.rate_per_s, 1e-9),
    )
    return out
