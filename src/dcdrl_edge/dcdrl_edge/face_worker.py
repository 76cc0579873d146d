"""Face recognition in a separate process, so the device's control loop is never blocked.

``FaceWorker`` starts one child process (multiprocessing 'spawn': a fresh interpreter, no
fork of a process that holds DDS threads) that loads a FaceEngine and the known faces once,
then recognises one task at a time. The parent side:

* ``submit(task_id, image)`` never waits: it copies the image into a bounded queue and returns
  True, or returns False (counted as ``refused_full``) when ``queue_size`` tasks are already
  pending (waiting or running). A sender thread writes the queued tasks into the pipe, so a
  child busy with a task blocks that thread, not the caller.
* ``poll(timeout=0)`` returns the finished tasks (``WorkerResult``), waiting up to ``timeout``
  for the first one.
* A child that dies (crash, out of memory, killed) is noticed by ``poll``: the task it was
  running comes back failed ('worker crashed ...'), the child is started again (``restarts``),
  and waiting tasks go to the new child. After ``max_restarts`` restarts the worker gives up:
  submit() returns False and poll() fails what is pending.

On the pipes, nothing is pickled: a task is one ``send_bytes`` of a 4-byte header length, a JSON
header (task id, shape, tolerance) and the raw RGB bytes; a result is one JSON object of
strs, ints and floats. (Starting the child hands it the two pipe ends and a JSON string of
settings through multiprocessing's own start-up, which is local and trusted.)
"""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from dcdrl_edge.faces import MODELS, Box, check_tolerance
from dcdrl_edge.images import check_array

_LENGTH = struct.Struct('<I')


@dataclass(frozen=True)
class WorkerResult:
    """One finished task: the recognition result, or ok=False with the error."""

    task_id: int
    ok: bool
    names: tuple[str, ...] = ()
    boxes: tuple[Box, ...] = ()
    compute_time_s: float = 0.0   # the child's CPU time for recognition
    latency_s: float = 0.0        # submit() to the poll() that returned it (wall clock)
    error: str = ''


def _pack(header: dict[str, Any], payload: bytes = b'') -> bytes:
    text = json.dumps(header).encode()
    return _LENGTH.pack(len(text)) + text + payload


def _unpack(frame: bytes) -> tuple[dict[str, Any], memoryview]:
    (length,) = _LENGTH.unpack_from(frame)
    view = memoryview(frame)
    return json.loads(bytes(view[_LENGTH.size:_LENGTH.size + length])), view[_LENGTH.size + length:]


def _worker_main(tasks: Connection, results: Connection, settings_json: str) -> None:
    """The child: load the engine and known faces, then answer tasks until the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group; the parent stops us
    from dcdrl_edge.faces import FaceEngine, KnownFaces
    settings = json.loads(settings_json)
    engine = FaceEngine(settings['model'], settings['upsample'], settings['tolerance'])
    if settings['known_faces_dir']:
        engine.known = KnownFaces.from_directory(settings['known_faces_dir'], engine)
    results.send_bytes(_pack({'kind': 'ready', 'pid': os.getpid(), 'people': engine.known.people,
                              'known': len(engine.known), 'skipped': engine.known.skipped}))
    while True:
        try:
            frame = tasks.recv_bytes()
        except (EOFError, OSError):  # the parent closed the pipe or died
            return
        header, payload = _unpack(frame)
        reply: dict[str, Any] = {'kind': 'result', 'task_id': header['task_id']}
        try:
            image = np.frombuffer(payload, np.uint8).reshape(header['shape'])
            result = engine.recognise(image, header.get('tolerance'))
            reply.update(ok=True, **result.to_dict())
        except Exception as error:  # a bad task must not end the worker
            reply.update(ok=False, error=f'{type(error).__name__}: {error}')
        results.send_bytes(_pack(reply))


class FaceWorker:
    """A face-recognition child process with a bounded task queue (see the module docstring)."""

    def __init__(self, *, model: str = 'hog', upsample: int = 1, tolerance: float = 0.5,
                 known_faces_dir: str = '', queue_size: int = 2, max_restarts: int = 10) -> None:
        if model not in MODELS:
            raise ValueError(f'model must be one of {MODELS}, got {model!r}')
        check_tolerance(tolerance)
        for name, value, low in (('upsample', upsample, 0), ('queue_size', queue_size, 1),
                                 ('max_restarts', max_restarts, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f'{name} must be an integer >= {low}, got {value!r}')
        if known_faces_dir and not os.path.isdir(known_faces_dir):
            raise ValueError(f'known faces directory {known_faces_dir!r} does not exist or is not a directory')
        self._settings = json.dumps({'model': model, 'upsample': upsample, 'tolerance': float(tolerance),
                                     'known_faces_dir': known_faces_dir})
        self.queue_size = queue_size
        self.max_restarts = max_restarts
        self._mp = multiprocessing.get_context('spawn')
        # Task states, all under _cv: waiting (queued here) -> sending (being written by the
        # sender thread) -> in_child (written; the child answers in order) -> a WorkerResult.
        self._cv = threading.Condition()
        self._waiting: deque[tuple[int, bytes, float]] = deque()
        self._sending: tuple[int, bytes, float] | None = None
        self._in_child: dict[int, float] = {}            # task id -> submit time
        self._lost: list[WorkerResult] = []             # failed outside poll(), returned by the next poll()
        self._process: Any | None = None
        self._task_conn: Connection | None = None
        self._result_conn: Connection | None = None
        self._generation = 0            # one per child process
        self._sender: threading.Thread | None = None
        self._running = False
        self._given_up = False
        self.ready = False              # the current child has loaded its engine
        self.known_people: list[str] = []
        self.enrolment_skipped: dict[str, str] = {}
        self.submitted = self.completed = self.failed = self.refused_full = self.refused_dead = 0
        self.restarts = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def pid(self) -> int | None:
        """The current child's process id (None before start and after stop)."""
        process = self._process
        return None if process is None else process.pid

    def start(self, timeout: float | None = 60.0) -> None:
        """Starts the child; waits up to ``timeout`` s for it to load (None or 0: do not wait)."""
        if self._running:
            return
        self._running = True
        self._given_up = False
        self._spawn()
        self._sender = threading.Thread(target=self._send_loop, name='face_worker_sender', daemon=True)
        self._sender.start()
        if timeout:
            self.wait_ready(timeout)

    def _spawn(self) -> None:
        task_reader, task_writer = self._mp.Pipe(duplex=False)
        result_reader, result_writer = self._mp.Pipe(duplex=False)
        process = self._mp.Process(target=_worker_main, args=(task_reader, result_writer, self._settings),
                                   name='face_worker', daemon=True)
        process.start()
        # The child holds these ends now; closing ours makes its exit show as EOF / EPIPE here.
        task_reader.close()
        result_writer.close()
        with self._cv:
            self._process, self._task_conn, self._result_conn = process, task_writer, result_reader
            self._generation += 1
            self.ready = False
            self._cv.notify_all()

    def wait_ready(self, timeout: float) -> None:
        """Blocks until the child has loaded its engine; TimeoutError / RuntimeError otherwise."""
        deadline = time.monotonic() + timeout
        while not self.ready:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f'face worker not ready within {timeout} s')
            early: list[WorkerResult] = []
            arrived = self._read(min(remaining, 0.5), early, stop_at_first=False)
            with self._cv:
                self._lost += early  # results that came before 'ready' wait for poll()
            process = self._process
            if not arrived and process is not None and not process.is_alive():
                raise RuntimeError(f'face worker exited (code {process.exitcode}) while starting')

    def stop(self, timeout: float = 5.0) -> None:
        """Ends the child (terminate, then kill) and the sender thread; pending tasks are dropped."""
        with self._cv:
            self._running = False
            self._cv.notify_all()
            process = self._process
        if process is not None:
            _end_process(process, timeout)
        if self._sender is not None:  # its write, if any, failed when the child went
            self._sender.join(timeout)
        with self._cv:
            for conn in (self._task_conn, self._result_conn):
                if conn is not None:
                    conn.close()
            self._process = self._task_conn = self._result_conn = self._sender = None
            self._waiting.clear()
            self._in_child.clear()
            self._lost.clear()

    def __enter__(self) -> FaceWorker:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ tasks
    @property
    def pending(self) -> int:
        """Tasks submitted and not yet returned by poll()."""
        with self._cv:
            return self._pending_locked()

    def _pending_locked(self) -> int:
        return len(self._waiting) + (self._sending is not None) + len(self._in_child)

    def submit(self, task_id: int, image: np.ndarray, tolerance: float | None = None) -> bool:
        """Queues an RGB uint8 image; False (counted) when the queue is full or the worker gave up."""
        if isinstance(task_id, bool) or not isinstance(task_id, int) or task_id < 0:
            raise ValueError(f'task_id must be an integer >= 0, got {task_id!r}')
        image = check_array(image, 'rgb8')
        header: dict[str, Any] = {'kind': 'task', 'task_id': task_id, 'shape': list(image.shape)}
        if tolerance is not None:
            header['tolerance'] = check_tolerance(tolerance)
        with self._cv:
            if not self._running:
                raise RuntimeError('FaceWorker is not started (call start())')
            if self._given_up:
                self.refused_dead += 1
                return False
            if (task_id in self._in_child or any(t == task_id for t, _, _ in self._waiting)
                    or (self._sending is not None and self._sending[0] == task_id)):
                raise ValueError(f'task {task_id} is already pending')
            if self._pending_locked() >= self.queue_size:
                self.refused_full += 1
                return False
            self._waiting.append((task_id, _pack(header, image.tobytes()), time.monotonic()))
            self.submitted += 1
            self._cv.notify_all()
        return True

    def _send_loop(self) -> None:
        failed_generation = -1  # the child whose pipe broke: wait for the next one
        while True:
            with self._cv:
                while self._running and (not self._waiting or self._task_conn is None
                                         or failed_generation == self._generation):
                    self._cv.wait()
                if not self._running:
                    return
                item = self._sending = self._waiting.popleft()
                conn, generation = self._task_conn, self._generation
            try:
                conn.send_bytes(item[1])  # blocks while the child is busy: that is this thread's job
                sent = True
            except (OSError, ValueError):  # the child is gone; poll() restarts it
                sent = False
            with self._cv:
                self._sending = None
                if not self._running:
                    return
                if not sent:  # it never reached a child: first in line for the next one
                    failed_generation = generation
                    if generation != self._generation or self._given_up:
                        conn.close()  # the crash handling left this pipe to us
                    if self._given_up:
                        self.failed += 1
                        self._lost.append(WorkerResult(item[0], False, latency_s=time.monotonic() - item[2],
                                                       error='face worker gave up after too many crashes'))
                    else:
                        self._waiting.appendleft(item)
                elif generation == self._generation:
                    self._in_child[item[0]] = item[2]
                else:  # written into the pipe of a child that died meanwhile
                    conn.close()
                    self.failed += 1
                    self._lost.append(WorkerResult(item[0], False, latency_s=time.monotonic() - item[2],
                                                   error='face worker crashed before reading the task'))
                self._cv.notify_all()

    def poll(self, timeout: float = 0.0) -> list[WorkerResult]:
        """Finished tasks (waits up to ``timeout`` s for the first); restarts a dead child."""
        with self._cv:
            results, self._lost = self._lost, []
        if not self._running:
            return results
        self._read(0.0 if results else timeout, results, stop_at_first=True)
        process = self._process
        if process is not None and not process.is_alive() and self._running:
            self._read(0.0, results, stop_at_first=False)  # what it wrote before dying
            self._on_crash(process, results)
        return results

    def _read(self, timeout: float, results: list[WorkerResult], stop_at_first: bool) -> bool:
        """Reads the child's messages for up to ``timeout`` s; True if anything arrived."""
        conn = self._result_conn
        if conn is None:
            return False
        deadline = time.monotonic() + timeout
        got = False
        while True:
            try:
                if not conn.poll(max(0.0, deadline - time.monotonic())):
                    return got
                header, _ = _unpack(conn.recv_bytes())
            except (EOFError, OSError):  # the child is gone: poll() restarts it
                return got
            got = True
            if header['kind'] == 'ready':
                self.ready = True
                self.known_people = list(header['people'])
                self.enrolment_skipped = dict(header['skipped'])
                continue
            with self._cv:
                submitted_at = self._in_child.pop(header['task_id'], None)
                if submitted_at is None:  # not ours (already reported failed)
                    continue
                latency = time.monotonic() - submitted_at
                if header['ok']:
                    self.completed += 1
                    results.append(WorkerResult(
                        header['task_id'], True, tuple(header['names']),
                        tuple(tuple(int(v) for v in box) for box in header['boxes']),  # type: ignore[misc]
                        float(header['compute_time_s']), latency))
                else:
                    self.failed += 1
                    results.append(WorkerResult(header['task_id'], False, latency_s=latency,
                                                error=header['error']))
            if stop_at_first:
                deadline = time.monotonic()  # drain what is there, wait no longer

    def _on_crash(self, process: Any, results: list[WorkerResult]) -> None:
        """The child died: fail what it had read, start the next one (or give up)."""
        process.join(1.0)
        exitcode = process.exitcode
        now = time.monotonic()
        with self._cv:
            lost = list(self._in_child.items())
            self._in_child.clear()
            self.restarts += 1
            give_up = self.restarts > self.max_restarts
            if give_up:
                self._given_up = True
                lost += [(task_id, at) for task_id, _, at in self._waiting]
                self._waiting.clear()
            self.failed += len(lost)
            if self._result_conn is not None:
                self._result_conn.close()
            if self._sending is None and self._task_conn is not None:
                self._task_conn.close()  # else the sender closes it when its write fails
            self._process = self._task_conn = self._result_conn = None
        process.close()
        for task_id, submitted_at in lost:
            results.append(WorkerResult(task_id, False, latency_s=now - submitted_at,
                                        error=f'face worker crashed (exit code {exitcode}) before answering'))
        if not give_up:
            self._spawn()

    def stats(self) -> dict[str, Any]:
        with self._cv:
            return {'submitted': self.submitted, 'completed': self.completed, 'failed': self.failed,
                    'refused_full': self.refused_full, 'refused_dead': self.refused_dead,
                    'restarts': self.restarts, 'pending': self._pending_locked(), 'given_up': self._given_up}


def _end_process(process: Any, timeout: float) -> None:
    if process.is_alive():
        process.terminate()
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join(timeout)
    process.close()
