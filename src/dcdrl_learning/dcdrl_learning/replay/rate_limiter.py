"""Samples-per-insert rate limiter with a minimum size gate (Reverb's SampleToInsertRatio).

Semantics (the same as DeepMind Reverb's ``RateLimiter``; counts are items, not calls):

* size = inserts - deletes.  While ``size < min_size_to_sample`` sampling is blocked and
  inserts are always allowed (stage 1).
* After that (stage 2) the limiter keeps ``error = inserts * samples_per_insert - samples``
  inside ``[min_diff, max_diff]``: an insert of n items is allowed when
  ``(inserts + n) * spi - samples <= max_diff``; a sample of n items when
  ``inserts * spi - (samples + n) >= min_diff``.
* With a scalar ``error_buffer`` the range is centred on ``spi * min_size_to_sample`` (so
  only operations after stage 1 count): ``[offset - error_buffer, offset + error_buffer]``.
* ``samples_per_insert=None`` gives Reverb's MinSize limiter: only the size gate.

Batched operations move ``error`` in steps of ``n * spi`` (insert) or ``n`` (sample); choose
``max_diff - min_diff >= insert_batch * spi + sample_batch`` or an inserter and a sampler can
wait on each other forever.  Requests that can never be granted raise ValueError.

Thread safety: all state lives under ``self.condition`` (a ``threading.Condition``).  The
``*_locked`` methods expect the caller to hold it (so a buffer can check, wait and write in
one critical section); the other methods take it themselves.  Waits use
``Condition.wait_for`` with a timeout: no polling, no sleeps.
"""
from __future__ import annotations

import math
import threading


class RateLimitTimeout(TimeoutError):
    """An insert or sample was not allowed within its timeout."""


class RateLimiter:
    """Reverb-style SampleToInsertRatio / MinSize limiter.

    Args:
        min_size_to_sample: items that must be stored before the first sample.  Default 1.
        samples_per_insert: target sampled items per inserted item; None = no ratio, only the
            size gate (Reverb's MinSize).  Default None.
        error_buffer: allowed deviation of the error, a number (symmetric around
            ``spi * min_size_to_sample``) or a ``(min_diff, max_diff)`` pair used as is.
            None picks ``max(spi * min_size_to_sample, 256 * max(1, spi))``: samples may lag or
            lead by a whole min-size worth, and batches of up to 256 items on either side fit.
    """

    def __init__(self, min_size_to_sample: int = 1, samples_per_insert: float | None = None,
                 error_buffer: float | tuple[float, ...] | None = None) -> None:
        if isinstance(min_size_to_sample, bool) or int(min_size_to_sample) != min_size_to_sample \
                or min_size_to_sample < 1:
            raise ValueError(f'min_size_to_sample must be a positive integer, got {min_size_to_sample!r}')
        self.min_size_to_sample = int(min_size_to_sample)
        if samples_per_insert is None:
            self.samples_per_insert = 1.0
            self.min_diff, self.max_diff = -math.inf, math.inf
            self.limits_ratio = False
        else:
            spi = float(samples_per_insert)
            if not (math.isfinite(spi) and spi > 0.0):
                raise ValueError(f'samples_per_insert must be a finite number > 0 or None, got {samples_per_insert!r}')
            self.samples_per_insert = spi
            self.limits_ratio = True
            offset = spi * self.min_size_to_sample
            if error_buffer is None:
                error_buffer = max(offset, 256.0 * max(1.0, spi))
            if isinstance(error_buffer, (int, float)):
                if not (math.isfinite(error_buffer) and error_buffer > 0):
                    raise ValueError(f'error_buffer must be a finite number > 0, got {error_buffer!r}')
                self.min_diff, self.max_diff = offset - error_buffer, offset + error_buffer
            else:
                try:
                    self.min_diff, self.max_diff = (float(v) for v in error_buffer)
                except (TypeError, ValueError):
                    raise ValueError(f'error_buffer must be a number or a (min_diff, max_diff) pair, '
                                     f'got {error_buffer!r}') from None
            # Reverb's checks: a narrower range can block both sides from the start.
            if self.max_diff - self.min_diff < 2.0 * max(1.0, spi):
                raise ValueError(f'error_buffer range {self.max_diff - self.min_diff} must be >= '
                                 f'2 * max(1, samples_per_insert) = {2.0 * max(1.0, spi)}')
            if self.min_diff > offset:
                raise ValueError(f'error range [{self.min_diff}, {self.max_diff}] lies above '
                                 f'samples_per_insert * min_size_to_sample = {offset}: sampling '
                                 'would deadlock once min_size_to_sample items are stored')
        self.condition = threading.Condition()
        self._waiting = 0  # threads inside wait_for (guarded by the condition's lock)
        self.inserts = 0
        self.samples = 0
        self.deletes = 0

    # ---- checks (no lock needed for a snapshot answer; hold the lock to act on it) ----

    @property
    def size(self) -> int:
        return self.inserts - self.deletes

    def can_insert(self, num_inserts: int = 1) -> bool:
        if num_inserts <= 0:
            return True
        if self.inserts + num_inserts - self.deletes <= self.min_size_to_sample:
            return True  # stage 1: inserts are free until the size gate is reached
        diff = (self.inserts + num_inserts) * self.samples_per_insert - self.samples
        return diff <= self.max_diff

    def can_sample(self, num_samples: int = 1) -> bool:
        if self.inserts - self.deletes < self.min_size_to_sample:
            return False
        diff = self.inserts * self.samples_per_insert - self.samples - num_samples
        return diff >= self.min_diff

    def check_request(self, num_inserts: int = 0, num_samples: int = 0) -> None:
        """Raise ValueError for a request that can never be granted from the current state.

        An insert moves the error by ``n * spi`` and a sample by ``n``; a step wider than the
        whole ``[min_diff, max_diff]`` range can only pass while stage 1 exempts it.
        """
        width = self.max_diff - self.min_diff
        if num_inserts * self.samples_per_insert > width and not self.can_insert(num_inserts):
            raise ValueError(f'an insert of {num_inserts} items moves the sample/insert error by '
                             f'{num_inserts * self.samples_per_insert}, more than the error_buffer '
                             f'range {width}: it could never be allowed; insert smaller batches or '
                             'widen error_buffer')
        if num_samples > width:
            raise ValueError(f'a sample of {num_samples} items is larger than the error_buffer range '
                             f'{width}: it could never be allowed; sample smaller batches or widen '
                             'error_buffer')

    # ---- locked primitives (caller holds self.condition) ----

    def wait_insert_locked(self, num_inserts: int, timeout: float | None) -> bool:
        if self.can_insert(num_inserts):  # fast path: no waiter bookkeeping
            return True
        self.check_request(num_inserts=num_inserts)
        return self._wait_locked(lambda: self.can_insert(num_inserts), timeout)

    def wait_sample_locked(self, num_samples: int, timeout: float | None) -> bool:
        if self.can_sample(num_samples):
            return True
        self.check_request(num_samples=num_samples)
        return self._wait_locked(lambda: self.can_sample(num_samples), timeout)

    def _wait_locked(self, predicate, timeout: float | None) -> bool:
        if timeout is not None and timeout <= 0:
            return False
        self._waiting += 1
        try:
            return self.condition.wait_for(predicate, timeout)
        finally:
            self._waiting -= 1

    def record_locked(self, inserts: int = 0, samples: int = 0, deletes: int = 0) -> None:
        self.inserts += inserts
        self.samples += samples
        self.deletes += deletes
        if self._waiting:  # notify_all costs a few microseconds even with nobody waiting
            self.condition.notify_all()

    # ---- self-locking API ----

    def await_can_insert(self, num_inserts: int = 1, timeout: float | None = None) -> bool:
        """Block until an insert of ``num_inserts`` is allowed; False when ``timeout`` passed first."""
        with self.condition:
            return self.wait_insert_locked(num_inserts, timeout)

    def await_can_sample(self, num_samples: int = 1, timeout: float | None = None) -> bool:
        """Block until a sample of ``num_samples`` is allowed; False when ``timeout`` passed first."""
        with self.condition:
            return self.wait_sample_locked(num_samples, timeout)

    def insert(self, num_inserts: int = 1, deletes: int = 0) -> None:
        """Count an insert (and the items it evicted) and wake waiters."""
        with self.condition:
            self.record_locked(inserts=num_inserts, deletes=deletes)

    def sample(self, num_samples: int = 1) -> None:
        """Count sampled items and wake waiters."""
        with self.condition:
            self.record_locked(samples=num_samples)

    def state(self) -> dict:
        return {'inserts': self.inserts, 'samples': self.samples, 'deletes': self.deletes}

    def restore(self, inserts: int, samples: int, deletes: int) -> None:
        with self.condition:
            self.inserts, self.samples, self.deletes = int(inserts), int(samples), int(deletes)
            self.condition.notify_all()
