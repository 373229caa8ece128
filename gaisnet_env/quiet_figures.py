"""The per-copy figures the quiet steps (:mod:`gaisnet_env.quiet_steps`) read, stacked over the copies: the
static cost figures of each copy (node powers, per-request times, payloads, reward weights...), kept while
they hold; the workload figures of each copy's next epoch, computed once per group of copies; the request
legs under each copy's faults."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, NamedTuple

import numpy as np

from gaisnet_env.core import batch
from gaisnet_env.core.faults import active_at, multipliers
from gaisnet_env.readings import _grid_intensity

#: The per-copy figures :func:`figures` reads, in the order of its columns.
_FIGURE_COLUMNS = ("epoch_s", "op_share_hw", "edge_idle_w", "edge_active_w", "edge_pue", "cloud_active_w",
                   "cloud_pue", "end_active_w", "end_idle_w", "tc_end", "tc_edge", "tc_cloud", "tg_edge", "tg_cloud",
                   "classify_in_b", "generate_in_b", "classify_out_b", "generate_out_b", "w_acc", "w_lat",
                   "w_energy", "w_sla", "w_carbon", "latency_clip", "energy_ref_j", "carbon_ref_g", "mean_rate",
                   "cloud_servers", "recharge_w", "battery_cap", "feedback_cap", "deadline_classify",
                   "deadline_generate", "generate_share", "label_rate", "feedback_per_epoch")


def figure_row(env: Any) -> tuple:
    """One copy's :data:`_FIGURE_COLUMNS` (read afresh every step, as the single env reads them)."""
    sc = env.scenario
    hw, wl, rw, node, tc, tg = sc.hardware, sc.workload, sc.reward, env.node, env.t_classify, env.t_generate
    ne, nc, nu = node["edge"], node["cloud"], node["end"]
    return (sc.epoch_s, hw.op_share, ne.idle_w, ne.active_w, ne.pue, nc.active_w, nc.pue, nu.active_w, nu.idle_w,
            tc["end"], tc["edge"], tc["cloud"], tg["edge"], tg["cloud"], wl.classify_in_bytes, wl.generate_in_bytes,
            wl.classify_out_bytes, wl.generate_out_bytes, rw.w_acc, rw.w_lat, rw.w_energy, rw.w_sla, rw.w_carbon,
            rw.latency_clip, env.energy_ref_j, env.carbon_ref_g, env.mean_rate, hw.cloud_servers,
            sc.energy.end_recharge_w, sc.energy.end_battery_j or 0.0, sc.workers.feedback_buffer, *env.deadline,
            wl.generate_share, wl.label_rate, wl.feedback_per_epoch)


def figures(envs: list[Any], table: np.ndarray) -> Any:
    """The copies' cost figures stacked: :class:`batch.Figures` with the env-side ones added ((N, 1) per
    copy; per edge (N, E)); ``table`` their :func:`figure_row` rows."""
    c = {name: table[:, j : j + 1] for j, name in enumerate(_FIGURE_COLUMNS)}
    fg = batch.Figures(
        epoch_s=c["epoch_s"], op_share_hw=c["op_share_hw"],
        edge=(c["edge_idle_w"], c["edge_active_w"], c["edge_pue"]), cloud=(c["cloud_active_w"], c["cloud_pue"]),
        end=(c["end_active_w"], c["end_idle_w"]), t_classify=(c["tc_end"], c["tc_edge"], c["tc_cloud"]),
        t_generate=(c["tg_edge"], c["tg_cloud"]), in_b=(c["classify_in_b"], c["generate_in_b"]),
        out_b=(c["classify_out_b"], c["generate_out_b"]),
        radio=tuple(np.array([getattr(env, a) for env in envs]).astype(np.float64)
                    for a in ("access_j_up", "access_j_down", "backhaul_j_up", "backhaul_j_down")),
    )
    fg.t_dicts = ({"end": c["tc_end"], "edge": c["tc_edge"], "cloud": c["tc_cloud"]},
                  {"edge": c["tg_edge"], "cloud": c["tg_cloud"]})
    fg.rw = SimpleNamespace(**{a: c[a] for a in ("w_acc", "w_lat", "w_energy", "w_sla", "w_carbon", "latency_clip")})
    fg.weights = {a: c[a][:, 0] for a in ("w_acc", "w_lat", "w_energy", "w_sla", "w_carbon")}
    fg.energy_ref_j, fg.carbon_ref_g, fg.mean_rate = c["energy_ref_j"], c["carbon_ref_g"], c["mean_rate"]
    fg.cloud_servers, fg.recharge_w, fg.battery_cap = c["cloud_servers"], c["recharge_w"], c["battery_cap"]
    fg.battery_cap_or_inf = np.where(fg.battery_cap > 0, fg.battery_cap, np.inf)
    fg.feedback_cap = c["feedback_cap"].astype(np.int64)
    fg.generate_share = c["generate_share"]
    fg.feedback_per_epoch = c["feedback_per_epoch"].astype(np.int64)
    # each copy's draw parameters as Python numbers: (generate share, label rate, labels kept per cell)
    fg.draw_params = [(g, r, int(k)) for g, r, k in
                      zip(*(c[a][:, 0].tolist() for a in ("generate_share", "label_rate", "feedback_per_epoch")),
                          strict=True)]
    ones = np.ones(envs[0].n_edges)  # the link factors without faults
    legs = [env._legs({"active": 0, "access": ones, "backhaul": ones}, True, *payloads(env)) for env in envs]
    fg.edge_leg, fg.cloud_leg = np.array([leg[0] for leg in legs]), np.array([leg[1] for leg in legs])
    fg.deadlines = np.array([env._deadlines() for env in envs])
    return fg


def payloads(env: Any) -> tuple[tuple, tuple]:
    """The copy's request and response bytes per kind: ``((classify in, generate in), (classify out,
    generate out))``, as :meth:`GaisNetEnv._latency` passes them to :meth:`GaisNetEnv._legs`."""
    wl = env.scenario.workload
    return (wl.classify_in_bytes, wl.generate_in_bytes), (wl.classify_out_bytes, wl.generate_out_bytes)


def kept_figures(holder: Any, envs: list[Any]) -> Any:
    """:func:`figures` of the copies, kept (in ``holder._figures_memo``) while the same copies have the same
    figure rows (deadlines included) and the same radio arrays (set when an env is built)."""
    rows = [figure_row(env) for env in envs]
    arrays = [(env.access_j_up, env.access_j_down, env.backhaul_j_up, env.backhaul_j_down) for env in envs]
    memo = holder._figures_memo
    # (the rows compare as tuples of Python numbers: equal values, or a NaN that is the same object)
    if (memo is not None and len(memo[1]) == len(envs) and memo[0] == rows
            and all(a is b for new, old in zip(arrays, memo[1], strict=True)
                    for a, b in zip(new, old, strict=True))):
        return memo[2]
    fg = figures(envs, np.array(rows, dtype=np.float64))
    holder._figures_memo = (rows, arrays, fg)
    return fg


class CopyFigures(NamedTuple):
    """One copy's workload figures of an epoch, with what they are pure functions of (workload, energy
    config, epoch)."""

    workload: Any
    energy: Any  # the scenario's EnergyConfig (grid regions and trace)
    epoch: int
    rates: np.ndarray  # (E,) mean arrivals, 1/s (read-only)
    hour: float  # time of day, h
    class_mix: np.ndarray  # (E, 10), read-only (as the observation reads it)
    style_mix: np.ndarray  # (E, S), read-only
    carbon: tuple[float, float]  # grid intensity at the edge and the cloud, g/kWh
    carbon_key: tuple  # (edge region, cloud region, carbon trace) it was computed for

    def holds_for(self, env: Any) -> bool:
        """Whether these are still the figures of ``env``'s epoch: the same workload, energy config (with the
        same grid regions and trace) and epoch."""
        en = env.scenario.energy
        return (self.workload is env.workload and self.energy is en and self.epoch == env.state.epoch
                and self.carbon_key == _carbon_key(en))


def _carbon_key(en: Any) -> tuple:
    """What :meth:`GaisNetEnv._carbon_intensity` keys its memo on."""
    return en.edge_region, en.cloud_region, en.carbon_trace


def read_figures(env: Any) -> CopyFigures:
    """The copy's :class:`CopyFigures` of its epoch, read through the env's memos."""
    t = env.state.epoch
    now = env._figures(t)
    cm, sm = env._domains_at(min(t, env.scenario.horizon))
    en = env.scenario.energy
    return CopyFigures(env.workload, en, t, now.rates, now.hour, cm, sm, env._carbon_intensity(now), _carbon_key(en))


def epoch_figures(envs: list[Any], known: list[CopyFigures | None]) -> list[CopyFigures]:
    """Each copy's :func:`read_figures` of its epoch ``t``, given ``known``, its figures of ``t - 1`` (or None).
    Where those hold (the same workload and energy config, ``t`` within the horizon and steady:
    :meth:`Workload.steady_at`) the domains are the same arrays, and the hour, rates ``base * diurnal`` and
    carbon intensity are computed once per group of copies with the same time and grid parameters, by the
    functions the env's memos call (the same numbers); the other copies read their own."""
    out: list[Any] = [None] * len(envs)
    groups: dict[tuple, list[int]] = {}
    for k, (env, prev) in enumerate(zip(envs, known, strict=True)):
        wl, en, t = env.workload, env.scenario.energy, env.state.epoch
        if (prev is not None and prev.workload is wl and prev.energy is en and prev.epoch == t - 1
                and t <= env.scenario.horizon and wl.steady_at(t)):
            groups.setdefault((t, wl.timing_key(), *_carbon_key(en)), []).append(k)
        else:
            out[k] = read_figures(env)
    for (t, _, edge_region, cloud_region, trace), members in groups.items():
        wl = envs[members[0]].workload
        hour, diurnal = wl.hour(t), wl.diurnal(t)
        ci = (_grid_intensity(edge_region, hour, trace), _grid_intensity(cloud_region, hour, trace))
        rates = np.array([envs[k].workload.base_rates for k in members]) * diurnal * np.ones(wl.n_edges)
        rates.setflags(write=False)
        carbon_key = (edge_region, cloud_region, trace)
        for k, row in zip(members, rates, strict=True):
            prev = known[k]
            out[k] = CopyFigures(prev.workload, prev.energy, t, row, hour, prev.class_mix, prev.style_mix, ci,
                                 carbon_key)
    return out


_NO_FAULT_LISTS = SimpleNamespace(links=(), edges_down=(), cloud_overload=())


def epoch_faults(envs: list[Any], ahead: int = 0, flags: list[tuple[bool, bool]] | None = None) -> SimpleNamespace:
    """The copies' fault multipliers (:func:`multipliers`) at their epoch + ``ahead`` (0 or 1), stacked:
    ``access``, ``backhaul``, ``edge_up`` (N, E), ``cloud_capacity`` (N,), ``active`` (N,) int, and ``dicts``
    (each copy's own dict, read-only; the shared no-fault one where none is in force). ``flags``: each copy's
    :func:`active_at` of its epoch and the next, where known."""
    E = envs[0].n_edges
    quiet = _no_fault_multipliers(E)
    dicts = []
    any_fault = False
    for k, env in enumerate(envs):
        faults, t = env.scenario.faults, env.state.epoch + ahead
        on = flags[k][ahead] if flags is not None else active_at(faults, t)
        dicts.append(multipliers(faults, E, t) if on else quiet)
        any_fault = any_fault or on
    if not any_fault:
        return _no_fault_stack(E, len(envs))
    return SimpleNamespace(
        dicts=dicts, access=np.array([f["access"] for f in dicts]), backhaul=np.array([f["backhaul"] for f in dicts]),
        edge_up=np.array([f["edge_up"] for f in dicts]), cloud_capacity=np.array([f["cloud_capacity"] for f in dicts]),
        active=np.array([f["active"] for f in dicts], dtype=np.int64))


def _no_fault_stack(n_edges: int, n: int) -> SimpleNamespace:
    """:func:`epoch_faults` of ``n`` copies with no fault in force (read-only arrays), one per size."""
    got = _NO_FAULT_STACKS.get((n_edges, n))
    if got is None:
        f = _no_fault_multipliers(n_edges)
        arrays = {key: np.array([f[key]] * n, dtype=np.int64 if key == "active" else None)
                  for key in ("access", "backhaul", "edge_up", "cloud_capacity", "active")}
        for v in arrays.values():
            v.setflags(write=False)
        got = _NO_FAULT_STACKS[(n_edges, n)] = SimpleNamespace(dicts=[f] * n, **arrays)
    return SimpleNamespace(**{**vars(got), "dicts": list(got.dicts)})


_NO_FAULT_STACKS: dict[tuple[int, int], SimpleNamespace] = {}


def _no_fault_multipliers(n_edges: int) -> dict[str, Any]:
    """:func:`multipliers` without a fault in force (read-only arrays), one dict per size."""
    f = _NO_FAULT_MEMO.get(n_edges)
    if f is None:
        f = _NO_FAULT_MEMO[n_edges] = multipliers(_NO_FAULT_LISTS, n_edges, 0)
        for v in f.values():
            if isinstance(v, np.ndarray):
                v.setflags(write=False)
    return f


_NO_FAULT_MEMO: dict[int, dict[str, Any]] = {}


def fault_legs(envs: list[Any], fg: Any, F: SimpleNamespace) -> tuple[np.ndarray, np.ndarray]:
    """The request legs (edge, cloud; (N, 2, E)) of the copies: the kept no-fault ones, and each copy's own
    (:meth:`GaisNetEnv._legs`) where a fault is in force."""
    if not F.active.any():
        return fg.edge_leg, fg.cloud_leg
    edge_leg, cloud_leg = fg.edge_leg.copy(), fg.cloud_leg.copy()
    for k in np.flatnonzero(F.active).tolist():
        env = envs[k]
        edge_leg[k], cloud_leg[k], _ = env._legs(F.dicts[k], False, *payloads(env))
    return edge_leg, cloud_leg
