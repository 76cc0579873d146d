"""The face server's logic (no ROS): check a compressed image, recognise faces, answer or refuse.

One request = JPEG/PNG bytes, their format string and a tolerance (<= 0: the server's). In order:

1. bytes: none -> ``empty``; more than ``max_image_bytes`` -> ``too_many_bytes``; a tolerance
   that is NaN or above 1 -> ``bad_tolerance`` (all before any work);
2. a slot: at most ``max_concurrent`` requests are admitted at once; one more is refused at
   once as ``busy`` (the client may retry or run the task locally: waiting in a long queue
   would only make its deadline later). Admitted requests decode side by side but run the
   engine one at a time (dlib's detectors are not safe for concurrent use; face_recognition
   shares one per process), so ``max_concurrent`` bounds the requests running or waiting;
3. decode: format not JPEG/PNG -> ``bad_format``; header size over ``max_pixels`` ->
   ``too_many_pixels`` (read from the header, before decoding); bytes cv2 cannot decode ->
   ``undecodable`` (dcdrl_edge.images);
4. FaceEngine.recognise; an exception inside it -> ``failed``.

Every refusal is an answer with ``ok=False``, a one-line ``error`` and a ``reason``, counted per
reason; the server keeps serving. ``compute_time_s`` of an answer is this thread's CPU time for
decode + recognition.
"""
from __future__ import annotations

import math
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from dcdrl_edge.faces import MODELS, FaceEngine, KnownFaces, check_tolerance
from dcdrl_edge.images import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS, ImageLimits, ImageRejected, decode_compressed
from dcdrl_ros.parameter_dataclass import check_limits, parameter

REFUSAL_REASONS = ('busy', 'empty', 'too_many_bytes', 'bad_tolerance', 'bad_format', 'too_many_pixels',
                   'undecodable', 'failed')


@dataclass
class FaceServerConfig:
    """Every setting of the face server: the node's parameters (dcdrl_ros.parameter_dataclass)."""

    known_faces_dir: str = parameter('', "enrolment folder: <name>.<ext> files or <name>/ folders ('' = nobody "
                                         "known, every face 'unknown')")
    model: str = parameter('hog', "detector: 'hog', or 'cnn' (dlib's CNN: finds more turned faces, ~10x slower "
                                  "on a CPU)", choices=MODELS)
    tolerance: float = parameter(0.5, 'face distance threshold for requests that send tolerance <= 0 '
                                      '(lower = stricter)', above=0.0, high=1.0, live=True)
    upsample: int = parameter(1, 'detector up-sampling: 1 finds faces down to ~40 px, 0 is ~4x faster but needs '
                                 '~80 px faces', low=0)
    max_image_bytes: int = parameter(DEFAULT_MAX_BYTES, 'compressed bytes per request', low=1)
    max_pixels: int = parameter(DEFAULT_MAX_PIXELS, 'decoded width * height (1920 x 1080), read from the header '
                                                    'first', low=1)
    max_concurrent: int = parameter(2, "requests admitted at once (one recognising, the others decoded and "
                                       "waiting); one more is refused 'busy'", low=1)

    def __post_init__(self) -> None:
        check_limits(self)


@dataclass(frozen=True)
class ServerAnswer:
    """A RecognizeFaces reply in plain values."""

    ok: bool
    error: str = ''
    reason: str = ''                  # '' when ok; else one of REFUSAL_REASONS
    names: tuple[str, ...] = ()
    boxes: tuple[int, ...] = ()       # 4 per face: top, right, bottom, left
    compute_time_s: float = 0.0


@dataclass
class FaceServerLogic:
    config: FaceServerConfig = field(default_factory=FaceServerConfig)
    engine: FaceEngine | None = None   # built from config (with enrolment) when not given

    def __post_init__(self) -> None:
        if self.engine is None:
            self.engine = FaceEngine(self.config.model, self.config.upsample, self.config.tolerance)
            if self.config.known_faces_dir:
                self.engine.known = KnownFaces.from_directory(self.config.known_faces_dir, self.engine)
        self.limits = ImageLimits(self.config.max_image_bytes, self.config.max_pixels)
        self._slots = threading.BoundedSemaphore(self.config.max_concurrent)
        # dlib documents its detectors as unsafe for concurrent use, and face_recognition keeps one
        # per process: admitted requests decode side by side but recognise one at a time.
        self._engine_lock = threading.Lock()
        self._lock = threading.Lock()
        self.requests = 0
        self.answered = 0
        self.faces = 0
        self.compute_time_total_s = 0.0
        self.refused: Counter = Counter()

    def set_tolerance(self, tolerance: float) -> None:
        """The default tolerance (for requests that send <= 0) from now on; ValueError outside (0, 1]."""
        value = check_tolerance(tolerance)
        assert self.engine is not None
        self.engine.tolerance = value
        self.config = replace(self.config, tolerance=value)

    def handle(self, data: Any, format: str = '', tolerance: float = 0.0) -> ServerAnswer:
        """Answers one request; never raises for bad input (a refusal answer instead)."""
        with self._lock:
            self.requests += 1
        raw = data if isinstance(data, bytes) else bytes(data)
        if not raw:
            return self._refuse('empty', 'image has no bytes')
        if len(raw) > self.limits.max_bytes:
            return self._refuse('too_many_bytes', f'image has {len(raw)} bytes, over the limit of '
                                                  f'{self.limits.max_bytes}')
        try:
            tolerance = float(tolerance)
            chosen = None if tolerance <= 0.0 else check_tolerance(tolerance)
        except (TypeError, ValueError):
            return self._refuse('bad_tolerance', f'tolerance must be <= 0 (server default '
                                                 f'{self.config.tolerance:g}) or in (0, 1], got {tolerance!r}')
        if not self._slots.acquire(blocking=False):
            return self._refuse('busy', f'server busy: {self.config.max_concurrent} requests in progress')
        try:
            start = time.thread_time()
            try:
                image = decode_compressed(raw, 'rgb8', self.limits, format)
            except ImageRejected as error:
                return self._refuse(error.reason, str(error))
            try:
                assert self.engine is not None
                with self._engine_lock:
                    result = self.engine.recognise(image, chosen)
            except Exception as error:  # dlib errors must not stop the server
                return self._refuse('failed', f'recognition failed: {type(error).__name__}: {error}')
            spent = time.thread_time() - start
        finally:
            self._slots.release()
        with self._lock:
            self.answered += 1
            self.faces += len(result.names)
            self.compute_time_total_s += spent
        return ServerAnswer(True, names=result.names, boxes=tuple(result.flat_boxes()), compute_time_s=spent)

    def _refuse(self, reason: str, message: str) -> ServerAnswer:
        with self._lock:
            self.refused[reason] += 1
        return ServerAnswer(False, error=message, reason=reason)

    @property
    def known_people(self) -> list[str]:
        assert self.engine is not None
        return self.engine.known.people

    def stats(self) -> dict[str, Any]:
        with self._lock:
            mean = self.compute_time_total_s / self.answered if self.answered else math.nan
            return {'requests': self.requests, 'answered': self.answered, 'faces': self.faces,
                    'refused': dict(sorted(self.refused.items())),
                    'mean_compute_time_s': None if math.isnan(mean) else round(mean, 4)}
