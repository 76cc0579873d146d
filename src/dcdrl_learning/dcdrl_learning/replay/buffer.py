"""ReplayBuffer: the facade over storage, sampler and rate limiter, safe across threads."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .rate_limiter import RateLimiter, RateLimitTimeout
from .samplers import PrioritizedSampler, UniformSampler
from .storage import RingStorage


@dataclasses.dataclass(frozen=True)
class TransitionBatch:
    """A sampled batch; every field is a fresh numpy array (safe to keep or mutate).

    The learner's target is ``rewards + discounts * Q'(next_obs, pi'(next_obs))``: discounts
    already hold gamma^k (or 0 after termination), so n-step and one-step rows look alike.
    """

    obs: np.ndarray  # float32 [B, obs_dim]
    actions: np.ndarray  # float32 [B, action_dim]
    rewards: np.ndarray  # float32 [B]
    next_obs: np.ndarray  # float32 [B, obs_dim]
    discounts: np.ndarray  # float32 [B]
    weights: np.ndarray  # float32 [B] importance weights (all 1 for uniform sampling)
    indices: np.ndarray  # int64 [B] slots, for update_priorities

    def __len__(self) -> int:
        return int(self.indices.shape[0])


def _numeric(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in 'fiu':  # bool, complex, object, strings: almost surely a bug
        raise TypeError(f'{name} must be a real numeric array (float or int), got dtype {arr.dtype}')
    if arr.shape != shape:
        want = '[' + ', '.join(str(s) for s in shape) + ']'
        raise ValueError(f'{name} must have shape {want}, got {list(arr.shape)}')
    return arr


class ReplayBuffer:
    """Bounded experience replay with uniform or prioritised sampling.

    Args:
        capacity: transitions kept; the oldest are overwritten.  Memory is allocated once:
            ``capacity * (2 * obs_dim + action_dim + 2) * 4`` bytes.
        obs_dim, action_dim: lengths of the observation and action vectors.
        prioritized: proportional PER (sum tree) instead of uniform sampling.  Default False.
        alpha, beta: PER exponents (defaults 0.6, 0.4 as in Schaul et al. 2016).
        beta_end: beta after annealing.  Default 1.0.
        beta_steps: sample calls over which beta anneals linearly to ``beta_end``.  Default 100_000.
        priority_eps: added to |TD error| so no priority is 0.  Default 1e-6.
        combined: combined experience replay (Zhang & Sutton 2017): the newest transition
            replaces the last row of every sampled batch.  Default False.
        min_size_to_sample: sampling is blocked below this size.  Default 1.
        samples_per_insert: target sampled items per inserted item (Reverb semantics), None =
            no ratio limit.  Default None.
        error_buffer: allowed deviation from the ratio, see ``RateLimiter``.  Default None (auto).
        seed: seed of the sampling random generator.  Default None (fresh entropy).

    Thread safety: ``add``, ``sample``, ``update_priorities``, ``stats`` and ``save`` may be
    called from different threads.  Input checks and the float32 conversion run outside the
    lock; the lock covers only the row copy, the index draw and the gather.

    Blocking: ``add`` and ``sample`` take ``timeout`` (seconds).  The default 0 never waits:
    a request the rate limiter refuses raises ``RateLimitTimeout`` at once (so a
    single-threaded loop that samples too early fails loudly instead of hanging).  Pass a
    positive timeout to wait, or None to wait without limit.
    """

    FORMAT = 'dcdrl-replay'
    FORMAT_VERSION = 1

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, *, prioritized: bool = False,
                 alpha: float = 0.6, beta: float = 0.4, beta_end: float = 1.0, beta_steps: int = 100_000,
                 priority_eps: float = 1e-6, combined: bool = False, min_size_to_sample: int = 1,
                 samples_per_insert: float | None = None,
                 error_buffer: float | tuple[float, ...] | None = None,
                 seed: int | None = None) -> None:
        for name, value in (('capacity', capacity), ('obs_dim', obs_dim), ('action_dim', action_dim)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f'{name} must be a positive integer, got {value!r}')
        if isinstance(min_size_to_sample, bool) or not isinstance(min_size_to_sample, (int, np.integer)) \
                or not 1 <= min_size_to_sample <= capacity:
            raise ValueError(f'min_size_to_sample must be an integer in [1, capacity={capacity}], '
                             f'got {min_size_to_sample!r}')
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f'seed must be an int or None, got {type(seed).__name__}')
        for name, number in (('alpha', alpha), ('beta', beta), ('beta_end', beta_end),
                             ('priority_eps', priority_eps)):
            if isinstance(number, bool) or not isinstance(number, (int, float, np.integer, np.floating)):
                raise TypeError(f'{name} must be a number, got {number!r}')
        if isinstance(beta_steps, bool) or not isinstance(beta_steps, (int, np.integer)):
            raise TypeError(f'beta_steps must be an int, got {beta_steps!r}')
        if isinstance(error_buffer, (list, tuple)):
            error_buffer = tuple(float(v) for v in error_buffer)
        elif error_buffer is not None:
            error_buffer = float(error_buffer)
        seed = None if seed is None else int(seed)
        self.obs_dim, self.action_dim = int(obs_dim), int(action_dim)
        self.prioritized, self.combined = bool(prioritized), bool(combined)
        self.seed = seed
        # Plain JSON types: saved as the file's metadata and passed back to __init__ on load.
        self._config = dict(capacity=int(capacity), obs_dim=self.obs_dim, action_dim=self.action_dim,
                            prioritized=self.prioritized, alpha=float(alpha), beta=float(beta),
                            beta_end=float(beta_end), beta_steps=int(beta_steps),
                            priority_eps=float(priority_eps), combined=self.combined,
                            min_size_to_sample=int(min_size_to_sample),
                            samples_per_insert=None if samples_per_insert is None else float(samples_per_insert),
                            error_buffer=list(error_buffer) if isinstance(error_buffer, tuple) else error_buffer,
                            seed=seed)
        self._storage = RingStorage(capacity, [('obs', self.obs_dim), ('actions', self.action_dim),
                                               ('rewards', 1), ('next_obs', self.obs_dim),
                                               ('discounts', 1)])
        self._rng = np.random.default_rng(seed)
        if self.prioritized:
            self._sampler: UniformSampler | PrioritizedSampler = PrioritizedSampler(
                capacity, self._rng, alpha=alpha, beta=beta, beta_end=beta_end,
                beta_steps=beta_steps, eps=priority_eps)
        else:
            self._sampler = UniformSampler(self._rng)
        self._limiter = RateLimiter(min_size_to_sample, samples_per_insert, error_buffer)
        self._lock = self._limiter.condition  # one lock guards storage, sampler and limiter
        self._rejected = 0
        self._rate_limited = 0
        self._sample_calls = 0

    # ---- properties ----

    @property
    def capacity(self) -> int:
        return self._storage.capacity

    def __len__(self) -> int:
        return self._storage.size

    @property
    def rate_limiter(self) -> RateLimiter:
        return self._limiter

    def can_sample(self, batch_size: int) -> bool:
        """Non-blocking: would ``sample(batch_size)`` be allowed now?"""
        return self._limiter.can_sample(batch_size)

    def can_insert(self, num_items: int) -> bool:
        """Non-blocking: would ``add`` of ``num_items`` be allowed now?"""
        return self._limiter.can_insert(num_items)

    # ---- writing ----

    def add(self, obs, actions, rewards, next_obs, discounts, *, timeout: float | None = 0.0) -> np.ndarray:
        """Store a batch of B transitions; returns their slot indices (int64 [B]).

        Every array is checked first (shapes ``obs [B, obs_dim]``, ``actions [B, action_dim]``,
        ``rewards [B]``, ``next_obs [B, obs_dim]``, ``discounts [B]`` in [0, 1]; real dtypes;
        finite values); a bad batch raises ValueError/TypeError and stores nothing.
        """
        try:
            rows = self._pack(obs, actions, rewards, next_obs, discounts)
        except (ValueError, TypeError):
            with self._lock:
                self._rejected += 1
            raise
        b = rows.shape[0]
        if b == 0:
            return np.empty(0, dtype=np.int64)
        stored = min(b, self.capacity)
        with self._lock:
            if not self._limiter.wait_insert_locked(stored, timeout):
                self._rate_limited += 1
                raise RateLimitTimeout(
                    f'insert of {stored} items refused by the rate limiter within timeout={timeout} s '
                    f'(inserts={self._limiter.inserts}, samples={self._limiter.samples}, '
                    f'samples_per_insert={self._limiter.samples_per_insert}): the learner is not '
                    'sampling fast enough')
            evicted = max(0, self._storage.size + stored - self.capacity)
            indices = self._storage.add_rows(rows)
            self._sampler.on_insert(indices)
            self._limiter.record_locked(inserts=stored, deletes=evicted)
        return indices

    def _pack(self, obs, actions, rewards, next_obs, discounts) -> np.ndarray:
        """Check one batch and pack it into float32 rows (outside the lock)."""
        b = int(np.shape(obs)[0]) if np.ndim(obs) >= 1 else -1
        if b < 0:
            raise ValueError(f'obs must have shape [B, {self.obs_dim}], got a scalar')
        arrays = {
            'obs': _numeric('obs', obs, (b, self.obs_dim)),
            'actions': _numeric('actions', actions, (b, self.action_dim)),
            'rewards': _numeric('rewards', rewards, (b,)),
            'next_obs': _numeric('next_obs', next_obs, (b, self.obs_dim)),
            'discounts': _numeric('discounts', discounts, (b,)),
        }
        rows = np.empty((b, self._storage.width), dtype=np.float32)
        if b == 0:
            return rows
        fields = self._storage.fields
        if all(a.dtype == np.float32 for a in arrays.values()):
            for name, arr in arrays.items():
                rows[:, fields[name]] = arr.reshape(b, -1)
        else:
            with np.errstate(over='ignore', invalid='ignore'):  # overflow is reported below
                for name, arr in arrays.items():
                    rows[:, fields[name]] = arr.reshape(b, -1)
        # One finiteness check over the packed rows; after the cast, so float64 values
        # beyond the float32 range (now inf) are caught too.
        if not np.isfinite(rows).all():
            for name in arrays:
                cols = rows[:, fields[name]]
                bad = int(cols.size - np.count_nonzero(np.isfinite(cols)))
                if bad:
                    raise ValueError(f'{name} contains {bad} NaN or infinite value(s) '
                                     '(or values beyond float32 range)')
        d = rows[:, fields['discounts']]
        if b and (d.min() < 0.0 or d.max() > 1.0):
            raise ValueError(f'discounts must lie in [0, 1] (gamma^k, or 0 after termination), '
                             f'got values in [{d.min()}, {d.max()}]')
        return rows

    # ---- reading ----

    def sample(self, batch_size: int, *, timeout: float | None = 0.0) -> TransitionBatch:
        """Draw ``batch_size`` transitions (with replacement).

        Raises RateLimitTimeout when the buffer holds fewer than ``min_size_to_sample`` items or
        the samples-per-insert ratio forbids it and ``timeout`` passes first.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f'batch_size must be a positive integer, got {batch_size!r}')
        with self._lock:
            if not self._limiter.wait_sample_locked(batch_size, timeout):
                self._rate_limited += 1
                raise RateLimitTimeout(
                    f'sample of {batch_size} refused by the rate limiter within timeout={timeout} s: '
                    f'size={len(self)}, min_size_to_sample={self._limiter.min_size_to_sample}, '
                    f'inserts={self._limiter.inserts}, samples={self._limiter.samples}, '
                    f'samples_per_insert={self._limiter.samples_per_insert}')
            size = self._storage.size
            indices, weights = self._sampler.sample(size, batch_size)
            if self.combined:
                indices[-1] = self._storage.newest_index
                if self.prioritized:  # the swapped-in row gets its own importance weight
                    weights = self.prioritized_sampler.weights(indices, size)
            rows = self._storage.gather(indices)
            self._limiter.record_locked(samples=batch_size)
            self._sample_calls += 1
        fields = self._storage.split(rows)
        return TransitionBatch(obs=fields['obs'], actions=fields['actions'],
                               rewards=fields['rewards'].reshape(-1),
                               next_obs=fields['next_obs'], discounts=fields['discounts'].reshape(-1),
                               weights=weights, indices=indices.astype(np.int64, copy=False))

    def update_priorities(self, indices, td_errors) -> None:
        """Set the priorities of sampled slots from their TD errors (no-op for uniform sampling).

        Indices refer to slots: if a slot was overwritten since it was sampled, the new item
        gets the priority (as in most PER implementations; harmless with large capacities).
        """
        idx = np.asarray(indices)
        err = np.asarray(td_errors)
        if idx.ndim != 1 or idx.dtype.kind not in 'iu':
            raise ValueError(f'indices must be a 1-D integer array, got shape {idx.shape} dtype {idx.dtype}')
        if err.shape != idx.shape or err.dtype.kind not in 'fiu':
            raise ValueError(f'td_errors must be a real array of shape {list(idx.shape)}, '
                             f'got shape {list(err.shape)} dtype {err.dtype}')
        if not np.isfinite(err).all():
            raise ValueError('td_errors contains NaN or infinite values')
        if not self.prioritized:
            return
        with self._lock:
            size = self._storage.size
            if idx.size and (idx.min() < 0 or idx.max() >= size):
                raise ValueError(f'indices must lie in [0, {size}) (stored items), '
                                 f'got values in [{idx.min()}, {idx.max()}]')
            self.prioritized_sampler.update_priorities(idx.astype(np.int64), err)

    def stats(self) -> dict:
        """Counters for monitoring: size, capacity, inserts, samples (items), sample_calls,
        rejected (invalid batches), rate_limited (refused or timed-out requests), beta (PER)."""
        with self._lock:
            out: dict[str, int | float] = {
                'size': len(self), 'capacity': self.capacity, 'inserts': self._limiter.inserts,
                'samples': self._limiter.samples, 'sample_calls': self._sample_calls,
                'rejected': self._rejected, 'rate_limited': self._rate_limited}
            if self.prioritized:
                out['beta'] = self.prioritized_sampler.beta
                out['max_priority'] = self.prioritized_sampler.max_priority
        return out

    @property
    def prioritized_sampler(self) -> PrioritizedSampler:
        """The sampler of a prioritized buffer (its tree, beta and max priority)."""
        if not isinstance(self._sampler, PrioritizedSampler):
            raise TypeError('the buffer is not prioritized')
        return self._sampler

    # ---- persistence ----

    def save(self, path: str | Path) -> None:
        """Write the buffer to ``path`` atomically (numpy .npz, JSON metadata, no pickle)."""
        from .persistence import save_buffer
        save_buffer(self, path)

    @classmethod
    def load(cls, path: str | Path) -> ReplayBuffer:
        """Rebuild a buffer written by ``save`` (configuration, contents, priorities, counters)."""
        from .persistence import load_buffer
        return load_buffer(cls, path)


__all__ = ['ReplayBuffer', 'TransitionBatch', 'RateLimitTimeout']
