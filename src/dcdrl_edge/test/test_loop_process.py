"""The control loop in its own process: shared ring, shared actor copies, and the child end to end."""
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dcdrl_core.protocol import EdgeCommandKind, SegmentFlag
from dcdrl_edge.controller import ControllerConfig
from dcdrl_edge.loop_process import LoopLayout, LoopProcess, LoopSideActor, SharedActorSlots, SimPlantSpec, _layout_size
from dcdrl_edge.plant import SimulatedCartPolePlant
from dcdrl_edge.shared_state import ArrayArena, SharedBlock, SharedRing
from dcdrl_learning.codec import make_payload
from dcdrl_learning.inference import NumpyActor, actor_shapes
from dcdrl_learning.networks import PRESETS, architecture_id

CONFIG = PRESETS['cloud_edge']
PLANT = SimulatedCartPolePlant({'frequency_hz': 200.0})
OBS_DIM, ACTION_DIM = PLANT.observation_dim, PLANT.action_dim
PLANT.close()
ARCH = architecture_id(CONFIG, OBS_DIM, ACTION_DIM)
SHAPES = actor_shapes(CONFIG, OBS_DIM, ACTION_DIM)


def weights(version, seed=None, value=None):
    rng = np.random.default_rng(version if seed is None else seed)
    arrays = [rng.normal(0, 0.3, shape).astype(np.float32) for shape in SHAPES.values()]
    if value is not None:
        arrays[0][0, 0] = value
    return make_payload(ARCH, version, SHAPES.keys(), SHAPES.values(), arrays)


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)   # polling another process's counters (no event to wait on), bounded
    raise AssertionError(f'timed out after {timeout} s waiting for {what}')


# ------------------------------------------------------------------ shared block and ring
def test_block_is_shared_by_path_and_unlinked():
    block = SharedBlock(4096)
    assert os.path.exists(block.path)
    other = SharedBlock(4096, block.path, create=False)
    a = np.ndarray(8, np.int64, buffer=block.buffer)
    b = np.ndarray(8, np.int64, buffer=other.buffer)
    a[3] = 42
    assert b[3] == 42
    block.unlink()
    assert not os.path.exists(block.path)
    a[4] = 7                      # the mapping outlives the file
    assert b[4] == 7
    with pytest.raises(ValueError, match='smaller'):
        big = SharedBlock(64)
        try:
            SharedBlock(1 << 20, big.path, create=False)
        finally:
            big.unlink()


def make_ring(capacity=4, n_int=2, n_float=3, lock=None):
    arena = ArrayArena(np.zeros(1 << 16, np.uint8).data)
    return SharedRing(arena, capacity, n_int, n_float, lock or multiprocessing.Lock())


def test_ring_keeps_order_and_lays_float_parts_one_after_the_other():
    ring = make_ring()
    assert ring.put((1, 10), (np.array([1.0, 2.0]), np.array([3.0])))
    assert ring.put((2, 20), (np.array([4.0, 5.0]), np.array([6.0])))
    ints, floats = ring.take()
    assert ints.tolist() == [[1, 10], [2, 20]]
    assert floats.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert ring.take()[0].shape == (0, 2)


def test_ring_drops_the_oldest_when_full_and_counts_exactly():
    ring = make_ring(capacity=4)
    for k in range(10):
        ring.put((k, 0), (np.zeros(3),))
    assert ring.dropped == 6 and ring.written == 10
    ints, _ = ring.take(max_items=3)
    assert ints[:, 0].tolist() == [6, 7, 8]
    assert ring.take()[0][:, 0].tolist() == [9]


def test_ring_producer_never_waits_for_a_busy_lock():
    lock = multiprocessing.Lock()
    ring = make_ring(capacity=8, lock=lock)
    lock.acquire()                              # the consumer holds it
    try:
        started = time.monotonic()
        assert ring.put((1, 0), (np.zeros(3),)) is False
        assert ring.put((2, 0), (np.zeros(3),)) is False
        assert time.monotonic() - started < 0.5
        assert ring.backlog == 2 and ring.lock_busy == 2
        assert ring.take(block=False) is None   # a non-blocking consumer also just returns
    finally:
        lock.release()
    assert ring.put((3, 0), (np.zeros(3),)) is True and ring.backlog == 0
    assert ring.take()[0][:, 0].tolist() == [1, 2, 3]


def test_ring_backlog_overflow_is_counted():
    lock = multiprocessing.Lock()
    ring = make_ring(capacity=2, lock=lock)
    with lock:
        for k in range(5):
            ring.put((k, 0), (np.zeros(3),))
    assert ring.backlog_dropped == 3 and ring.dropped == 3
    assert ring.flush() and ring.take()[0][:, 0].tolist() == [3, 4]


# ------------------------------------------------------------------ actor copies in shared memory
def test_numpy_actor_in_shared_memory_matches_a_private_one_and_a_view_sees_the_writes():
    block = SharedBlock(1 << 20)
    block.unlink()
    payload = weights(3)
    private = NumpyActor.from_payload(payload, CONFIG, OBS_DIM, ACTION_DIM)
    arrays = private.weights()
    writer = NumpyActor(CONFIG, OBS_DIM, ACTION_DIM, arrays, version=3, allocate=ArrayArena(block.buffer).float32)
    view = NumpyActor(CONFIG, OBS_DIM, ACTION_DIM, None, allocate=ArrayArena(block.buffer).float32)
    obs = np.random.default_rng(1).normal(size=OBS_DIM).astype(np.float32)
    np.testing.assert_allclose(writer(obs), private(obs), atol=1e-6)
    np.testing.assert_allclose(view(obs).copy(), private(obs), atol=1e-6)   # weights=None kept the block's
    assert view.version == -1


def two_sides(config=None):
    """The node's layout and a second one over the same block (what the child builds)."""
    config = config or ControllerConfig(rate_hz=200.0)
    locks = {'control': multiprocessing.Lock(), 'segments': multiprocessing.Lock(), 'commands': multiprocessing.Lock()}
    size = _layout_size(config, CONFIG, OBS_DIM, ACTION_DIM)
    block = SharedBlock(size)
    block.unlink()
    node = LoopLayout(ArrayArena(block.buffer), config, CONFIG, OBS_DIM, ACTION_DIM, locks)
    node.control[:2] = -1
    slots = SharedActorSlots(CONFIG, OBS_DIM, ACTION_DIM, node)
    loop = LoopLayout(ArrayArena(block.buffer), config, CONFIG, OBS_DIM, ACTION_DIM, locks)
    return slots, loop, locks


def test_staged_weights_reach_the_loop_only_at_its_swap():
    slots, loop_layout, _ = two_sides()
    slots.start()
    try:
        loop = LoopSideActor(loop_layout, OBS_DIM, ACTION_DIM)
        assert loop.active is None and loop.swap_if_ready() is False
        slots.offer(weights(1))
        assert slots.wait_idle(5.0) and slots.pending_version == 1
        assert loop.active is None                      # staged, not taken
        assert loop.swap_if_ready() and loop.version == 1 and slots.version == 1 and slots.swapped == 1
        obs = np.ones(OBS_DIM, np.float32)
        expected = NumpyActor.from_payload(weights(1), CONFIG, OBS_DIM, ACTION_DIM)(obs).copy()
        np.testing.assert_allclose(loop.active(obs), expected, atol=1e-6)
        first = loop.active
        before = first(obs).copy()
        slots.offer(weights(2))
        assert slots.wait_idle(5.0)
        np.testing.assert_array_equal(first(obs), before)   # the active copy was not written
        assert loop.swap_if_ready() and loop.version == 2 and loop.active is not first
    finally:
        assert slots.stop(5.0)


def test_bad_weights_are_refused_on_the_node_side_and_the_loop_keeps_its_actor():
    slots, loop_layout, _ = two_sides()
    slots.start()
    try:
        loop = LoopSideActor(loop_layout, OBS_DIM, ACTION_DIM)
        slots.offer(weights(5))
        assert slots.wait_idle(5.0) and loop.swap_if_ready()
        slots.offer(weights(6, value=float('nan')))
        assert slots.wait_idle(5.0)
        slots.offer(make_payload('other-arch', 7, SHAPES.keys(), SHAPES.values(),
                                 [np.zeros(s, np.float32) for s in SHAPES.values()]))
        assert slots.wait_idle(5.0)
        slots.offer(weights(4))                          # older than the active one
        assert slots.wait_idle(5.0)
        assert loop.swap_if_ready() is False and loop.version == 5
        assert slots.rejected_total == 3                     # NaN, other architecture, older version
        assert len(slots.rejected) == 3 and slots.rejected['stale_version'] == 1 and slots.rejected['non_finite'] == 1
    finally:
        assert slots.stop(5.0)


def test_a_busy_control_lock_delays_the_swap_by_a_step_without_waiting():
    slots, loop_layout, locks = two_sides()
    slots.start()
    try:
        loop = LoopSideActor(loop_layout, OBS_DIM, ACTION_DIM)
        slots.offer(weights(1))
        assert slots.wait_idle(5.0)
        with locks['control']:
            started = time.monotonic()
            assert loop.swap_if_ready() is False
            assert time.monotonic() - started < 0.5
        assert loop.swap_if_ready() and loop.version == 1
    finally:
        assert slots.stop(5.0)


# ------------------------------------------------------------------ the child process
@pytest.fixture
def loop_process():
    made = []

    def make(**overrides):
        config = ControllerConfig(**{'rate_hz': 200.0, 'device_id': 'lp', **overrides})
        loop = LoopProcess(config, SimPlantSpec({'frequency_hz': config.rate_hz}, seed=3), CONFIG, OBS_DIM,
                           ACTION_DIM)
        made.append(loop)
        return loop
    yield make
    for loop in made:
        loop.stop(5.0)
        loop.close()
        assert not loop.running


def test_loop_process_runs_without_cloud_then_streams_the_swapped_version(loop_process):
    loop = loop_process()
    received = []
    sender = loop.make_sender(received.extend)
    loop.actor.start()
    loop.start()
    sender.start()
    try:
        assert not os.path.exists(loop.block.path)           # unlinked once both sides mapped it
        wait_until(lambda: loop.steps >= 100, 20, '100 steps with no weights')
        assert loop.stats()['mode'] == 2 and loop.running     # MODE_FALLBACK, nothing streamed
        assert received == []
        loop.actor.offer(weights(1))
        wait_until(lambda: len(received) >= 50, 20, 'segments after the first weights')
        assert {s.policy_version for s in received} == {1}
        assert received[0].flags & SegmentFlag.EPISODE_START and received[0].observation.shape == (OBS_DIM,)
        sequences = [s.sequence for s in received]
        assert sequences == sorted(sequences)
        loop.actor.offer(weights(2, value=float('inf')))     # refused on the node side
        assert loop.actor.wait_idle(10.0)                    # (else version 3 could supersede it)
        loop.actor.offer(weights(3))
        # The board (policy_version) follows the swap within its 10 ms period.
        wait_until(lambda: loop.stats()['policy_version'] == 3, 20, 'version 3 swapped in')
        stats = loop.stats()
        assert stats['weights_swapped'] == 2 and stats['weights_rejected'] == 1
        swaps = loop.swaps()
        assert [version for version, _ in swaps] == [1, 3] and swaps[0][1] < swaps[1][1] <= time.monotonic_ns()
        assert stats['segments_dropped'] == 0 and stats['period_error_p50_us'] >= 0
        episode = stats['episode']
        loop.command(EdgeCommandKind.RESET)
        wait_until(lambda: loop.stats()['episode'] > episode, 20, 'a new episode after RESET')
        assert loop.diagnostics()['commands_taken'] == 1
        with pytest.raises(ValueError):
            loop.command(99)
        assert loop.commands_refused == 1
    finally:
        assert loop.stop(5.0) == 0
        sender.stop(5.0)
    assert received[-1].sequence <= loop.stats()['steps']


def test_loop_process_that_cannot_start_is_reported(loop_process):
    loop = LoopProcess(ControllerConfig(rate_hz=200.0), SimPlantSpec({'frequency_hz': -1.0}), CONFIG,
                       OBS_DIM, ACTION_DIM)
    with pytest.raises(RuntimeError, match='did not start'):
        loop.start(timeout=60.0)
    assert loop.exitcode not in (None, 0)
    loop.close()


def test_topic_plants_are_refused():
    with pytest.raises(TypeError, match='loop_process:=false'):
        LoopProcess(ControllerConfig(), object(), CONFIG, OBS_DIM, ACTION_DIM)


ORPHAN = """
import json, sys, time
from dcdrl_edge.controller import ControllerConfig
from dcdrl_edge.loop_process import LoopProcess, SimPlantSpec
if __name__ == '__main__':
    loop = LoopProcess(ControllerConfig(rate_hz=100.0), SimPlantSpec({'frequency_hz': 100.0}), 'cloud_edge', %d, %d)
    loop.start()
    print(json.dumps({'child': loop.pid}), flush=True)
    time.sleep(120)
"""


def test_loop_process_ends_when_the_node_is_killed(tmp_path):
    script = tmp_path / 'orphan.py'
    script.write_text(ORPHAN % (OBS_DIM, ACTION_DIM))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        line = parent.stdout.readline()
        child = json.loads(line)['child']
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)

        def gone():
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return True
            state = Path(f'/proc/{child}/stat').read_text().split()[2] if Path(f'/proc/{child}/stat').exists() else 'X'
            return state == 'Z'
        wait_until(gone, 10, 'the orphaned loop process to end')
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


def test_a_lock_never_released_makes_the_blocking_side_give_up(monkeypatch):
    import dcdrl_edge.shared_state as shared_state
    monkeypatch.setattr(shared_state, 'LOCK_TIMEOUT_S', 0.05)
    lock = multiprocessing.Lock()
    ring = make_ring(lock=lock)
    lock.acquire()            # as if the other process died inside its critical section
    try:
        assert ring.take() is None
        assert ring.put((1, 0), (np.zeros(3),), block=True) is False and ring.backlog == 1
        assert ring.lock_busy == 2
    finally:
        lock.release()
    assert ring.flush(block=True) and ring.take()[0][:, 0].tolist() == [1]
