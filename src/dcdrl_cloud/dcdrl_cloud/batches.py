"""What feeds the transition learner (no ROS import): sampled batches and their credits.

1. ``read_sampled_batch``: a SampledBatch message -> ``SampledArrays`` (validated; ``BatchRejected``).
2. ``CreditTracker``: credit-based prefetching (how many batches to request now).
3. ``BatchQueue``: received batches waiting for the training thread.
4. ``EnvStepCounter``: environment steps from the replay's counters, across replay restarts.
"""
from __future__ import annotations

import collections
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from dcdrl_ros.msg_arrays import get_array


class BatchRejected(ValueError):
    """A SampledBatch that must not be trained on; ``reason`` is a short code for counting."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f'batch rejected ({reason}): {message}')
        self.reason = reason


@dataclass
class SampledArrays:
    """One validated sampled batch (what Agent.update reads, plus replay bookkeeping)."""

    sequence: int
    obs: np.ndarray               # [B, obs_dim] float32
    actions: np.ndarray           # [B, action_dim]
    rewards: np.ndarray           # [B]
    next_obs: np.ndarray          # [B, obs_dim]
    discounts: np.ndarray         # [B] in [0, 1]
    weights: np.ndarray           # [B] importance weights, finite and >= 0
    indices: np.ndarray           # [B] uint64 replay slots
    policy_versions: np.ndarray   # [B] uint64 (or empty: unknown)
    replay_size: int

    def __len__(self) -> int:
        return int(self.rewards.shape[0])


def read_sampled_batch(message: Any, requester: str, obs_dim: int, action_dim: int) -> SampledArrays:
    """Validates a SampledBatch message (either backend) and returns its arrays.

    Refused (BatchRejected with reason): another requester ('wrong_requester'), other dimensions
    ('wrong_dims'), an empty batch or array lengths that do not match batch_size ('bad_length'),
    NaN/Inf anywhere ('non_finite'), discounts outside [0, 1] or negative weights ('bad_values').
    """
    if message.requester != requester:
        raise BatchRejected('wrong_requester', f'requester {message.requester!r}, this learner is {requester!r}')
    if int(message.obs_dim) != obs_dim or int(message.action_dim) != action_dim:
        raise BatchRejected('wrong_dims', f'obs_dim {message.obs_dim} action_dim {message.action_dim}, '
                                          f'expected {obs_dim} and {action_dim}')
    b = int(message.batch_size)
    if b < 1:
        raise BatchRejected('bad_length', 'batch_size is 0')
    expected = {'obs': b * obs_dim, 'actions': b * action_dim, 'rewards': b, 'next_obs': b * obs_dim,
                'discounts': b, 'weights': b}
    arrays = {}
    for name, length in expected.items():
        array = get_array(message, name, np.float32)
        if array.size != length:
            raise BatchRejected('bad_length', f'{name} has {array.size} values, batch_size {b} needs {length}')
        if not np.isfinite(array).all():
            raise BatchRejected('non_finite', f'{name} contains NaN or Inf')
        arrays[name] = array
    indices = get_array(message, 'indices', np.uint64)
    versions = get_array(message, 'policy_versions', np.uint64)
    if indices.size != b:
        raise BatchRejected('bad_length', f'indices has {indices.size} values, expected {b}')
    if versions.size not in (0, b):
        raise BatchRejected('bad_length', f'policy_versions has {versions.size} values, expected {b} (or 0)')
    discounts, weights = arrays['discounts'], arrays['weights']
    if discounts.min() < 0 or discounts.max() > 1:
        raise BatchRejected('bad_values', f'discounts must lie in [0, 1], got [{discounts.min()}, {discounts.max()}]')
    if weights.min() < 0:
        raise BatchRejected('bad_values', f'importance weights must be >= 0, got {weights.min()}')
    return SampledArrays(
        sequence=int(message.sequence), obs=arrays['obs'].reshape(b, obs_dim),
        actions=arrays['actions'].reshape(b, action_dim), rewards=arrays['rewards'],
        next_obs=arrays['next_obs'].reshape(b, obs_dim), discounts=discounts, weights=weights,
        indices=indices, policy_versions=versions, replay_size=int(message.replay_size))


class CreditTracker:
    """Credit-based prefetching: keep ``prefetch`` batches requested but not yet consumed.

    in flight = credits outstanding at the replay (requested, not yet received) + batches queued
    here (received, not yet consumed). ``take_request(now)`` returns how many batches to ask for
    now: the shortfall to ``prefetch``, once it is at least ``chunk`` (fewer, larger requests).
    Credits are lost when the replay restarts (it forgets them) or messages are lost: after
    ``timeout_s`` without a batch while credits are out, or when ``peer_joined()`` says a new
    replay appeared, the outstanding credits are written off and requested again. Thread-safe.
    """

    def __init__(self, prefetch: int, chunk: int = 1, timeout_s: float = 10.0) -> None:
        if prefetch < 1 or not 1 <= chunk <= prefetch:
            raise ValueError(f'need prefetch >= 1 and 1 <= chunk <= prefetch, got {prefetch} and {chunk}')
        self.prefetch, self.chunk, self.timeout_s = int(prefetch), int(chunk), float(timeout_s)
        self.outstanding = 0          # requested from the replay, not yet received
        self.queued = 0               # received, not yet consumed
        self.requested_total = 0
        self.received_total = 0
        self.written_off = 0          # credits given up as lost
        self._last_activity: float | None = None
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self.outstanding + self.queued

    def take_request(self, now: float) -> int:
        with self._lock:
            if (self.outstanding > 0 and self.timeout_s > 0 and self._last_activity is not None
                    and now - self._last_activity >= self.timeout_s):
                self.written_off += self.outstanding
                self.outstanding = 0
            shortfall = self.prefetch - self.outstanding - self.queued
            if shortfall <= 0 or (shortfall < self.chunk and self.outstanding + self.queued > 0):
                return 0
            if self.outstanding == 0:
                self._last_activity = now  # the time-out counts from the first credit out
            self.outstanding += shortfall
            self.requested_total += shortfall
            return shortfall

    def received(self, now: float, count: int = 1) -> None:
        """A batch arrived; ``count`` > 1 when the sequence shows that count - 1 were lost on the way."""
        with self._lock:
            self.outstanding = max(0, self.outstanding - count)
            self.queued += 1
            self.received_total += 1
            self._last_activity = now

    def consumed(self) -> None:
        """A queued batch was trained on (or dropped)."""
        with self._lock:
            self.queued = max(0, self.queued - 1)

    def peer_joined(self) -> None:
        """A (new) replay buffer subscribed: it holds none of our credits."""
        with self._lock:
            self.written_off += self.outstanding
            self.outstanding = 0


class BatchQueue:
    """Received batches waiting for the training thread; bounded (drops the oldest). Thread-safe."""

    def __init__(self, maxlen: int) -> None:
        self._items: collections.deque[SampledArrays] = collections.deque()
        self.maxlen = int(maxlen)
        self.dropped = 0
        self._cond = threading.Condition()

    def put(self, item: SampledArrays) -> bool:
        """Queue ``item``; returns False when the oldest batch had to be dropped for it."""
        with self._cond:
            dropped = len(self._items) >= self.maxlen
            if dropped:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()
            return not dropped

    def get(self, timeout: float) -> SampledArrays | None:
        with self._cond:
            if not self._items and timeout > 0:
                self._cond.wait_for(lambda: bool(self._items), timeout)
            return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        return len(self._items)


class EnvStepCounter:
    """Environment steps so far, from the replay's cumulative transition count.

    A count that drops means the replay restarted without its counters: what it had counted is
    kept as an offset. After a learner resume the checkpoint's total is a floor.
    """

    def __init__(self, start: int = 0) -> None:
        self.total = int(start)
        self._offset = 0
        self._last = 0

    def observe(self, reported: int) -> int:
        reported = int(reported)
        if reported < self._last:
            self._offset += self._last
        self._last = reported
        self.total = max(self.total, self._offset + reported)
        return self.total


def waiting_for_replay(stored: int | None, needed: int) -> str:
    """The line a learner without batches prints instead of NaN losses. ``stored``: the replay's
    size from replay/stats (None: nothing heard yet); ``needed``: transitions before the first update."""
    if stored is None:
        return 'waiting for the replay buffer (nothing on replay/stats yet: is it running, in this namespace?)'
    if stored < needed:
        return f'waiting for the replay buffer ({stored:,} / {needed:,} transitions)'
    return f'waiting for the replay buffer ({stored:,} transitions stored, no batch yet)'


__all__ = ['BatchQueue', 'BatchRejected', 'CreditTracker', 'EnvStepCounter', 'SampledArrays', 'read_sampled_batch',
           'waiting_for_replay']
