"""Baseline policies for FaceOffloadEnv: callables obs -> action (0 = local, 1 = offload).

Each accepts one observation (returns an int) or a batch of shape (n, 8) (returns an
int64 array), so they also drive gymnasium vector envs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dcdrl_sim.face.env import LOCAL, OBS_SIZE, OFFLOAD, FaceOffloadEnv

Action = int | np.ndarray


def _batch_size(obs: Any) -> int | None:
    """None for a single observation, n for a batch (n, 8); rejects other shapes."""
    shape = np.shape(obs)
    if shape == (OBS_SIZE,):
        return None
    if len(shape) == 2 and shape[1] == OBS_SIZE:
        return shape[0]
    raise ValueError(f'observation must have shape ({OBS_SIZE},) or (n, {OBS_SIZE}), got {shape}')


class _Constant:
    action = LOCAL

    def __call__(self, obs: Any) -> Action:
        n = _batch_size(obs)
        return self.action if n is None else np.full(n, self.action, dtype=np.int64)


class LocalOnlyPolicy(_Constant):
    """Run every task on the device."""

    action = LOCAL


class FullOffloadPolicy(_Constant):
    """Send every task to the edge server."""

    action = OFFLOAD


class RandomPolicy:
    """Offload with probability ``offload_probability``, independently per task (seeded)."""

    def __init__(self, offload_probability: float = 0.5, seed: int | None = None) -> None:
        if not 0.0 <= float(offload_probability) <= 1.0:
            raise ValueError(f'offload_probability must be in [0, 1], got {offload_probability!r}')
        self.offload_probability = float(offload_probability)
        self.rng = np.random.default_rng(seed)

    def __call__(self, obs: Any) -> Action:
        n = _batch_size(obs)
        draws = self.rng.random(1 if n is None else n) < self.offload_probability
        return int(draws[0]) if n is None else draws.astype(np.int64)


class GreedyPolicy:
    """Lowest estimated cost per task, from the observation and the env's model constants.

    Myopic: it ignores what the choice does to later tasks (queue build-up), which is
    what a learned policy can improve on.
    """

    def __init__(self, env: Any) -> None:
        model = getattr(env, 'unwrapped', env)
        if not isinstance(model, FaceOffloadEnv):
            raise TypeError(f'GreedyPolicy needs a FaceOffloadEnv (or a wrapper of one), got {type(model).__name__}')
        self.model = model

    def __call__(self, obs: Any) -> Action:
        n = _batch_size(obs)
        local, offload = self.model.estimate_costs(obs)
        choice = np.where(offload < local, OFFLOAD, LOCAL).astype(np.int64)
        return int(choice) if n is None else choice


BASELINES: dict[str, Callable[..., Callable[[Any], Action]]] = {
    'local_only': lambda env=None, seed=None: LocalOnlyPolicy(),
    'full_offload': lambda env=None, seed=None: FullOffloadPolicy(),
    'random': lambda env=None, seed=None: RandomPolicy(seed=seed),
    'greedy': lambda env=None, seed=None: GreedyPolicy(env),
}


def make_baseline(name: str, env: Any = None, seed: int | None = None) -> Callable[[Any], Action]:
    """A baseline by name: 'local_only', 'full_offload', 'random' (seeded), 'greedy' (needs env)."""
    if name not in BASELINES:
        raise ValueError(f'unknown baseline {name!r}; expected one of {sorted(BASELINES)}')
    return BASELINES[name](env=env, seed=seed)
