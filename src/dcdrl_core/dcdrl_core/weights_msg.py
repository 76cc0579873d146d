"""PolicyWeights messages to and from the codec's WeightsPayload (no ROS import, either backend).

Validation (architecture, shapes, finite values, newer version) is the codec's job:
``decode_weights(msg_to_payload(message), ...)`` raises WeightsRejected with the reason.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from dcdrl_core.learning.codec import WeightsPayload, WeightsRejected, make_payload
from dcdrl_core.msg_arrays import get_array, set_array


def fill_weights(message: Any, payload: WeightsPayload, tensor_class: type, *, producer: str = '',
                 generation: int = 0, fitness: Optional[float] = None) -> Any:
    """Fills a PolicyWeights message; ``tensor_class`` is dcdrl_msgs.msg.Tensor of the backend."""
    message.architecture_id = payload.architecture_id
    message.version = int(payload.version)
    message.producer = producer
    message.generation = int(generation)
    message.has_fitness = fitness is not None
    message.fitness = float(fitness) if fitness is not None else 0.0
    tensors = []
    for name, shape, array in zip(payload.names, payload.shapes, payload.arrays):
        tensor = tensor_class()
        tensor.name = name
        set_array(tensor, 'shape', np.asarray(shape, dtype=np.uint32), np.uint32)
        set_array(tensor, 'data', array, np.float32)
        tensors.append(tensor)
    message.tensors = tensors
    return message


def read_weights(message: Any) -> WeightsPayload:
    """The payload carried by a PolicyWeights message (not yet validated)."""
    try:
        return make_payload(
            message.architecture_id, int(message.version), [t.name for t in message.tensors],
            [get_array(t, 'shape', np.int64) for t in message.tensors],
            [get_array(t, 'data', np.float32) for t in message.tensors])
    except (AttributeError, TypeError) as error:
        raise WeightsRejected('malformed', f'not a PolicyWeights message: {error}') from None


def fitness_of(message: Any) -> Optional[float]:
    return float(message.fitness) if message.has_fitness else None
