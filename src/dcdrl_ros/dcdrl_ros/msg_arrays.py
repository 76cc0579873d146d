"""Numpy arrays into and out of message array fields, fast on both backends.

Our runtime stores numeric array fields as numpy arrays. rclpy's generated classes
want array.array (and check every element of anything else in Python, which is slow
for large payloads), and lists for bool[]. One call site serves both.
"""
from __future__ import annotations

import array
from typing import Any

import numpy as np

from dcdrl_ros.messages import Message

_TYPECODES = {np.dtype('float32'): 'f', np.dtype('float64'): 'd', np.dtype('uint8'): 'B',
              np.dtype('int8'): 'b', np.dtype('uint16'): 'H', np.dtype('int16'): 'h',
              np.dtype('uint32'): 'I', np.dtype('int32'): 'i', np.dtype('uint64'): 'Q',
              np.dtype('int64'): 'q'}


def set_array(message: Any, field: str, values: Any, dtype: Any) -> None:
    """Sets a flat numeric (or bool) array field from any array-like, without per-element loops."""
    flat = np.ascontiguousarray(values, dtype=dtype).reshape(-1)
    if isinstance(message, Message):
        setattr(message, field, flat)
    elif flat.dtype == np.bool_:
        setattr(message, field, flat.tolist())
    else:
        setattr(message, field, array.array(_TYPECODES[flat.dtype], flat.tobytes()))


def get_array(message: Any, field: str, dtype: Any) -> np.ndarray:
    """A numpy view (or copy when the type differs) of an array field of either backend."""
    value = getattr(message, field)
    if isinstance(value, np.ndarray):
        return value if value.dtype == np.dtype(dtype) else value.astype(dtype)
    if isinstance(value, array.array):
        return np.frombuffer(value, dtype=np.dtype(value.typecode)).astype(dtype, copy=False)
    return np.asarray(value, dtype=dtype)
