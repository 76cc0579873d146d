"""Hand-off of trajectory segments from the control loop to a sender thread, never blocking the loop.

    queue = DropOldestQueue(1024)                 # the loop: queue.put(segment), never waits
    sender = SegmentSender(queue, send=publish_batch, period_s=0.005)
    sender.start() ... sender.stop(timeout=1.0)   # drains what is left, then ends

The queue is a collections.deque(maxlen=capacity): append and popleft are atomic under the GIL
(documented thread-safe for one appender and one popper), so neither side takes a lock. When the
queue is full the producer itself pops the oldest item before appending, which makes `dropped`
exact (see DropOldestQueue).
"""
from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

from dcdrl_core.protocol import SegmentFlag

T = TypeVar('T')


@dataclass(slots=True)
class Segment:
    """One control step k of the edge loop, as the cloud pairs it into a transition.

    sequence: the control step index k (+1 every loop step for the life of the controller; steps
        without a segment - resetting, hold, no policy - leave gaps, always between episodes).
    episode: episode number (+1 at every episode start; the first episode is 1).
    policy_version: version of the active actor (0 = none: the safe action).
    observation / action: float32 copies owned by the segment (o_k and a_k after noise and clipping).
    flags: EPISODE_START | TERMINATED | TRUNCATED | EVALUATION bits.
    stamp_ns: WALL-clock time (time.time_ns, ns since the epoch) when o_k was read, so it can go
        into a message header and be compared across machines.
    """

    sequence: int
    episode: int
    policy_version: int
    observation: np.ndarray
    action: np.ndarray
    flags: int
    stamp_ns: int

    @property
    def is_final(self) -> bool:
        return bool(self.flags & (SegmentFlag.TERMINATED | SegmentFlag.TRUNCATED))


class DropOldestQueue(Generic[T]):
    """Bounded single-producer / single-consumer queue that drops its OLDEST item when full.

    The producer (the control loop) never blocks and takes no lock. Counters:
        pushed  - put() calls (written by the producer only),
        dropped - items pushed out unsent (written by the producer only),
        popped  - items taken by pop_all() (written by the consumer only).
    pushed == popped + dropped + len(queue) whenever no pop_all() is in progress.

    Why `dropped` is exact: a plain deque(maxlen) discards silently, and checking len() first races
    with the consumer (it may pop between the check and the append, so a "drop" would be counted
    that never happened). Instead, when the queue looks full the producer pops the oldest item
    itself: if popleft() returns an item, exactly that item is dropped and counted; if the consumer
    emptied the queue in between, popleft() raises IndexError and nothing is counted. Only the
    producer appends, so after that the append never overflows (the maxlen is only a safety net).
    """

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f'capacity must be an int >= 1, got {capacity!r}')
        self.capacity = int(capacity)
        self._items: deque = deque(maxlen=self.capacity)
        self.pushed = 0
        self.dropped = 0
        self.popped = 0

    def put(self, item: T) -> bool:
        """Append (producer side). Returns False when the oldest item had to be dropped for it."""
        items = self._items
        kept = True
        if len(items) >= self.capacity:
            try:
                items.popleft()
                self.dropped += 1
                kept = False
            except IndexError:  # the consumer drained it meanwhile: room now
                pass
        items.append(item)
        self.pushed += 1
        return kept

    def pop_all(self, max_items: int | None = None) -> list[T]:
        """Take up to max_items (all when None), oldest first (consumer side)."""
        out: list[T] = []
        items = self._items
        limit = len(items) if max_items is None else max_items
        try:
            while len(out) < limit:
                out.append(items.popleft())
        except IndexError:  # the producer dropped one concurrently: fewer than counted
            pass
        self.popped += len(out)
        return out

    def __len__(self) -> int:
        return len(self._items)


class SegmentSender:
    """Daemon thread that drains a DropOldestQueue every period_s and hands the batch to send().

    The thread waits on its OWN stop event (Event.wait(timeout)), never on anything the control
    loop touches, so the loop never shares a lock with it. An exception raised by send() is
    counted (send_errors, failed_items), reported through on_error(exception) when given, and the
    thread goes on. stop() wakes the thread, which drains what is left, then ends.

    max_batch: at most this many items per send() call (None = everything waiting).
    """

    def __init__(self, queue: DropOldestQueue, send: Callable[[list[Any]], None], period_s: float = 0.005,
                 on_error: Callable[[BaseException], None] | None = None, max_batch: int | None = None,
                 name: str = 'segment-sender') -> None:
        if not callable(getattr(queue, 'pop_all', None)):   # a DropOldestQueue or the loop process's ring
            raise TypeError(f'queue must be a DropOldestQueue, got {type(queue).__name__}')
        if not callable(send):
            raise TypeError('send must be callable')
        if isinstance(period_s, bool) or not isinstance(period_s, (int, float)) or not 0 < period_s <= 10:
            raise ValueError(f'period_s must be a number of seconds in (0, 10], got {period_s!r}')
        if max_batch is not None and (isinstance(max_batch, bool) or not isinstance(max_batch, int) or max_batch < 1):
            raise ValueError(f'max_batch must be None or an int >= 1, got {max_batch!r}')
        self.queue = queue
        self.period_s = float(period_s)
        self.max_batch = max_batch
        self._send = send
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.sent = 0           # items handed to send() calls that returned normally
        self.batches = 0        # send() calls that returned normally
        self.send_errors = 0    # send() calls that raised
        self.failed_items = 0   # items in those calls (lost)
        self.last_error: str = ''

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 1.0) -> bool:
        """Ask the thread to drain what is left and end; True when it ended within timeout."""
        self._stop.set()
        if self._thread.ident is None:   # never started: nothing to join
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def drain(self) -> int:
        """Send everything waiting now (the sender thread's step); returns the number of items taken."""
        taken = 0
        while True:
            batch = self.queue.pop_all(self.max_batch)
            if not batch:
                return taken
            taken += len(batch)
            try:
                self._send(batch)
            except Exception as exc:  # the network layer's problem must not end the sender
                self.send_errors += 1
                self.failed_items += len(batch)
                self.last_error = f'{type(exc).__name__}: {exc}'
                if self._on_error is not None:
                    try:
                        self._on_error(exc)
                    except Exception:
                        pass
            else:
                self.sent += len(batch)
                self.batches += 1

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.drain()
        self.drain()


__all__ = ['DropOldestQueue', 'Segment', 'SegmentSender']
