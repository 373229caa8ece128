"""Stable-Baselines3: PPO on parallel envs, and MaskablePPO (sb3-contrib) with the action masks.

    python examples/sb3_ppo.py --scenario tiny --steps 2000 --envs 2
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import numpy as np
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import SubprocVecEnv

import gaisnet_env


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="tiny", choices=gaisnet_env.BUILTIN_SCENARIOS)
    p.add_argument("--steps", type=int, default=2000, help="training env steps")
    p.add_argument("--envs", type=int, default=2, help="parallel envs (SubprocVecEnv when > 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--masked", action="store_true", help="also train sb3-contrib's MaskablePPO")
    args = p.parse_args(argv)
    env_id = gaisnet_env.env_id(args.scenario)

    vec_cls = SubprocVecEnv if args.envs > 1 else None
    venv = make_vec_env(env_id, n_envs=args.envs, seed=args.seed, vec_env_cls=vec_cls)
    model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, seed=args.seed, verbose=0)
    model.learn(total_timesteps=args.steps)
    venv.close()
    eval_env = Monitor(gym.make(env_id))
    mean, std = evaluate_policy(model, eval_env, n_eval_episodes=2)
    print(f"PPO: mean return {mean:.3f} +- {std:.3f}")
    out = {"ppo": float(mean)}

    if args.masked:
        from sb3_contrib import MaskablePPO
        from sb3_contrib.common.maskable.evaluation import evaluate_policy as masked_evaluate

        # MaskablePPO reads env.action_masks() through the wrappers (GaisNetEnv provides it)
        menv = make_vec_env(env_id, n_envs=1, seed=args.seed)
        mmodel = MaskablePPO("MlpPolicy", menv, n_steps=64, batch_size=64, seed=args.seed, verbose=0)
        mmodel.learn(total_timesteps=args.steps)
        mmean, mstd = masked_evaluate(mmodel, Monitor(gym.make(env_id)), n_eval_episodes=2)
        print(f"MaskablePPO: mean return {mmean:.3f} +- {mstd:.3f}")
        out["maskable_ppo"] = float(np.asarray(mmean))
        menv.close()
    eval_env.close()
    return out


if __name__ == "__main__":
    main()
