"""DropOldestQueue: exact drop counts, producer never blocks; SegmentSender: delivers all, survives errors."""
import threading

import numpy as np
import pytest

from dcdrl_core.protocol import SegmentFlag
from dcdrl_edge.segment_queue import DropOldestQueue, Segment, SegmentSender


def test_segment_is_slotted_and_knows_final():
    seg = Segment(3, 1, 2, np.zeros(10, np.float32), np.zeros(1, np.float32),
                  SegmentFlag.TRUNCATED | SegmentFlag.EVALUATION, 5)
    assert seg.is_final and not Segment(3, 1, 2, seg.observation, seg.action, SegmentFlag.EPISODE_START, 5).is_final
    with pytest.raises(AttributeError):
        seg.extra = 1


def test_drop_oldest_keeps_newest_and_counts_exactly():
    queue = DropOldestQueue(4)
    results = [queue.put(i) for i in range(10)]
    assert results == [True] * 4 + [False] * 6
    assert len(queue) == 4 and queue.pushed == 10 and queue.dropped == 6
    assert queue.pop_all() == [6, 7, 8, 9]
    assert queue.popped == 4 and queue.pushed == queue.popped + queue.dropped + len(queue)
    queue.put(10)
    queue.put(11)
    assert queue.pop_all(max_items=1) == [10] and queue.pop_all() == [11] and queue.pop_all() == []


def test_capacity_is_validated():
    for capacity in (0, -1, 1.5, None, True):
        with pytest.raises(ValueError, match='capacity'):
            DropOldestQueue(capacity)


def test_producer_never_blocks_while_a_consumer_races_and_counts_stay_exact():
    queue = DropOldestQueue(8)
    stop = threading.Event()
    received = []

    def consume():
        while not stop.is_set():
            received.extend(queue.pop_all(max_items=3))
        received.extend(queue.pop_all())

    consumer = threading.Thread(target=consume, daemon=True)
    consumer.start()
    n = 50_000
    for i in range(n):
        queue.put(i)
    stop.set()
    consumer.join(timeout=10)
    assert not consumer.is_alive()
    assert queue.pushed == n
    assert queue.pushed == queue.popped + queue.dropped + len(queue)
    assert len(received) == queue.popped
    assert received == sorted(received) and len(set(received)) == len(received)   # FIFO, no duplicates
    assert received[-1] == n - 1 or len(queue) > 0


def test_full_queue_without_consumer_keeps_accepting():
    queue = DropOldestQueue(2)
    for i in range(1000):
        queue.put(i)                      # would hang here if put() ever waited for room
    assert queue.dropped == 998 and queue.pop_all() == [998, 999]


def test_sender_delivers_everything_in_order():
    queue = DropOldestQueue(10_000)
    got, done = [], threading.Event()

    def send(batch):
        got.extend(batch)
        if len(got) >= 500:
            done.set()

    sender = SegmentSender(queue, send, period_s=0.001)
    sender.start()
    for i in range(500):
        queue.put(i)
    assert done.wait(timeout=5.0)
    assert sender.stop(timeout=5.0)
    assert got == list(range(500)) and sender.sent == 500 and sender.send_errors == 0
    assert sender.batches >= 1 and not sender.running


def test_sender_survives_a_raising_send_and_reports_it():
    queue = DropOldestQueue(100)
    got, errors, second_ok, failed = [], [], threading.Event(), threading.Event()
    calls = {'n': 0}

    def on_error(exc):
        errors.append(exc)
        failed.set()

    def send(batch):
        calls['n'] += 1
        if calls['n'] == 1:
            raise ConnectionError('link down')
        got.extend(batch)
        second_ok.set()

    sender = SegmentSender(queue, send, period_s=0.001, on_error=on_error)
    queue.put('lost')
    sender.start()
    assert failed.wait(timeout=5.0)
    assert sender.send_errors == 1 and sender.failed_items == 1
    queue.put('kept')
    assert second_ok.wait(timeout=5.0)
    assert sender.stop(timeout=5.0)
    assert got == ['kept'] and isinstance(errors[0], ConnectionError)
    assert 'link down' in sender.last_error


def test_stop_drains_what_is_left():
    queue = DropOldestQueue(100)
    got = []
    sender = SegmentSender(queue, got.extend, period_s=5.0)   # would not wake on its own in this test
    sender.start()
    for i in range(7):
        queue.put(i)
    assert sender.stop(timeout=5.0)
    assert got == list(range(7)) and len(queue) == 0


def test_sender_max_batch_and_validation():
    queue = DropOldestQueue(100)
    batches = []
    sender = SegmentSender(queue, batches.append, max_batch=3)
    for i in range(7):
        queue.put(i)
    assert sender.drain() == 7
    assert batches == [[0, 1, 2], [3, 4, 5], [6]]
    with pytest.raises(ValueError, match='period_s'):
        SegmentSender(queue, print, period_s=0)
    with pytest.raises(TypeError, match='DropOldestQueue'):
        SegmentSender([], print)
    assert SegmentSender(queue, print).stop()   # never started: nothing to wait for
