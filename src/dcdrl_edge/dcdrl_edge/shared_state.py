"""Shared memory between the node process and the control-loop process (dcdrl_edge.loop_process).

SharedBlock: one file-backed mapping (in /dev/shm where there is one) that both processes map; the
creator unlinks the file once the other side has mapped it, so nothing is left behind even when a
process is killed. ArrayArena: hands out aligned numpy arrays from a block in a fixed order, so two
processes that allocate the same shapes in the same order see the same arrays.

SharedRing: a bounded ring of fixed-size records (int64 fields + float32 fields) for ONE producer
process and ONE consumer process. Every read and write of the ring happens under a
multiprocessing lock, which is also what makes the data visible across cores in the right order
(the lock's atomic operations are the memory barriers; plain numpy stores give no ordering
guarantee on weakly ordered CPUs such as the Pi's). The real-time side only ever TRIES the lock
(never waits): a put that finds the lock busy keeps the record in a small local backlog and writes
it with the next put; a take that finds it busy returns nothing this time. When the ring is full the
producer overwrites the OLDEST record and counts it (`dropped`, exact).
"""
from __future__ import annotations

import mmap
import os
import tempfile
from collections import deque
from typing import Any

import numpy as np

ALIGN = 64  # bytes; each array starts on its own cache line


def shared_memory_dir() -> str:
    """/dev/shm (memory-backed) when it exists, else the temporary directory."""
    return '/dev/shm' if os.path.isdir('/dev/shm') and os.access('/dev/shm', os.W_OK) else tempfile.gettempdir()


class SharedBlock:
    """A shared mapping of `size` bytes backed by a file. create=True makes a new file (zeroed)."""

    def __init__(self, size: int, path: str | None = None, create: bool = True) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f'size must be an int >= 1, got {size!r}')
        if create:
            fd, path = tempfile.mkstemp(prefix='dcdrl-loop-', dir=shared_memory_dir())
            os.ftruncate(fd, size)
        else:
            if not path:
                raise ValueError('path is required to attach to an existing block')
            fd = os.open(path, os.O_RDWR)
            if os.fstat(fd).st_size < size:
                os.close(fd)
                raise ValueError(f'shared block {path!r} is smaller than {size} bytes')
        try:
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self.path, self.size, self.owner = path, size, create
        self.buffer = memoryview(self._map)

    def unlink(self) -> None:
        """Remove the file (the mapping stays valid in every process that has it)."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        """Unmap. Arrays made from this block must not be used afterwards."""
        try:
            self.buffer.release()
            self._map.close()
        except BufferError:  # numpy views still alive: the mapping goes with the process
            pass


class ArrayArena:
    """Aligned arrays carved from a buffer in allocation order; buffer=None only measures the size."""

    def __init__(self, buffer: Any = None) -> None:
        self.buffer = buffer
        self.offset = 0

    def array(self, shape: tuple[int, ...] | int, dtype: Any) -> np.ndarray:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        dtype = np.dtype(dtype)
        start = -(-self.offset // ALIGN) * ALIGN
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        self.offset = start + nbytes
        if self.buffer is None:
            return np.zeros(shape, dtype)
        if self.offset > len(self.buffer):
            raise ValueError(f'arena overflow: {self.offset} bytes needed, {len(self.buffer)} available')
        return np.ndarray(shape, dtype, buffer=self.buffer, offset=start)

    def float32(self, shape: tuple[int, ...] | int) -> np.ndarray:
        return self.array(shape, np.float32)


HEAD, TAIL, DROPPED = 0, 1, 2
# A blocking side waits at most this long: the other process holds the lock for microseconds, so
# only a process killed inside its critical section (a lock never released) makes it time out.
LOCK_TIMEOUT_S = 1.0


class SharedRing:
    """Single-producer / single-consumer ring of records [n_int int64 | n_float float32] (see module doc).

    Build it with the same arguments over the same arena position in both processes. `lock` is a
    multiprocessing lock shared by the two processes (passed to the child when it is started).
    """

    def __init__(self, arena: ArrayArena, capacity: int, n_int: int, n_float: int, lock: Any) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f'capacity must be an int >= 1, got {capacity!r}')
        self.capacity, self.n_int, self.n_float = capacity, n_int, n_float
        self._header = arena.array(4, np.int64)           # head, tail, dropped (written under the lock)
        self._ints = arena.array((capacity, max(1, n_int)), np.int64)
        self._floats = arena.array((capacity, max(1, n_float)), np.float32)
        self._lock = lock
        self._backlog: deque = deque(maxlen=capacity)     # producer side: records the busy lock kept out
        self.backlog_dropped = 0                          # producer side: oldest backlog records lost
        self.lock_busy = 0                                # tries that found the lock taken

    # ------------------------------------------------------------------ producer
    def put(self, ints: Any, floats: tuple = (), block: bool = False) -> bool:
        """Append one record: ints (n_int values), floats (arrays laid one after the other, n_float
        values in all). Never waits unless block=True. Returns True when it reached the ring now
        (False: kept in the backlog, written by the next put or flush)."""
        backlog = self._backlog
        if len(backlog) == self.capacity:
            self.backlog_dropped += 1           # deque(maxlen) drops the oldest on append
        backlog.append((ints, floats))
        return self.flush(block)

    def flush(self, block: bool = False) -> bool:
        """Write the backlog into the ring; True when it is empty afterwards."""
        backlog = self._backlog
        if not backlog:
            return True
        if not self._acquire(block):
            return False
        try:
            header, capacity = self._header, self.capacity
            head, tail = int(header[HEAD]), int(header[TAIL])
            while backlog:
                ints, floats = backlog.popleft()
                if head - tail >= capacity:     # full: the oldest record goes
                    tail += 1
                    header[DROPPED] += 1
                slot = head % capacity
                self._ints[slot, :self.n_int] = ints
                row, position = self._floats[slot], 0
                for part in floats:
                    end = position + len(part)
                    row[position:end] = part
                    position = end
                head += 1
            header[TAIL] = tail
            header[HEAD] = head
        finally:
            self._lock.release()
        return True

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    # ------------------------------------------------------------------ consumer
    def take(self, max_items: int | None = None, block: bool = True) -> tuple[np.ndarray, np.ndarray] | None:
        """Remove up to max_items records (oldest first): (ints [k, n_int], floats [k, n_float]) copies;
        None when the lock was busy (block=False) or not released within LOCK_TIMEOUT_S."""
        if not self._acquire(block):
            return None
        try:
            header, capacity = self._header, self.capacity
            head, tail = int(header[HEAD]), int(header[TAIL])
            count = head - tail if max_items is None else min(head - tail, max_items)
            slots = (tail + np.arange(count)) % capacity
            ints = self._ints[slots, :self.n_int]      # fancy indexing copies
            floats = self._floats[slots, :self.n_float]
            header[TAIL] = tail + count
        finally:
            self._lock.release()
        return ints, floats

    def _acquire(self, block: bool) -> bool:
        acquired = self._lock.acquire(True, LOCK_TIMEOUT_S) if block else self._lock.acquire(False)
        if not acquired:
            self.lock_busy += 1
        return acquired

    def pending(self) -> int:
        """Records in the ring now (a hint without the lock: may be one record stale)."""
        return int(self._header[HEAD] - self._header[TAIL])

    @property
    def dropped(self) -> int:
        """Records overwritten unread in the ring (plus the producer's backlog losses, in this process)."""
        return int(self._header[DROPPED]) + self.backlog_dropped

    @property
    def written(self) -> int:
        """Records ever written into the ring (head)."""
        return int(self._header[HEAD])


__all__ = ['ArrayArena', 'SharedBlock', 'SharedRing', 'shared_memory_dir']
