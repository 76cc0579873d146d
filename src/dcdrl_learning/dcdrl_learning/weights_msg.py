"""PolicyWeights messages to and from the codec's WeightsPayload (no ROS import, either backend).

Validation (architecture, shapes, finite values, newer version) is the codec's job:
``decode_weights(msg_to_payload(message), ...)`` raises WeightsRejected with the reason.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dcdrl_learning.codec import WeightsPayload, WeightsRejected, make_payload
from dcdrl_ros.msg_arrays import get_array, set_array

# Size limits of what a PolicyWeights message may carry before anything is decoded (the tensors
# themselves are then checked exactly against the receiver's network). The producer is logged and
# written to generations.csv; ids are of the networks.architecture_id form (about 40 characters).
MAX_PRODUCER_LENGTH = 64
MAX_ARCHITECTURE_ID_LENGTH = 128
MAX_TENSORS = 256   # an actor with H hidden layers has at most 4H + 2 tensors (H <= 63)


def fill_weights(message: Any, payload: WeightsPayload, tensor_class: type, *, producer: str = '',
                 generation: int = 0, fitness: float | None = None) -> Any:
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
    """The payload carried by a PolicyWeights message (not yet validated); WeightsRejected('malformed')
    for a message that is not one, or whose strings or tensor count exceed the limits above."""
    try:
        sizes = len(message.producer), len(message.architecture_id), len(message.tensors)
    except (AttributeError, TypeError) as error:
        raise WeightsRejected('malformed', f'not a PolicyWeights message: {error}') from None
    if sizes[0] > MAX_PRODUCER_LENGTH or sizes[1] > MAX_ARCHITECTURE_ID_LENGTH or sizes[2] > MAX_TENSORS:
        raise WeightsRejected('malformed', f'producer, architecture_id and tensors must have at most '
                                           f'{MAX_PRODUCER_LENGTH}, {MAX_ARCHITECTURE_ID_LENGTH} and {MAX_TENSORS} '
                                           f'entries, got {sizes[0]}, {sizes[1]} and {sizes[2]}')
    try:
        return make_payload(
            message.architecture_id, int(message.version), [t.name for t in message.tensors],
            [get_array(t, 'shape', np.int64) for t in message.tensors],
            [get_array(t, 'data', np.float32) for t in message.tensors])
    except (AttributeError, TypeError) as error:
        raise WeightsRejected('malformed', f'not a PolicyWeights message: {error}') from None


def fitness_of(message: Any) -> float | None:
    return float(message.fitness) if message.has_fitness else None
