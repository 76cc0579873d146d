"""Experience intake of the replay buffer (no ROS): validation, per-client bookkeeping, throughput.

A batch that fails validation is counted and described, never stored; a gap in a client's
sequence numbers counts the batches lost on the way; a sequence that goes backwards means the
client restarted (it counts from 0 again) and is counted as a restart, not as a loss.

``ExperienceIngest.ingest`` validates and stores in one call (what the stream demo needs);
the replay service calls ``validate`` and ``store`` separately, because it stores under its own
lock and needs the slots ``store`` returns.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from dcdrl_learning.experience import Experience, ExperienceRejected, read_experience
from dcdrl_learning.replay import ReplayBuffer


@dataclass
class ClientRecord:
    batches: int = 0
    transitions: int = 0
    last_sequence: int = -1
    lost_batches: int = 0
    restarts: int = 0
    last_policy_version: int = 0


@dataclass
class IngestStats:
    batches: int = 0
    transitions: int = 0
    payload_bytes: int = 0
    rejected: int = 0
    last_rejection: str = ''
    clients: dict[str, ClientRecord] = field(default_factory=dict)

    @property
    def lost_batches(self) -> int:
        return sum(record.lost_batches for record in self.clients.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types (for the replay snapshot)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> IngestStats:
        """Inverse of ``to_dict``; raises ValueError on anything malformed."""
        try:
            clients = {str(name): ClientRecord(**{k: int(v) for k, v in record.items()})
                       for name, record in dict(data.get('clients', {})).items()}
            return cls(batches=int(data['batches']), transitions=int(data['transitions']),
                       payload_bytes=int(data['payload_bytes']), rejected=int(data['rejected']),
                       last_rejection=str(data.get('last_rejection', '')), clients=clients)
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f'malformed ingest counters: {error!r}') from None


class ExperienceIngest:
    """Validates ExperienceBatch messages and stores them as 1-step transitions.

    Args:
        capacity: replay capacity (transitions).
        gamma: discount stored with every transition (0 where the episode terminated).
        obs_dim, action_dim: expected dimensions; None = fixed by the first valid batch.
        seed: sampling seed of the replay buffer.
        buffer_kwargs: further ReplayBuffer arguments (prioritized, alpha, samples_per_insert, ...).
        max_clients: distinct client ids kept (each has a record); batches of a new client beyond
            this are refused, so that made-up ids cannot grow the records without bound.
        allowed_clients: the only client ids accepted; empty = any.
    """

    def __init__(self, capacity: int, gamma: float = 0.99, obs_dim: int | None = None,
                 action_dim: int | None = None, seed: int | None = None,
                 buffer_kwargs: dict[str, Any] | None = None, max_clients: int = 256,
                 allowed_clients: tuple[str, ...] = ()) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f'capacity must be an integer >= 1, got {capacity!r}')
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f'gamma must be in [0, 1], got {gamma}')
        if isinstance(max_clients, bool) or not isinstance(max_clients, (int, np.integer)) or max_clients < 1:
            raise ValueError(f'max_clients must be an integer >= 1, got {max_clients!r}')
        self.max_clients = int(max_clients)
        self.allowed_clients = frozenset(allowed_clients)
        self.capacity, self.gamma, self.seed = int(capacity), float(gamma), seed
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.buffer_kwargs = dict(buffer_kwargs or {})
        self.buffer: ReplayBuffer | None = None
        self.stats = IngestStats()
        self.started = time.monotonic()
        # Counters restored from a snapshot are cumulative; throughput is this run's.
        self.transitions_at_start = 0
        self.bytes_at_start = 0

    def validate(self, message: Any) -> Experience:
        """The batch's arrays; raises ExperienceRejected (counted) for a bad batch."""
        try:
            experience = read_experience(message, self.obs_dim, self.action_dim)
            self._check_client(experience)
            return experience
        except ExperienceRejected as error:
            self.stats.rejected += 1
            self.stats.last_rejection = str(error)
            raise

    def _check_client(self, experience: Experience) -> None:
        client_id = experience.client_id
        if self.allowed_clients and client_id not in self.allowed_clients:
            raise ExperienceRejected(f'batch {experience.sequence} from {client_id}: not in allowed_clients')
        if client_id not in self.stats.clients and len(self.stats.clients) >= self.max_clients:
            raise ExperienceRejected(f'batch {experience.sequence} from {client_id}: already {self.max_clients} '
                                     f'clients (max_clients)')

    def make_buffer(self, obs_dim: int, action_dim: int) -> ReplayBuffer:
        return ReplayBuffer(self.capacity, obs_dim, action_dim, seed=self.seed, **self.buffer_kwargs)

    def adopt(self, buffer: ReplayBuffer) -> None:
        """Use a restored buffer; its dimensions become the expected ones."""
        self.buffer = buffer
        self.obs_dim, self.action_dim = buffer.obs_dim, buffer.action_dim

    def store(self, experience: Experience) -> np.ndarray:
        """Stores a validated batch; returns the replay slots it went to (int64 [B])."""
        if self.buffer is None:  # the first valid batch fixes the dimensions
            self.adopt(self.make_buffer(experience.obs.shape[1], experience.actions.shape[1]))
        assert self.buffer is not None
        discounts = np.where(experience.terminated, 0.0, self.gamma).astype(np.float32)
        slots = self.buffer.add(experience.obs, experience.actions, experience.rewards,
                                experience.next_obs, discounts)
        self._count(experience)
        return slots

    def ingest(self, message: Any) -> Experience:
        """Validates and stores a batch; raises ExperienceRejected (counted) for a bad one."""
        experience = self.validate(message)
        self.store(experience)
        return experience

    def _count(self, experience: Experience) -> None:
        record = self.stats.clients.setdefault(experience.client_id, ClientRecord())
        # A client first seen mid-stream (this buffer started after it) has lost nothing: no gap yet.
        if record.last_sequence >= 0 and experience.sequence <= record.last_sequence:
            record.restarts += 1  # a restarted client counts from 0 again: not a loss
        elif record.last_sequence >= 0 and experience.sequence > record.last_sequence + 1:
            record.lost_batches += experience.sequence - record.last_sequence - 1
        record.last_sequence = experience.sequence
        record.last_policy_version = experience.policy_version
        record.batches += 1
        record.transitions += len(experience)
        self.stats.batches += 1
        self.stats.transitions += len(experience)
        self.stats.payload_bytes += sum(a.nbytes for a in (
            experience.obs, experience.actions, experience.rewards, experience.next_obs,
            experience.terminated, experience.truncated, experience.extras))

    def restore_stats(self, stats: IngestStats) -> None:
        self.stats = stats
        self.transitions_at_start = stats.transitions
        self.bytes_at_start = stats.payload_bytes

    def summary(self) -> dict[str, Any]:
        elapsed = max(1e-9, time.monotonic() - self.started)
        this_run = self.stats.transitions - self.transitions_at_start
        return {
            'elapsed_s': round(elapsed, 3),
            'batches': self.stats.batches,
            'transitions': self.stats.transitions,
            'transitions_this_run': this_run,
            'transitions_per_s': round(this_run / elapsed, 1),
            'megabytes_per_s': round((self.stats.payload_bytes - self.bytes_at_start) / elapsed / 1e6, 3),
            'rejected': self.stats.rejected,
            'lost_batches': self.stats.lost_batches,
            'replay_size': len(self.buffer) if self.buffer is not None else 0,
            'clients': {name: {'batches': r.batches, 'transitions': r.transitions, 'lost_batches': r.lost_batches,
                               'restarts': r.restarts, 'last_policy_version': r.last_policy_version}
                        for name, r in sorted(self.stats.clients.items())},
        }
