"""The replay snapshot file (no ROS): ``ReplayBuffer.save``'s file plus two members, ``policy_versions``
(uint64, slot order) and ``service_json`` (the service's counters and state), written atomically; read
back with its checks, and migrated into a buffer of other settings."""
from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dcdrl_learning.replay import ReplayBuffer

SNAPSHOT_NAME = 'replay.npz'
JOURNAL_NAME = 'replay.journal'   # batches stored since the last snapshot (journal.py)
SERVICE_FORMAT = 'dcdrl-replay-service'
SERVICE_FORMAT_VERSION = 1
# Buffer settings that must match for a snapshot to be loaded as it is (else it is migrated).
_BUFFER_KEYS = ('capacity', 'prioritized', 'alpha', 'beta', 'beta_end', 'beta_steps', 'priority_eps',
                'combined', 'min_size_to_sample', 'samples_per_insert', 'error_buffer')


class SnapshotRefused(ValueError):
    """A snapshot file that cannot be restored into this service; the message says why."""


@dataclass
class RestoreResult:
    restored: bool
    size: int = 0
    migrated: bool = False
    reason: str = ''


@dataclass
class Snapshot:
    """A snapshot file's contents, checked: the buffer, the version per stored transition, the buffer's
    metadata and the service state ({} for a bare ``ReplayBuffer.save`` file)."""

    buffer: ReplayBuffer
    versions: np.ndarray   # uint64 [len(buffer)]
    meta: dict[str, Any]
    service: dict[str, Any]


def write_snapshot(path: Path, buffer: ReplayBuffer, versions: np.ndarray, service_state: dict[str, Any]) -> None:
    """``ReplayBuffer.save`` writes a temporary file; the versions and the service state are appended to it
    as two more .npy members; then it is fsynced and renamed over ``path`` (removed when anything fails)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f'.{path.name}.partial')
    try:
        buffer.save(partial)
        state = np.frombuffer(json.dumps(service_state).encode('utf-8'), dtype=np.uint8)
        with zipfile.ZipFile(partial, 'a', allowZip64=True) as archive:
            for name, array in (('policy_versions', versions), ('service_json', state)):
                with archive.open(f'{name}.npy', 'w', force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
        with open(partial, 'rb+') as handle:
            os.fsync(handle.fileno())
        os.replace(partial, path)
    except BaseException:
        if partial.exists():
            partial.unlink()
        raise


def read_snapshot(path: Path, env_id: str) -> Snapshot:
    """Loads and checks the file; SnapshotRefused for one of another env than ``env_id`` (when both are
    known), of another service format, or one that does not load."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = set(npz.files)
            meta = json.loads(npz['meta_json'].tobytes().decode('utf-8'))
            service = json.loads(npz['service_json'].tobytes().decode('utf-8')) \
                if 'service_json' in files else {}
            versions = npz['policy_versions'] if 'policy_versions' in files else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as error:
        raise SnapshotRefused(f'{path}: cannot read snapshot: {error}') from None
    if not isinstance(meta, dict) or not isinstance(service, dict):
        raise SnapshotRefused(f'{path}: snapshot metadata must be JSON objects')
    if service and (service.get('format') != SERVICE_FORMAT or service.get('version') != SERVICE_FORMAT_VERSION):
        raise SnapshotRefused(f'{path}: expected service state {SERVICE_FORMAT!r} version '
                              f'{SERVICE_FORMAT_VERSION}, got {service.get("format")!r} {service.get("version")!r}')
    saved_env = str(service.get('env_id', ''))
    if env_id and saved_env and saved_env != env_id:
        raise SnapshotRefused(f'{path}: snapshot holds {saved_env} experience, this node is for {env_id}')
    try:
        loaded = ReplayBuffer.load(path)
    except (ValueError, TypeError) as error:
        raise SnapshotRefused(str(error)) from None
    size = len(loaded)
    if versions is None:
        versions = np.zeros(size, dtype=np.uint64)
    elif versions.dtype != np.uint64 or versions.shape != (size,):
        raise SnapshotRefused(f'{path}: policy_versions must be uint64 [{size}], '
                              f'got {versions.dtype} {list(versions.shape)}')
    return Snapshot(loaded, versions, meta, service)


def same_buffer_settings(snapshot: Snapshot, wanted: dict[str, Any]) -> bool:
    """True when the file's buffer was built with the settings ``wanted`` (ReplayServiceConfig.buffer_config)."""
    config = dict(snapshot.meta.get('config', {}))
    return all(config.get(key) == wanted[key] for key in _BUFFER_KEYS)


def migrate_snapshot(path: Path, snapshot: Snapshot, saved_gamma: float, gamma: float, capacity: int,
                     make_buffer: Callable[[int, int], ReplayBuffer]) -> tuple[ReplayBuffer, np.ndarray]:
    """Copies the snapshot's transitions, oldest first, into a buffer from ``make_buffer(obs_dim,
    action_dim)`` (the newest ``capacity`` of them); a changed gamma rewrites the 1-step discounts."""
    loaded, versions, meta = snapshot.buffer, snapshot.versions, snapshot.meta
    with np.load(path, allow_pickle=False) as npz:
        rows = npz['rows']
    size, saved_capacity = len(loaded), loaded.capacity
    cursor = int(meta.get('cursor', size))
    order = np.r_[cursor:size, 0:cursor] if size == saved_capacity else np.arange(size)
    keep = order[-capacity:]
    rows, versions = rows[keep], versions[keep]
    o, a = loaded.obs_dim, loaded.action_dim
    discounts = rows[:, 2 * o + a + 1].copy()
    if not math.isclose(saved_gamma, gamma):
        one_step = np.isclose(discounts, 0.0) | np.isclose(discounts, saved_gamma)
        if not one_step.all():
            raise SnapshotRefused(f'{path}: gamma changed ({saved_gamma} -> {gamma}) and the '
                                  'snapshot holds discounts other than 0 and gamma (not 1-step transitions)')
        discounts = np.where(discounts > 0.0, gamma, 0.0).astype(np.float32)
    buffer = make_buffer(o, a)
    slots = buffer.add(rows[:, :o], rows[:, o:o + a], rows[:, o + a], rows[:, o + a + 1:2 * o + a + 1],
                       discounts)
    slot_versions = np.zeros(len(buffer), dtype=np.uint64)
    slot_versions[slots] = versions
    return buffer, slot_versions


__all__ = ['JOURNAL_NAME', 'SNAPSHOT_NAME', 'RestoreResult', 'Snapshot', 'SnapshotRefused', 'migrate_snapshot',
           'read_snapshot', 'same_buffer_settings', 'write_snapshot']
