"""SB3 PPO over the native vector env with the copies stepped one by one against their ops trained as one batch.

Each round runs ``benchmarks/bench_speed.py --modes ppo-vec`` twice in fresh processes, the default workers
then ``--batched-ops`` (the copies' ops as one batch per kind, :mod:`gaisnet_env.copy_steps`), with the
same copies, steps and threads; every run's table and JSON go to ``--runs-dir`` and the summary (medians,
ratio, env share) to ``results/ppo_vec_engine.md`` and ``.json``. ``--compose`` only rebuilds the summary
from the runs already in ``--runs-dir``.

Usage::

    python benchmarks/ppo_vec_engine.py --rounds 2            # about 10 minutes on 2 cores
    python benchmarks/ppo_vec_engine.py --compose
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine_info, median, write_results  # noqa: E402

HERE = Path(__file__).resolve().parent
VARIANTS = {"serial": [], "batched": ["--batched-ops"]}


def run(args: argparse.Namespace) -> None:
    """``--rounds`` rounds of both variants, alternating, each its own process."""
    for r in range(1, args.rounds + 1):
        for name, extra in VARIANTS.items():
            out = args.runs_dir / f"{name}{r}"
            cmd = [sys.executable, str(HERE / "bench_speed.py"), "--scenarios", args.scenario, "--modes", "ppo-vec",
                   "--ppo-envs", str(args.envs), "--ppo-vec-steps", str(args.steps), "--ppo-vec-n-steps", "128",
                   "--threads", str(args.threads), *extra, "--out", str(out), "--name", "bench_ppo"]
            subprocess.run(cmd, check=True, capture_output=True)
            for suffix in ("json", "md"):
                (out / f"bench_ppo.{suffix}").replace(args.runs_dir / f"{name}{r}.{suffix}")
            out.rmdir()


def compose(runs_dir: Path, scenario: str) -> tuple[dict[str, Any], str]:
    """The summary of the runs in ``runs_dir`` (``serial<k>.json``, ``batched<k>.json``)."""
    rows = {}
    for path in sorted(runs_dir.glob("*.json")):
        j = json.loads(path.read_text())
        v = j["scenarios"][scenario]["ppo_vec"]
        rows[path.stem] = {"steps_per_s": v["train_steps_per_s"], "env_share": v["env_share_of_training"],
                           "update_share": v["update_share_of_training"], "wall_s": v["learn_wall_s"],
                           "commit": j["machine"]["commit"], "command": j["machine"]["command"]}
    med = {k: median([r["steps_per_s"] for n, r in rows.items() if n.startswith(k)]) for k in VARIANTS}
    share = median([r["env_share"] for n, r in rows.items() if n.startswith("batched")])
    lines = [f"SB3 PPO over the native vector env (`make_sb3_vec_env`, `{scenario}`, real workers, MlpPolicy, "
             "n_steps 128): the copies stepped one by one (default workers) against the copies' ops trained as one "
             "batch (`workers.batched_ops: true`, `gaisnet_env/copy_steps.py`); the variants alternate, each run in "
             "its own process (its table and JSON in `ppo_vec_engine/`).", "",
             "| run | steps/s | env share of PPO.learn | PPO updates share | learn wall s | commit | command |",
             "|---|---:|---:|---:|---:|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['steps_per_s']:.1f} | {100 * r['env_share']:.1f}% | "
                     f"{100 * r['update_share']:.1f}% | {r['wall_s']:.1f} | {r['commit']} | `{r['command']}` |")
    ratio = med["batched"] / med["serial"]
    lines += ["", f"Medians: serial {med['serial']:.2f} steps/s, batched {med['batched']:.2f} steps/s: "
              f"**{ratio:.2f}x**; with the batched engine the env is still {100 * share:.1f}% of training wall time."]
    bounds = RESULTS / "hardware_bounds.json"
    floor_share = json.loads(bounds.read_text()).get("min_env_share_metro") if bounds.exists() else None
    if floor_share is not None:
        lines[-1] += (f" At its FLOP floor a random metro step would still be {100 * floor_share:.0f}% of it on this "
                      "machine (`hardware_bounds.md`).")
    return {"runs": rows, "median_steps_per_s": med, "ratio": ratio, "batched_env_share": share}, "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="metro")
    p.add_argument("--envs", type=int, default=8)
    p.add_argument("--steps", type=int, default=2048)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs-dir", type=Path, default=RESULTS / "ppo_vec_engine")
    p.add_argument("--compose", action="store_true", help="only rebuild the summary from --runs-dir")
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    args.runs_dir.mkdir(parents=True, exist_ok=True)
    if not args.compose:
        run(args)
    data, md = compose(args.runs_dir, args.scenario)
    data["machine"] = machine_info()
    write_results("ppo_vec_engine", data, md, args.out)
    print(md)
    return data


if __name__ == "__main__":
    main()
