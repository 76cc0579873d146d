"""The replay_buffer node's logic (no ROS): intake, credit-based serving, priorities, lag, snapshots.

One ``ReplayService`` owns the ReplayBuffer (dcdrl_learning.replay) and everything the node
keeps beside it:

* **intake** (dcdrl_cloud.ingest): validated ExperienceBatch messages become 1-step transitions
  (discount ``gamma``, 0 where terminated); per-client counts, lost batches, restarts;
* **policy versions per slot**: a uint64 array parallel to the replay slots holds the version of
  the policy that produced each stored transition (``ReplayBuffer.add`` returns the slots);
* **credits**: a learner (the *requester*) asks for N more batches of B transitions; the
  service serves them, round-robin over requesters, as soon as the buffer's min-size gate and
  samples-per-insert limiter allow, each with the next per-requester sequence number;
* **priority updates**: checked (sizes, finite values, indices in range) before they reach the
  buffer; refusals are counted and described, nothing stored changes;
* **version lag**: latest version seen on ``policy`` minus the producing version of each
  received batch, min/mean/max over the last ``lag_window`` batches (weighted by transitions);
* **snapshot** (the file: dcdrl_cloud.replay_snapshot): ``output_dir/replay.npz`` is
  ``ReplayBuffer.save``'s file plus two members, ``policy_versions`` (uint64, slot order) and
  ``service_json`` (ingest counters, requester sequences, counters, latest policy version, env id,
  gamma), written atomically.

Threads: ``ingest`` and ``save`` may run in one thread (the node's intake worker) while
``next_batch`` runs in another (the node's serving thread) and ``request``,
``update_priorities``, ``observe_policy`` and ``stats`` in a third (the spinning thread).
``save`` blocks only ``ingest``: sampling and serving go on while the file is written.

The configuration is dcdrl_cloud.replay_service_config; the SampledBatch and PriorityUpdate
messages are filled and read by dcdrl_cloud.replay_messages.
"""
from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dcdrl_cloud.ingest import ExperienceIngest, IngestStats
from dcdrl_cloud.journal import ExperienceJournal, JournalReplay
from dcdrl_cloud.replay_service_config import ReplayServiceConfig
from dcdrl_cloud.replay_snapshot import (
    SERVICE_FORMAT,
    SERVICE_FORMAT_VERSION,
    RestoreResult,
    SnapshotRefused,
    migrate_snapshot,
    read_snapshot,
    same_buffer_settings,
    write_snapshot,
)
from dcdrl_learning.experience import MAX_ID_LENGTH, Experience
from dcdrl_learning.replay import RateLimitTimeout, ReplayBuffer, TransitionBatch


class RequestRejected(ValueError):
    """A SampleRequest that cannot be served; the message says why."""


class PriorityRejected(ValueError):
    """A PriorityUpdate that was not applied; the message says why."""


@dataclass(frozen=True)
class ServedBatch:
    """One SampledBatch's contents."""

    requester: str
    sequence: int
    batch: TransitionBatch
    policy_versions: np.ndarray  # uint64 [B]
    replay_size: int

    def __len__(self) -> int:
        return len(self.batch)


@dataclass
class RequesterState:
    credits: int = 0        # batches requested and not yet served
    batch_size: int = 0     # of the latest request (applies to all outstanding credits)
    sequence: int = 0       # next sequence number
    requested: int = 0
    served: int = 0
    dropped_credits: int = 0  # credits beyond max_outstanding_batches


@dataclass
class ServiceCounters:
    requests: int = 0
    rejected_requests: int = 0
    batches_served: int = 0
    transitions_served: int = 0
    priority_updates: int = 0
    priority_items: int = 0
    ignored_priority_updates: int = 0   # valid, but the buffer is uniform
    rejected_priority_updates: int = 0
    policy_messages: int = 0
    snapshots: int = 0
    last_request_rejection: str = ''
    last_priority_rejection: str = ''

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class ReplayService:
    """The replay buffer with its intake, credits, priority updates, lag statistics and snapshots.

    Args:
        config: ReplayServiceConfig.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(self, config: ReplayServiceConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        self.intake = ExperienceIngest(config.capacity, config.gamma, seed=config.seed,
                                       buffer_kwargs=config.buffer_kwargs(), max_clients=config.max_clients,
                                       allowed_clients=config.allowed_clients)
        self.versions: np.ndarray | None = None  # uint64 [capacity], producing policy version per slot
        self.latest_policy_version = 0
        self.requesters: dict[str, RequesterState] = {}
        self.counters = ServiceCounters()
        self._lags: deque[tuple[int, int]] = deque(maxlen=config.lag_window)  # (lag, transitions)
        self._last_served = ''
        self._rate_mark = (clock(), 0)
        self._dirty = False  # changed since the last snapshot
        self._journal: ExperienceJournal | None = None
        self._closed = False
        # Lock order: _ingest_lock -> _slots_lock; _cond is never held while taking another.
        self._ingest_lock = threading.Lock()  # ingest vs save (a save pauses only ingestion)
        self._slots_lock = threading.Lock()   # add + versions write vs sample + versions read, counters
        self._cond = threading.Condition()    # credits, buffer creation, close

    # ---- properties ----

    @property
    def buffer(self) -> ReplayBuffer | None:
        return self.intake.buffer

    def __len__(self) -> int:
        return len(self.intake.buffer) if self.intake.buffer is not None else 0

    # ---- intake ----

    def ingest(self, message: Any, live: bool = True) -> Experience:
        """Validates and stores an ExperienceBatch; raises ExperienceRejected (counted) for a bad one.
        ``live=False`` (recorded experience from seed_bags): stored and counted alike, but not an arrival,
        so it joins neither the version lag nor the intake rate."""
        with self._ingest_lock:
            experience = self.intake.validate(message)
            created = self.intake.buffer is None
            self._store_locked(experience, live)
            if self._journal is not None:
                self._journal.append(experience)
        if created:  # a server waiting for the first data can go on
            with self._cond:
                self._cond.notify_all()
        return experience

    def _store_locked(self, experience: Experience, live: bool = True) -> None:
        with self._slots_lock:
            slots = self.intake.store(experience)
            if self.versions is None:
                self.versions = np.zeros(self.config.capacity, dtype=np.uint64)
            self.versions[slots] = experience.policy_version
            if live:
                self._lags.append((self.latest_policy_version - experience.policy_version, len(experience)))
            else:  # received before this run's policies existed: its lag means nothing, and it did not arrive now
                then, before = self._rate_mark
                self._rate_mark = (then, before + len(experience))
        self._dirty = True

    def attach_journal(self, path: str | Path) -> JournalReplay:
        """Stores what the journal at ``path`` holds (experience received after the last snapshot),
        then appends every new batch to it until the next snapshot empties it. Call after restore().

        A snapshot alone loses what arrived since it was written when the process is killed; with the
        journal, every batch stored (and acknowledged to its client by reliable DDS) survives a kill.
        """
        with self._ingest_lock:
            journal = ExperienceJournal(path)
            result = journal.read()
            for experience in result.batches:
                self._store_locked(experience)
            self._journal = journal
            journal.open()
        return result

    def observe_policy(self, version: int) -> None:
        """The version of the latest message on `policy` (the weights themselves are not kept)."""
        self.latest_policy_version = int(version)
        self.counters.policy_messages += 1

    # ---- credits and serving ----

    def request(self, requester: str, batches: int, batch_size: int) -> int:
        """Adds ``batches`` credits of ``batch_size`` for ``requester``; returns its outstanding credits.

        Raises RequestRejected (counted) for an empty name or one over 64 characters, a batch size outside
        [1, max_batch_size], or a new requester beyond max_requesters.  Credits beyond
        max_outstanding_batches are dropped (counted per requester).  ``batches`` = 0 only
        updates the batch size.
        """
        try:
            if not isinstance(requester, str) or not requester:
                raise RequestRejected('requester must be a non-empty name (the learner node name)')
            if len(requester) > MAX_ID_LENGTH:   # the name is a key of the credits and appears in logs
                raise RequestRejected(f'requester must have at most {MAX_ID_LENGTH} characters, got {len(requester)}')
            if isinstance(batch_size, bool) or int(batch_size) != batch_size or \
                    not 1 <= batch_size <= self.config.max_batch_size:
                raise RequestRejected(f'{requester}: batch_size must be in [1, {self.config.max_batch_size}] '
                                      f'(max_batch_size), got {batch_size!r}')
            if isinstance(batches, bool) or int(batches) != batches or batches < 0:
                raise RequestRejected(f'{requester}: batches must be an integer >= 0, got {batches!r}')
            with self._cond:
                state = self.requesters.get(requester)
                if state is None:
                    if len(self.requesters) >= self.config.max_requesters:
                        raise RequestRejected(f'{requester}: already serving max_requesters='
                                              f'{self.config.max_requesters} requesters')
                    state = self.requesters[requester] = RequesterState()
                room = self.config.max_outstanding_batches - state.credits
                granted = min(int(batches), max(0, room))
                state.dropped_credits += int(batches) - granted
                state.credits += granted
                state.requested += int(batches)
                state.batch_size = int(batch_size)
                self.counters.requests += 1
                if granted:
                    self._cond.notify_all()
                return state.credits
        except RequestRejected as error:
            self.counters.rejected_requests += 1
            self.counters.last_request_rejection = str(error)
            raise

    def outstanding(self, requester: str) -> int:
        with self._cond:
            state = self.requesters.get(requester)
            return state.credits if state is not None else 0

    def _pick_locked(self) -> tuple[str, int] | None:
        """Round-robin: the next requester with credits after the one served last."""
        if self.intake.buffer is None or self._closed:
            return None
        names = [name for name, state in self.requesters.items() if state.credits > 0]
        if not names:
            return None
        after = [name for name in names if name > self._last_served]
        name = min(after) if after else min(names)
        return name, self.requesters[name].batch_size

    def next_batch(self, timeout: float) -> ServedBatch | None:
        """Waits up to ``timeout`` s for a credit and for the limiter; returns the batch or None.

        Call from one serving thread.  A credit is spent only when a batch is produced.
        """
        deadline = self.clock() + max(0.0, timeout)
        with self._cond:
            if not self._cond.wait_for(lambda: self._closed or self._pick_locked() is not None, timeout):
                return None
            picked = self._pick_locked()
        if picked is None:  # closed
            return None
        name, batch_size = picked
        buffer = self.intake.buffer
        assert buffer is not None
        # Wait on the limiter without our locks (inserts must go on meanwhile), then sample.
        if not buffer.rate_limiter.await_can_sample(batch_size, max(0.0, deadline - self.clock())):
            return None
        with self._slots_lock:
            try:
                batch = buffer.sample(batch_size)
            except RateLimitTimeout:
                return None
            assert self.versions is not None
            versions = self.versions[batch.indices]
            size = len(buffer)
        with self._cond:
            state = self.requesters[name]
            state.credits = max(0, state.credits - 1)
            sequence = state.sequence
            state.sequence += 1
            state.served += 1
            self._last_served = name
            self.counters.batches_served += 1
            self.counters.transitions_served += len(batch)
        return ServedBatch(requester=name, sequence=sequence, batch=batch, policy_versions=versions,
                           replay_size=size)

    def close(self) -> None:
        """Wakes a waiting ``next_batch`` (it returns None from now on)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # ---- priorities ----

    def update_priorities(self, indices: Any, priorities: Any) -> int:
        """Applies |TD error| priorities to sampled slots; returns the number of items updated.

        Raises PriorityRejected (counted, nothing changed) for arrays of different sizes or
        types, non-finite priorities, or indices outside the stored range.  A valid update to a
        uniform buffer is counted as ignored and returns 0.
        """
        try:
            idx = np.asarray(indices)
            pri = np.asarray(priorities)
            if idx.ndim != 1 or (idx.size and idx.dtype.kind not in 'iu'):
                raise PriorityRejected(f'indices must be a 1-D integer array, got shape {list(idx.shape)} '
                                       f'dtype {idx.dtype}')
            if pri.shape != idx.shape or (pri.size and pri.dtype.kind not in 'fiu'):
                raise PriorityRejected(f'priorities must be a real array of the same size as indices '
                                       f'({idx.size}), got shape {list(pri.shape)} dtype {pri.dtype}')
            if idx.size == 0:
                return 0  # an empty update changes nothing
            if not np.isfinite(pri).all():
                raise PriorityRejected(f'priorities contain {int(np.count_nonzero(~np.isfinite(pri)))} '
                                       'NaN or infinite value(s)')
            size = len(self)
            if int(idx.max()) >= size or int(idx.min()) < 0:
                raise PriorityRejected(f'indices must lie in [0, {size}) (stored transitions), '
                                       f'got values in [{int(idx.min())}, {int(idx.max())}]')
            buffer = self.intake.buffer
            assert buffer is not None  # size > max index >= 0
            if not buffer.prioritized:
                self.counters.ignored_priority_updates += 1
                return 0
            try:
                buffer.update_priorities(idx.astype(np.int64), np.abs(pri.astype(np.float64)))
            except ValueError as error:
                raise PriorityRejected(str(error)) from None
        except PriorityRejected as error:
            self.counters.rejected_priority_updates += 1
            self.counters.last_priority_rejection = str(error)
            raise
        self.counters.priority_updates += 1
        self.counters.priority_items += int(idx.size)
        self._dirty = True
        return int(idx.size)

    # ---- statistics ----

    def version_lag(self) -> dict[str, float | None]:
        """min/mean/max of (latest policy version - producing version) over the last batches.

        Negative values mean data from a newer policy than the latest seen on `policy` (e.g.
        before the first policy message arrived).  None when no batch arrived yet.
        """
        with self._slots_lock:
            lags = list(self._lags)
        if not lags:
            return {'min': None, 'mean': None, 'max': None}
        values = np.array([lag for lag, _ in lags], dtype=np.float64)
        weights = np.array([n for _, n in lags], dtype=np.float64)
        return {'min': float(values.min()), 'mean': float(np.average(values, weights=weights)),
                'max': float(values.max())}

    def stats(self) -> dict[str, Any]:
        """The fields of a ReplayStats message (transitions_per_sec: since the previous call)."""
        now = self.clock()
        with self._slots_lock:  # the intake thread may be adding a client meanwhile
            received = self.intake.stats.transitions
            rejected, lost = self.intake.stats.rejected, self.intake.stats.lost_batches
            buffer_stats = self.intake.buffer.stats() if self.intake.buffer is not None else {}
        then, before = self._rate_mark
        self._rate_mark = (now, received)
        inserts = buffer_stats.get('inserts', 0)
        lag = self.version_lag()
        nan = float('nan')
        return {
            'size': len(self),
            'capacity': self.config.capacity,
            'transitions_received': received,
            'batches_served': self.counters.batches_served,
            'rejected_batches': rejected,
            'lost_batches': lost,
            'transitions_per_sec': (received - before) / (now - then) if now > then else 0.0,
            'samples_per_insert': buffer_stats.get('samples', 0) / inserts if inserts else 0.0,
            'version_lag_min': nan if lag['min'] is None else lag['min'],
            'version_lag_mean': nan if lag['mean'] is None else lag['mean'],
            'version_lag_max': nan if lag['max'] is None else lag['max'],
        }

    def summary(self) -> dict[str, Any]:
        """The REPORT: intake summary plus serving, priorities, lag and snapshot counters."""
        with self._slots_lock:
            out = self.intake.summary()
            if self.intake.buffer is not None:
                out['buffer'] = self.intake.buffer.stats()
        with self._cond:
            requesters = {name: {'requested': s.requested, 'served': s.served, 'outstanding': s.credits,
                                 'dropped_credits': s.dropped_credits, 'next_sequence': s.sequence}
                          for name, s in sorted(self.requesters.items())}
        counters = self.counters.to_dict()
        out.update({
            'capacity': self.config.capacity,
            'prioritized': self.config.prioritized,
            'latest_policy_version': self.latest_policy_version,
            'version_lag': self.version_lag(),
            'requesters': requesters,
            **{k: v for k, v in counters.items() if not k.startswith('last_')},
        })
        return out

    # ---- snapshot ----

    @property
    def dirty(self) -> bool:
        """True when something was stored or re-prioritised since the last save or restore."""
        return self._dirty

    def _service_state(self) -> dict[str, Any]:
        with self._cond:
            requesters = {name: {'sequence': s.sequence, 'requested': s.requested, 'served': s.served,
                                 'dropped_credits': s.dropped_credits}
                          for name, s in self.requesters.items()}
        return {
            'format': SERVICE_FORMAT, 'version': SERVICE_FORMAT_VERSION,
            'env_id': self.config.env_id, 'gamma': float(self.config.gamma),
            'latest_policy_version': int(self.latest_policy_version),
            'ingest': self.intake.stats.to_dict(),
            'requesters': requesters,
            'counters': self.counters.to_dict(),
            'saved_unix_time': time.time(),
        }

    def save(self, path: str | Path) -> bool:
        """Writes the snapshot atomically (dcdrl_cloud.replay_snapshot); False (nothing written) while the
        buffer is empty. Ingestion waits meanwhile (so rows and versions agree); sampling does not.
        """
        with self._ingest_lock:
            buffer = self.intake.buffer
            if buffer is None or self.versions is None:
                return False
            self.counters.snapshots += 1  # counted in the file it is written to
            try:
                write_snapshot(Path(path), buffer, self.versions[:len(buffer)].copy(), self._service_state())
                if self._journal is not None:  # everything in it is in the snapshot now
                    self._journal.clear()
            except BaseException:
                self.counters.snapshots -= 1
                raise
            self._dirty = False
        return True

    def restore(self, path: str | Path) -> RestoreResult:
        """Loads a snapshot written by ``save`` (or a bare ``ReplayBuffer.save`` file).

        Call before serving and ingesting.  Returns ``RestoreResult(restored=False)`` when the
        file does not exist.  Raises SnapshotRefused for a file of another environment, of
        transitions that are not 1-step when gamma changed, or one that does not load.  When the
        buffer settings differ from the file's (capacity, prioritized, limiter, ...), the
        transitions are copied oldest first into a buffer built from this config ("migrated";
        priorities then restart at the maximum).  A changed gamma rewrites the stored discounts.
        """
        path = Path(path)
        if not path.exists():
            return RestoreResult(False, reason=f'no snapshot at {path}')
        snapshot = read_snapshot(path, self.config.env_id)
        loaded, service = snapshot.buffer, snapshot.service
        saved_gamma = float(service.get('gamma', self.config.gamma))
        if same_buffer_settings(snapshot, self.config.buffer_config()) and math.isclose(saved_gamma, self.config.gamma):
            buffer, slot_versions = loaded, snapshot.versions
        else:
            buffer, slot_versions = migrate_snapshot(path, snapshot, saved_gamma, self.config.gamma,
                                                     self.config.capacity, self.intake.make_buffer)
        self.versions = np.zeros(self.config.capacity, dtype=np.uint64)
        self.versions[:slot_versions.shape[0]] = slot_versions
        self.intake.adopt(buffer)
        if 'ingest' in service:
            try:
                self.intake.restore_stats(IngestStats.from_dict(service['ingest']))
            except ValueError as error:
                raise SnapshotRefused(f'{path}: {error}') from None
        self.latest_policy_version = int(service.get('latest_policy_version', 0))
        for name, saved in dict(service.get('requesters', {})).items():
            self.requesters[str(name)] = RequesterState(
                sequence=int(saved['sequence']), requested=int(saved.get('requested', 0)),
                served=int(saved.get('served', 0)), dropped_credits=int(saved.get('dropped_credits', 0)))
        for key, value in dict(service.get('counters', {})).items():
            if hasattr(self.counters, key) and not key.startswith('last_'):
                setattr(self.counters, key, int(value))
        self._dirty = False
        return RestoreResult(True, size=len(buffer), migrated=buffer is not loaded,
                             reason='' if buffer is loaded else 'buffer settings or gamma changed: migrated')



__all__ = ['PriorityRejected', 'ReplayService', 'RequestRejected', 'ServedBatch']
