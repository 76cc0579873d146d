"""Weight codec: a network's state_dict <-> named float32 arrays + shapes + architecture id + version.

This is the only form in which weights leave a process (PolicyWeights messages, the collective
merge, files). It never uses pickle and never calls torch.load on received bytes; a receiver
validates a payload completely before any of it touches a live network:

    payload = encode_weights(agent.actor, agent.architecture_id, version=7)
    ...                                    # transport: names, shapes, flat float32 data
    arrays = decode_weights(payload, expected_architecture=arch_id, expected_shapes=actor,
                            active_version=6)   # raises WeightsRejected(reason) on any defect

WeightsRejected is a ValueError whose `reason` is a short machine-readable code
(wrong_architecture, unknown_architecture, missing_names, extra_names, wrong_shape,
bad_length, bad_dtype, duplicate_names, non_finite, stale_version, bad_version, malformed)
so nodes can count rejections by cause.

payload_to_bytes / payload_from_bytes give a file or socket form (safetensors: a JSON header
and raw little-endian float32 data; not executable).

This module imports no torch, so an edge device can check and decode weights with numpy alone. It
still encodes a torch module or state_dict (anything with state_dict(), tensors by their detach()),
and the cloud's loading into a module lives in torch_codec.py.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# Architecture ids come from networks.architecture_id; anything else is refused as unknown.
ARCHITECTURE_ID_PATTERN = re.compile(r'^[a-z][a-z0-9]*-[A-Za-z0-9.\-]*-[0-9a-f]{8}$')
_REASONS = ('wrong_architecture', 'unknown_architecture', 'missing_names', 'extra_names', 'wrong_shape',
            'bad_length', 'bad_dtype', 'duplicate_names', 'non_finite', 'stale_version', 'bad_version', 'malformed')


class WeightsRejected(ValueError):
    """A weights payload failed validation. `reason` is one of the codes listed in the module doc."""

    def __init__(self, reason: str, message: str) -> None:
        assert reason in _REASONS, reason
        super().__init__(f'weights rejected ({reason}): {message}')
        self.reason = reason


@dataclass(frozen=True)
class WeightsPayload:
    """Named flat float32 arrays with their shapes, plus architecture id and version.

    arrays[i] is 1-D float32 with prod(shapes[i]) elements (row-major), matching the Tensor message.
    """

    architecture_id: str
    version: int
    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    arrays: tuple[np.ndarray, ...]

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)

    def named_arrays(self) -> dict[str, np.ndarray]:
        """name -> array reshaped to its shape (views, no copy). Call after validation."""
        return {n: a.reshape(s) for n, s, a in zip(self.names, self.shapes, self.arrays)}


def _is_module(source: Any) -> bool:
    """A torch nn.Module (or anything else with a state_dict()), recognised without importing torch."""
    return callable(getattr(source, 'state_dict', None))


def _is_tensor(value: Any) -> bool:
    return callable(getattr(value, 'detach', None)) and callable(getattr(value, 'is_floating_point', None))


def _state_items(source: Any) -> list[tuple[str, Any]]:
    if _is_module(source):
        return list(source.state_dict().items())
    if isinstance(source, Mapping):
        return list(source.items())
    raise TypeError(f'expected an nn.Module or a state_dict mapping, got {type(source).__name__}')


def _as_float32_array(name: str, value: Any) -> np.ndarray:
    if _is_tensor(value):
        if not value.is_floating_point():
            raise WeightsRejected('bad_dtype', f'{name!r} has dtype {value.dtype}, expected a float tensor')
        return value.detach().cpu().float().contiguous().numpy().copy()
    array = np.asarray(value)
    if array.dtype.kind != 'f':
        raise WeightsRejected('bad_dtype', f'{name!r} has dtype {array.dtype}, expected float')
    return np.array(array, dtype=np.float32, copy=True, order='C')


def check_version(version: Any) -> int:
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 0 or version >= 2 ** 64:
        raise WeightsRejected('bad_version', f'version must be an int in [0, 2**64), got {version!r}')
    return int(version)


def encode_weights(source: Any, architecture_id: str, version: int) -> WeightsPayload:
    """Copy a module's (or a state_dict's) tensors into a WeightsPayload of flat float32 arrays.

    Refuses non-finite weights (a diverged learner must not publish) and malformed ids/versions.
    """
    if not isinstance(architecture_id, str) or not ARCHITECTURE_ID_PATTERN.match(architecture_id):
        raise WeightsRejected('unknown_architecture', f'architecture id {architecture_id!r} is not a valid id')
    version = check_version(version)
    names, shapes, arrays = [], [], []
    for name, value in _state_items(source):
        array = _as_float32_array(name, value)
        if not np.isfinite(array).all():
            raise WeightsRejected('non_finite', f'{name!r} contains NaN or Inf')
        names.append(str(name))
        shapes.append(tuple(int(d) for d in array.shape))
        arrays.append(array.reshape(-1))
    if not names:
        raise WeightsRejected('malformed', 'no tensors to encode')
    return WeightsPayload(architecture_id, version, tuple(names), tuple(shapes), tuple(arrays))


def make_payload(architecture_id: str, version: int, names: Iterable[str], shapes: Iterable[Iterable[int]],
                 arrays: Iterable[Any]) -> WeightsPayload:
    """Build a payload from received parts (e.g. a PolicyWeights message) without validating them yet.

    Arrays are viewed as 1-D; nothing is copied when they already are float32. Only structural
    conversion errors are raised here; call decode_weights to validate.
    """
    try:
        names_t = tuple(str(n) for n in names)
        shapes_t = tuple(tuple(int(d) for d in s) for s in shapes)
        arrays_t = tuple(np.asarray(a).reshape(-1) for a in arrays)
    except (TypeError, ValueError) as exc:
        raise WeightsRejected('malformed', f'cannot read payload parts: {exc}') from exc
    return WeightsPayload(str(architecture_id), version, names_t, shapes_t, arrays_t)


def _expected_shapes(expected: Any) -> dict[str, tuple[int, ...]]:
    if _is_module(expected):
        return {k: tuple(v.shape) for k, v in expected.state_dict().items()}
    out = {}
    for name, value in expected.items():
        if isinstance(value, np.ndarray) or _is_tensor(value):
            out[name] = tuple(value.shape)
        else:
            out[name] = tuple(int(d) for d in value)
    return out


def validate_payload(payload: WeightsPayload, expected_architecture: str | None,
                     expected_shapes: Any = None,
                     active_version: int | None = None) -> None:
    """Raise WeightsRejected unless the payload is well-formed, matches the expected architecture
    id and shapes (module or name -> shape/tensor mapping), holds only finite float32 values and,
    when active_version is given, is strictly newer than it."""
    if not isinstance(payload, WeightsPayload):
        raise TypeError(f'expected a WeightsPayload, got {type(payload).__name__}')
    arch = payload.architecture_id
    if not isinstance(arch, str) or not ARCHITECTURE_ID_PATTERN.match(arch):
        raise WeightsRejected('unknown_architecture', f'architecture id {arch!r} is not a known id format')
    if expected_architecture is not None and arch != expected_architecture:
        raise WeightsRejected('wrong_architecture', f'payload is {arch!r}, this network is {expected_architecture!r}')
    version = check_version(payload.version)
    if active_version is not None and version <= active_version:
        raise WeightsRejected('stale_version',
                              f'version {version} is not newer than the active version {active_version}')
    if not (len(payload.names) == len(payload.shapes) == len(payload.arrays)):
        raise WeightsRejected('malformed', f'{len(payload.names)} names, {len(payload.shapes)} shapes, '
                                           f'{len(payload.arrays)} arrays: counts differ')
    if len(set(payload.names)) != len(payload.names):
        dupes = sorted({n for n in payload.names if payload.names.count(n) > 1})
        raise WeightsRejected('duplicate_names', f'names appear more than once: {dupes}')
    for name, shape, array in zip(payload.names, payload.shapes, payload.arrays):
        if not isinstance(array, np.ndarray) or array.dtype != np.float32:
            dtype = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
            raise WeightsRejected('bad_dtype', f'{name!r} has dtype {dtype}, expected float32')
        if any(d < 0 for d in shape) or array.size != math.prod(shape):
            raise WeightsRejected('bad_length', f'{name!r} has {array.size} values, shape {list(shape)} '
                                                f'needs {math.prod(shape)}')
    if expected_shapes is not None:
        want = _expected_shapes(expected_shapes)
        got = dict(zip(payload.names, payload.shapes))
        missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
        if missing:
            raise WeightsRejected('missing_names', f'missing tensors {missing}')
        if extra:
            raise WeightsRejected('extra_names', f'unexpected tensors {extra}')
        for name, shape in want.items():
            if tuple(got[name]) != tuple(shape):
                raise WeightsRejected('wrong_shape', f'{name!r} has shape {list(got[name])}, expected {list(shape)}')
    for name, array in zip(payload.names, payload.arrays):
        if not np.isfinite(array).all():
            raise WeightsRejected('non_finite', f'{name!r} contains NaN or Inf')


def decode_weights(payload: WeightsPayload, expected_architecture: str | None,
                   expected_shapes: Any = None,
                   active_version: int | None = None) -> dict[str, np.ndarray]:
    """Validate (see validate_payload) and return name -> float32 array of its shape (copies)."""
    validate_payload(payload, expected_architecture, expected_shapes, active_version)
    return {n: a.reshape(s).copy() for n, s, a in zip(payload.names, payload.shapes, payload.arrays)}


_BYTES_FORMAT = 'dcdrl-weights'
_BYTES_FORMAT_VERSION = 1


def payload_to_bytes(payload: WeightsPayload) -> bytes:
    """Serialise as safetensors (JSON header + raw data); architecture id and version in the metadata."""
    from safetensors.numpy import save
    tensors = {n: np.ascontiguousarray(a.reshape(s)) for n, s, a in zip(payload.names, payload.shapes, payload.arrays)}
    metadata = {'format': _BYTES_FORMAT, 'format_version': str(_BYTES_FORMAT_VERSION),
                'architecture_id': payload.architecture_id, 'version': str(payload.version),
                'order': json.dumps(list(payload.names))}
    return save(tensors, metadata=metadata)


def payload_from_bytes(data: bytes) -> WeightsPayload:
    """Parse payload_to_bytes output. Structure only: validate with decode_weights before use."""
    from safetensors.numpy import load
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f'expected bytes, got {type(data).__name__}')
    data = bytes(data)
    try:
        metadata = _safetensors_metadata(data)
        tensors = load(data)
    except Exception as exc:  # safetensors raises its own error types for corrupt input
        raise WeightsRejected('malformed', f'not a safetensors weights blob: {exc}') from exc
    if metadata.get('format') != _BYTES_FORMAT:
        raise WeightsRejected('malformed', f"metadata format is {metadata.get('format')!r}, expected {_BYTES_FORMAT!r}")
    try:
        version = int(metadata['version'])
        order = json.loads(metadata['order'])
    except (KeyError, ValueError) as exc:
        raise WeightsRejected('malformed', f'bad metadata: {exc}') from exc
    if not isinstance(order, list) or sorted(order) != sorted(tensors):
        raise WeightsRejected('malformed', 'tensor order list does not match the stored tensors')
    return WeightsPayload(metadata.get('architecture_id', ''), version, tuple(order),
                          tuple(tuple(tensors[n].shape) for n in order),
                          tuple(tensors[n].reshape(-1) for n in order))


def _safetensors_metadata(data: bytes) -> dict[str, str]:
    """Read the __metadata__ of a safetensors blob (8-byte little-endian header length + JSON)."""
    if len(data) < 8:
        raise ValueError('blob shorter than the 8-byte header length')
    header_len = int.from_bytes(data[:8], 'little')
    if header_len > len(data) - 8 or header_len > 100_000_000:
        raise ValueError(f'header length {header_len} exceeds the blob')
    header = json.loads(data[8:8 + header_len].decode('utf-8'))
    metadata = header.get('__metadata__', {}) if isinstance(header, dict) else {}
    if not isinstance(metadata, dict):
        raise ValueError('__metadata__ is not an object')
    return {str(k): str(v) for k, v in metadata.items()}


__all__ = ['ARCHITECTURE_ID_PATTERN', 'WeightsPayload', 'WeightsRejected', 'check_version', 'decode_weights',
           'encode_weights', 'make_payload', 'payload_from_bytes', 'payload_to_bytes', 'validate_payload']
