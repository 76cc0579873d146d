"""Experience intake of the replay buffer (no ROS): validation, per-client bookkeeping, throughput.

A batch that fails validation is counted and described, never stored; a gap in a client's
sequence numbers counts the batches lost on the way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
import time
from typing import Any, Optional

import numpy as np

from dcdrl_core.experience import Experience, ExperienceRejected, read_experience
from dcdrl_core.learning.replay import ReplayBuffer


@dataclass
class ClientRecord:
    batches: int = 0
    transitions: int = 0
    last_sequence: int = -1
    lost_batches: int = 0


@dataclass
class IngestStats:
    batches: int = 0
    transitions: int = 0
    payload_bytes: int = 0
    rejected: int = 0
    last_rejection: str = ''
    clients: dict[str, ClientRecord] = field(default_factory=dict)


class ExperienceIngest:
    def __init__(self, capacity: int, gamma: float = 0.99, obs_dim: Optional[int] = None,
                 action_dim: Optional[int] = None, seed: Optional[int] = None) -> None:
        if capacity < 1:
            raise ValueError(f'capacity must be >= 1, got {capacity}')
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f'gamma must be in [0, 1], got {gamma}')
        self.capacity, self.gamma, self.seed = capacity, gamma, seed
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.buffer: Optional[ReplayBuffer] = None
        self.stats = IngestStats()
        self.started = time.monotonic()

    def ingest(self, message: Any) -> Experience:
        """Stores a valid batch; raises ExperienceRejected (counted) for a bad one."""
        try:
            experience = read_experience(message, self.obs_dim, self.action_dim)
        except ExperienceRejected as error:
            self.stats.rejected += 1
            self.stats.last_rejection = str(error)
            raise
        if self.buffer is None:  # the first valid batch fixes the dimensions
            self.obs_dim, self.action_dim = experience.obs.shape[1], experience.actions.shape[1]
            self.buffer = ReplayBuffer(self.capacity, self.obs_dim, self.action_dim, seed=self.seed)
        discounts = np.where(experience.terminated, 0.0, self.gamma).astype(np.float32)
        self.buffer.add(experience.obs, experience.actions, experience.rewards, experience.next_obs, discounts)
        record = self.stats.clients.setdefault(experience.client_id, ClientRecord())
        if record.last_sequence >= 0 and experience.sequence > record.last_sequence + 1:
            record.lost_batches += experience.sequence - record.last_sequence - 1
        record.last_sequence = max(record.last_sequence, experience.sequence)
        record.batches += 1
        record.transitions += len(experience)
        self.stats.batches += 1
        self.stats.transitions += len(experience)
        self.stats.payload_bytes += sum(a.nbytes for a in (
            experience.obs, experience.actions, experience.rewards, experience.next_obs,
            experience.terminated, experience.truncated, experience.extras))
        return experience

    def summary(self) -> dict[str, Any]:
        elapsed = max(1e-9, time.monotonic() - self.started)
        return {
            'elapsed_s': round(elapsed, 3),
            'batches': self.stats.batches,
            'transitions': self.stats.transitions,
            'transitions_per_s': round(self.stats.transitions / elapsed, 1),
            'megabytes_per_s': round(self.stats.payload_bytes / elapsed / 1e6, 3),
            'rejected': self.stats.rejected,
            'replay_size': len(self.buffer) if self.buffer is not None else 0,
            'clients': {name: {'batches': r.batches, 'transitions': r.transitions, 'lost_batches': r.lost_batches}
                        for name, r in sorted(self.stats.clients.items())},
        }
