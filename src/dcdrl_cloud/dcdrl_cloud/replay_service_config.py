"""The replay service's configuration (no ROS): the replay node's numbers, checked, and the ReplayBuffer
arguments they give."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dcdrl_cloud.replay_parameters import ReplayBufferParameters as _NODE
from dcdrl_core.checks import check_int, check_number
from dcdrl_learning.experience import MAX_ID_LENGTH

# Inserts are never refused (clients cannot be paused over DDS): the limiter's upper error bound
# is set out of reach, so samples_per_insert only keeps the learner from sampling too fast.
_NO_INSERT_LIMIT = 1e18


@dataclass(frozen=True)
class ReplayServiceConfig:
    """Every tunable number of the replay node: the node's parameters of the same names, where each is
    documented and its default defined (dcdrl_cloud.replay_parameters)."""

    capacity: int = _NODE.capacity
    gamma: float = _NODE.gamma
    prioritized: bool = _NODE.prioritized
    alpha: float = _NODE.alpha
    beta: float = _NODE.beta
    beta_end: float = _NODE.beta_end
    beta_steps: int = _NODE.beta_steps
    priority_eps: float = _NODE.priority_eps
    samples_per_insert: float = _NODE.samples_per_insert
    sample_error_buffer: float = _NODE.sample_error_buffer
    min_size_to_sample: int = _NODE.min_size_to_sample
    max_batch_size: int = _NODE.max_batch_size
    max_outstanding_batches: int = _NODE.max_outstanding_batches
    max_requesters: int = _NODE.max_requesters
    max_clients: int = _NODE.max_clients
    allowed_clients: tuple[str, ...] = ()
    lag_window: int = _NODE.lag_window
    seed: int = _NODE.seed
    env_id: str = ''

    def __post_init__(self) -> None:
        check_int('capacity', self.capacity, 1)
        check_number('gamma', self.gamma, 0.0, 1.0)
        if not isinstance(self.prioritized, bool):
            raise TypeError(f'prioritized must be a bool, got {self.prioritized!r}')
        check_number('alpha', self.alpha, 0.0)
        check_number('beta', self.beta, 0.0, 1.0)
        check_number('beta_end', self.beta_end, 0.0, 1.0)
        check_int('beta_steps', self.beta_steps, 1)
        check_number('priority_eps', self.priority_eps, 0.0, above=True)
        check_number('samples_per_insert', self.samples_per_insert, 0.0)
        check_number('sample_error_buffer', self.sample_error_buffer, 0.0)
        check_int('min_size_to_sample', self.min_size_to_sample, 1)
        if self.min_size_to_sample > self.capacity:
            raise ValueError(f'min_size_to_sample ({self.min_size_to_sample}) must be <= capacity ({self.capacity})')
        check_int('max_batch_size', self.max_batch_size, 1)
        check_int('max_outstanding_batches', self.max_outstanding_batches, 1)
        check_int('max_requesters', self.max_requesters, 1)
        check_int('max_clients', self.max_clients, 1)
        if not isinstance(self.allowed_clients, tuple) or \
                any(not isinstance(c, str) or not 1 <= len(c) <= MAX_ID_LENGTH for c in self.allowed_clients):
            raise ValueError(f'allowed_clients must be a tuple of client ids of 1 to {MAX_ID_LENGTH} characters, '
                             f'got {self.allowed_clients!r}')
        check_int('lag_window', self.lag_window, 1)
        check_int('seed', self.seed, 0)
        if not isinstance(self.env_id, str):
            raise TypeError(f'env_id must be a string, got {self.env_id!r}')
        if self.samples_per_insert > 0:
            width = self._error_width()
            if width < 2.0 * max(1.0, self.samples_per_insert):
                raise ValueError(f'sample_error_buffer must be >= 2 * max(1, samples_per_insert) = '
                                 f'{2.0 * max(1.0, self.samples_per_insert)}, got {width}')

    def _error_width(self) -> float:
        spi = self.samples_per_insert
        return self.sample_error_buffer or max(spi * self.min_size_to_sample, 256.0 * max(1.0, spi))

    def buffer_kwargs(self) -> dict[str, Any]:
        """ReplayBuffer arguments besides capacity, dimensions and seed."""
        spi: float | None = float(self.samples_per_insert) if self.samples_per_insert > 0 else None
        error_buffer = None
        if spi is not None:
            # Reverb's lower bound: once min_size_to_sample items are stored the learner may sample
            # `width` items, then samples_per_insert per further insert.  No upper bound.
            error_buffer = (spi * self.min_size_to_sample - self._error_width(), _NO_INSERT_LIMIT)
        return dict(prioritized=self.prioritized, alpha=float(self.alpha), beta=float(self.beta),
                    beta_end=float(self.beta_end), beta_steps=int(self.beta_steps),
                    priority_eps=float(self.priority_eps), min_size_to_sample=int(self.min_size_to_sample),
                    samples_per_insert=spi, error_buffer=error_buffer)

    def buffer_config(self) -> dict[str, Any]:
        """What ReplayBuffer records as its config (JSON types), for comparison with a snapshot."""
        kwargs = self.buffer_kwargs()
        if kwargs['error_buffer'] is not None:
            kwargs['error_buffer'] = [float(v) for v in kwargs['error_buffer']]
        return dict(kwargs, capacity=int(self.capacity), combined=False)


__all__ = ['ReplayServiceConfig']
