"""PettingZoo multi-agent loop: every edge server is an agent (random policies).

    python examples/pettingzoo_loop.py --scenario metro --reward-mode per_edge
"""

from __future__ import annotations

import argparse

import numpy as np

import gaisnet_env
from gaisnet_env.multiagent import parallel_env


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="tiny", choices=gaisnet_env.BUILTIN_SCENARIOS)
    p.add_argument("--reward-mode", default="per_edge", choices=("shared", "per_edge"))
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    env = parallel_env(args.scenario, reward_mode=args.reward_mode)
    observations, infos = env.reset(seed=args.seed)
    rng = np.random.default_rng(args.seed)
    returns = dict.fromkeys(env.agents, 0.0)
    while env.agents:
        actions = {}
        for agent in env.agents:
            mask = infos[agent]["action_mask"]  # 3 route entries then 5 operation entries
            actions[agent] = np.array([rng.choice(np.flatnonzero(mask[:3])), rng.choice(np.flatnonzero(mask[3:]))])
        observations, rewards, terminations, truncations, infos = env.step(actions)
        for agent, r in rewards.items():
            returns[agent] += r
    env.close()
    for agent, ret in returns.items():
        print(f"{agent}: return {ret:.3f}")
    return returns


if __name__ == "__main__":
    main()
