"""Append-only journal of the experience a replay buffer stored since its last snapshot.

Snapshots are written every few seconds; a process killed in between would lose what it had
received (and what reliable DDS had acknowledged to the clients) since the last one. Every stored
batch is therefore also appended here, and the journal is emptied when a snapshot is written; on
start the replay buffer restores the snapshot, then stores the journal's batches again.

Record: b'DCJ1', uint32 header length, a JSON header (client id, sequence, policy version, extra
names), then the batch's arrays as .npy blobs (numpy's format, allow_pickle=False). Each record is
written with one write() and flushed, so a killed process loses at most the record being written;
a torn last record is detected on reading, counted and skipped. No pickle anywhere.
"""
from __future__ import annotations

import io
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from dcdrl_learning.experience import Experience

MAGIC = b'DCJ1'
_ARRAYS = ('obs', 'actions', 'rewards', 'next_obs', 'terminated', 'truncated', 'extras')
_MAX_HEADER = 1 << 20


@dataclass
class JournalReplay:
    batches: list[Experience] = field(default_factory=list)
    torn: int = 0            # a last record cut short by a kill (skipped)
    path: str = ''

    @property
    def transitions(self) -> int:
        return sum(len(batch) for batch in self.batches)


class ExperienceJournal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: BinaryIO | None = None
        self.records = 0

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, 'ab')

    def append(self, experience: Experience) -> None:
        if self._file is None:
            return
        header = json.dumps({'client_id': experience.client_id, 'sequence': int(experience.sequence),
                             'policy_version': int(experience.policy_version),
                             'extra_names': list(experience.extra_names)}).encode('utf-8')
        record = io.BytesIO()
        record.write(MAGIC + struct.pack('<I', len(header)) + header)
        for name in _ARRAYS:
            np.lib.format.write_array(record, np.ascontiguousarray(getattr(experience, name)), allow_pickle=False)
        self._file.write(record.getvalue())
        self._file.flush()  # in the OS's hands: survives the process being killed
        self.records += 1

    def clear(self) -> None:
        """Empty the journal (its batches are in a snapshot now)."""
        if self._file is not None:
            self._file.truncate(0)
            self._file.seek(0)
        elif self.path.exists():
            self.path.write_bytes(b'')
        self.records = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def read(self) -> JournalReplay:
        """Every complete record in the file, oldest first (nothing when there is no file)."""
        result = JournalReplay(path=str(self.path))
        if not self.path.exists():
            return result
        data = self.path.read_bytes()
        stream = io.BytesIO(data)
        while stream.tell() < len(data):
            start = stream.tell()
            try:
                result.batches.append(self._read_record(stream))
            except (ValueError, EOFError, struct.error, KeyError, UnicodeDecodeError):
                result.torn += 1
                stream.seek(start)
                break
        return result

    @staticmethod
    def _read_record(stream: io.BytesIO) -> Experience:
        if stream.read(4) != MAGIC:
            raise ValueError('not a journal record')
        (length,) = struct.unpack('<I', stream.read(4))
        if length > _MAX_HEADER:
            raise ValueError('journal header too large')
        header = json.loads(stream.read(length).decode('utf-8'))
        arrays = {name: np.lib.format.read_array(stream, allow_pickle=False) for name in _ARRAYS}
        batch = len(arrays['rewards'])
        if any(len(arrays[name]) != batch for name in _ARRAYS):
            raise ValueError('journal record arrays disagree in length')
        return Experience(client_id=str(header['client_id']), sequence=int(header['sequence']),
                          policy_version=int(header['policy_version']),
                          extra_names=tuple(str(n) for n in header['extra_names']), **arrays)


__all__ = ['ExperienceJournal', 'JournalReplay']
