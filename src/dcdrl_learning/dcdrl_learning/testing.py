"""Hand-made batches for tests: the replay's TransitionBatch is frozen, and tests edit theirs."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class FakeBatch:
    """What Agent.update reads from a batch, mutable."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    discounts: np.ndarray
    weights: np.ndarray


def random_batch(rng: np.random.Generator, b: int, obs_dim: int, action_dim: int, discount: float = 0.99,
                 weights: tuple[float, float] | None = None) -> FakeBatch:
    """Standard-normal observations and rewards, uniform actions in [-1, 1], one discount; importance weights
    uniform in ``weights`` (low, high) or all 1."""
    obs = rng.standard_normal((b, obs_dim), dtype=np.float32)
    actions = rng.uniform(-1, 1, (b, action_dim)).astype(np.float32)
    rewards = rng.standard_normal(b, dtype=np.float32)
    next_obs = rng.standard_normal((b, obs_dim), dtype=np.float32)
    drawn = np.ones(b, np.float32) if weights is None else rng.uniform(*weights, b).astype(np.float32)
    return FakeBatch(obs, actions, rewards, next_obs, np.full(b, discount, np.float32), drawn)
