"""The control loop in its own process: nothing else competes with it for the interpreter.

In one process the loop thread shares CPython's GIL with the DDS executor, the segment sender and
the weights loader; every time one of them holds the GIL when a deadline comes, the step starts
late (docs/edge-controller.md measures it). Here the loop runs in a child process of the node with
only the plant, the two actor copies and the EdgeController; the node process keeps everything
else. They share one block of memory (dcdrl_edge.shared_state):

- weights: the two actor copies live in the block. The node's SharedActorSlots (a
  DoubleBufferedActor) validates a payload and writes it into the copy that is neither active nor
  staged, then marks it staged; the loop's LoopSideActor swaps it in between two steps. Both marks
  (active, staged) are read and written under one lock; the loop only tries that lock, so a busy
  lock delays a swap by one step and never delays a step.
- segments: a SharedRing the loop writes (drop-oldest, exact counts) and the node's sender drains.
- commands: a SharedRing the node writes and the loop reads between steps.
- statistics: a board of numbers and the period-error / inference-time windows the loop writes
  every few milliseconds; the node reads them for LoopStats and /diagnostics.
- stop: a flag the loop checks every step; the node joins the process by its id, kills it if it
  does not end in time.

    loop = LoopProcess(config, SimPlantSpec(options, seed), 'cloud_edge', obs_dim=10, action_dim=1)
    loop.actor.offer(payload)               # as DoubleBufferedActor
    sender = loop.make_sender(publish)      # drains the segments
    loop.start(); sender.start()
    loop.command(RESET); loop.stats(); loop.diagnostics()
    loop.stop(); sender.stop(); loop.close()

The child is started with the 'spawn' method (a fresh interpreter: forking a process that runs DDS
threads is not safe) and gets only plain values, the block's path, two locks and an event.
"""
from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dcdrl_core.protocol import LoopMode
from dcdrl_learning.inference import NumpyActor
from dcdrl_learning.network_spec import network_config as resolve_network_config

from .actor_buffer import NO_VERSION, DoubleBufferedActor
from .controller import ControllerConfig, EdgeController, counted_command
from .segment_queue import Segment, SegmentSender
from .shared_state import ArrayArena, SharedBlock, SharedRing
from .timing import set_realtime_priority, summarize

# Control words (int64, under the control lock unless noted).
ACTIVE, PENDING, VERSION_0, VERSION_1, SWAPPED, STOP, RT_STATUS = range(7)
CONTROL_WORDS = 7
SWAP_LOG = 256   # the last swaps as (version, monotonic ns), for weight-delivery measurements

# Board: numbers the loop writes every few milliseconds without a lock (each one an aligned 8-byte
# store, read whole); the node only reads them.
BOARD_FIELDS = ('steps', 'episode', 'mode', 'policy_version', 'misses', 'skipped', 'period_total',
                'inference_total', 'segments_queued', 'episodes_finished', 'fallback_episodes', 'commands_taken',
                'nonfinite_actions', 'evaluation_pending', 'last_action', 'backlog_dropped', 'lock_busy',
                'observation_valid')
BOARD = {name: index for index, name in enumerate(BOARD_FIELDS)}

BLAS_THREAD_VARIABLES = ('OPENBLAS_NUM_THREADS', 'OMP_NUM_THREADS', 'MKL_NUM_THREADS')
SEGMENT_INTS = 5   # sequence, episode, policy_version, flags, stamp_ns
BOARD_PERIOD_S = 0.01


@dataclass(frozen=True)
class SimPlantSpec:
    """The simulated cart-pole plant, rebuilt in the loop process: SimulatedCartPolePlant(options, seed)."""

    options: Mapping[str, Any] = field(default_factory=dict)
    seed: int = 0

    def build(self) -> Any:
        from .plant import SimulatedCartPolePlant
        return SimulatedCartPolePlant(dict(self.options), seed=self.seed)


class LoopLayout:
    """Every shared array, allocated in one fixed order (the same in both processes)."""

    def __init__(self, arena: ArrayArena, config: ControllerConfig, network: Any, obs_dim: int, action_dim: int,
                 locks: Mapping[str, Any]) -> None:
        self.control = arena.array(CONTROL_WORDS, np.int64)
        self.swap_log = arena.array((SWAP_LOG, 2), np.int64)   # row SWAPPED % SWAP_LOG, under the control lock
        self.board = arena.array(len(BOARD_FIELDS), np.float64)
        self.observation = arena.array(obs_dim, np.float64)
        self.period_us = arena.array(config.stats_window, np.float64)
        self.inference_us = arena.array(config.stats_window, np.float64)
        self.segments = SharedRing(arena, config.queue_capacity, SEGMENT_INTS, obs_dim + action_dim,
                                   locks['segments'])
        self.commands = SharedRing(arena, 64, 1, 0, locks['commands'])
        self.control_lock = locks['control']
        # The two actor copies' weights (NumpyActor allocates its weight arrays in this order).
        self.copies = tuple(NumpyActor(network, obs_dim, action_dim, None, allocate=arena.float32) for _ in range(2))


def _layout_size(config: ControllerConfig, network: Any, obs_dim: int, action_dim: int) -> int:
    arena = ArrayArena(None)
    locks = {'segments': None, 'commands': None, 'control': None}
    LoopLayout(arena, config, network, obs_dim, action_dim, locks)
    return arena.offset + 64


# ---------------------------------------------------------------------------------- node side
class SharedActorSlots(DoubleBufferedActor):
    """The node's side of the double buffer: validation and loading as DoubleBufferedActor, with
    both copies in shared memory and the active / staged marks in the control words."""

    def __init__(self, network: Any, obs_dim: int, action_dim: int, layout: LoopLayout,
                 on_rejected: Callable[[str, str], None] | None = None, poll_s: float = 0.001) -> None:
        self._layout = layout
        super().__init__(network, obs_dim, action_dim, on_rejected=on_rejected, poll_s=poll_s)

    def _make_copy(self, index: int) -> NumpyActor:
        return self._layout.copies[index]   # a new block is zero-filled; version NO_VERSION until loaded

    def _mark(self, word: int) -> NumpyActor | None:
        with self._layout.control_lock:
            index = int(self._layout.control[word])
        return None if index < 0 else self._copies[index]

    def _set_mark(self, word: int, copy: NumpyActor | None) -> None:
        control = self._layout.control
        with self._layout.control_lock:
            if copy is None:
                control[word] = -1
            else:
                index = 0 if copy is self._copies[0] else 1
                control[VERSION_0 + index] = copy.version   # before the mark: the loop reads both at once
                control[word] = index

    _active = property(lambda self: self._mark(ACTIVE), lambda self, copy: self._set_mark(ACTIVE, copy))
    _pending = property(lambda self: self._mark(PENDING), lambda self, copy: self._set_mark(PENDING, copy))

    @property
    def swapped(self) -> int:
        return int(self._layout.control[SWAPPED])

    @swapped.setter
    def swapped(self, value: int) -> None:   # DoubleBufferedActor counts a start-up load as a swap
        self._layout.control[SWAPPED] = value

    def swap_if_ready(self) -> bool:
        raise RuntimeError('the loop process swaps (LoopSideActor); the node only stages')


class SegmentReader:
    """The node's side of the segment ring, as the SegmentSender expects a queue (pop_all)."""

    def __init__(self, ring: SharedRing, obs_dim: int) -> None:
        self.ring, self.obs_dim = ring, obs_dim

    def pop_all(self, max_items: int | None = None) -> list[Segment]:
        taken = self.ring.take(max_items)
        if taken is None:   # the loop process died holding the ring's lock: nothing more will come
            return []
        ints, floats = taken
        obs_dim = self.obs_dim
        return [Segment(int(i[0]), int(i[1]), int(i[2]), f[:obs_dim], f[obs_dim:], int(i[3]), int(i[4]))
                for i, f in zip(ints, floats)]

    def __len__(self) -> int:
        return self.ring.pending()


class LoopProcess:
    """Runs an EdgeController in a child process; offers the node what EdgeController offers it
    (command, note_cloud_message, stats, diagnostics, make_sender) plus start / stop / close."""

    def __init__(self, config: ControllerConfig, plant: SimPlantSpec, network: Any, obs_dim: int, action_dim: int,
                 realtime_priority: int = 0, on_rejected: Callable[[str, str], None] | None = None) -> None:
        if not isinstance(config, ControllerConfig):
            raise TypeError(f'config must be a ControllerConfig, got {type(config).__name__}')
        if not isinstance(plant, SimPlantSpec):
            raise TypeError('the loop process runs plants it can build itself (SimPlantSpec); '
                            f'got {type(plant).__name__} (a topic plant needs loop_process:=false)')
        self.config = config
        self.network = resolve_network_config(network)
        self.obs_dim, self.action_dim = obs_dim, action_dim
        context = multiprocessing.get_context('spawn')
        self._locks = {'control': context.Lock(), 'segments': context.Lock(), 'commands': context.Lock()}
        self._ready = context.Event()
        size = _layout_size(config, self.network, obs_dim, action_dim)
        self.block = SharedBlock(size)
        self.layout = LoopLayout(ArrayArena(self.block.buffer), config, self.network, obs_dim, action_dim, self._locks)
        self.layout.control[[ACTIVE, PENDING]] = -1
        self.actor = SharedActorSlots(self.network, obs_dim, action_dim, self.layout, on_rejected=on_rejected)
        self.queue = SegmentReader(self.layout.segments, obs_dim)
        spec = {'config': config.to_dict(), 'plant': plant, 'network': self.network, 'obs_dim': obs_dim,
                'action_dim': action_dim, 'path': self.block.path, 'size': size, 'locks': self._locks,
                'ready': self._ready, 'realtime_priority': int(realtime_priority)}
        self._process = context.Process(target=run_loop_process, args=(spec,), name=f'control-loop-{config.device_id}',
                                        daemon=True)
        self._last_cloud_ns: int | None = None
        self._stopping = False
        self.commands_refused = 0

    # ------------------------------------------------------------------ life cycle
    def start(self, timeout: float = 60.0) -> None:
        """Start the child and wait (with a time-out) until its loop is about to run."""
        # One BLAS thread in the child: the actor's small matrix-vector products get slower, not
        # faster, when split with a helper thread, and a helper thread would not share the loop's
        # real-time priority. The variables must be set before the child imports numpy.
        saved = {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}
        os.environ.update({name: '1' for name in BLAS_THREAD_VARIABLES})
        try:
            self._process.start()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        deadline = time.monotonic() + timeout
        ready = False
        while not ready and self._process.is_alive() and time.monotonic() < deadline:
            ready = self._ready.wait(0.05)   # in slices, to notice a child that died on the way
        ready = ready or self._ready.is_set()
        self.block.unlink()   # both sides have it mapped: no file left behind, whatever happens next
        if not ready:
            self.stop(1.0)
            raise RuntimeError(f'the control-loop process did not start within {timeout:g} s '
                               f'(exit code {self._process.exitcode})')

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def exitcode(self) -> int | None:
        """None while the loop process runs (or before start)."""
        return self._process.exitcode

    @property
    def running(self) -> bool:
        return self._process.is_alive()

    def stop(self, timeout: float = 5.0) -> int | None:
        """Ask the loop to end (it writes the safe action), join it; kill it when it does not end in
        time. Returns its exit code."""
        self._stopping = True
        self.layout.control[STOP] = 1
        if self._process.pid is None:
            return None
        self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5.0)
        return self._process.exitcode

    def close(self) -> None:
        self.block.unlink()
        self.actor.stop()

    # ------------------------------------------------------------------ as EdgeController
    def command(self, kind: int) -> None:
        if not self.layout.commands.put((int(counted_command(self, kind)),), block=True):
            raise RuntimeError('the control-loop process does not release its command ring (it died?)')

    def note_cloud_message(self) -> None:
        self._last_cloud_ns = time.monotonic_ns()

    def make_sender(self, send: Callable[[list[Segment]], None],
                    on_error: Callable[[BaseException], None] | None = None) -> SegmentSender:
        # the reader has the queue's drain side (duck-typed)
        return SegmentSender(self.queue, send, period_s=self.config.send_period_s,  # type: ignore[arg-type]
                             on_error=on_error)

    def _board(self) -> dict[str, float]:
        values = self.layout.board.copy()
        return {name: float(values[index]) for name, index in BOARD.items()}

    def _window(self, values: np.ndarray, total: float) -> dict[str, float]:
        return summarize(values[:int(min(total, len(values)))])

    @property
    def steps(self) -> int:
        return int(self.layout.board[BOARD['steps']])

    @property
    def misses(self) -> int:
        return int(self.layout.board[BOARD['misses']])

    def stats(self) -> dict[str, Any]:
        """The LoopStats fields, as EdgeController.stats()."""
        b = self._board()
        period = self._window(self.layout.period_us, b['period_total'])
        inference = self._window(self.layout.inference_us, b['inference_total'])
        last_cloud = self._last_cloud_ns
        return {
            'mode': int(b['mode']), 'rate_hz': float(self.config.rate_hz), 'steps': int(b['steps']),
            'episode': int(b['episode']), 'policy_version': int(b['policy_version']),
            'period_error_p50_us': period['p50'], 'period_error_p99_us': period['p99'],
            'period_error_max_us': period['max'], 'misses': int(b['misses']),
            'inference_p50_us': inference['p50'], 'inference_max_us': inference['max'],
            'segments_queued': int(b['segments_queued']),
            'segments_dropped': self.layout.segments.dropped + int(b['backlog_dropped']),
            'weights_swapped': self.actor.swapped, 'weights_rejected': self.actor.rejected_total,
            'cloud_silent_s': -1.0 if last_cloud is None else (time.monotonic_ns() - last_cloud) * 1e-9,
            'last_action': b['last_action'],
            'observation': [float(v) for v in self.layout.observation] if b['observation_valid'] else [],
        }

    def diagnostics(self) -> dict[str, Any]:
        """As EdgeController.diagnostics(), plus the loop process's own state."""
        b = self._board()
        control = self.layout.control
        return {
            'device_id': self.config.device_id, 'mode_name': LoopMode(int(b['mode'])).label,
            'episodes_finished': int(b['episodes_finished']), 'fallback_episodes': int(b['fallback_episodes']),
            'evaluation_pending': bool(b['evaluation_pending']), 'deadlines_skipped': int(b['skipped']),
            'period_error_p99_us': self._window(self.layout.period_us, b['period_total'])['p99'],
            'inference_p99_us': self._window(self.layout.inference_us, b['inference_total'])['p99'],
            'queue_length': len(self.queue), 'weights_offered': self.actor.offered,
            'weights_superseded': self.actor.superseded, 'weights_rejected_by_reason': dict(self.actor.rejected),
            'last_rejection': self.actor.last_rejection, 'pending_version': max(self.actor.pending_version, 0),
            'commands_taken': int(b['commands_taken']), 'commands_refused': self.commands_refused,
            'nonfinite_actions': int(b['nonfinite_actions']), 'callback_errors': 0,
            'plant_rate_hz': None, 'plant_rate_matches': True,
            'loop_process_pid': self.pid, 'loop_process_exitcode': self.exitcode,
            'realtime_priority_status': int(control[RT_STATUS]), 'ring_lock_busy': int(b['lock_busy']),
        }

    def swaps(self) -> list[tuple[int, int]]:
        """The last (up to 256) swaps made by the loop: (version, time.monotonic_ns() of the swap)."""
        with self.layout.control_lock:
            count = int(self.layout.control[SWAPPED])
            log = self.layout.swap_log.copy()
        first = max(0, count - SWAP_LOG)
        return [(int(log[k % SWAP_LOG, 0]), int(log[k % SWAP_LOG, 1])) for k in range(first, count)]

    @property
    def realtime_status(self) -> int:
        """0: not asked; > 0: the SCHED_FIFO priority in effect; < 0: -errno of the refusal."""
        return int(self.layout.control[RT_STATUS])


# ---------------------------------------------------------------------------------- loop side
class LoopSideActor:
    """The loop's side of the double buffer: views of the two copies; swap_if_ready() takes a
    staged copy between two steps (trying the control lock, never waiting for it)."""

    def __init__(self, layout: LoopLayout, obs_dim: int, action_dim: int) -> None:
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self._layout, self._copies = layout, layout.copies
        self.active: NumpyActor | None = None
        with layout.control_lock:  # weights loaded at start-up (eval mode, weights_file)
            index = int(layout.control[ACTIVE])
            if index >= 0:
                self._activate(index)

    def _activate(self, index: int) -> None:
        copy = self._copies[index]
        copy.version = int(self._layout.control[VERSION_0 + index])
        self.active = copy

    @property
    def version(self) -> int:
        active = self.active
        return NO_VERSION if active is None else active.version

    def swap_if_ready(self) -> bool:
        control = self._layout.control
        if control[PENDING] < 0:        # a hint without the lock; checked again under it
            return False
        lock = self._layout.control_lock
        if not lock.acquire(False):
            return False                # the node is marking: take it next step
        try:
            index = int(control[PENDING])
            if index < 0:
                return False
            control[ACTIVE] = index
            control[PENDING] = -1
            self._activate(index)
            self._layout.swap_log[control[SWAPPED] % SWAP_LOG] = (self.active.version, time.monotonic_ns())
            control[SWAPPED] += 1
        finally:
            lock.release()
        return True


class RingSegmentQueue:
    """The loop's side of the segment ring, as EdgeController expects its queue (put / pushed / dropped)."""

    def __init__(self, ring: SharedRing) -> None:
        self.ring = ring
        self.pushed = 0

    def put(self, segment: Segment) -> bool:
        self.pushed += 1
        return self.ring.put((segment.sequence, segment.episode, segment.policy_version, segment.flags,
                              segment.stamp_ns), (segment.observation, segment.action))

    @property
    def dropped(self) -> int:
        return self.ring.dropped

    def __len__(self) -> int:
        return self.ring.pending() + self.ring.backlog


def _write_board(layout: LoopLayout, controller: EdgeController, queue: RingSegmentQueue) -> None:
    board, index = layout.board, BOARD
    counters = controller.counters()
    observation = counters.pop('observation')
    for name, value in counters.items():
        board[index[name]] = value
    board[index['segments_queued']] = queue.pushed
    board[index['backlog_dropped']] = queue.ring.backlog_dropped
    board[index['lock_busy']] = queue.ring.lock_busy
    if observation is not None:
        layout.observation[:] = observation
        board[index['observation_valid']] = 1


def run_loop_process(spec: dict) -> None:
    """The child's main: map the block, build plant and controller, run the loop until STOP."""
    config = ControllerConfig.from_dict(spec['config'])
    obs_dim, action_dim = spec['obs_dim'], spec['action_dim']
    block = SharedBlock(spec['size'], spec['path'], create=False)
    layout = LoopLayout(ArrayArena(block.buffer), config, spec['network'], obs_dim, action_dim, spec['locks'])
    control = layout.control
    priority = spec['realtime_priority']
    if priority > 0:
        ok, error_number = set_realtime_priority(priority)
        control[RT_STATUS] = priority if ok else -error_number
    plant = spec['plant'].build()
    actor = LoopSideActor(layout, obs_dim, action_dim)
    queue = RingSegmentQueue(layout.segments)
    # LoopSideActor: DoubleBufferedActor's loop-side methods over the shared block (duck-typed)
    controller = EdgeController(config, plant, actor, sleep=time.sleep, queue=queue,  # type: ignore[arg-type]
                                stats_buffers=(layout.period_us, layout.inference_us))
    stop = threading.Event()
    # The node stops this process (STOP word); Ctrl-C in a terminal reaches the whole process group,
    # so SIGINT is the node's to handle; SIGTERM ends the loop cleanly (safe action written).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    parent = os.getppid()
    commands = layout.commands
    board_every = max(1, int(config.rate_hz * BOARD_PERIOD_S))
    countdown = 0   # steps until the next board write

    def before_step() -> None:
        nonlocal countdown
        if control[STOP]:
            stop.set()
            return
        if commands.pending() > 0:
            taken = commands.take(block=False)
            if taken is not None:
                for kind in taken[0][:, 0]:
                    controller.command(int(kind))
        if queue.ring.backlog:
            queue.ring.flush()
        countdown -= 1
        if countdown <= 0:
            countdown = board_every
            _write_board(layout, controller, queue)
            if os.getppid() != parent:   # the node died without stopping us (SIGKILL): end too
                stop.set()

    gc.collect()
    gc.freeze()   # what exists now is never scanned again: shorter collections in the loop
    spec['ready'].set()
    try:
        controller.run(stop, before_step)
    except BaseException:
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        raise SystemExit(1) from None
    finally:
        queue.ring.flush(block=True)
        _write_board(layout, controller, queue)
        plant.close()


__all__ = ['BOARD_FIELDS', 'LoopLayout', 'LoopProcess', 'LoopSideActor', 'RingSegmentQueue', 'SegmentReader',
           'SharedActorSlots', 'SimPlantSpec', 'run_loop_process']
