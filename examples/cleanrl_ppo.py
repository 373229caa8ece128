"""CleanRL-style single-file PPO (MultiDiscrete actions, action masks) on a gymnasium vector env.

    python examples/cleanrl_ppo.py --scenario tiny --total-timesteps 4096 --num-envs 2

Follows CleanRL's ``ppo.py`` (GAE, clipped surrogate, value loss, entropy bonus, advantage
normalisation), with one categorical head per action component and infeasible choices masked
from ``info["action_mask"]`` (the vector env's batch of Gymnasium masks, made flat by
``gaisnet_env.masks.flat_mask``).
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

import gaisnet_env
from gaisnet_env.masks import flat_mask


def layer(i: int, o: int, std: float = np.sqrt(2)) -> nn.Linear:
    lin = nn.Linear(i, o)
    nn.init.orthogonal_(lin.weight, std)
    nn.init.constant_(lin.bias, 0.0)
    return lin


class Agent(nn.Module):
    def __init__(self, n_obs: int, nvec: np.ndarray) -> None:
        super().__init__()
        self.nvec = [int(n) for n in nvec]
        self.critic = nn.Sequential(layer(n_obs, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, 1, 1.0))
        self.actor = nn.Sequential(
            layer(n_obs, 64), nn.Tanh(), layer(64, 64), nn.Tanh(), layer(64, sum(self.nvec), 0.01)
        )

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return self.critic(x).squeeze(-1)

    def act(self, x: torch.Tensor, mask: torch.Tensor, action: torch.Tensor | None = None):
        logits = self.actor(x).masked_fill(~mask, -1e8)
        dists = [Categorical(logits=chunk) for chunk in torch.split(logits, self.nvec, dim=1)]
        if action is None:
            action = torch.stack([d.sample() for d in dists], dim=1)
        logp = torch.stack([d.log_prob(a) for d, a in zip(dists, action.T, strict=True)]).sum(0)
        ent = torch.stack([d.entropy() for d in dists]).sum(0)
        return action, logp, ent, self.value(x)


def main(argv: list[str] | None = None) -> float:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenario", default="tiny", choices=gaisnet_env.BUILTIN_SCENARIOS)
    p.add_argument("--total-timesteps", type=int, default=4096)
    p.add_argument("--num-envs", type=int, default=2)
    p.add_argument("--num-steps", type=int, default=64, help="rollout length per env")
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--gamma", type=float, default=0.99)
    p.add_argument("--gae-lambda", type=float, default=0.95)
    p.add_argument("--update-epochs", type=int, default=4)
    p.add_argument("--minibatches", type=int, default=4)
    p.add_argument("--clip", type=float, default=0.2)
    p.add_argument("--ent-coef", type=float, default=0.01)
    p.add_argument("--vf-coef", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--async-envs", action="store_true", help="AsyncVectorEnv (one process per env)")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)

    envs = gym.make_vec(
        gaisnet_env.env_id(args.scenario),
        num_envs=args.num_envs,
        vectorization_mode="async" if args.async_envs else "sync",
        wrappers=[gym.wrappers.RecordEpisodeStatistics],
    )
    nvec = envs.single_action_space.nvec
    n_obs = envs.single_observation_space.shape[0]
    agent = Agent(n_obs, nvec)
    opt = torch.optim.Adam(agent.parameters(), lr=args.lr, eps=1e-5)
    T, N = args.num_steps, args.num_envs
    obs_b = torch.zeros(T, N, n_obs)
    mask_b = torch.zeros(T, N, int(sum(nvec)), dtype=torch.bool)
    act_b = torch.zeros(T, N, len(nvec), dtype=torch.long)
    logp_b, rew_b, done_b, val_b = (torch.zeros(T, N) for _ in range(4))

    obs, info = envs.reset(seed=args.seed)
    next_obs = torch.as_tensor(obs)
    next_mask = torch.as_tensor(flat_mask(info["action_mask"]))
    next_done = torch.zeros(N)
    returns: list[float] = []
    start = time.time()
    for update in range(max(args.total_timesteps // (T * N), 1)):
        for t in range(T):
            obs_b[t], mask_b[t], done_b[t] = next_obs, next_mask, next_done
            with torch.no_grad():
                action, logp, _, value = agent.act(next_obs, next_mask)
            act_b[t], logp_b[t], val_b[t] = action, logp, value
            obs, reward, term, trunc, info = envs.step(action.numpy())
            rew_b[t] = torch.as_tensor(reward, dtype=torch.float32)
            next_obs = torch.as_tensor(obs)
            next_mask = torch.as_tensor(flat_mask(info["action_mask"]))
            next_done = torch.as_tensor(np.logical_or(term, trunc), dtype=torch.float32)
            if "episode" in info:
                returns += [float(r) for r in info["episode"]["r"][info["_episode"]]]
        # GAE (next-step autoreset: the step after a done is a reset step with reward 0)
        with torch.no_grad():
            next_value = agent.value(next_obs)
            adv = torch.zeros(T, N)
            last = torch.zeros(N)
            for t in reversed(range(T)):
                nonterminal = 1.0 - (next_done if t == T - 1 else done_b[t + 1])
                nv = next_value if t == T - 1 else val_b[t + 1]
                delta = rew_b[t] + args.gamma * nv * nonterminal - val_b[t]
                last = delta + args.gamma * args.gae_lambda * nonterminal * last
                adv[t] = last
            ret = adv + val_b
        valid = (1.0 - done_b).reshape(-1).bool()  # drop the reset steps of autoreset
        b_obs, b_mask = obs_b.reshape(-1, n_obs)[valid], mask_b.reshape(T * N, -1)[valid]
        b_act = act_b.reshape(T * N, -1)[valid]
        b_logp, b_adv, b_ret = logp_b.reshape(-1)[valid], adv.reshape(-1)[valid], ret.reshape(-1)[valid]
        n = b_obs.shape[0]
        mb = max(n // args.minibatches, 1)
        for _ in range(args.update_epochs):
            for idx in torch.randperm(n).split(mb):
                _, logp, ent, value = agent.act(b_obs[idx], b_mask[idx], b_act[idx])
                ratio = (logp - b_logp[idx]).exp()
                a = b_adv[idx]
                a = (a - a.mean()) / (a.std() + 1e-8) if a.numel() > 1 else a
                pg = torch.max(-a * ratio, -a * ratio.clamp(1 - args.clip, 1 + args.clip)).mean()
                v_loss = 0.5 * ((value - b_ret[idx]) ** 2).mean()
                loss = pg + args.vf_coef * v_loss - args.ent_coef * ent.mean()
                opt.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
                opt.step()
        recent = np.mean(returns[-10:]) if returns else float("nan")
        print(f"update {update + 1}: steps {(update + 1) * T * N}, mean return (last 10 episodes) {recent:.3f}, "
              f"{time.time() - start:.0f} s")
    envs.close()
    return float(np.mean(returns[-10:])) if returns else float("nan")


if __name__ == "__main__":
    main()
