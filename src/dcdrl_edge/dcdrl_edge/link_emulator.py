"""A link of a given bandwidth (constant or a schedule) emulated by delaying each offload's send by
bytes * 8 / bandwidth, first in first out (no ROS)."""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any


def parse_schedule(text: str) -> tuple[tuple[float, float], ...]:
    """'0:20,30:2.5,60:10' -> ((0, 20), (30, 2.5), (60, 10)): from t seconds on, the link has that
    many Mbit/s (0 = no emulation). Times start at 0 and increase; '' -> ()."""
    text = (text or '').strip()
    if not text:
        return ()
    pairs = []
    for part in text.split(','):
        try:
            t, mbps = part.split(':')
            pairs.append((float(t), float(mbps)))
        except ValueError:
            raise ValueError(f"link schedule must look like '0:20,30:2.5' (seconds:Mbit/s, ...), "
                             f"got {text!r}") from None
    return check_link_schedule(pairs)


def check_link_schedule(pairs: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    pairs = tuple((float(t), float(b)) for t, b in pairs)
    if not pairs:
        return ()
    if pairs[0][0] != 0.0:
        raise ValueError(f'link schedule must start at time 0, got {pairs[0][0]:g}')
    for (t0, _), (t1, _) in zip(pairs, pairs[1:]):
        if not t1 > t0:
            raise ValueError(f'link schedule times must increase, got {t0:g} then {t1:g}')
    for t, b in pairs:
        if not (math.isfinite(t) and math.isfinite(b) and b >= 0.0):
            raise ValueError(f'link schedule entries must be finite with Mbit/s >= 0, got {t:g}:{b:g}')
    return pairs


class LinkEmulator:
    """A FIFO link of a given bandwidth: ``transmit(nbytes)`` waits bytes * 8 / bandwidth after the
    previous transmission ends (the way the cloud-edge paper emulated bandwidth).

    ``schedule``: ((t_s, mbps), ...) from ``start()`` on (0 Mbit/s = no emulation then), or a
    constant ``mbps`` (0 = none). The bandwidth in force when a transmission starts applies to all
    of it. Call only from threads that may wait (the node's offload thread).
    """

    def __init__(self, mbps: float = 0.0, schedule: Sequence[tuple[float, float]] = (),
                 clock: Callable[[], float] = time.monotonic,
                 wait: Callable[[float], Any] | None = None) -> None:
        if isinstance(mbps, bool) or not isinstance(mbps, (int, float)) or not math.isfinite(mbps) or mbps < 0:
            raise ValueError(f'link bandwidth must be a number >= 0 Mbit/s (0 = no emulation), got {mbps!r}')
        self.schedule = check_link_schedule(schedule) if schedule else ((0.0, float(mbps)),)
        self.clock = clock
        self.wait = wait if wait is not None else time.sleep
        self.started_at = clock()
        self.busy_until = -math.inf
        self.transmissions = 0
        self.delayed_s = 0.0
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return any(b > 0 for _, b in self.schedule)

    def start(self) -> None:
        """Time 0 of the schedule is now."""
        self.started_at = self.clock()

    def bandwidth_at(self, now: float | None = None) -> float:
        elapsed = (self.clock() if now is None else now) - self.started_at
        value = self.schedule[0][1]
        for t, mbps in self.schedule:
            if t <= elapsed:
                value = mbps
            else:
                break
        return value

    def reserve(self, nbytes: int, now: float | None = None) -> tuple[float, float]:
        """Books the link for ``nbytes``: (start, end) of the transmission, after the ones booked
        before it (both = now without emulation). The caller waits until ``end``."""
        if nbytes < 0:
            raise ValueError(f'nbytes must be >= 0, got {nbytes}')
        now = self.clock() if now is None else now
        with self._lock:
            start = max(now, self.busy_until)
            mbps = self.bandwidth_at(start)
            if mbps <= 0:
                return now, now
            end = start + nbytes * 8.0 / (mbps * 1e6)
            self.busy_until = end
            self.transmissions += 1
            self.delayed_s += end - now
            return start, end

    def transmit(self, nbytes: int) -> float:
        """Waits until ``nbytes`` have crossed the emulated link; returns the seconds waited."""
        now = self.clock()
        _, end = self.reserve(nbytes, now)
        delay = max(end - now, 0.0)
        if delay > 0:
            self.wait(delay)
        return delay
