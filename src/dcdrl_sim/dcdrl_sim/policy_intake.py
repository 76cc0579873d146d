"""Incoming policy weights for a client (no ROS): validated in the receiving thread, swapped in by the worker.

``WeightsIntake.offer`` checks a payload completely (architecture id from the network preset and
the env's dimensions, tensor names and shapes, finite float32 values, a strictly newer version)
and keeps the newest valid one in a slot; ``take`` hands it to the worker between two batches.
Refusals raise the codec's WeightsRejected and are counted by reason.
"""
from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass

import numpy as np

from dcdrl_learning.codec import WeightsPayload, WeightsRejected, decode_weights
from dcdrl_learning.inference import actor_shapes
from dcdrl_learning.networks import NetworkConfig, architecture_id


@dataclass
class Incoming:
    """Validated weights waiting to be swapped in."""

    version: int
    weights: dict[str, np.ndarray]
    fitness: float | None = None
    generation: int = 0


class WeightsIntake:
    """Validates weights for one architecture and keeps the newest valid ones waiting (thread-safe).

    ``offer`` runs in the receiving thread, ``take`` in the worker; versions must rise strictly
    (the first accepted must be >= 1: version 0 means "no policy").
    """

    def __init__(self, network: NetworkConfig, obs_dim: int, action_dim: int) -> None:
        self.architecture_id = architecture_id(network, obs_dim, action_dim)
        self.shapes = actor_shapes(network, obs_dim, action_dim)
        self.latest_version = 0          # newest version accepted (waiting or in use)
        self.accepted = 0
        self.refused: Counter[str] = Counter()
        self._pending: Incoming | None = None
        self._lock = threading.Lock()

    def offer(self, payload: WeightsPayload, fitness: float | None = None, generation: int = 0) -> int:
        """Validate and keep; returns the version. Raises WeightsRejected (counted by reason)."""
        try:
            weights = decode_weights(payload, self.architecture_id, self.shapes, active_version=self.latest_version)
            if fitness is not None and not math.isfinite(fitness):
                raise WeightsRejected('malformed', f'fitness must be finite, got {fitness}')
            with self._lock:  # another offer may have won the race since the check above
                if payload.version <= self.latest_version:
                    raise WeightsRejected('stale_version', f'version {payload.version} is not newer than '
                                                           f'{self.latest_version}')
                self._pending = Incoming(int(payload.version), weights, fitness, int(generation))
                self.latest_version = int(payload.version)
                self.accepted += 1
        except WeightsRejected as error:
            with self._lock:
                self.refused[error.reason] += 1
            raise
        return int(payload.version)

    def record_rejection(self, reason: str) -> None:
        """Count weights refused before they became a payload (a PolicyWeights message that could
        not be read), so that ``refused`` covers every refusal."""
        with self._lock:
            self.refused[reason] += 1

    def take(self) -> Incoming | None:
        with self._lock:
            incoming, self._pending = self._pending, None
        return incoming

    def refused_total(self) -> int:
        with self._lock:
            return sum(self.refused.values())


__all__ = ['Incoming', 'WeightsIntake']
