"""Train PPO with Ray RLlib (new API stack) on a GaisNet scenario.

Runs on a local Ray instance that this script starts itself::

    python examples/rllib_ppo.py --scenario tiny --iterations 3

The same code on an existing Ray cluster (every node needs ``pip install "gaisnet-env[rllib]"``)::

    python examples/rllib_ppo.py --address ray://head-node:10001 --env-runners 8 --scenario metro
    # or, from a node of the cluster:  --address auto
"""

from __future__ import annotations

import argparse

import ray

from gaisnet_env.rllib import ppo_config


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="tiny", help="built-in scenario name or YAML path")
    p.add_argument("--iterations", type=int, default=3, help="training iterations")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start a local instance)")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local instance (ignored with --address)")
    p.add_argument("--env-runners", type=int, default=1, help="remote sampling actors (0: sample in the driver)")
    p.add_argument("--envs-per-runner", type=int, default=1)
    p.add_argument("--train-batch", type=int, default=256, help="env steps per iteration")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--multiagent", action="store_true", help="each edge an agent (PettingZoo view), shared policy")
    p.add_argument("--reward-mode", default="shared", choices=("shared", "per_edge"), help="multi-agent reward")
    p.add_argument("--checkpoint", default=None, help="directory to save the trained algorithm to")
    args = p.parse_args(argv)

    if args.address:
        ray.init(address=args.address)
    else:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    try:
        config = ppo_config(
            args.scenario,
            num_env_runners=args.env_runners,
            num_envs_per_env_runner=args.envs_per_runner,
            train_batch_size=args.train_batch,
            seed=args.seed,
            multiagent=args.multiagent,
            reward_mode=args.reward_mode,
        )
        algo = config.build_algo()
        result: dict = {}
        for i in range(args.iterations):
            result = algo.train()
            runners = result.get("env_runners", {})
            print(
                f"iter {i + 1}: env steps {runners.get('num_env_steps_sampled_lifetime', '?')}, "
                f"episode return mean {runners.get('episode_return_mean', float('nan')):.3f}"
            )
        if args.checkpoint:
            print("saved to", algo.save_to_path(args.checkpoint))
        algo.stop()
        return result
    finally:
        ray.shutdown()


if __name__ == "__main__":
    main()
