"""Face recognition as the testbed does it: detect, encode, match against known faces (no ROS).

``FaceEngine.recognise(rgb)`` runs face_recognition (dlib): the HOG detector by default
('cnn' is dlib's CNN detector: more faces at angles, ~10x slower on a CPU), a 128-d
encoding per face, and a nearest-neighbour match against ``KnownFaces`` within
``tolerance`` (Euclidean distance; 0.5 as the testbed, face_recognition's own default is 0.6;
lower is stricter). A face with no known face within tolerance is named ``'unknown'``.

Enrolment (``KnownFaces.from_directory``): one person per image file ``<name>.<ext>``, or
per sub-folder ``<name>/`` holding any number of images of that person. Each image must
show the person's face; where it shows several, the largest one is taken. Files without a
face, unreadable files and the reserved name 'unknown' are skipped and listed in ``skipped``.

Boxes are face_recognition's (top, right, bottom, left) in pixels of the image given.
``compute_time_s`` is the CPU time of the calling thread during the call (time.thread_time):
the same as the process CPU time when one request runs at a time (dlib runs these steps on
the calling thread), and not inflated when a server answers several requests at once.
"""
from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from dcdrl_edge.images import check_array

MODELS = ('hog', 'cnn')
UNKNOWN = 'unknown'
ENCODING_SIZE = 128
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.ppm', '.pgm', '.tif', '.tiff', '.webp')
Box = tuple[int, int, int, int]


def check_tolerance(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f'tolerance must be a number, got {type(value).__name__}')
    value = float(value)
    if not math.isfinite(value) or not 0.0 < value <= 1.0:
        raise ValueError(f'tolerance must be in (0, 1] (face distance; 0.5 is the testbed\'s), got {value!r}')
    return value


@dataclass(frozen=True)
class FaceResult:
    """What recognition found in one image: per face a name, a box and the distance to its match."""

    names: tuple[str, ...]
    boxes: tuple[Box, ...]
    distances: tuple[float, ...]     # to the nearest known face; inf when nobody is enrolled
    compute_time_s: float

    def flat_boxes(self) -> list[int]:
        """Boxes as RecognizeFaces sends them: 4 ints per face (top, right, bottom, left)."""
        return [value for box in self.boxes for value in box]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able values (lists, ints, floats, strs); inf distances become None."""
        return {'names': list(self.names), 'boxes': [list(box) for box in self.boxes],
                'distances': [d if math.isfinite(d) else None for d in self.distances],
                'compute_time_s': self.compute_time_s}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FaceResult:
        return cls(tuple(str(n) for n in values['names']),
                   tuple(tuple(int(v) for v in box) for box in values['boxes']),  # type: ignore[misc]
                   tuple(math.inf if d is None else float(d) for d in values['distances']),
                   float(values['compute_time_s']))


@dataclass
class KnownFaces:
    """Enrolled people: one row of ``encodings`` (N x 128) per enrolled image, with its name."""

    names: list[str] = field(default_factory=list)
    encodings: np.ndarray = field(default_factory=lambda: np.zeros((0, ENCODING_SIZE)))
    skipped: dict[str, str] = field(default_factory=dict)   # file -> why it was not enrolled

    def __len__(self) -> int:
        return len(self.names)

    @property
    def people(self) -> list[str]:
        return sorted(set(self.names))

    def add(self, name: str, encoding: np.ndarray) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f'a known face needs a non-empty name, got {name!r}')
        if name == UNKNOWN:
            raise ValueError(f'{UNKNOWN!r} is reserved for faces that match nobody')
        encoding = np.asarray(encoding, dtype=np.float64).reshape(-1)
        if encoding.shape != (ENCODING_SIZE,) or not np.all(np.isfinite(encoding)):
            raise ValueError(f'a face encoding must be {ENCODING_SIZE} finite numbers, got shape {encoding.shape}')
        self.names.append(name)
        self.encodings = np.vstack([self.encodings, encoding[None, :]])

    @classmethod
    def from_directory(cls, path: str, engine: FaceEngine | None = None) -> KnownFaces:
        """Enrols ``<name>.<ext>`` files and ``<name>/`` folders of ``path`` (see the module docstring)."""
        if not os.path.isdir(path):
            raise ValueError(f'known faces directory {path!r} does not exist or is not a directory')
        engine = engine or FaceEngine()
        known = cls()
        for entry in sorted(os.listdir(path)):
            full = os.path.join(path, entry)
            if os.path.isdir(full):
                files = [os.path.join(full, f) for f in sorted(os.listdir(full)) if _is_image_name(f)]
                if not files:
                    known.skipped[full] = 'folder holds no image files'
                for file in files:
                    known._enrol_file(entry, file, engine)
            elif _is_image_name(entry):
                known._enrol_file(os.path.splitext(entry)[0], full, engine)
        return known

    def _enrol_file(self, name: str, path: str, engine: FaceEngine) -> None:
        if name == UNKNOWN or not name.strip():
            self.skipped[path] = f'name {name!r} is reserved or empty'
            return
        image = load_rgb(path)
        if image is None:
            self.skipped[path] = 'not a readable image'
            return
        boxes = engine.detect(image)
        if not boxes:
            self.skipped[path] = 'no face found'
            return
        largest = max(boxes, key=lambda b: (b[2] - b[0]) * (b[1] - b[3]))
        self.add(name, engine.encode(image, [largest])[0])


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith('.')


def load_rgb(path: str) -> np.ndarray | None:
    """An image file as RGB uint8, or None when OpenCV cannot read it."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class FaceEngine:
    """Detect + encode + match with face_recognition; one instance per process or thread pool."""

    def __init__(self, model: str = 'hog', upsample: int = 1, tolerance: float = 0.5,
                 known: KnownFaces | None = None, num_jitters: int = 1) -> None:
        if model not in MODELS:
            raise ValueError(f'model must be one of {MODELS}, got {model!r}')
        for name, value, low in (('upsample', upsample, 0), ('num_jitters', num_jitters, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= 8:
                raise ValueError(f'{name} must be an integer in {low}..8, got {value!r}')
        with warnings.catch_warnings():  # face_recognition_models still imports pkg_resources
            warnings.simplefilter('ignore', DeprecationWarning)
            import face_recognition  # late: loading dlib's models takes a moment
        self._fr = face_recognition
        self.model = model
        self.upsample = int(upsample)
        self.tolerance = check_tolerance(tolerance)
        self.num_jitters = int(num_jitters)
        self.known = known if known is not None else KnownFaces()

    def detect(self, image: np.ndarray) -> list[Box]:
        image = check_array(image, 'rgb8')
        return [tuple(int(v) for v in box)  # type: ignore[misc]
                for box in self._fr.face_locations(image, self.upsample, self.model)]

    def encode(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """One 128-d encoding per box (n x 128; 0 x 128 for no boxes)."""
        image = check_array(image, 'rgb8')
        if not boxes:
            return np.zeros((0, ENCODING_SIZE))
        encodings = self._fr.face_encodings(image, [tuple(b) for b in boxes], self.num_jitters)
        return np.asarray(encodings, dtype=np.float64).reshape(len(boxes), ENCODING_SIZE)

    def match(self, encodings: Iterable[np.ndarray], tolerance: float | None = None
              ) -> tuple[list[str], list[float]]:
        """Name of the nearest known face within tolerance (else 'unknown'), and that distance."""
        tolerance = self.tolerance if tolerance is None else check_tolerance(tolerance)
        names: list[str] = []
        distances: list[float] = []
        for encoding in encodings:
            if len(self.known) == 0:
                names.append(UNKNOWN)
                distances.append(math.inf)
                continue
            all_distances = np.linalg.norm(self.known.encodings - np.asarray(encoding)[None, :], axis=1)
            best = int(np.argmin(all_distances))
            distance = float(all_distances[best])
            names.append(self.known.names[best] if distance <= tolerance else UNKNOWN)
            distances.append(distance)
        return names, distances

    def recognise(self, image: np.ndarray, tolerance: float | None = None) -> FaceResult:
        """Every face in an RGB uint8 image: names, boxes, distances and the CPU time spent."""
        tolerance = self.tolerance if tolerance is None else check_tolerance(tolerance)
        image = check_array(image, 'rgb8')
        start = time.thread_time()
        boxes = self.detect(image)
        names, distances = self.match(self.encode(image, boxes), tolerance)
        return FaceResult(tuple(names), tuple(boxes), tuple(distances), time.thread_time() - start)
