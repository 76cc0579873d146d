"""Baseline offloading policies for MecOffloadEnv: local-only, full-offload, random, greedy.

Every policy is a callable obs -> action built from an env:

    env = gymnasium.make("dcdrl_sim/MecOffload-v0")
    policy = GreedyPolicy(env)
    action = policy(obs)            # obs (7N+3,) or a batch (B, 7N+3)
    action = policy.act()           # from the env's exact internal state instead of obs

A policy reads the state back from the observation (model.state_from_observation), so it also
works on the rows of a vector env's batched observation. ``decide(state)`` returns decision
vectors (0 = local, k = channel k-1) and is what the oracle and the tests use directly.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from dcdrl_sim.mec.model import MecParams, MecState, evaluate_decisions, state_from_observation


def unwrap_mec(env: Any) -> Any:
    """The MecOffloadEnv / MecOffloadVectorEnv under any wrappers, or a TypeError."""
    base = getattr(env, 'unwrapped', env)
    if not hasattr(base, 'params') or not isinstance(base.params, MecParams) \
            or not hasattr(base, 'encode_action'):
        raise TypeError(f'expected a MecOffloadEnv (or its vector env), got {type(env).__name__}')
    return base


def state_rows(state: MecState) -> Iterator[MecState]:
    """Splits a batched state (B, N) into B single states (N,)."""
    batch = np.shape(state.cycles_g)[:-1]
    if batch == ():
        yield state
        return
    for i in np.ndindex(*batch):
        yield MecState(*(np.asarray(getattr(state, f))[i] if np.ndim(getattr(state, f)) > 0
                         else getattr(state, f)
                         for f in ('gain_w', 'cycles_g', 'size_kb', 'deadline_s',
                                   'local_backlog_s', 'edge_backlog_s')))


class MecPolicy:
    """Base class: subclasses implement decide(state (N,)) -> decisions (N,) int64."""

    name = 'policy'

    def __init__(self, env: Any) -> None:
        self._env = unwrap_mec(env)
        self.params: MecParams = self._env.params

    def decide(self, state: MecState) -> np.ndarray:
        raise NotImplementedError

    def decide_batch(self, state: MecState) -> np.ndarray:
        """Decisions for a state of shape (N,) or (B, N)."""
        if np.ndim(state.cycles_g) == 1:
            return self.decide(state)
        rows = [self.decide(s) for s in state_rows(state)]
        return np.stack(rows).reshape(np.shape(state.cycles_g))

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        state, _ = state_from_observation(self.params, obs)
        return self._env.encode_action(self.decide_batch(state))

    def act(self) -> np.ndarray:
        """Action for the env's current exact state (no float32 observation rounding)."""
        return self._env.encode_action(self.decide_batch(self._env.decision_state()))


class LocalOnlyPolicy(MecPolicy):
    """Every user computes locally."""

    name = 'local_only'

    def decide(self, state: MecState) -> np.ndarray:
        return np.zeros(self.params.num_users, dtype=np.int64)


def round_robin_offload(params: MecParams) -> np.ndarray:
    """Every user offloads; user i on channel i mod C (spreads users evenly over channels)."""
    return np.arange(params.num_users, dtype=np.int64) % params.num_channels + 1


class FullOffloadPolicy(MecPolicy):
    """Every user offloads, channels assigned round-robin."""

    name = 'full_offload'

    def decide(self, state: MecState) -> np.ndarray:
        return round_robin_offload(self.params)


class RandomPolicy(MecPolicy):
    """Each user picks local or one of the C channels uniformly at random (seeded)."""

    name = 'random'

    def __init__(self, env: Any, seed: int | None = 0) -> None:
        super().__init__(env)
        self._rng = np.random.default_rng(seed)

    def decide(self, state: MecState) -> np.ndarray:
        return self._rng.integers(0, self.params.num_channels + 1, size=self.params.num_users)


def greedy_decisions(params: MecParams, state: MecState) -> np.ndarray:
    """Users in order of decreasing channel gain each take the option with the lowest cost
    FOR THEMSELVES, given the users already decided (the others count as local for now).

    The order by gain (ties by index) makes the result independent of user labels.
    """
    n, c = params.num_users, params.num_channels
    order = np.argsort(-np.asarray(state.gain_w), kind='stable')
    decisions = np.zeros(n, dtype=np.int64)
    options = np.arange(c + 1)
    candidates = np.zeros((c + 1, n), dtype=np.int64)
    for i in order:
        candidates[:] = decisions
        candidates[:, i] = options
        own_cost = evaluate_decisions(params, state, candidates).cost[:, i]
        decisions[i] = options[int(np.argmin(own_cost))]
    return decisions


class GreedyPolicy(MecPolicy):
    """Sequential selfish choice of the lowest estimated own cost (see greedy_decisions)."""

    name = 'greedy'

    def decide(self, state: MecState) -> np.ndarray:
        return greedy_decisions(self.params, state)


BASELINES = {
    'local_only': LocalOnlyPolicy,
    'full_offload': FullOffloadPolicy,
    'random': RandomPolicy,
    'greedy': GreedyPolicy,
}


def make_baseline(name: str, env: Any, **kwargs: Any) -> MecPolicy:
    """One of BASELINES by name, built for env."""
    if name not in BASELINES:
        raise ValueError(f'unknown baseline {name!r}; expected one of {sorted(BASELINES)}')
    return BASELINES[name](env, **kwargs)
