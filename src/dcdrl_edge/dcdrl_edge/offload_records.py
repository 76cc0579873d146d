"""What the offloading controller keeps and hands out (no ROS): a decided ``Task``, a finished task's
``Outcome``, episode summaries, transitions assembled into ``ExperienceChunk`` s, latency statistics."""
from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

EXTRA_NAMES = ('cost', 'latency_s', 'energy_j', 'deadline_miss_ratio', 'offload_fraction', 'fell_back')


# ------------------------------------------------------------------------------ tasks and outcomes
@dataclass
class Task:
    """A decided task, from begin_task until it finishes."""

    task_id: int
    index: int                   # decision count (transitions pair index k with k + 1)
    decided_at: float
    observation: np.ndarray
    decision: int
    action: float
    decided_by: str
    policy_version: int
    megapixels: float
    image_bytes: int
    deadline_s: float
    fell_back: bool = False
    fallback_reason: str = ''
    sent_at: float | None = None
    sent_clean: bool = False     # no other offload in flight when it was sent
    transfer_time_s: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """A finished task: the OffloadRecord fields, and where it ran."""

    task_id: int
    policy_version: int
    observation: np.ndarray
    decision: int
    fell_back: bool
    mode: str                    # 'local' | 'offloaded' | 'fell_back' | 'dropped'
    image_bytes: int
    faces_found: int
    latency_s: float
    compute_time_s: float
    transfer_time_s: float
    energy_j: float
    deadline_s: float
    deadline_missed: bool
    cost: float
    reward: float
    ok: bool
    detail: str = ''             # fallback reason, drop reason or error text


@dataclass(frozen=True)
class OffloadEpisodeSummary:
    """One episode (``episode_tasks`` finished tasks) of the offload controller, as EpisodeStats carries it."""
    episode: int
    length: int
    policy_version: int
    episode_return: float
    cost: float                  # sum of task costs (= -return), as the simulated clients report
    latency_mean_s: float
    energy_mean_j: float
    deadline_miss_ratio: float
    offload_fraction: float      # share of tasks the policy decided to offload


@dataclass
class ExperienceChunk:
    """Transitions ready for one ExperienceBatch."""

    policy_version: int
    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    extras: np.ndarray
    extra_names: tuple[str, ...] = EXTRA_NAMES

    def __len__(self) -> int:
        return int(self.rewards.shape[0])


class TransitionAssembler:
    """Pairs task k's observation, action and (later) reward with task k+1's observation.

    Tasks finish out of order; a transition is complete when task k has finished and task
    k + 1 has been decided. Every ``episode_tasks``-th transition is truncated (the episode
    boundary; the learner bootstraps). Complete transitions are cut into batches of ``batch_size``.
    """

    def __init__(self, batch_size: int, episode_tasks: int) -> None:
        self.batch_size = batch_size
        self.episode_tasks = episode_tasks
        self._decided: dict[int, tuple[np.ndarray, float, int]] = {}   # index -> obs, action, version
        # Task k's entry serves transition k (as obs) and transition k - 1 (as next_obs): it is
        # dropped when both have used it.
        self._uses: dict[int, int] = {}
        self._finished: dict[int, tuple[float, np.ndarray]] = {}       # index -> reward, extras
        self._ready: list[tuple[np.ndarray, float, float, np.ndarray, bool, np.ndarray, int]] = []
        self.transitions = 0

    def decided(self, index: int, obs: np.ndarray, action: float, version: int) -> None:
        self._decided[index] = (np.asarray(obs, np.float32), float(action), int(version))
        self._uses[index] = 2 if index > 0 else 1
        self._try(index - 1)

    def finished(self, index: int, reward: float, extras: Sequence[float]) -> None:
        self._finished[index] = (float(reward), np.asarray(extras, np.float32))
        self._try(index)

    def _try(self, index: int) -> None:
        if index < 0 or index not in self._finished or index + 1 not in self._decided:
            return
        obs, action, version = self._decided[index]
        reward, extras = self._finished.pop(index)
        next_obs = self._decided[index + 1][0]
        for used in (index, index + 1):
            self._uses[used] -= 1
            if self._uses[used] == 0:
                del self._uses[used], self._decided[used]
        truncated = (index + 1) % self.episode_tasks == 0
        self._ready.append((obs, action, reward, next_obs, truncated, extras, version))
        self.transitions += 1

    @property
    def pending(self) -> int:
        """Complete transitions not yet taken."""
        return len(self._ready)

    @property
    def held(self) -> int:
        """Decided tasks whose observation is still needed (memory stays bounded by the tasks in progress)."""
        return len(self._decided)

    def take(self, flush: bool = False) -> list[ExperienceChunk]:
        """Full batches (and with ``flush`` the rest as a smaller one)."""
        chunks = []
        while len(self._ready) >= self.batch_size or (flush and self._ready):
            part, self._ready = self._ready[:self.batch_size], self._ready[self.batch_size:]
            chunks.append(ExperienceChunk(
                policy_version=max(p[6] for p in part),
                obs=np.stack([p[0] for p in part]), actions=np.array([[p[1]] for p in part], np.float32),
                rewards=np.array([p[2] for p in part], np.float32), next_obs=np.stack([p[3] for p in part]),
                terminated=np.zeros(len(part), np.bool_), truncated=np.array([p[4] for p in part], np.bool_),
                extras=np.stack([p[5] for p in part])))
        return chunks


class LatencyStats:
    """Recent latencies of one mode (bounded) and the total count."""

    def __init__(self, window: int) -> None:
        self.samples: deque[float] = deque(maxlen=window)
        self.count = 0

    def add(self, value: float) -> None:
        self.samples.append(float(value))
        self.count += 1

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {'count': self.count, 'mean_s': None, 'p50_s': None, 'p95_s': None}
        values = np.fromiter(self.samples, np.float64)
        return {'count': self.count, 'mean_s': round(float(values.mean()), 6),
                'p50_s': round(float(np.percentile(values, 50)), 6),
                'p95_s': round(float(np.percentile(values, 95)), 6)}
