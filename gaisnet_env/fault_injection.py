"""``FaultInjection``: a wrapper that injects random faults (links, edges down, cloud overload,
batteries) between steps of :class:`~gaisnet_env.env.GaisNetEnv`, with its own snapshot and restore."""

from __future__ import annotations

import copy
from typing import Any

import gymnasium as gym
import numpy as np

#: The kinds of faults FaultInjection can inject.
FAULT_KINDS: tuple[str, ...] = ("link", "edge_down", "cloud_overload", "battery")



def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


class FaultInjection(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Inject faults at run time, programmatically (:meth:`inject`) or at random (``rate``).

    Faults are appended to the unwrapped env's ``scenario.faults`` lists (a deep copy of the
    scenario made here, so other envs sharing it are unaffected) with ``start_epoch`` relative
    to the current epoch, so the env handles them exactly like scenario faults: masks, queues,
    aborted operations and the ``info`` counters (``faults_active``, ``edges_down``,
    ``requests_rerouted``, ``ops_aborted``...). Kinds:

    * ``"link"``: ``link`` (``"access"`` or ``"backhaul"``) of ``edge`` at ``bandwidth_factor``
      of nominal (0 = outage) for ``duration_epochs``;
    * ``"edge_down"``: edge server ``edge`` down for ``duration_epochs``;
    * ``"cloud_overload"``: the cloud at ``capacity_factor`` of its capacity;
    * ``"battery"``: the end devices of cell ``edge`` run out of battery now (needs
      ``energy.end_battery_j``); they recover by recharging (``energy.end_recharge_w``), so
      ``duration_epochs`` does not apply.

    With ``rate > 0`` each step injects, with probability ``rate``, one fault of a kind drawn from
    ``kinds`` at a random edge lasting 1..``max_duration`` epochs (random factors); it starts at
    the next epoch, so the observation and ``action_mask`` the step returns already show it.
    ``seed`` fixes the draws; ``reset(seed=s)`` re-seeds them from (``seed``, ``s``). ``reset()`` removes the
    injected faults (the scenario's own stay). :meth:`snapshot` / :meth:`restore` cover the env
    and the injected faults, so a run with injections replays bit for bit.
    """

    def __init__(
        self,
        env: gym.Env,
        rate: float = 0.0,
        kinds: tuple[str, ...] | list[str] | None = None,
        max_duration: int = 5,
        seed: int | None = None,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, rate=rate, kinds=kinds, max_duration=max_duration, seed=seed)
        gym.Wrapper.__init__(self, env)

        base = env.unwrapped
        if not hasattr(base, "scenario") or not hasattr(base.scenario, "faults"):
            raise TypeError(f"FaultInjection: needs a GaisNetEnv underneath, got {type(base).__name__}")
        if not (isinstance(rate, (int, float)) and 0.0 <= float(rate) <= 1.0):
            raise ValueError(f"FaultInjection: rate must be a probability per epoch in [0, 1], got {rate!r}")
        if not (_is_int(max_duration) and max_duration >= 1):
            raise ValueError(f"FaultInjection: max_duration must be an integer >= 1, got {max_duration!r}")
        battery = base.scenario.energy.end_battery_j is not None
        if kinds is None:
            kinds = tuple(k for k in FAULT_KINDS if k != "battery" or battery)
        for k in kinds:
            if k not in FAULT_KINDS:
                raise ValueError(f"FaultInjection: unknown kind {k!r}; allowed: {', '.join(FAULT_KINDS)}")
        if "battery" in kinds and not battery:
            raise ValueError("FaultInjection: kind 'battery' needs a scenario with energy.end_battery_j set")
        if not kinds:
            raise ValueError("FaultInjection: kinds is empty")
        base.scenario = copy.deepcopy(base.scenario)
        self._base_faults = copy.deepcopy(base.scenario.faults)
        self.rate = float(rate)
        self.kinds = tuple(kinds)
        self.max_duration = int(max_duration)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.injected = 0  # faults injected since construction

    # -- helpers ------------------------------------------------------------------------------
    def _epoch(self) -> int:
        st = self.env.unwrapped.state
        if st is None:
            raise RuntimeError("FaultInjection: call reset() before injecting faults")
        return int(st.epoch)

    def _prune(self, epoch: int) -> None:
        """Drop injected faults that have ended (the scenario's own are kept)."""
        faults = self.env.unwrapped.scenario.faults
        for name in ("links", "edges_down", "cloud_overload"):
            items = getattr(faults, name)
            n0 = len(getattr(self._base_faults, name))
            items[n0:] = [f for f in items[n0:] if f.start_epoch + f.duration_epochs > epoch]

    # -- API ------------------------------------------------------------------------------------
    def inject(
        self,
        kind: str,
        edge: int = 0,
        duration_epochs: int = 1,
        *,
        link: str = "backhaul",
        bandwidth_factor: float = 0.0,
        capacity_factor: float = 0.3,
        start_in: int = 0,
    ) -> None:
        """Add one fault starting ``start_in`` epochs from now (0 = the next step)."""
        from gaisnet_env.scenario import CloudOverload, EdgeDown, LinkFault

        base = self.env.unwrapped
        epoch = self._epoch()
        n = base.n_edges
        if kind not in FAULT_KINDS:
            raise ValueError(f"inject: kind must be one of {', '.join(FAULT_KINDS)}, got {kind!r}")
        if not _is_int(edge) or not 0 <= edge < n:
            raise ValueError(f"inject: edge must be an integer in 0..{n - 1}, got {edge!r}")
        if not _is_int(duration_epochs) or duration_epochs < 1:
            raise ValueError(f"inject: duration_epochs must be an integer >= 1, got {duration_epochs!r}")
        if not _is_int(start_in) or start_in < 0:
            raise ValueError(f"inject: start_in must be an integer >= 0, got {start_in!r}")
        start = epoch + int(start_in)
        faults = base.scenario.faults
        self._prune(epoch)
        if kind == "link":
            if link not in ("access", "backhaul"):
                raise ValueError(f"inject: link must be 'access' or 'backhaul', got {link!r}")
            if not (isinstance(bandwidth_factor, (int, float)) and 0.0 <= bandwidth_factor <= 1.0):
                raise ValueError(f"inject: bandwidth_factor must be in [0, 1], got {bandwidth_factor!r}")
            faults.links.append(LinkFault(int(edge), link, start, int(duration_epochs), float(bandwidth_factor)))
        elif kind == "edge_down":
            faults.edges_down.append(EdgeDown(int(edge), start, int(duration_epochs)))
        elif kind == "cloud_overload":
            if not (isinstance(capacity_factor, (int, float)) and 0.01 <= capacity_factor <= 1.0):
                raise ValueError(f"inject: capacity_factor must be in [0.01, 1], got {capacity_factor!r}")
            faults.cloud_overload.append(CloudOverload(start, int(duration_epochs), float(capacity_factor)))
        else:
            if base.scenario.energy.end_battery_j is None:
                raise ValueError("inject: kind 'battery' needs a scenario with energy.end_battery_j set")
            if start_in:
                raise ValueError("inject: a battery fault happens now; start_in must be 0")
            base.state.battery_j[int(edge)] = 0.0
        self.injected += 1

    def inject_random(self) -> str:
        """Inject one random fault (kind, edge, duration, factors drawn from :attr:`rng`); return its kind."""
        rng = self.rng
        kind = self.kinds[int(rng.integers(len(self.kinds)))]
        edge = int(rng.integers(self.env.unwrapped.n_edges))
        dur = int(rng.integers(1, self.max_duration + 1))
        link = ("access", "backhaul")[int(rng.integers(2))]
        bw = float(rng.choice([0.0, rng.uniform(0.05, 0.9)]))
        cap = float(rng.uniform(0.05, 0.8))
        self.inject(kind, edge, dur, link=link, bandwidth_factor=bw, capacity_factor=cap)
        return kind

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):

        if seed is not None:  # reproducible episodes; still distinct per wrapper seed
            self.rng = np.random.default_rng(seed if self.seed is None else [int(self.seed), int(seed)])
        self.env.unwrapped.scenario.faults = copy.deepcopy(self._base_faults)
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.rate > 0 and not (terminated or truncated) and self.rng.random() < self.rate:
            info = dict(info)
            info["fault_injected"] = self.inject_random()
            base = self.env.unwrapped
            obs = base._observation()  # the new fault shows in the observation and the mask
            info["action_mask"] = base.gym_action_mask()
        return obs, reward, terminated, truncated, info

    def snapshot(self) -> dict[str, Any]:
        """The env's snapshot plus the injected faults and this wrapper's RNG."""

        base = self.env.unwrapped
        return {
            "env": base.snapshot(),
            "faults": copy.deepcopy(base.scenario.faults),
            "rng": copy.deepcopy(self.rng.bit_generator.state),
        }

    def restore(self, snap: dict[str, Any]) -> None:

        base = self.env.unwrapped
        base.restore(snap["env"])
        base.scenario.faults = copy.deepcopy(snap["faults"])
        self.rng.bit_generator.state = copy.deepcopy(snap["rng"])
