"""The warm start of the learned agents: a policy's initial bias towards op "none", teacher episodes,
and behaviour cloning of a heuristic (or the oracle) before RL."""

from __future__ import annotations

from typing import Any

import numpy as np
from gaisnet_env.agents.augment import ObsAugmenter

from gaisnet_env.masks import flat_mask


def bias_towards_no_op(model: Any, logit: float) -> None:
    """Add ``logit`` to the bias of op "none" in each edge's op head of an actor-critic policy.

    The MultiDiscrete logits are ``[route(3), op(5)] * E``; only the initial distribution
    changes (the agent may still learn any op). Each op is real model training, so a
    uniform initial policy (4 of 5 choices start one) would make early training very slow.
    """
    import torch

    net = getattr(model.policy, "action_net", None)
    nvec = getattr(model.action_space, "nvec", None)
    if net is None or nvec is None or getattr(net, "bias", None) is None:
        return
    with torch.no_grad():
        start = 0
        for i, n in enumerate(np.asarray(nvec).ravel()):
            if i % 2 == 1:  # an op component
                net.bias[start] += float(logit)
            start += int(n)


def teacher_episode(scenario: str, teacher: str, seed: int, env_kwargs: dict[str, Any] | None = None,
                    augment: bool = False) -> tuple[list, list, list, list]:
    """One episode of the policy spec ``teacher`` (a heuristic, ``name:key=value`` overrides, or the
    ``oracle``) on seed ``seed``: (observations, actions, action masks, rewards), one entry per step.
    Observations are augmented (:class:`ObsAugmenter`) when ``augment``."""
    from gaisnet_env.env import GaisNetEnv
    from gaisnet_env.evaluation import build_policy

    env = GaisNetEnv(scenario, **(env_kwargs or {}))
    pol = build_policy(teacher, env)
    pol.reset(seed)
    aug = ObsAugmenter()
    aug.reset()
    o, info = env.reset(seed=seed)
    obs_l, act_l, mask_l, rews = [], [], [], []
    while True:
        a = pol.act(o, info)
        obs_l.append(aug(o) if augment else o)
        act_l.append(np.asarray(a))
        mask_l.append(flat_mask(info["action_mask"]))
        o, r, term, trunc, info = env.step(a)
        rews.append(float(r))
        if term or trunc:
            break
    env.close()
    return obs_l, act_l, mask_l, rews


def _teacher_samples(scenario: str, teacher: str, episodes: int, seed: int, gamma: float,
                     env_kwargs: dict[str, Any] | None, progress: bool, augment: bool,
                     jobs: int) -> tuple[list, list, list, list, list]:
    """``episodes`` teacher episodes on training seeds ``seed + 50_000 + i`` (in ``jobs`` processes):
    (observations, actions, masks, discounted returns at ``gamma``, episode rewards)."""
    seeds = [seed + 50_000 + i for i in range(episodes)]
    it: Any
    if jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from gaisnet_env.evaluation import _worker_init

        ex = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init)
        it = ex.map(teacher_episode, *zip(*[(scenario, teacher, s, env_kwargs, augment) for s in seeds], strict=True))
    else:
        ex = None
        it = (teacher_episode(scenario, teacher, s, env_kwargs, augment) for s in seeds)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, total=episodes, desc=f"warm start: {teacher} episodes", unit="ep")
    obs_l, act_l, mask_l, ret_l, ep_rewards = [], [], [], [], []
    try:
        for o_ep, a_ep, m_ep, rews in it:
            obs_l += o_ep
            act_l += a_ep
            mask_l += m_ep
            g, rets = 0.0, []
            for r in reversed(rews):
                g = r + gamma * g
                rets.append(g)
            ret_l.extend(reversed(rets))
            ep_rewards.append(sum(rews))
    finally:  # the worker processes end also when an episode raised
        if ex is not None:
            ex.shutdown(cancel_futures=True)
    return obs_l, act_l, mask_l, ret_l, ep_rewards


def behaviour_clone(
    model: Any,
    scenario: str,
    teacher: str,
    episodes: int = 12,
    seed: int = 0,
    epochs: int = 150,
    lr: float = 2e-3,
    env_kwargs: dict[str, Any] | None = None,
    progress: bool = False,
    augment: bool = False,
    jobs: int = 1,
) -> dict[str, float]:
    """Warm-start an actor-critic ``model`` by imitating ``teacher`` (a heuristic, with optional
    ``name:key=value`` overrides, or ``oracle:...``: slow, so give it ``jobs`` processes).

    Collects ``episodes`` teacher episodes on *training* seeds (``seed + 50_000 + i``, far from
    the evaluation seeds), then minimises ``-log pi(a_teacher | s) + 0.5 (V(s) - G)^2`` with
    ``G`` the discounted return (the model's gamma). Returns the teacher's mean episode reward,
    the number of samples and the final imitation accuracy (share of matching action parts).
    """
    gamma = float(getattr(model, "gamma", 0.99))
    obs_l, act_l, mask_l, ret_l, ep_rewards = _teacher_samples(scenario, teacher, episodes, seed, gamma, env_kwargs,
                                                               progress, augment, jobs)
    stats = fit_to_teacher(model, np.asarray(obs_l), np.asarray(act_l), np.asarray(mask_l), np.asarray(ret_l),
                           epochs=epochs, lr=lr)
    return {"teacher_reward": float(np.mean(ep_rewards)), **stats}


def fit_to_teacher(model: Any, obs: np.ndarray, acts: np.ndarray, masks: np.ndarray, rets: np.ndarray,
                   epochs: int = 150, lr: float = 2e-3, batch_size: int = 128) -> dict[str, float]:
    """Minimise ``-log pi(a | s) + 0.5 (V(s) - G)^2 / var(G)`` over the teacher's samples (``obs`` (n, d),
    ``acts`` (n, k) MultiDiscrete parts route/op alternating, ``masks`` (n, 8k) bool, returns ``rets``
    (n,)) for ``epochs`` passes; returns the number of samples, the imitation accuracy (share of matching
    action parts) and the recall of the teacher's ops."""
    import torch

    policy = model.policy
    obs_t = torch.as_tensor(obs, dtype=torch.float32)
    acts_t = torch.as_tensor(acts, dtype=torch.int64)
    rets_t = torch.as_tensor(rets, dtype=torch.float32)
    masked = type(model).__name__ == "MaskablePPO"
    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    ret_var = float(rets_t.var()) + 1e-6  # scale the value loss so it does not swamp the imitation
    n = len(obs_t)
    policy.set_training_mode(True)
    for _ in range(epochs):
        perm = torch.randperm(n)
        for b in range(0, n, batch_size):
            idx = perm[b : b + batch_size]
            kw = {"action_masks": masks[idx.numpy()]} if masked else {}
            values, log_prob, _ent = policy.evaluate_actions(obs_t[idx], acts_t[idx], **kw)
            v_loss = torch.nn.functional.mse_loss(values.flatten(), rets_t[idx]) / ret_var
            loss = -log_prob.mean() + 0.5 * v_loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    policy.set_training_mode(False)
    with torch.no_grad():
        kw = {"action_masks": masks} if masked else {}
        pred, _ = model.predict(obs, deterministic=True, **kw)
    pred = np.asarray(pred)
    match = float((pred == acts).mean())
    op_t, op_p = acts[:, 1::2], pred[:, 1::2]
    recall = float(((op_p == op_t) & (op_t > 0)).sum() / max((op_t > 0).sum(), 1))
    return {"samples": float(n), "imitation_accuracy": match, "op_recall": recall}
