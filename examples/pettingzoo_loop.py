"""PettingZoo multi-agent loop: every edge server is an agent (random policies).

    python examples/pettingzoo_loop.py --scenario metro --reward-mode per_edge
"""

from __future__ import annotations

import argparse

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
    returns = dict.fromkeys(env.agents, 0.0)
    while env.agents:
        # infos[agent]["action_mask"]: Gymnasium's format, (route mask, operation mask) as int8 arrays
        actions = {agent: env.action_space(agent).sample(mask=infos[agent]["action_mask"]) for agent in env.agents}
        observations, rewards, terminations, truncations, infos = env.step(actions)
        for agent, r in rewards.items():
            returns[agent] += r
    env.close()
    for agent, ret in returns.items():
        print(f"{agent}: return {ret:.3f}")
    return returns


if __name__ == "__main__":
    main()
