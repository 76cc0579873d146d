"""Where camera frames come from: a device, a video file, an image sequence, or a synthetic scene.

Every source returns RGB uint8 frames of shape (height, width, 3) from ``read()``, or None
when it has no frame now. ``ended`` says whether it will never have one again (a video or a
sequence without ``loop`` that reached its end); a device that fails one grab is not ended.

``open_source(spec)`` builds one from the camera node's ``source`` parameter:

==================  ==========================================================
spec                source
==================  ==========================================================
``synthetic``       SyntheticFaceSource (seed 0); ``synthetic:7`` for seed 7
``device:0``        DeviceSource(0): /dev/video0 or the first camera OpenCV finds
``video:/a/b.mp4``  VideoFileSource (any container/codec OpenCV reads)
``images:/a/dir``   ImageSequenceSource: the directory's images in name order, or a
                    glob such as ``images:/a/*.png``
==================  ==========================================================

The synthetic source needs no camera and no files: scikit-image's astronaut photograph
(Eileen Collins, two HOG detections at 512x512), moved and scaled frame by frame on a grey
background, the same frames for the same seed. Tests and demos use it everywhere.
"""
from __future__ import annotations

import glob as globlib
import math
import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from dcdrl_core.checks import check_int
from dcdrl_ros.parameter_dataclass import check_limits, parameter

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm', '.pgm', '.tif', '.tiff', '.webp')
SPEC_FORMS = "'synthetic', 'synthetic:SEED', 'device:INDEX', 'video:PATH' or 'images:DIR_OR_GLOB'"


MAX_SIDE = 8192   # pixels per side of a published frame


@dataclass(frozen=True)
class CameraParameters:
    """The camera node's parameters (dcdrl_ros.parameter_dataclass)."""

    source: str = parameter('synthetic', "'synthetic[:SEED]', 'device:INDEX', 'video:PATH' or 'images:DIR_OR_GLOB'")
    rate_hz: float = parameter(5.0, 'frames per second (timer period 1 / rate_hz)', above=0.0, high=1000.0,
                               live=True)
    width: int = parameter(640, 'published width; frames of another size are resized', low=1, high=MAX_SIDE)
    height: int = parameter(480, 'published height; frames of another size are resized', low=1, high=MAX_SIDE)
    jpeg_quality: int = parameter(80, 'JPEG quality of the compressed topic', low=1, high=100, live=True)
    publish_raw: bool = parameter(True, 'publish camera/image (rgb8, for nodes on the same host)')
    publish_compressed: bool = parameter(True, 'publish camera/image/compressed (JPEG, for other hosts)')
    frame_id: str = parameter('camera', 'header.frame_id')
    loop: bool = parameter(False, 'rewind a video or image sequence at its end')

    def __post_init__(self) -> None:
        check_limits(self)
        if not self.publish_raw and not self.publish_compressed:
            raise ValueError('publish_raw and publish_compressed are both false: nothing to publish')


class SourceError(ValueError):
    """A source that cannot be opened (no such device or file, nothing readable)."""


@runtime_checkable
class FrameSource(Protocol):
    description: str
    ended: bool

    def read(self) -> np.ndarray | None:
        """The next RGB uint8 frame (height, width, 3), or None when there is none now."""

    def close(self) -> None:
        """Releases the device or file; read() returns None afterwards."""


def fit_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """``frame`` resized to width x height (area averaging down, linear up); unchanged if it fits."""
    if frame.shape[1] == width and frame.shape[0] == height:
        return frame
    shrinking = width * height < frame.shape[0] * frame.shape[1]
    return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _bgr_to_rgb(frame: np.ndarray) -> np.ndarray:
    if frame.ndim == 2:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)


class SyntheticFaceSource:
    """The astronaut photograph moved and scaled per frame; deterministic for (seed, frame index).

    Frame k: the 512x512 photograph scaled by ``base * (0.85 + 0.15 sin(2 pi k / period + a))``
    (``base`` fits it to 0.9 of the frame's shorter side), its centre moving on a Lissajous path
    around the frame centre with phases a, b, c drawn from ``seed``; background grey.
    """

    def __init__(self, width: int = 640, height: int = 480, seed: int = 0, period_frames: int = 60) -> None:
        from skimage import data  # shipped with scikit-image: no download
        self.width = check_int('width', width, 1)
        self.height = check_int('height', height, 1)
        self.period_frames = check_int('period_frames', period_frames, 1)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f'seed must be an int, got {type(seed).__name__}')
        self.seed = int(seed)
        self.description = f'synthetic astronaut {self.width}x{self.height} seed {self.seed}'
        self.ended = False
        self.index = 0
        self._photo = np.ascontiguousarray(data.astronaut())
        rng = np.random.default_rng(self.seed)
        self._phases = rng.uniform(0.0, 2.0 * math.pi, size=3)
        self._background = int(rng.integers(60, 200))

    def frame(self, index: int) -> np.ndarray:
        """Frame ``index`` (any int), without moving the read position."""
        side = self._photo.shape[0]
        base = 0.9 * min(self.width, self.height) / side
        angle = 2.0 * math.pi * index / self.period_frames
        scale = base * (0.85 + 0.15 * math.sin(angle + self._phases[0]))
        shown = side * scale
        # room to move while the photograph stays mostly in view, plus 5 % of the frame
        reach_x = max(0.0, self.width - shown) / 2 + 0.05 * self.width
        reach_y = max(0.0, self.height - shown) / 2 + 0.05 * self.height
        centre_x = self.width / 2 + reach_x * math.sin(angle + self._phases[1])
        centre_y = self.height / 2 + reach_y * math.sin(0.7 * angle + self._phases[2])
        matrix = np.array([[scale, 0.0, centre_x - scale * side / 2],
                           [0.0, scale, centre_y - scale * side / 2]])
        return cv2.warpAffine(self._photo, matrix, (self.width, self.height), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(self._background,) * 3)

    def read(self) -> np.ndarray | None:
        if self.ended:
            return None
        frame = self.frame(self.index)
        self.index += 1
        return frame

    def close(self) -> None:
        self.ended = True


class DeviceSource:
    """A camera through cv2.VideoCapture(index); a failed grab returns None (not ended)."""

    def __init__(self, index: int = 0, width: int | None = None, height: int | None = None) -> None:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
            raise ValueError(f'camera device index must be an integer >= 0, got {index!r}')
        self.index = int(index)
        self.description = f'camera device {self.index}'
        self.ended = False
        self.failures = 0
        self._capture = cv2.VideoCapture(self.index)
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(f'cannot open camera device {self.index} (is a camera attached, /dev/video{self.index} '
                              f'readable by this user?)')
        if width:  # a request: the driver picks the nearest mode it has; the node resizes the rest
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, int(width))
        if height:
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, int(height))

    def read(self) -> np.ndarray | None:
        if self.ended:
            return None
        ok, frame = self._capture.read()
        if not ok or frame is None:
            self.failures += 1
            return None
        return _bgr_to_rgb(frame)

    def close(self) -> None:
        self.ended = True
        self._capture.release()


class VideoFileSource:
    """Frames of a video file; at its end it rewinds (``loop``) or is ended."""

    def __init__(self, path: str, loop: bool = False) -> None:
        if not os.path.isfile(path):
            raise SourceError(f'video file {path!r} does not exist')
        self.path = path
        self.loop = bool(loop)
        self.description = f'video {path}' + (' (looping)' if self.loop else '')
        self.ended = False
        self.frames_read = 0
        self._capture = cv2.VideoCapture(path)
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(f'OpenCV cannot open video file {path!r} (unknown container or codec)')

    def read(self) -> np.ndarray | None:
        if self.ended:
            return None
        ok, frame = self._capture.read()
        if (not ok or frame is None) and self.loop and self.frames_read > 0:
            self._capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._capture.read()
        if not ok or frame is None:
            self.ended = True
            return None
        self.frames_read += 1
        return _bgr_to_rgb(frame)

    def close(self) -> None:
        self.ended = True
        self._capture.release()


class ImageSequenceSource:
    """Images of a directory (name order) or a glob pattern, one per read; unreadable files are skipped."""

    def __init__(self, pattern: str, loop: bool = False) -> None:
        if os.path.isdir(pattern):
            paths = [os.path.join(pattern, name) for name in os.listdir(pattern)]
        else:
            paths = globlib.glob(pattern)
        self.paths = sorted(p for p in paths if os.path.isfile(p) and p.lower().endswith(IMAGE_EXTENSIONS))
        if not self.paths:
            raise SourceError(f'no image files ({", ".join(IMAGE_EXTENSIONS)}) in {pattern!r}')
        self.pattern = pattern
        self.loop = bool(loop)
        self.description = f'{len(self.paths)} images from {pattern}' + (' (looping)' if self.loop else '')
        self.ended = False
        self.skipped: list[str] = []  # files cv2 could not read
        self.position = 0

    def read(self) -> np.ndarray | None:
        attempts = 0
        while not self.ended and attempts < len(self.paths):
            if self.position >= len(self.paths):
                if not self.loop:
                    break
                self.position = 0
            path = self.paths[self.position]
            self.position += 1
            attempts += 1
            frame = cv2.imread(path, cv2.IMREAD_COLOR)
            if frame is not None:
                return _bgr_to_rgb(frame)
            if path not in self.skipped:
                self.skipped.append(path)
        if not self.loop or len(self.skipped) == len(self.paths):
            self.ended = True
        return None

    def close(self) -> None:
        self.ended = True


def open_source(spec: str, *, width: int = 640, height: int = 480, loop: bool = False) -> FrameSource:
    """The source a spec string names (see the module docstring); ValueError for a malformed spec."""
    if not isinstance(spec, str):
        raise TypeError(f'source spec must be a string, got {type(spec).__name__}')
    kind, _, argument = spec.strip().partition(':')
    kind = kind.lower()
    if kind == 'synthetic':
        try:
            seed = int(argument) if argument else 0
        except ValueError:
            raise ValueError(f"synthetic source seed must be an integer, got {argument!r} in {spec!r}") from None
        return SyntheticFaceSource(width, height, seed)
    if kind == 'device':
        try:
            index = int(argument)
        except ValueError:
            raise ValueError(f'device source needs an index, e.g. device:0; got {spec!r}') from None
        return DeviceSource(index, width, height)
    if kind == 'video' and argument:
        return VideoFileSource(argument, loop)
    if kind == 'images' and argument:
        return ImageSequenceSource(argument, loop)
    raise ValueError(f'source must be {SPEC_FORMS}; got {spec!r}')
