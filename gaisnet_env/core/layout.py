"""Names and indices shared by the core and the shells: observation features, routes, operations."""

from __future__ import annotations

EDGE_FEATURES: tuple[str, ...] = (
    "request_rate",
    "accuracy_end",
    "accuracy_edge",
    "accuracy_cloud",
    "edge_backlog",
    "access_bandwidth",
    "backhaul_bandwidth",
    "since_relay_down",
    "since_finetune",
    "since_relay_up",
    "since_relay_to_end",
    "op_in_flight",
    "op_remaining",
    "drift",
    "edge_carbon_intensity",
    "edge_up",
    "battery",
    "sla_violation_share",
    "latency_ratio",
)
GLOBAL_FEATURES: tuple[str, ...] = (
    "cloud_backlog",
    "cloud_capacity",
    "time_sin",
    "time_cos",
    "cloud_carbon_intensity",
    "episode_progress",
)
ROUTE_END, ROUTE_EDGE, ROUTE_CLOUD = 0, 1, 2
OP_NONE, OP_RELAY_DOWN, OP_FINETUNE, OP_RELAY_UP, OP_RELAY_TO_END = range(5)
SINCE_SCALE = 20.0  # epochs; the "time since op" features saturate over about this many epochs
NEVER = 1e6  # epochs since an operation that never ran
