"""FaceWorker: recognition in a spawned child, the bounded queue, and restarts after the child dies."""
import os
import signal
import time

import numpy as np
import pytest

from dcdrl_edge.face_worker import FaceWorker
from dcdrl_edge.faces import FaceEngine

pytestmark = pytest.mark.slow
TIMEOUT = 60.0  # a loaded 2-core machine; every wait ends as soon as its result is there


@pytest.fixture(scope='module')
def worker(known_dir):
    worker = FaceWorker(known_faces_dir=known_dir, queue_size=2)
    worker.start(timeout=TIMEOUT)
    yield worker
    worker.stop()


def collect(worker, count, timeout=TIMEOUT):
    """Polls until ``count`` results are in; fails after ``timeout`` s."""
    results = []
    deadline = time.monotonic() + timeout
    while len(results) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f'only {len(results)} of {count} results within {timeout} s: {worker.stats()}'
        results += worker.poll(timeout=min(remaining, 1.0))
    return results


def test_recognises_in_the_child_like_a_local_engine(worker, astronaut):
    assert worker.ready and worker.known_people == ['eileen'] and worker.pid != os.getpid()
    assert worker.submit(7, astronaut)
    [result] = collect(worker, 1)
    assert result.task_id == 7 and result.ok and result.error == ''
    assert 'eileen' in result.names
    assert list(result.boxes) == FaceEngine().detect(astronaut)
    assert result.compute_time_s > 0 and result.latency_s >= 0


def test_the_queue_is_bounded_and_full_submits_are_counted(worker, astronaut):
    before = worker.stats()
    assert worker.submit(1, astronaut) and worker.submit(2, astronaut)
    assert worker.pending == 2
    assert not worker.submit(3, astronaut)                       # full: refused at once, not queued
    with pytest.raises(ValueError, match='already pending'):
        worker.submit(1, astronaut)
    results = collect(worker, 2)
    assert [r.task_id for r in results] == [1, 2] and all(r.ok for r in results)
    after = worker.stats()
    assert after['refused_full'] == before['refused_full'] + 1
    assert after['completed'] == before['completed'] + 2 and after['pending'] == 0


def test_bad_submissions_raise_clearly(worker):
    with pytest.raises(TypeError, match='uint8'):
        worker.submit(10, np.zeros((20, 20, 3), np.float64))
    with pytest.raises(ValueError, match='task_id must be an integer >= 0'):
        worker.submit(-1, np.zeros((20, 20, 3), np.uint8))
    with pytest.raises(ValueError, match='tolerance'):
        worker.submit(11, np.zeros((20, 20, 3), np.uint8), tolerance=7.0)
    with pytest.raises(ValueError, match='queue_size must be an integer >= 1'):
        FaceWorker(queue_size=0)
    with pytest.raises(ValueError, match='does not exist'):
        FaceWorker(known_faces_dir='/nonexistent/faces')
    with pytest.raises(RuntimeError, match='not started'):
        FaceWorker().submit(1, np.zeros((20, 20, 3), np.uint8))


def test_a_killed_child_is_restarted_and_no_task_is_lost(worker, astronaut):
    restarts = worker.restarts
    old_pid = worker.pid
    os.kill(old_pid, signal.SIGKILL)                            # the child this test's fixture started
    assert worker.submit(20, astronaut)                         # submitted before anyone noticed
    [first] = collect(worker, 1)
    # it either never reached the dead child (and ran on the new one) or is reported lost with it
    assert first.task_id == 20 and (first.ok or 'crashed' in first.error), first
    assert worker.restarts == restarts + 1 and worker.pid not in (None, old_pid)
    assert worker.submit(21, astronaut)
    [second] = collect(worker, 1)
    assert second.task_id == 21 and second.ok and 'eileen' in second.names   # known faces reloaded


def test_a_worker_that_keeps_crashing_gives_up_and_fails_its_tasks(astronaut):
    worker = FaceWorker(queue_size=2, max_restarts=0)
    worker.start(timeout=TIMEOUT)
    try:
        pid = worker.pid
        assert worker.submit(1, astronaut) and worker.submit(2, astronaut)
        os.kill(pid, signal.SIGKILL)
        results = collect(worker, 2)
        assert sorted(r.task_id for r in results) == [1, 2]
        assert all(not r.ok and ('crashed' in r.error or 'gave up' in r.error) for r in results), results
        assert not worker.submit(3, astronaut)
        stats = worker.stats()
        assert stats['given_up'] and stats['refused_dead'] == 1 and stats['failed'] == 2 and stats['pending'] == 0
    finally:
        worker.stop()
    with pytest.raises(ProcessLookupError):  # stop() ended and reaped the child
        os.kill(pid, 0)
