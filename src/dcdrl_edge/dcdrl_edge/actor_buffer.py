"""Double-buffered actor: new weights are validated and copied off the loop thread, then swapped in
between two control steps by one reference assignment.

    actor = DoubleBufferedActor('cloud_edge', obs_dim=10, action_dim=1)
    actor.start()                  # the loader thread
    actor.offer(payload)           # any thread (a ROS callback); newest offer wins
    ...                            # control loop thread, between two steps:
    actor.swap_if_ready()
    policy = actor.active          # NumpyActor or None (no weights yet)

Who touches what (this is the whole thread-safety argument; there is no lock on the loop side):
- offer() and the loader share a small lock around the mailbox; the loop never takes it.
- The loader writes weights only into the copy that is NOT active, and only while no staged copy
  is pending. It then publishes the copy by one assignment `_pending = copy`.
- The loop thread, in swap_if_ready(), does `_active = pending` and then `_pending = None`.
  The loop uses an actor only inside a control step, after swap_if_ready(), and drops it when the
  step ends, so once the loader sees `_pending is None` the previously active copy is no longer in
  use: the loop's last step with it finished before that swap_if_ready() began.
- Hence the copy the loader writes into is never the one being evaluated: no torn weights.
A newer payload that arrives while a staged copy still waits for the loop is kept by the loader
(newest wins) and staged right after the loop swaps (the loader polls every poll_s then).
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dcdrl_learning.codec import WeightsPayload, WeightsRejected, decode_weights, payload_from_bytes
from dcdrl_learning.inference import NumpyActor, actor_shapes
from dcdrl_learning.network_spec import NetworkConfig, architecture_id
from dcdrl_learning.network_spec import network_config as resolve_network_config

NO_VERSION = -1


def load_weights_file(path: str | os.PathLike) -> WeightsPayload:
    """Read a weights file written with codec.payload_to_bytes (e.g. <output_dir>/best_actor.safetensors).

    Structure only: validation against the actor happens when it is loaded. Raises
    FileNotFoundError when the file is missing and WeightsRejected('malformed') when it is not a
    weights file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f'weights file {path!r} does not exist (expected a .safetensors file '
                                f'written by the cloud, e.g. <output_dir>/best_actor.safetensors)')
    with open(path, 'rb') as handle:
        data = handle.read()
    try:
        return payload_from_bytes(data)
    except WeightsRejected as exc:
        raise WeightsRejected(exc.reason, f'{path!r} is not a valid weights file: {exc}') from exc


class DoubleBufferedActor:
    """Two NumpyActor copies, one active (used by the loop), one being loaded (by the loader thread).

    network_config: preset name ('cloud_edge'), mapping or NetworkConfig of the actor.
    on_rejected: optional callback(reason, message) for every refused payload (called from the
        loader thread, or from load_payload_now's caller).
    poll_s: how often the loader checks whether the loop has taken a staged copy when a newer
        payload is waiting for the other copy.
    """

    def __init__(self, network_config: NetworkConfig | str | Mapping[str, Any], obs_dim: int, action_dim: int,
                 on_rejected: Callable[[str, str], None] | None = None, poll_s: float = 0.001) -> None:
        self.config = resolve_network_config(network_config)
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.architecture_id = architecture_id(self.config, obs_dim, action_dim)
        self.shapes = actor_shapes(self.config, obs_dim, action_dim)
        if isinstance(poll_s, bool) or not isinstance(poll_s, (int, float)) or not 0 < poll_s <= 1:
            raise ValueError(f'poll_s must be a number of seconds in (0, 1], got {poll_s!r}')
        self.poll_s = float(poll_s)
        self.on_rejected = on_rejected
        self._copies = (self._make_copy(0), self._make_copy(1))
        self._active: NumpyActor | None = None    # read and written by the loop thread only (after start-up)
        self._pending: NumpyActor | None = None   # set by the loader, taken (set to None) by the loop
        # Mailbox between offer() (any thread) and the loader; the loop never takes this lock.
        self._mailbox_lock = threading.Lock()
        self._mailbox: WeightsPayload | None = None
        self._candidate: WeightsPayload | None = None   # taken from the mailbox, waiting for a free copy
        self._progress = threading.Condition(self._mailbox_lock)   # for wait_idle()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Counters.
        self.offered = 0
        self.staged = 0
        self.swapped = 0
        self.superseded = 0
        self.rejected: dict[str, int] = {}   # reason -> count (copy it with dict() to read from another thread)
        self._rejected_total = 0
        self.last_rejection = ''

    def _make_copy(self, index: int) -> NumpyActor:
        """One of the two copies (zero weights); the loop process's subclass places them in shared memory."""
        zeros = {name: np.zeros(shape, np.float32) for name, shape in self.shapes.items()}
        return NumpyActor(self.config, self.obs_dim, self.action_dim, zeros, version=NO_VERSION)

    # ------------------------------------------------------------------ loop thread
    @property
    def active(self) -> NumpyActor | None:
        """The NumpyActor in use (None before the first weights). Call it only from the loop thread."""
        return self._active

    @property
    def version(self) -> int:
        """Version of the active weights, -1 when there are none (safe to read from any thread)."""
        active = self._active
        return NO_VERSION if active is None else active.version

    @property
    def pending_version(self) -> int:
        """Version staged and waiting for swap_if_ready(), -1 when none."""
        pending = self._pending
        return NO_VERSION if pending is None else pending.version

    @property
    def rejected_total(self) -> int:
        """All refused payloads (an int kept apart from the dict, so any thread can read it safely)."""
        return self._rejected_total

    def swap_if_ready(self) -> bool:
        """Make a staged copy active (loop thread, between two control steps). True when it swapped."""
        pending = self._pending
        if pending is None:
            return False
        self._active = pending       # the swap: one reference assignment
        self._pending = None         # only now may the loader write into the previously active copy
        self.swapped += 1
        return True

    # ------------------------------------------------------------------ any thread
    def offer(self, payload: WeightsPayload) -> None:
        """Hand new weights to the loader (non-blocking apart from a tiny mailbox lock the loop never
        takes). A payload not yet staged is superseded by a newer offer."""
        if not isinstance(payload, WeightsPayload):
            raise TypeError(f'expected a WeightsPayload, got {type(payload).__name__}')
        with self._mailbox_lock:
            if self._mailbox is not None:
                self.superseded += 1
            self._mailbox = payload
            self.offered += 1
        self._wake.set()

    def load_payload_now(self, payload: WeightsPayload) -> int:
        """Validate and activate synchronously (start-up, eval mode): call before the loop runs and
        before start(). Raises WeightsRejected (and counts it) on any defect; returns the version."""
        if self._thread is not None and self._thread.is_alive():
            raise RuntimeError('load_payload_now() is for start-up: the loader thread is running, use offer()')
        if not isinstance(payload, WeightsPayload):
            raise TypeError(f'expected a WeightsPayload, got {type(payload).__name__}')
        copy = self._stage(payload, raise_rejection=True)
        self._active, self._pending = copy, None
        self.swapped += 1
        return copy.version

    def start(self) -> None:
        """Start the loader thread (daemon)."""
        if self._thread is not None:
            raise RuntimeError('the loader thread was already started')
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name='actor-loader', daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 1.0) -> bool:
        """Stop the loader thread; True when it ended within timeout."""
        self._stop.set()
        self._wake.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every offered payload has been staged, rejected or superseded (tests, start-up
        checks). A payload waiting for the loop to take the staged copy counts as not idle."""
        with self._progress:
            return self._progress.wait_for(lambda: self._mailbox is None and self._candidate is None, timeout)

    # ------------------------------------------------------------------ loader thread
    def _run(self) -> None:
        while not self._stop.is_set():
            # Clear before looking at the mailbox so that an offer made after the look wakes us again.
            self._wake.clear()
            with self._mailbox_lock:
                newest, self._mailbox = self._mailbox, None
                if newest is not None:
                    if self._candidate is not None:
                        self.superseded += 1
                    self._candidate = newest
                candidate = self._candidate
            if candidate is not None and self._pending is None:
                self._stage(candidate, raise_rejection=False)
                with self._progress:
                    if self._candidate is candidate:
                        self._candidate = None
                    self._progress.notify_all()
                continue
            # Nothing to do, or the staged copy is still waiting for the loop: poll until it is taken.
            self._wake.wait(self.poll_s if candidate is not None else 0.5)

    def _stage(self, payload: WeightsPayload, raise_rejection: bool) -> NumpyActor | None:
        """Validate and copy into the inactive copy; publish it as pending (loader) or return it."""
        active = self._active
        try:
            if payload.version == 0:
                raise WeightsRejected('bad_version', 'version 0 means "no policy" in segments and stats; '
                                                     'weights must be numbered from 1')
            arrays = decode_weights(payload, self.architecture_id, self.shapes,
                                    NO_VERSION if active is None else active.version)
        except WeightsRejected as exc:
            self._reject(exc.reason, str(exc))
            if raise_rejection:
                raise
            return None
        except Exception as exc:  # a malformed object from a caller: count it, keep the loader alive
            self._reject('malformed', f'weights rejected (malformed): {type(exc).__name__}: {exc}')
            if raise_rejection:
                raise WeightsRejected('malformed', f'{type(exc).__name__}: {exc}') from exc
            return None
        target = self._copies[1] if active is self._copies[0] else self._copies[0]   # never the active one
        target.load_weights(arrays, version=int(payload.version))
        self.staged += 1
        if not raise_rejection:
            self._pending = target   # publish: the loop may swap from the next step on
        return target

    def record_rejection(self, reason: str, message: str) -> None:
        """Count weights refused before they became a payload (e.g. a malformed PolicyWeights message
        the node could not read), so that `rejected` / weights_rejected cover every refusal."""
        self._reject(str(reason), str(message))

    def _reject(self, reason: str, message: str) -> None:
        with self._mailbox_lock:   # the loader and ROS callbacks may both count; the loop never does
            self.rejected[reason] = self.rejected.get(reason, 0) + 1
            self._rejected_total += 1
            self.last_rejection = message
        if self.on_rejected is not None:
            try:
                self.on_rejected(reason, message)
            except Exception:
                pass


__all__ = ['NO_VERSION', 'DoubleBufferedActor', 'load_weights_file']
