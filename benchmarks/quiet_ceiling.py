"""How fast the quiet steps could get if the native vector env owned its copies' state and figures as
``(N, E)`` arrays: the ceiling of issue 13's remaining redesign, measured beside today's quiet path.

Today each quiet step reads every copy's :class:`~gaisnet_env.env.GaisNetEnv` (its state, cost-figure row,
fault flags, workload figures, accuracy memos, episode totals, version counters) and writes its state back,
because the single env reads its config every step and any code may change a copy between steps. The
redesign would hold all of that as arrays over the copies, written back only where a copy is read. This
script measures what is left when every one of those per-copy reads and writes is gone:

* pass 1 (today's path) steps ``--steps`` quiet no-op epochs of ``metro`` after ``--warmup``, and records
  what the redesign would hold as per-episode tables: each epoch's workload figures (arrival means, domain
  mixes, grid intensity, hour) and the tier accuracy and generator quality on them;
* pass 2 times today's path again from the same seed, without the recording;
* pass 3 (the ceiling) repeats the same epochs from the same seed with a stand-in for
  :class:`~gaisnet_env.quiet_steps.QuietSteps` that keeps the state, episode totals, version counters and
  masks as arrays, reads the recorded tables by epoch, and does per copy only what cannot be batched: each
  copy's random draws from its own generator, in the single env's order. Everything else is today's
  vectorised code (requests, queues and latency, energy, reward, the feedback rings and label scoring, the
  operator's view, masks, info, observation).

Passes 2 and 3's observations, rewards and infos are checked equal to pass 1's (``same``), so the ceiling does the
same work. It is a ceiling, not a design: it reads the tables without paying to build or invalidate them
(the redesign would pay that at reset and on a config change), and it handles only the epochs the benchmark
runs (no faults, no ops, no resets; checked). Rounds alternate today's path, the ceiling and the single env
(``GaisNetEnv``, the same no-op steps), one process; medians over the rounds, µs per env-step.

    python benchmarks/quiet_ceiling.py --sizes 16 64 256 --rounds 9
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import machine_info, median, write_results
from benchmarks.quiet_phases import _noop
from gaisnet_env import operator_view, quiet_steps
from gaisnet_env.core import batch, draws
from gaisnet_env.core.state import CUM_KEYS
from gaisnet_env.quiet_figures import _no_fault_stack, kept_figures
from gaisnet_env.quiet_info import Epoch, epoch_keys, finish_info
from gaisnet_env.quiet_steps import QuietSteps


def record(venv: Any, steps: int) -> tuple[list[SimpleNamespace], list[tuple]]:
    """Step ``venv`` ``steps`` quiet epochs on today's path; returns each epoch's tables (what ``_draw`` was
    given and made, the next epoch's figures) and its outputs (obs, rewards, truncated, info)."""
    tape: list[SimpleNamespace] = []
    real_draw = quiet_steps._draw

    def spy(envs: list, route: np.ndarray, F: Any, figs: list, fg: Any) -> Epoch:
        ep = real_draw(envs, route, F, figs, fg)
        tape.append(SimpleNamespace(lams=(np.array([f.rates for f in figs]) * fg.epoch_s).tolist(),
                                    class_mix=ep.class_mix, style_mix=ep.style_mix, acc=ep.acc_tier,
                                    gq=ep.gen_quality, ci_edge=ep.ci_edge, ci_cloud=ep.ci_cloud))
        return ep

    outs, act = [], _noop(venv)
    quiet_steps._draw = spy
    try:
        for _ in range(steps):
            obs, rew, term, trunc, info = venv.step(act)
            if term.any() or trunc.any() or int(info["faults_active"].sum()) or int(info["ops_started"].sum()):
                raise RuntimeError("quiet_ceiling: a copy ended, or a fault or an op came up: use fewer --steps")
            ahead = venv._quiet._ahead
            tape[-1].next_rates = np.array([f.rates for f in ahead])
            tape[-1].next_ci = np.array([f.carbon for f in ahead])
            tape[-1].next_hour = np.array([f.hour for f in ahead])
            outs.append((obs, rew, trunc, info))
    finally:
        quiet_steps._draw = real_draw
    if len(tape) != steps:
        raise RuntimeError("quiet_ceiling: not every copy stepped quiet")
    return tape, outs


class CeilingSteps:
    """A stand-in for the vector env's :class:`QuietSteps` over arrays it owns (see the module docstring)."""

    def __init__(self, venv: Any, tape: list[SimpleNamespace]) -> None:
        q, envs = venv._quiet, venv.envs
        self.tape, self.s, self.n = tape, 0, len(envs)
        self.draw_s = 0.0  # seconds in the per-copy draw loop
        self.st = quiet_steps._gather(envs)
        self.rngs = [env.np_random for env in envs]
        self.fg = kept_figures(q, envs)
        self.feedback = q.feedback
        self.F = _no_fault_stack(venv.n_edges, self.n)
        self.cum = np.array([[env.state.cum[k] for k in CUM_KEYS] for env in envs])
        self.epoch = np.array([env.state.epoch for env in envs], dtype=np.int64)
        self.horizon = np.array([env.scenario.horizon for env in envs])
        w0 = [env.workers for env in envs]
        base = [env._version_base for env in envs]
        self.versions = {key: np.array([getattr(w, f"_ver_{key[14:]}") - b[key] for w, b in zip(w0, base, strict=True)],
                                       dtype=np.int64)
                         for key in ("model_version_cloud", "model_version_edge", "model_version_end")}
        self._masks, self._gym_masks = q._masks.copy(), q._gym_masks.copy()  # for QuietSteps._action_masks
        self.envs, self.which = envs, np.arange(self.n)
        if not all(env.accuracy_view == "estimated" for env in envs):
            raise RuntimeError("quiet_ceiling: the operator's view only")

    def select(self, acts: np.ndarray, which: list[int]) -> list[int]:
        return list(which)

    def step(self, acts: np.ndarray, which: list[int]) -> tuple:
        tab, fg = self.tape[self.s], self.fg
        self.s += 1
        route = np.array(acts[..., 0], dtype=np.int64)
        counts, n_gens, n_labs, uniforms = [], [], [], []
        t0 = time.perf_counter()
        for rng, lam, (share, rate, cap) in zip(self.rngs, tab.lams, fg.draw_params, strict=True):
            count, n_gen, n_lab = draws.arrivals_and_labels(rng, lam, share, rate)
            total = sum(n_lab) if max(n_lab) <= cap else sum(min(x, cap) for x in n_lab)
            if total:
                uniforms.append(rng.random(3 * total))
            counts.append(count)
            n_gens.append(n_gen)
            n_labs.append(n_lab)
        self.draw_s += time.perf_counter() - t0
        count = np.array(counts, dtype=np.int64)
        n_req = count.astype(np.float64)
        N = np.empty((self.n, 2, count.shape[1]))
        N[:, 1] = n_gens
        np.subtract(n_req, N[:, 1], out=N[:, 0])
        ep = Epoch(route=route, class_mix=tab.class_mix, style_mix=tab.style_mix, acc_tier=tab.acc,
                   gen_quality=tab.gq, counts=count, n_req=n_req, N=N,
                   n_fb=np.minimum(np.array(n_labs), fg.feedback_per_epoch).astype(np.int64), uniforms=uniforms,
                   ci_edge=tab.ci_edge, ci_cloud=tab.ci_cloud)
        return self._epoch(ep, self.st, fg, tab)

    def _epoch(self, ep: Epoch, st: SimpleNamespace, fg: Any, tab: SimpleNamespace) -> tuple:
        """:meth:`QuietSteps._epoch` on the kept arrays (no faults: the request legs without them)."""
        m, en, r, lat, edge_reward, events = quiet_steps.epoch_costs(ep, st, fg, self.F, (fg.edge_leg, fg.cloud_leg))
        QuietSteps._feedback(self, ep, st, fg, self.which, self.F.edge_up > 0)
        st.op_remaining_s = np.where(st.op_kind > 0, st.op_remaining_s - fg.epoch_s, 0.0)
        st.since_op = st.since_op + 1.0
        self.epoch += 1
        info = self._info(ep, m, en, r, lat, edge_reward, events, st)
        return self._observation(st, fg, tab), r["total"], self.epoch >= self.horizon, info

    def _info(self, ep: Epoch, m: Any, en: Any, r: dict, lat: Any, edge_reward: np.ndarray, events: dict,
              st: SimpleNamespace) -> dict[str, Any]:
        """:func:`vector_info` with the episode totals, versions and epochs as arrays."""
        self.cum += np.stack((en.total, en.carbon_g, 0.0 + en.bytes_up, 0.0 + en.bytes_down, m.requests,
                              m.violations), axis=1)
        acc = np.ascontiguousarray(ep.acc_tier.transpose(0, 2, 1)).mean(axis=-1)
        out = {"epoch": self.epoch.copy(), "time_s": self.epoch * self.fg.epoch_s[:, 0],
               "accuracy_end": acc[:, 0], "accuracy_edge": acc[:, 1], "accuracy_cloud": acc[:, 2], **self.versions,
               "ops_in_flight": np.count_nonzero(st.op_kind > 0, axis=1).astype(np.int64),
               "episode_energy_j": self.cum[:, 0].copy(), "episode_carbon_g": self.cum[:, 1].copy(),
               "episode_bytes_up": self.cum[:, 2].copy(), "episode_bytes_down": self.cum[:, 3].copy(),
               "action_mask": QuietSteps._action_masks(self, self.which, st, self.F)}
        out.update(epoch_keys(ep, m, en, r, lat, edge_reward, events, st, self.F))
        return finish_info(out, r["total"], self.envs)

    def _observation(self, st: SimpleNamespace, fg: Any, tab: SimpleNamespace) -> np.ndarray:
        """:meth:`QuietSteps._observation` (every copy on the operator's view, no faults) with the next epoch's
        figures from the tables."""
        rc, rs, has = self.feedback.domain_reports()
        accuracy = operator_view.estimate(st.label_hits, st.label_seen, st.label_prior)
        drift = np.where(has, operator_view.domain_drift(rc, rs, st.reported_class_mix, st.reported_style_mix), 0.0)
        F = self.F
        f = {"access": F.access, "backhaul": F.backhaul, "edge_up": F.edge_up,
             "cloud_capacity": F.cloud_capacity.tolist()}
        st.epoch = self.epoch
        return batch.observation(st, tab.next_rates, fg.mean_rate, accuracy, drift, f, tab.next_ci[:, :1],
                                 tab.next_ci[:, 1:], tab.next_hour.tolist(), fg.battery_cap, fg.epoch_s, self.horizon)


def _same(a: Any, b: Any) -> bool:
    """Whether two step outputs are equal bit for bit (arrays with their dtypes, dicts key by key)."""
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, np.ndarray) and a.dtype == object:
        return a.shape == b.shape and all(_same(x, y) for x, y in zip(a.tolist(), b.tolist(), strict=True))
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)


def one_round(scenario: str, n: int, steps: int, warmup: int) -> dict[str, Any]:
    """µs per env-step of today's path, the ceiling and the single env, and whether the ceiling's outputs
    equal today's."""
    from gaisnet_env.env import GaisNetEnv
    from gaisnet_env.vector_env import GaisNetVectorEnv

    def fresh() -> Any:
        venv = GaisNetVectorEnv(n, scenario)
        venv.reset(seed=0)
        act = _noop(venv)
        for _ in range(warmup):
            venv.step(act)
        return venv, act

    venv, act = fresh()
    tape, outs = record(venv, steps)
    passes = {}
    for name in ("today", "ceiling"):
        venv, act = fresh()
        if name == "ceiling":
            venv._quiet = CeilingSteps(venv, tape)
        got = []
        t0 = time.perf_counter()
        for _ in range(steps):
            got.append(venv.step(act))
        passes[name] = ((time.perf_counter() - t0) / (steps * n), got)
    draws_us = venv._quiet.draw_s / (steps * n) * 1e6
    same = {name: all(_same(o, (g[0], g[1], g[3], g[4])) for o, g in zip(outs, got, strict=True))
            for name, (_, got) in passes.items()}
    today, ceiling = passes["today"][0], passes["ceiling"][0]
    single = GaisNetEnv(scenario)
    single.reset(seed=0)
    for _ in range(warmup):
        single.step(act[0])
    t0 = time.perf_counter()
    for _ in range(steps):
        single.step(act[0])
    return {"today_us": today * 1e6, "ceiling_us": ceiling * 1e6, "draws_us": draws_us,
            "single_us": (time.perf_counter() - t0) / steps * 1e6, "same": same["ceiling"] and same["today"]}


def table(rows: list[dict[str, Any]], scenario: str, steps: int, rounds: int) -> str:
    lines = [f"`{scenario}`, no operations, {steps} quiet epochs after the warm-up, from seed 0; {rounds} rounds "
             "(today's path, the ceiling and the single env in turn, one process); medians, µs per env-step. "
             "`same`: the ceiling's observations, rewards and infos equal today's in every round.", "",
             "| copies | single env | today's quiet path | ceiling | today vs single | ceiling vs single | "
             "ceiling vs today | same |", "|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['copies']} | {r['single_us']:.1f} | {r['today_us']:.1f} | {r['ceiling_us']:.1f} | "
                     f"{r['single_us'] / r['today_us']:.2f}x | {r['single_us'] / r['ceiling_us']:.2f}x | "
                     f"{r['today_us'] / r['ceiling_us']:.2f}x | {r['same']} |")
    if len(rows) < 2:
        return "\n".join(lines)
    n = np.array([r["copies"] for r in rows], dtype=np.float64)
    lines += ["", "Per vector step, least squares over the sizes: µs = fixed + per copy × N (the ceiling's per-copy "
              "draw loop timed inside it).", "", "| path | fixed µs per vector step | µs per copy | of which the "
              "copies' own draws |", "|---|---:|---:|---:|"]
    for name, key in (("today's quiet path", "today_us"), ("ceiling", "ceiling_us")):
        fixed, per = fit([r[key] * r["copies"] for r in rows], n)
        draws_col = f"{median([r['draws_us'] for r in rows]):.1f}" if key == "ceiling_us" else "-"
        lines.append(f"| {name} | {fixed:.0f} | {per:.1f} | {draws_col} |")
    r64 = next((r for r in rows if r["copies"] == 64), None)
    if r64 is not None:
        fixed, per = fit([r["ceiling_us"] * r["copies"] for r in rows], n)
        budget = 64 * r64["single_us"] / 25.0
        lines += ["", f"25x the single env at N = 64 is at most {budget:.0f} µs per vector step; the ceiling's "
                  f"per-copy cost alone is {64 * per:.0f} µs of it, which leaves {budget - 64 * per:.0f} µs for the "
                  f"fixed part (the ceiling's: {fixed:.0f} µs)."]
    return "\n".join(lines)


def fit(per_step_us: list[float], n: np.ndarray) -> tuple[float, float]:
    """(fixed, per copy) of the least-squares line µs per vector step = fixed + per copy × N."""
    per, fixed = np.polyfit(n, np.asarray(per_step_us), 1)
    return float(fixed), float(per)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="metro")
    p.add_argument("--sizes", type=int, nargs="+", default=[16, 64, 256], help="copies of the native vector env")
    p.add_argument("--steps", type=int, default=40, help="quiet epochs timed per pass")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    rows = []
    for n in args.sizes:
        runs = [one_round(args.scenario, n, args.steps, args.warmup) for _ in range(args.rounds)]
        row = {"copies": n, "same": all(r["same"] for r in runs), "rounds": runs}
        row.update({k: median([r[k] for r in runs]) for k in ("today_us", "ceiling_us", "single_us", "draws_us")})
        rows.append(row)
        print(f"[quiet_ceiling] N={n}: today {row['today_us']:.1f}, ceiling {row['ceiling_us']:.1f}, single "
              f"{row['single_us']:.1f} us; same {row['same']}", flush=True)
    res = {"machine": machine_info(), "scenario": args.scenario, "steps": args.steps, "warmup": args.warmup,
           "rows": rows}
    md = table(rows, args.scenario, args.steps, args.rounds)
    write_results("quiet_ceiling", res, md, Path(args.out) if args.out else None)
    print(md)
    return res


if __name__ == "__main__":
    main()
