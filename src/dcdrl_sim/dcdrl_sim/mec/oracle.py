"""Per-step oracle for MecOffloadEnv: the decision vector with the lowest total cost THIS step.

It is myopic by definition (it ignores what the backlogs it leaves cost later), which is what
"exact per-step" means here; it is a reference point, not the episode optimum.

- Exact (small N): scores every decision vector at once with the shared physics function,
  in chunks. All C channels are identical, so relabelling channels never changes the cost;
  by default only one vector per relabelling class is scored ("canonical" vectors, channels
  numbered in order of first use), which is still exhaustive but far smaller than (C+1)^N
  (N = 8, C = 5: 20 648 instead of 1 679 616). ``use_channel_symmetry=False`` scores all
  (C+1)^N.
- Large N: iterated best response on the system cost: from the best of {all local,
  round-robin full offload, greedy}, repeatedly apply the single-user change that lowers the
  total cost most (all N(C+1) changes scored in one call) until none does. Never worse than
  those three starting points.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from dcdrl_sim.mec.baselines import MecPolicy, greedy_decisions, round_robin_offload
from dcdrl_sim.mec.model import MecParams, MecState, total_cost


@lru_cache(maxsize=16)
def _canonical_candidates(num_users: int, num_channels: int) -> np.ndarray:
    """All decision vectors whose channels appear in order of first use (1, then 2, ...).

    Built user by user: a row may put the next user locally or on any channel already used
    or on the next unused one. One row per class of channel relabellings.
    """
    rows = np.zeros((1, 0), dtype=np.int8)
    max_label = np.zeros(1, dtype=np.int64)
    for _ in range(num_users):
        n_options = np.minimum(max_label + 1, num_channels) + 1
        parent = np.repeat(np.arange(rows.shape[0]), n_options)
        first = np.repeat(np.cumsum(n_options) - n_options, n_options)
        value = np.arange(parent.size) - first
        rows = np.concatenate([rows[parent], value[:, None].astype(np.int8)], axis=1)
        max_label = np.maximum(max_label[parent], value)
    rows.setflags(write=False)
    return rows


def count_candidates(num_users: int, num_channels: int, use_channel_symmetry: bool) -> int:
    """How many decision vectors the exact oracle scores."""
    if not use_channel_symmetry:
        return (num_channels + 1) ** num_users
    # Count restricted growth strings by dynamic programming over the number of labels used.
    counts = {0: 1}
    for _ in range(num_users):
        nxt: dict[int, int] = {}
        for used, ways in counts.items():
            nxt[used] = nxt.get(used, 0) + ways * (used + 1)             # local or a used channel
            if used < num_channels:
                nxt[used + 1] = nxt.get(used + 1, 0) + ways            # the next new channel
        counts = nxt
    return sum(counts.values())


def _full_chunk(num_users: int, num_channels: int, start: int, stop: int) -> np.ndarray:
    """Decision vectors number start..stop-1 of the (C+1)^N enumeration (base C+1 digits)."""
    index = np.arange(start, stop, dtype=np.int64)
    powers = (num_channels + 1) ** np.arange(num_users, dtype=np.int64)
    return (index[:, None] // powers) % (num_channels + 1)


class MecOracle(MecPolicy):
    """Exact per-step optimum for small N, iterated best response beyond.

    Args:
        env: a MecOffloadEnv (possibly wrapped) or MecOffloadVectorEnv.
        max_exact_candidates: use the exact search when it scores at most this many vectors.
        use_channel_symmetry: score one vector per channel-relabelling class (still exact).
        chunk_size: candidate vectors scored per numpy call (bounds memory: ~N^2 bytes each).
        max_iterations: cap on improvement steps of the best-response search.
    """

    name = 'oracle'

    def __init__(self, env: Any, *, max_exact_candidates: int = 200_000,
                 use_channel_symmetry: bool = True, chunk_size: int = 16_384,
                 max_iterations: int | None = None) -> None:
        super().__init__(env)
        if max_exact_candidates < 0 or chunk_size < 1:
            raise ValueError('max_exact_candidates must be >= 0 and chunk_size >= 1')
        self.use_channel_symmetry = bool(use_channel_symmetry)
        self.chunk_size = int(chunk_size)
        n, c = self.params.num_users, self.params.num_channels
        self.num_candidates = count_candidates(n, c, self.use_channel_symmetry)
        self.exact = self.num_candidates <= max_exact_candidates
        self.max_iterations = int(max_iterations) if max_iterations is not None else 20 * n

    def decide(self, state: MecState) -> np.ndarray:
        if self.exact:
            return exhaustive_search(self.params, state, self.use_channel_symmetry, self.chunk_size)
        return best_response_search(self.params, state, self.max_iterations)


def exhaustive_search(params: MecParams, state: MecState, use_channel_symmetry: bool = True,
                      chunk_size: int = 16_384) -> np.ndarray:
    """The decision vector (N,) of lowest total cost; ties go to the first enumerated."""
    n, c = params.num_users, params.num_channels
    if use_channel_symmetry:
        table = _canonical_candidates(n, c)
        total = table.shape[0]
    else:
        table = None
        total = (c + 1) ** n
    best_cost = np.inf
    best = np.zeros(n, dtype=np.int64)
    for start in range(0, total, chunk_size):
        stop = min(start + chunk_size, total)
        chunk = table[start:stop] if table is not None else _full_chunk(n, c, start, stop)
        costs = total_cost(params, state, chunk)
        j = int(np.argmin(costs))
        if costs[j] < best_cost:
            best_cost = float(costs[j])
            best = chunk[j].astype(np.int64)
    return best


def best_response_search(params: MecParams, state: MecState, max_iterations: int) -> np.ndarray:
    """Steepest single-user-change descent of the total cost from three starting points."""
    n, c = params.num_users, params.num_channels
    rows = np.arange(n * (c + 1))
    user, value = rows // (c + 1), rows % (c + 1)
    best: np.ndarray | None = None
    best_cost = np.inf
    for start in (np.zeros(n, dtype=np.int64), round_robin_offload(params),
                  greedy_decisions(params, state)):
        current = start.copy()
        cost = float(total_cost(params, state, current))
        for _ in range(max_iterations):
            candidates = np.repeat(current[None], rows.size, axis=0)
            candidates[rows, user] = value
            costs = total_cost(params, state, candidates)
            j = int(np.argmin(costs))
            if not costs[j] < cost - 1e-12 * max(1.0, abs(cost)):
                break
            current, cost = candidates[j].copy(), float(costs[j])
        if cost < best_cost:
            best, best_cost = current, cost
    assert best is not None   # a start's cost is finite
    return best
