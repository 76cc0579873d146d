"""Fixed-rate timing for the edge control loop: absolute deadlines and windowed statistics.

RateLoop keeps a grid of absolute deadlines start + k * period (integer nanoseconds on a monotonic
clock), so rounding and the time a step takes never accumulate into drift:

    loop = RateLoop(200.0)
    while running:
        late_ns = loop.wait_next()   # sleeps to the next deadline, returns how late this step starts
        control_step()

A step that starts a whole period (or more) late is a miss: it is counted and the grid moves to the
next deadline still in the future, so a stall is followed by normal steps, not a burst of catch-up
steps (a controller must not fire several actions back to back).

WindowStats keeps the most recent samples (period error, inference time) in a preallocated ring
buffer and summarises them as p50 / p99 / max.
"""
from __future__ import annotations

import errno
import math
import os
import time
from collections.abc import Callable

import numpy as np

MIN_RATE_HZ = 1.0
MAX_RATE_HZ = 10_000.0


def check_rate_hz(rate_hz: float) -> float:
    """rate_hz as a float, or ValueError when it is not a finite number in [1, 10000]."""
    if isinstance(rate_hz, bool) or not isinstance(rate_hz, (int, float, np.integer, np.floating)):
        raise TypeError(f'rate_hz must be a number, got {type(rate_hz).__name__}')
    rate = float(rate_hz)
    if not (math.isfinite(rate) and MIN_RATE_HZ <= rate <= MAX_RATE_HZ):
        raise ValueError(f'rate_hz must be in [{MIN_RATE_HZ:g}, {MAX_RATE_HZ:g}] Hz, got {rate_hz!r}')
    return rate


def switch_interval_for(rate_hz: float) -> float:
    """A sys.setswitchinterval() value for a control loop at rate_hz: period / 10 within [0.1, 5] ms.

    CPython hands the GIL to a waiting thread only every switch interval (5 ms by default), so a
    loop thread waking from its sleep can wait up to 5 ms behind any other busy Python thread
    (ROS executor, loader, sender). Measured on a 2-core VM with one busy Python thread beside the
    loop: at 200 Hz the default gave 201 misses in 3 s, 0.5 ms gave none; at 1 kHz the default
    collapsed the loop (531 of 3000 steps), 0.1 ms gave ~1 % misses (docs/edge-controller.md).
    Setting it is the node's decision (it is process-wide).
    """
    period_s = 1.0 / check_rate_hz(rate_hz)
    return min(0.005, max(0.0001, period_s / 10.0))


def set_realtime_priority(priority: int) -> tuple[bool, int]:
    """Put the CALLING thread under SCHED_FIFO at `priority` (1-99), as ros2_control does for its
    loop: it then preempts every normal process on its core. Needs root, CAP_SYS_NICE or an rtprio
    limit (docs/edge-controller.md). Returns (True, 0), or (False, errno) when refused/unsupported."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 99:
        raise ValueError(f'priority must be an int in [1, 99], got {priority!r}')
    if not hasattr(os, 'sched_setscheduler'):
        return False, errno.ENOSYS
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except OSError as error:
        return False, error.errno or errno.EPERM
    return True, 0


class RateLoop:
    """Absolute-deadline pacing on a monotonic clock.

    rate_hz: steps per second, in [1, 10000].
    spin_s: the last spin_s before a deadline are busy-waited instead of slept, because an OS sleep
        wakes up late by tens of microseconds (more under load); 0 = sleep only.
    clock_ns / sleep: injectable for tests (a fake clock); defaults time.monotonic_ns / time.sleep.
        A sleep that returns True means "interrupted" (pass a stop Event's wait): wait_next() then
        returns at once, without spinning to the deadline, and the caller checks its stop flag.

    The first call to wait_next() starts the grid: step 0's deadline is "now" (lateness 0).
    """

    def __init__(self, rate_hz: float, spin_s: float = 0.0002, clock_ns: Callable[[], int] = time.monotonic_ns,
                 sleep: Callable[[float], object] = time.sleep) -> None:
        self.rate_hz = check_rate_hz(rate_hz)
        if isinstance(spin_s, bool) or not isinstance(spin_s, (int, float)) or not math.isfinite(spin_s) \
                or not 0.0 <= spin_s <= 0.1:
            raise ValueError(f'spin_s must be a number of seconds in [0, 0.1], got {spin_s!r}')
        self._period_ns = max(1, round(1e9 / self.rate_hz))
        self._spin_ns = int(round(spin_s * 1e9))
        self._clock_ns = clock_ns
        self._sleep = sleep
        self._start_ns: int | None = None
        self._next_index = 0      # index k of the next deadline on the grid
        self._steps = 0
        self._misses = 0
        self._skipped = 0

    @property
    def period_ns(self) -> int:
        return self._period_ns

    @property
    def steps(self) -> int:
        """Number of wait_next() calls so far (= control steps started)."""
        return self._steps

    @property
    def misses(self) -> int:
        """Steps that started one whole period or more after their deadline."""
        return self._misses

    @property
    def skipped(self) -> int:
        """Deadlines jumped over after misses (no step ran for them)."""
        return self._skipped

    @property
    def next_deadline_ns(self) -> int | None:
        """Clock time of the next deadline (None before the first wait_next())."""
        if self._start_ns is None:
            return None
        return self._start_ns + self._next_index * self._period_ns

    def wait_next(self) -> int:
        """Sleep (then spin) until the next deadline; return how many ns late this step starts (>= 0)."""
        clock = self._clock_ns
        if self._start_ns is None:
            self._start_ns = clock()
        deadline = self._start_ns + self._next_index * self._period_ns
        now = clock()
        remaining = deadline - now - self._spin_ns
        if remaining > 0:
            if self._sleep(remaining * 1e-9) is True:
                return 0   # interrupted (Event.wait returned True): no step, the caller stops
            now = clock()
        while now < deadline:  # busy-spin the last stretch: sleep() overshoots by tens of us
            now = clock()
        late = now - deadline
        self._steps += 1
        if late >= self._period_ns:
            # Missed: skip to the first deadline after now instead of running catch-up steps.
            self._misses += 1
            next_index = (now - self._start_ns) // self._period_ns + 1
            self._skipped += next_index - self._next_index - 1
            self._next_index = next_index
        else:
            self._next_index += 1
        return late


def summarize(samples: np.ndarray) -> dict[str, float]:
    """{'p50', 'p99', 'max', 'count'} of the samples (a snapshot copy is taken); zeros when empty."""
    count = len(samples)
    if count == 0:
        return {'p50': 0.0, 'p99': 0.0, 'max': 0.0, 'count': 0}
    values = np.array(samples, dtype=np.float64)
    p50, p99 = np.percentile(values, (50.0, 99.0))
    return {'p50': float(p50), 'p99': float(p99), 'max': float(values.max()), 'count': count}


class WindowStats:
    """The last `window` float samples in a preallocated ring buffer; summary() gives p50/p99/max.

    add() is O(1) and allocation-free (the loop thread calls it every step). summary() may be called
    from another thread: it works on a snapshot copy, so at worst it sees one sample more or less.
    """

    def __init__(self, window: int, values: np.ndarray | None = None) -> None:
        """values: a float64 array of `window` samples to keep them in (shared memory), else a new one."""
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
            raise ValueError(f'window must be an int >= 1, got {window!r}')
        self.window = int(window)
        if values is None:
            values = np.zeros(self.window, dtype=np.float64)
        elif values.shape != (self.window,) or values.dtype != np.float64:
            raise ValueError(f'values must be float64 of shape ({self.window},), got {values.dtype} {values.shape}')
        self._values = values
        self._next = 0
        self._count = 0
        self.total = 0  # samples ever added

    def add(self, value: float) -> None:
        self._values[self._next] = value
        self._next = (self._next + 1) % self.window
        if self._count < self.window:
            self._count += 1
        self.total += 1

    def __len__(self) -> int:
        return self._count

    def values(self) -> np.ndarray:
        """Copy of the samples in the window (oldest first)."""
        count, nxt = self._count, self._next
        if count < self.window:
            return self._values[:count].copy()
        return np.concatenate((self._values[nxt:], self._values[:nxt]))

    def summary(self) -> dict[str, float]:
        """{'p50', 'p99', 'max', 'count'} over the window; all 0.0 (count 0) when empty."""
        return summarize(self._values[:self._count])

    def clear(self) -> None:
        self._next = 0
        self._count = 0


__all__ = ['MAX_RATE_HZ', 'MIN_RATE_HZ', 'RateLoop', 'WindowStats', 'check_rate_hz', 'set_realtime_priority',
           'summarize',
           'switch_interval_for']
