"""The rows and markdown of ``issue13_targets`` (see ``issue13_targets.py compose``): each of issue 13's
targets judged from the benchmarks' result files, with the profiles that show why where one is not met."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CASES = ("finetune", "relay_down", "relay_up", "relay_to_end")


def _commit(d: dict[str, Any] | None) -> str:
    return (d or {}).get("machine", {}).get("commit", "?")


def vector_row(v: dict[str, Any] | None, ceiling: dict[str, Any] | None = None) -> dict[str, Any]:
    """Native vector env, metro, no ops, N = 64: >= 25x per env-step against the single env; ``ceiling`` the
    ``quiet_ceiling`` result (the quiet path without per-copy reads), where there is one."""
    row: dict[str, Any] = {"target": "Native vector env, metro, no ops, N = 64: per env-step >= 25x faster than "
                           "the single env", "met": None, "numbers": "no bench_vector result", "why": "vector"}
    if not v:
        return row
    rows = v["rows"]
    single = rows["single GaisNetEnv"]["us_per_env_step"]
    parts = [f"single GaisNetEnv {single:,.0f} µs, gym.make {rows['single gym.make']['us_per_env_step']:,.0f} µs"]
    parts += [f"{k.removeprefix('native ')}: {r['us_per_env_step']:,.0f} µs ({r['speedup_vs_bare_env']:.2f}x)"
              for k, r in rows.items() if k.startswith("native")]
    n64 = rows.get("native N=64")
    row["met"] = None if n64 is None else n64["speedup_vs_bare_env"] >= 25.0
    rnd = v.get("random")
    if rnd:
        parts.append("random policy: single " + f"{rnd['rows']['single GaisNetEnv']['us_per_env_step'] / 1e3:,.1f} ms; "
                     + ", ".join(f"{k.removeprefix('native ')} {r['us_per_env_step'] / 1e3:,.1f} ms "
                                 f"({r['speedup_vs_bare_env']:.2f}x)" for k, r in rnd["rows"].items()
                                 if k.startswith("native")))
    row["numbers"] = "; ".join(parts) + f" (bench_vector, commit {_commit(v)})"
    draws = v.get("copy_draws_us")
    if draws:  # each copy's own random draws, however the rest is batched (bench_vector.copy_draws)
        row["numbers"] += (f"; bound: every copy makes its own random draws in the single env's order, "
                           f"{draws:.1f} µs per copy and epoch, so at most {single / draws:.0f}x")
    if ceiling:  # the quiet path with every per-copy read gone (quiet_ceiling), beside today's in one run
        runs = ", ".join(f"N={r['copies']} {r['single_us'] / r['ceiling_us']:.1f}x (today's path "
                         f"{r['single_us'] / r['today_us']:.1f}x in the same run)" for r in ceiling["rows"])
        row["numbers"] += f"; with no per-copy read or write-back (quiet_ceiling, commit {_commit(ceiling)}): {runs}"
        at64 = next((r for r in ceiling["rows"] if r["copies"] == 64), None)
        if row["met"] is False and at64 is not None and at64["single_us"] / at64["ceiling_us"] < 25.0:
            row["bound"] = "past the ceiling of a quiet path without per-copy reads"
    return row


def batched_row(b: dict[str, Any] | None, whole: dict[str, Any] | None = None) -> dict[str, Any]:
    """Batched ops at E = 64: >= 5x per op against serial for every kind, and within 3x of the FLOP floor.
    Judged on whole ops (``bench_engine_ops``) where that result exists, else on the classifier part."""
    row: dict[str, Any] = {"target": "Batched ops at E = 64: >= 5x faster per op than serial for every op kind, "
                           "within 3x of the FLOP floor", "met": None, "numbers": "no bench_batched_ops result",
                           "why": "ops"}
    if whole:
        e64 = {r["op"]: r for r in whole["rows"] if r["E"] == 64}
        parts = [f"{op} {r['speedup']:.1f}x, {r['batched_over_floor']:.1f}x the floor" for op, r in e64.items()]
        row["met"] = bool(e64) and all(r["speedup"] >= 5.0 and r["batched_over_floor"] <= 3.0 for r in e64.values())
        row["numbers"] = "; ".join(parts) + (f" (whole ops, the batched engine; relay_up is one round either way; "
                                             f"bench_engine_ops, commit {_commit(whole)}, {whole['gflops']:.0f} "
                                             "GFLOP/s)")
        return row
    if not b:
        return row
    k64 = {r["case"]: r for r in b["rows"] if r["K"] == 64}
    parts, ok = [], True
    for case in CASES:
        r = k64.get(case)
        if r is None:
            parts.append(f"{case}: not batched yet")
            ok = False
            continue
        ok = ok and r["speedup"] >= 5.0 and r["batched_over_floor"] <= 3.0
        parts.append(f"{case} {r['speedup']:.1f}x, {r['batched_over_floor']:.1f}x the floor")
    row["met"] = ok
    row["numbers"] = "; ".join(parts) + (f" (classifier training only; bench_batched_ops, commit {_commit(b)}, "
                                         f"{b['gflops']:.0f} GFLOP/s)")
    return row


def random_rows(r: dict[str, Any] | None, quoted: dict[str, Any]) -> list[dict[str, Any]]:
    """Random policy with real workers: metro >= 2.5x, city >= 10x the rate when the issue was filed."""
    out = []
    for scenario, need, old in (("metro", 2.5, quoted["old_md_metro_random"]),
                                ("city", 10.0, quoted["old_md_city_random"])):
        row: dict[str, Any] = {"target": f"Random policy, real workers, {scenario}: >= {need:g}x today's rate",
                               "met": None, "numbers": "no issue13_random result", "why": "random"}
        s = (r or {}).get("summary", {}).get(scenario)
        if s:
            row["met"] = s["ratio"] >= need
            row["numbers"] = (f"{s['today']:.2f} steps/s today vs {s['baseline']:.2f} at {r['baseline']} (the issue's "
                              f"code), same run: {s['ratio']:.2f}x; against the old bench_speed.md "
                              f"({quoted['old_md_commit']}, an older env, 2 threads) {old:g} steps/s: "
                              f"{s['today'] / old:.2f}x (issue13_random, commit {_commit(r)})")
            if "batched" in s:
                row["numbers"] += (f"; with the opt-in batched engine (batched_ops) {s['batched']:.2f} steps/s, "
                                   f"{s['batched_ratio']:.2f}x")
            if "vector" in s:  # throughput of N copies, their ops as one batch (opt-in), on the same core
                row["numbers"] += (f"; {s['vector_copies']} copies of the native vector env with the batched engine "
                                   f"{s['vector']:.2f} env-steps/s, {s['vector_ratio']:.2f}x")
                if s["vector_ratio"] >= need and not row["met"]:
                    row["met"] = True
                    row["bound"] = "with the opt-in vector env + batched engine; the default single env is not"
        out.append(row)
    return out


def ppo_row(s: dict[str, Any] | None, quoted: dict[str, Any]) -> dict[str, Any]:
    """SB3 PPO on metro with the real workers and the native vector env: env <= 50% of training wall time."""
    row: dict[str, Any] = {"target": "SB3 PPO, metro, real workers, native vector env (8 copies): env <= 50% of "
                           "training wall time", "met": None, "numbers": "no ppo-vec result", "why": "ppo"}
    v = ((s or {}).get("scenarios", {}).get("metro") or {}).get("ppo_vec")
    if v:
        row["met"] = v["env_share_of_training"] <= 0.5
        row["numbers"] = (f"env {100 * v['env_share_of_training']:.1f}% of PPO.learn's {v['learn_wall_s']:.0f} s "
                          f"({v['train_steps']} steps, {v['n_envs']} copies, n_steps {v['n_steps']}), PPO updates "
                          f"{100 * v['update_share_of_training']:.1f}%; {v['train_steps_per_s']:.1f} steps/s "
                          f"(issue: {quoted['issue_ppo_steps_per_s']:g} steps/s, env "
                          f"{100 * quoted['issue_ppo_env_share']:.1f}%, 1 env; bench_speed, commit {_commit(s)})")
    return row


def hardware_bounds(rows: list[dict[str, Any]], hb: dict[str, Any] | None, engine: dict[str, Any] | None,
                    random: dict[str, Any] | None = None) -> None:
    """Add to each speed row the bound this machine sets (``hardware_bounds``, ``bench_engine_ops``): a
    target past it cannot be met by any code on this hardware (``bound``: "beyond the hardware"). The issue's
    code's rate is the one of ``random`` (``issue13_random``) where given, else the one ``hb`` read."""
    vector, batched, metro, city, ppo = rows[:5]
    if engine:
        e64 = [r for r in engine["rows"] if r["E"] == 64]
        past = [f"{r['op']} {r['serial_over_floor']:.1f}x" for r in e64 if r["serial_over_floor"] < 5.0]
        if past:
            batched["bound"] = "beyond the hardware"
            batched["numbers"] += ("; bound: serial is already within 5x of its FLOP floor for " + ", ".join(past)
                                   + ", so 5x faster than serial would be faster than the floor")
    if not hb:
        return
    ratios = {**hb.get("today_over_issue", {}),
              **{k: v["ratio"] for k, v in (random or {}).get("summary", {}).items() if v.get("ratio")}}
    for row, name, need in ((metro, "metro", 2.5), (city, "city", 10.0)):
        r, ratio = hb["random"].get(name), ratios.get(name)
        if r and ratio:
            most = r["measured_over_floor"] * ratio  # each ratio from one run (hardware_bounds.most_speedup)
            row["numbers"] += (f"; bound: {r['gflop_per_step']:.2f} GFLOP per step, today "
                               f"{r['measured_over_floor']:.1f}x its floor, so at most {most:.1f}x the issue's code")
            if most < need:
                row["bound"] = "beyond the hardware"
    share = hb.get("min_env_share_metro")
    if share is not None:
        ppo["numbers"] += (f"; bound: with metro's random step at its FLOP floor and PPO's own "
                           f"{hb['ppo']['ms_per_env_step']:.2f} ms per step, the env would be {100 * share:.0f}%")
        if share > 0.5:
            ppo["bound"] = "beyond the hardware"


def compose_rows(src: dict[str, Any], tests: dict[str, tuple[bool, str]], has_arch: bool,
                 quoted: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target's row, in the issue's order."""
    rows = [vector_row(src["bench_vector"], src.get("quiet_ceiling")),
            batched_row(src["bench_batched_ops"], src.get("bench_engine_ops")),
            *random_rows(src["issue13_random"], quoted), ppo_row(src["bench_speed"], quoted)]
    hardware_bounds(rows, src.get("hardware_bounds"), src.get("bench_engine_ops"), src.get("issue13_random"))
    engine = src.get("ppo_vec_engine")
    if engine:  # PPO with the copies' ops trained as one batch, beside the copies one by one (same runs)
        med = engine["median_steps_per_s"]
        rows[4]["numbers"] += (f"; copies' ops as one batch (batched_ops): {med['batched']:.1f} vs {med['serial']:.1f} "
                               f"steps/s one by one ({engine['ratio']:.2f}x), env "
                               f"{100 * engine['batched_env_share']:.1f}% (ppo_vec_engine, commit {_commit(engine)})")
    bit = tests.get("bit for bit")
    rows.append({"target": "Same seeds, same episodes bit for bit (copy i of the vector env = the single env)",
                 "met": None if bit is None else bit[0], "why": None,
                 "numbers": "not run" if bit is None
                 else f"tests (vector and quiet copies, golden episodes): {bit[1]}"})
    st = tests.get("structure")
    rows.append({"target": "Structure: modules <= 400 lines, functions <= 80 in gaisnet_env/, no import cycle, "
                 "README architecture picture", "met": None if st is None else (st[0] and has_arch), "why": None,
                 "numbers": ("not run" if st is None else f"tests/test_structure.py: {st[1]}")
                 + f"; README architecture section: {'yes' if has_arch else 'no'}"})
    return rows


def _ops_table(o: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    if not o:
        return []
    k64 = {r["case"]: r for r in (b or {}).get("rows", []) if r["K"] == 64}
    lines = ["", "## Per-op time, serial, beside the FLOP floor", "",
             f"Whole op on metro's real workers (`bench_ops`, commit {_commit(o)}, {o['threads']} thread(s), "
             f"{o['gflops']:.0f} GFLOP/s measured); batched columns: the classifier-training part only at E = 64 "
             f"(`bench_batched_ops`, commit {_commit(b)}).", "",
             "| op | serial ms per op | counted MFLOP | floor ms | serial / floor | classifier part: serial ms | "
             "batched ms (E=64) | floor ms | batched / floor |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in o["ops"]:
        c = k64.get(r["op"])
        cpart = (f"{c['serial_ms_per_op']:.2f} | {c['batched_ms_per_op']:.2f} | {c['floor_ms_per_op']:.3f} | "
                 f"{c['batched_over_floor']:.1f}x" if c else "- | not batched yet | - | -")
        lines.append(f"| {r['op']} | {r['ms_per_op']:.2f} | {r['counted_flops'] / 1e6:,.1f} | {r['floor_ms']:.3f} | "
                     f"{r['over_floor']:.1f}x | {cpart} |")
    lines += ["", "Accuracy table per tier and edge: " + ", ".join(
        f"{t['tier']} {t['ms']:.2f} ms ({t['over_floor']:.1f}x its floor)" for t in o["tables"]) + "."]
    return lines


def _block(title: str, text: str, lines: int = 14) -> list[str]:
    body = "\n".join(text.splitlines()[:lines])
    return ["", title, "", "```", body, "```"]


def _breakdown(b: dict[str, float]) -> str:
    total = b.get("total_step") or sum(v for k, v in b.items() if k != "total_step")
    return ", ".join(f"{k} {v / 1e3:,.2f} ms ({100 * v / total:.0f}%)" for k, v in b.items()
                     if k != "total_step" and v > 0.005 * total)


def why_sections(src: dict[str, Any], rows: list[dict[str, Any]]) -> list[str]:
    """The profiles behind every target not met."""
    missed = {r["why"] for r in rows if r["met"] is False and r.get("why")}
    out: list[str] = []
    v, s, o = src["bench_vector"], src["bench_speed"], src["bench_ops"]
    if "vector" in missed and v:
        out += ["", "### Why the vector env is not 25x faster per env-step", ""]
        bd = v.get("single_env_breakdown_us", {})
        out.append("Single env, no-op step: " + ", ".join(f"{k} {x:,.0f} µs" for k, x in bd.items()) + ".")
        if v.get("profile"):
            p = v["profile"]
            out += _block(f"cProfile, {p['variant']} ({p['steps']} vector steps), by own time:", p["top"], 16)
            if p.get("top_cumulative"):
                out += _block("and by cumulative time:", p["top_cumulative"], 16)
    if missed & {"random", "ppo"} and s:
        out += ["", "### Why the random policy and PPO are bound by the env", ""]
        for scen in ("metro", "city"):
            r = (s.get("scenarios", {}).get(scen) or {})
            for mode in ("random", "ppo_vec"):
                b = (r.get(mode) or {}).get("breakdown_us_per_step")
                if b:
                    out.append(f"* {scen} {mode} step ({b['total_step'] / 1e3:,.1f} ms): {_breakdown(b)}")
        if v and v.get("random", {}).get("profile"):
            p = v["random"]["profile"]
            out += _block(f"cProfile, masked random policy, {p['variant']} ({p['steps']} steps), by own time:",
                          p["top"], 16)
            if p.get("top_cumulative"):
                out += _block("and by cumulative time:", p["top_cumulative"], 16)
    if missed & {"ops", "random", "ppo"} and o:
        out += ["", "### Where an op's time goes (serial, `bench_ops`)"]
        for k, text in o.get("profiles", {}).items():
            by = "cumulative time" if k.endswith("(cumulative)") else "own time"
            out += _block(f"cProfile, {k.removesuffix(' (cumulative)')}, by {by}:", text, 12)
    return out


def compose_table(data: dict[str, Any], src: dict[str, Any], met: Callable[[bool | None], str]) -> str:
    lines = ["Issue 13's targets on today's code. Each ratio is measured side by side in one run of its benchmark "
             "(the source named in each row; commits of the sources: "
             + ", ".join(f"{k} {c}" for k, c in data["sources"].items()) + ").", "",
             "| target | status | numbers |", "|---|---|---|"]
    for r in data["rows"]:
        status = met(r["met"]) + (f" ({r['bound']})" if r.get("bound") else "")
        lines.append(f"| {r['target']} | {status} | {r['numbers']} |")
    lines += _ops_table(src["bench_ops"], src["bench_batched_ops"])
    why = why_sections(src, data["rows"])
    if why:
        lines += ["", "## Profiles of the targets not met", *why]
    return "\n".join(lines)
