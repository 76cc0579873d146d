"""Bounded ring storage over preallocated numpy arrays.

Every transition is one row of one float32 matrix ``[capacity, width]``; each field (obs,
actions, ...) is a column slice of it.  Why one matrix instead of one array per field: a
sample is then a single fancy-index gather (one copy of contiguous rows) instead of five,
and a batched add is at most two slice assignments (two when the batch wraps around).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


class RingStorage:
    """Fixed-capacity FIFO of float32 rows with named column fields.

    Memory is allocated once (``capacity * width * 4`` bytes) and never grows; when full, the
    oldest rows are overwritten.  Not thread-safe by itself: the owning buffer holds the lock.

    Args:
        capacity: maximum number of rows kept.
        fields: ordered ``(name, width)`` pairs; a field of width ``w`` occupies ``w`` columns.
    """

    def __init__(self, capacity: int, fields: Sequence[tuple[str, int]]) -> None:
        if not isinstance(capacity, (int, np.integer)) or isinstance(capacity, bool) or capacity < 1:
            raise ValueError(f'capacity must be a positive integer, got {capacity!r}')
        if not fields:
            raise ValueError('fields must name at least one (name, width) pair')
        self.capacity = int(capacity)
        self.fields: dict[str, slice] = {}
        start = 0
        for name, width in fields:
            if name in self.fields:
                raise ValueError(f'duplicate field name {name!r}')
            if int(width) < 1:
                raise ValueError(f'field {name!r} must have width >= 1, got {width}')
            self.fields[name] = slice(start, start + int(width))
            start += int(width)
        self.width = start
        self.data = np.zeros((self.capacity, self.width), dtype=np.float32)
        self.cursor = 0  # next row to write
        self.size = 0

    @property
    def full(self) -> bool:
        return self.size == self.capacity

    @property
    def newest_index(self) -> int:
        """Row of the most recently written transition (-1 when empty)."""
        if self.size == 0:
            return -1
        return (self.cursor - 1) % self.capacity

    def add_rows(self, rows: np.ndarray) -> np.ndarray:
        """Write ``rows`` ``[B, width]`` at the cursor, wrapping around; returns their indices.

        A batch larger than the capacity keeps only its last ``capacity`` rows (the earlier
        ones would be overwritten by the same batch anyway); the returned indices then have
        length ``capacity``.
        """
        n = rows.shape[0]
        if n == 0:
            return np.empty(0, dtype=np.int64)
        if n > self.capacity:
            rows = rows[n - self.capacity:]
            n = self.capacity
        first = self.cursor
        end = first + n
        if end <= self.capacity:
            self.data[first:end] = rows
        else:  # wrap: tail of the array, then its head
            split = self.capacity - first
            self.data[first:] = rows[:split]
            self.data[: n - split] = rows[split:]
        self.cursor = end % self.capacity
        self.size = min(self.size + n, self.capacity)
        return np.arange(first, end, dtype=np.int64) % self.capacity

    def add(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Write one batch given per field (``{name: [B, width]}``); see ``add_rows``."""
        n = next(iter(columns.values())).shape[0]
        rows = np.empty((n, self.width), dtype=np.float32)
        for name, cols in self.fields.items():
            rows[:, cols] = columns[name].reshape(n, -1)
        return self.add_rows(rows)

    def gather(self, indices: np.ndarray) -> np.ndarray:
        """Copy of the rows at ``indices`` (``[len(indices), width]``)."""
        return self.data.take(indices, axis=0)

    def split(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Per-field column views of ``rows`` (no copy; rows are strided by the row width,
        which numpy and ``torch.from_numpy`` handle as is)."""
        return {name: rows[:, cols] for name, cols in self.fields.items()}

    def chronological_indices(self) -> np.ndarray:
        """Indices of the stored rows from oldest to newest."""
        if not self.full:
            return np.arange(self.size, dtype=np.int64)
        return (np.arange(self.capacity, dtype=np.int64) + self.cursor) % self.capacity
