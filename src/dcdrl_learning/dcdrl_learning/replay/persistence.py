"""Save and load a ReplayBuffer: one .npz file (allow_pickle=False) with JSON metadata inside.

File layout (``FORMAT = "dcdrl-replay"``, version 1):

* ``rows``: float32 ``[size, 2*obs_dim + action_dim + 2]``, the stored transitions in slot
  order, columns ``obs | actions | reward | next_obs | discount``; ``cursor`` in the metadata is
  the next slot to write (so the oldest item is slot ``cursor`` once the buffer is full);
* ``priorities``: float64 ``[size]`` sum-tree leaf values (p^alpha), prioritised buffers only;
* ``meta_json``: uint8 bytes of a UTF-8 JSON object: format, version, the constructor
  configuration, counters (inserts, samples, deletes, rejected, ...), PER state and the
  sampling generator's state, so a loaded buffer continues the same random stream.

Writes go to a temporary file in the same folder, are fsynced and then renamed over the
target (``os.replace``), so a crash leaves either the old file or the new one, never half.
Slots keep their numbers, so indices sampled before a save still name the same items after a
load, and a loaded buffer samples exactly what the saved one would have sampled next.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from dcdrl_core.files import atomic_write

if TYPE_CHECKING:
    from .buffer import ReplayBuffer


def save_buffer(buffer: ReplayBuffer, path: str | Path) -> None:
    path = Path(path)
    with buffer._lock:  # snapshot under the lock, write outside it
        storage = buffer._storage
        size = storage.size
        arrays = {'rows': storage.data[:size].copy()}
        meta = {
            'format': buffer.FORMAT,
            'version': buffer.FORMAT_VERSION,
            'config': dict(buffer._config),
            'size': int(size),
            'cursor': int(storage.cursor),
            'limiter': buffer._limiter.state(),
            'rejected': buffer._rejected,
            'rate_limited': buffer._rate_limited,
            'sample_calls': buffer._sample_calls,
            'rng_state': buffer._rng.bit_generator.state,
        }
        if buffer.prioritized:
            sampler = buffer.prioritized_sampler
            arrays['priorities'] = sampler.tree.get(np.arange(size))
            meta['per'] = {'max_priority': sampler.max_priority, 'sample_calls': sampler.sample_calls}
    arrays['meta_json'] = np.frombuffer(json.dumps(meta).encode('utf-8'), dtype=np.uint8)

    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def load_buffer(cls: type[ReplayBuffer], path: str | Path) -> ReplayBuffer:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            if 'meta_json' not in npz.files or 'rows' not in npz.files:
                raise ValueError(f'{path}: not a {cls.FORMAT} file (missing rows or meta_json)')
            meta = json.loads(npz['meta_json'].tobytes().decode('utf-8'))
            rows = npz['rows']
            priorities = npz['priorities'] if 'priorities' in npz.files else None
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        # ValueError covers numpy refusing pickled data and bad JSON / UTF-8.
        if str(exc).startswith(f'{path}:'):
            raise
        raise ValueError(f'{path}: cannot read replay file: {exc}') from exc

    if not isinstance(meta, dict):
        raise ValueError(f'{path}: replay metadata must be a JSON object')
    if meta.get('format') != cls.FORMAT or meta.get('version') != cls.FORMAT_VERSION:
        raise ValueError(f'{path}: expected format {cls.FORMAT!r} version {cls.FORMAT_VERSION}, '
                         f'got {meta.get("format")!r} version {meta.get("version")!r}')
    try:
        config = dict(meta['config'])
        if isinstance(config.get('error_buffer'), list):
            config['error_buffer'] = tuple(config['error_buffer'])
        buffer = cls(**config)
        storage = buffer._storage
        size = int(meta['size'])
        if not 0 <= size <= storage.capacity:
            raise ValueError(f'{path}: size {size} outside [0, capacity={storage.capacity}]')
        if rows.dtype != np.float32 or rows.shape != (size, storage.width):
            raise ValueError(f'{path}: rows must be float32 [{size}, {storage.width}], '
                             f'got {rows.dtype} {list(rows.shape)}')
        if not np.isfinite(rows).all():
            raise ValueError(f'{path}: rows contain NaN or infinite values')

        cursor = int(meta['cursor'])
        expected_cursor_ok = (0 <= cursor < storage.capacity) if size == storage.capacity \
            else cursor == size
        if not expected_cursor_ok:
            raise ValueError(f'{path}: cursor {cursor} inconsistent with size {size} and '
                             f'capacity {storage.capacity}')
        storage.data[:size] = rows
        storage.size = size
        storage.cursor = cursor
        if buffer.prioritized:
            if priorities is None or priorities.shape != (size,) or not np.isfinite(priorities).all() \
                    or (size and priorities.min() <= 0):
                raise ValueError(f'{path}: prioritised buffer needs {size} finite positive priorities')
            per = meta['per']
            buffer.prioritized_sampler.restore(priorities, per['max_priority'], per['sample_calls'])
        lim = meta['limiter']
        buffer._limiter.restore(lim['inserts'], lim['samples'], lim['deletes'])
        buffer._rejected = int(meta['rejected'])
        buffer._rate_limited = int(meta['rate_limited'])
        buffer._sample_calls = int(meta['sample_calls'])
        state = meta.get('rng_state')
        if isinstance(state, dict) and state.get('bit_generator') == type(buffer._rng.bit_generator).__name__:
            buffer._rng.bit_generator.state = state
    except (KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f'{path}: malformed replay metadata: {exc!r}') from exc
    return buffer
