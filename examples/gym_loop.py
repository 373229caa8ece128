"""Plain Gymnasium loop: a random (mask-respecting) policy on a built-in scenario.

    python examples/gym_loop.py --scenario tiny --episodes 2
"""

from __future__ import annotations

import argparse

import gymnasium as gym

import gaisnet_env
from gaisnet_env.wrappers import RecordMetrics


def main(argv: list[str] | None = None) -> list[dict[str, float]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="tiny", choices=gaisnet_env.BUILTIN_SCENARIOS)
    p.add_argument("--episodes", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    env = RecordMetrics(gym.make(gaisnet_env.env_id(args.scenario)))
    env.action_space.seed(args.seed)
    summaries = []
    for ep in range(args.episodes):
        obs, info = env.reset(seed=args.seed + ep)
        done = False
        while not done:
            # info["action_mask"] is in Gymnasium's format: one int8 array per MultiDiscrete component
            action = env.action_space.sample(mask=info["action_mask"])
            obs, reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
        m = info["episode_metrics"]
        summaries.append(m)
        print(
            f"episode {ep}: return {m['return']:.3f}, accuracy {m['accuracy_mean']:.3f}, "
            f"p95 latency {m['latency_p95_s_mean'] * 1e3:.1f} ms, energy {m['energy_j_total'] / 1e3:.1f} kJ, "
            f"carbon {m['carbon_g_total']:.2f} g"
        )
    env.close()
    return summaries


if __name__ == "__main__":
    main()
