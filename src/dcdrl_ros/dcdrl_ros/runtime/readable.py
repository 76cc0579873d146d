"""The base of every entity the executor takes samples for (subscriptions, services, clients)."""
from __future__ import annotations

from typing import Any

from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState
from cyclonedds.sub import DataReader

from dcdrl_ros.runtime.context import Context, delete_entity
from dcdrl_ros.runtime.interrupts import take_serialized

_ANY_STATE = SampleState.Any | ViewState.Any | InstanceState.Any
_TAKE_BATCH = 64


class Readable:
    """A DDS reader whose samples the executor takes and dispatches when its condition triggers."""

    rejected: int  # Subscription, Service: samples that did not deserialise

    def __init__(self, context: Context) -> None:
        self._context = context
        self.reader: DataReader | None = None
        self.condition: ReadCondition | None = None

    def _register(self) -> None:
        self.condition = ReadCondition(self.reader, _ANY_STATE)
        self._context.register_readable(self)

    def _take(self) -> list[tuple[bytes, Any]]:
        if self.reader is None:
            return []
        samples: list[tuple[bytes, Any]] = []
        while True:
            taken = take_serialized(self.reader._ref, _ANY_STATE, _TAKE_BATCH)
            if isinstance(taken, int):  # a DDS error code: the reader is gone
                return samples
            samples.extend((data, info) for data, info in taken if info.valid_data)
            if len(taken) < _TAKE_BATCH:
                return samples

    def _dispatch(self) -> None:
        raise NotImplementedError

    def _unregister(self) -> None:
        if self.condition is not None:
            self._context.unregister_readable(self)
        delete_entity(self.condition)
        delete_entity(self.reader)
        self.condition = None
        self.reader = None
