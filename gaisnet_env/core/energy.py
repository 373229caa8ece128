"""Energy (J) and carbon (g) of an epoch, per cell and in total, the request traffic (bytes) and the
end devices' batteries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gaisnet_env import cost
from gaisnet_env.core.layout import ROUTE_END


@dataclass
class Energy:
    """Energy of one epoch: per cell (E,) arrays in J, totals as floats (J, g, bytes)."""

    edge_cell: np.ndarray  # edge servers' compute (idle + busy, PUE) and the ops started
    cloud_cell: np.ndarray  # the cloud time each cell's requests and ops used (PUE)
    end_cell: np.ndarray  # end devices' dynamic compute
    radio_access: np.ndarray  # request traffic over the access link
    radio_backhaul: np.ndarray  # request traffic over the backhaul
    edge: float
    cloud: float
    end: float
    radio: float
    total: float
    carbon_g: float
    bytes_up: float  # request bytes sent up (access and backhaul)
    bytes_down: float


@dataclass(frozen=True)
class Radio:
    """Radio energy per bit (J/bit, (E,)) of the access links and backhaul paths, per direction."""

    access_up: np.ndarray
    access_down: np.ndarray
    backhaul_up: np.ndarray
    backhaul_down: np.ndarray


def epoch_energy(node: dict[str, Any], epoch_s: float, op_share_hw: float, edge_work: np.ndarray,
                 edge_capacity: np.ndarray, share: np.ndarray, f_edge_up: np.ndarray, op_energy_edge: np.ndarray,
                 op_energy_cloud: np.ndarray, at_cloud_n: np.ndarray, t_classify: dict[str, float],
                 t_generate: dict[str, float], end_busy: np.ndarray) -> Energy:
    """Compute energy of the epoch (radio and carbon are added by :func:`add_traffic`): edge servers at
    idle power plus their busy time (requests and the ``share`` of ops in flight at ``op_share_hw`` of
    the edge), the cloud at active power for the time used, end devices for their local compute."""
    node_e, node_c, node_u = node["edge"], node["cloud"], node["end"]
    edge_busy = np.minimum(edge_work, edge_capacity) + op_share_hw * share * epoch_s
    edge_cell = (
        cost.compute_energy_j(node_e.idle_w, node_e.active_w, edge_busy, epoch_s, node_e.pue) * f_edge_up
        + op_energy_edge
    )
    # the cloud is shared: this system is charged the active power of the time it uses, times PUE
    cloud_work_cell = at_cloud_n[0] * t_classify["cloud"] + at_cloud_n[1] * t_generate["cloud"]
    cloud_cell = node_c.active_w * cloud_work_cell * node_c.pue + op_energy_cloud
    end_cell = (node_u.active_w - node_u.idle_w) * end_busy
    zero = np.zeros(0)
    return Energy(edge_cell, cloud_cell, end_cell, zero, zero, float(edge_cell.sum()), float(cloud_cell.sum()),
                  0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def add_traffic(en: Energy, N: np.ndarray, route: np.ndarray, at_cloud_n: np.ndarray, finite: np.ndarray,
                in_b: tuple, out_b: tuple, radio: Radio, ci_edge: float, ci_cloud: float) -> None:
    """Charge the request traffic (requests go up, results come down; only requests with a path) to
    ``en``: radio energy per cell, the totals, carbon at the sites' intensities (g/kWh) and the bytes."""
    E = route.shape[0]
    on_access = np.empty((2, E), dtype=bool)  # requests that cross the access link
    on_access[0] = route != ROUTE_END
    on_access[1] = True
    # request bytes per direction (E,)
    n_access, n_backhaul = N * on_access * finite, at_cloud_n * finite
    in_access, out_access = _bytes(n_access, in_b), _bytes(n_access, out_b)
    in_backhaul, out_backhaul = _bytes(n_backhaul, in_b), _bytes(n_backhaul, out_b)
    en.radio_access = (cost.radio_energy_j(in_access, radio.access_up)
                       + cost.radio_energy_j(out_access, radio.access_down))
    en.radio_backhaul = (cost.radio_energy_j(in_backhaul, radio.backhaul_up)
                         + cost.radio_energy_j(out_backhaul, radio.backhaul_down))
    en.radio = float(en.radio_access.sum() + en.radio_backhaul.sum())
    en.end = float(en.end_cell.sum())
    en.total = en.edge + en.cloud + en.end + en.radio
    en.carbon_g = cost.carbon_g(en.edge + en.end + en.radio, ci_edge) + cost.carbon_g(en.cloud, ci_cloud)
    en.bytes_up = float(in_access.sum() + in_backhaul.sum())
    en.bytes_down = float(out_access.sum() + out_backhaul.sum())


def cell_carbon_g(en: Energy, ci_edge: Any, ci_cloud: Any) -> np.ndarray:
    """(..., E) carbon (g) of each cell's energy: the cloud's at the cloud site, the rest at the edge site
    (intensities in g/kWh: scalars, or (..., 1) per env copy)."""
    out = cost.carbon_g(en.edge_cell + en.end_cell + en.radio_access + en.radio_backhaul, ci_edge)
    return out + cost.carbon_g(en.cloud_cell, ci_cloud)


def drain_batteries(battery_j: np.ndarray, en: Energy, recharge_w: float, epoch_s: float,
                    capacity_j: float | None) -> np.ndarray:
    """Batteries (J) of the end devices after the epoch: local compute and the radio's traffic drain them,
    the charger adds ``recharge_w`` (W); unchanged (inf) without batteries."""
    if not np.isfinite(battery_j).any():
        return battery_j
    drain = en.end_cell + en.radio_access
    return np.clip(battery_j - drain + recharge_w * epoch_s, 0.0, capacity_j)


def _bytes(n: np.ndarray, per_request: tuple) -> np.ndarray:
    """(E,) bytes of the requests ``n`` (2, E: classify, generate) at ``per_request`` bytes each kind (written
    out rather than ``n.T @ per_request``, whose BLAS kernel would round differently on other machines)."""
    return n[0] * per_request[0] + n[1] * per_request[1]
