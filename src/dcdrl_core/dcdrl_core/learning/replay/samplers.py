"""Index samplers: uniform, and proportional prioritised (PER) over a vectorised sum tree.

A sampler only chooses row indices and importance weights; it never touches the transition
data.  The owning buffer calls ``on_insert`` after every batched add and holds the lock.

PER follows Schaul et al. 2016 ("Prioritized Experience Replay"), proportional variant:
P(i) = p_i / sum_k p_k with p_i = (|delta_i| + eps)^alpha; importance weight
w_i = (N * P(i))^-beta, divided by the largest weight of the batch (so weights <= 1 and the
loss scale does not grow with the buffer).  Beta is annealed linearly from ``beta`` to
``beta_end`` over ``beta_steps`` sample calls.
"""
from __future__ import annotations

import numpy as np


class UniformSampler:
    """Uniform sampling with replacement; all importance weights are 1."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def on_insert(self, indices: np.ndarray) -> None:
        """Uniform sampling keeps no per-item state."""

    def sample(self, size: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        indices = self.rng.integers(0, size, batch_size, dtype=np.int64)
        return indices, np.ones(batch_size, dtype=np.float32)


class SumTree:
    """Binary sum tree over ``capacity`` non-negative leaf values, updated and searched in batches.

    Layout: a flat float64 array of ``2 * leaves`` nodes (``leaves`` = capacity rounded up to
    a power of two); node 1 is the root, node k has children 2k and 2k+1, leaf i is node
    ``leaves + i``.  Updates and prefix-sum searches walk all levels at once for a whole
    batch (``log2(capacity)`` numpy operations per call, not per item).
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f'capacity must be >= 1, got {capacity}')
        self.capacity = int(capacity)
        self.leaves = 1 << max(0, (self.capacity - 1).bit_length())
        self.depth = self.leaves.bit_length() - 1
        self.nodes = np.zeros(2 * self.leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.nodes[1])

    def get(self, indices: np.ndarray) -> np.ndarray:
        return self.nodes[self.leaves + np.asarray(indices, dtype=np.int64)]

    def set(self, indices: np.ndarray, values: np.ndarray) -> None:
        """Set leaf values; duplicate indices: the last value wins (as with numpy assignment)."""
        nodes = self.leaves + np.asarray(indices, dtype=np.int64)
        self.nodes[nodes] = values
        # Recompute every ancestor level by level.  Duplicated parents are harmless: each
        # write stores the same sum of two already-final children.
        for _ in range(self.depth):
            nodes = nodes >> 1
            self.nodes[nodes] = self.nodes[2 * nodes] + self.nodes[2 * nodes + 1]

    def find_prefix(self, targets: np.ndarray) -> np.ndarray:
        """For each target u in [0, total) the leaf i with sum(p[:i]) <= u < sum(p[:i+1])."""
        u = np.array(targets, dtype=np.float64)
        nodes = np.ones(u.shape[0], dtype=np.int64)
        tree = self.nodes
        for _ in range(self.depth):
            left = 2 * nodes
            left_sum = tree[left]
            go_right = u >= left_sum
            u -= left_sum * go_right
            nodes = left + go_right
        leaf = nodes - self.leaves
        # Float rounding can, very rarely, step into an empty right subtree; such leaves lie
        # beyond the stored items (or have priority 0): fall back to the nearest valid leaf.
        bad = tree[nodes] <= 0.0
        if bad.any():
            leaf[bad] = self._nearest_nonzero(leaf[bad])
        return leaf

    def _nearest_nonzero(self, leaves: np.ndarray) -> np.ndarray:
        values = self.nodes[self.leaves:self.leaves + self.capacity]
        nonzero = np.flatnonzero(values > 0.0)
        if nonzero.size == 0:
            raise ValueError('cannot sample from a sum tree whose priorities are all zero')
        pos = np.clip(np.searchsorted(nonzero, leaves), 0, nonzero.size - 1)
        return nonzero[pos]


class PrioritizedSampler:
    """Proportional prioritised sampling (PER) with stratified draws over a sum tree.

    Args:
        capacity: number of slots (same as the storage).
        rng: random generator.
        alpha: priority exponent, 0 = uniform, 1 = fully proportional.  Default 0.6 (Schaul et al.).
        beta: initial importance-sampling exponent.  Default 0.4.
        beta_end: final beta reached after ``beta_steps`` sample calls.  Default 1.0.
        beta_steps: sample calls over which beta is annealed linearly; 0 = constant beta.
        eps: added to |TD error| so that no item's priority is 0.  Default 1e-6.
    New items get the largest priority seen so far (so every item is sampled at least a few
    times before its TD error is known).
    """

    def __init__(self, capacity: int, rng: np.random.Generator, *, alpha: float = 0.6,
                 beta: float = 0.4, beta_end: float = 1.0, beta_steps: int = 100_000,
                 eps: float = 1e-6) -> None:
        if not 0.0 <= alpha:
            raise ValueError(f'alpha must be >= 0, got {alpha}')
        if not (0.0 <= beta <= 1.0 and 0.0 <= beta_end <= 1.0):
            raise ValueError(f'beta and beta_end must lie in [0, 1], got {beta} and {beta_end}')
        if beta_steps < 0:
            raise ValueError(f'beta_steps must be >= 0, got {beta_steps}')
        if not eps > 0.0:
            raise ValueError(f'eps must be > 0, got {eps}')
        self.rng = rng
        self.alpha = float(alpha)
        self.beta_start = float(beta)
        self.beta_end = float(beta_end)
        self.beta_steps = int(beta_steps)
        self.eps = float(eps)
        self.tree = SumTree(capacity)
        self.max_priority = 1.0  # in |TD| units, before the alpha exponent
        self.sample_calls = 0

    @property
    def beta(self) -> float:
        if self.beta_steps == 0:
            return self.beta_start
        frac = min(1.0, self.sample_calls / self.beta_steps)
        return self.beta_start + frac * (self.beta_end - self.beta_start)

    def on_insert(self, indices: np.ndarray) -> None:
        self.tree.set(indices, np.full(len(indices), self.max_priority ** self.alpha))

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        priorities = np.abs(np.asarray(td_errors, dtype=np.float64)) + self.eps
        self.max_priority = max(self.max_priority, float(priorities.max(initial=0.0)))
        self.tree.set(indices, priorities ** self.alpha)

    def sample(self, size: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        total = self.tree.total
        # Stratified: one uniform draw inside each of batch_size equal slices of [0, total);
        # lower variance than independent draws and the same marginal distribution.
        targets = (np.arange(batch_size) + self.rng.random(batch_size)) * (total / batch_size)
        indices = self.tree.find_prefix(targets)
        weights = self.weights(indices, size)
        self.sample_calls += 1
        return indices, weights

    def weights(self, indices: np.ndarray, size: int) -> np.ndarray:
        """Importance weights of ``indices`` normalised by the batch maximum."""
        probs = self.tree.get(indices) / self.tree.total
        w = (size * probs) ** (-self.beta)
        return (w / w.max()).astype(np.float32)

    def priorities(self, size: int) -> np.ndarray:
        """Leaf values (p^alpha) of the first ``size`` slots."""
        return self.tree.nodes[self.tree.leaves:self.tree.leaves + size].copy()

    def restore(self, leaf_values: np.ndarray, max_priority: float, sample_calls: int) -> None:
        self.tree.set(np.arange(len(leaf_values)), leaf_values)
        self.max_priority = float(max_priority)
        self.sample_calls = int(sample_calls)
