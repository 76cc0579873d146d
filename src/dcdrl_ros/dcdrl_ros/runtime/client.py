"""rclpy.client.Client over Cyclone DDS, with futures for the replies."""
from __future__ import annotations

import struct
import threading
import time
from typing import TYPE_CHECKING, Any

from cyclonedds._clayer import ddspy_write

from dcdrl_ros.messages import HEADER_SIZE, Message, SerializationError, ServiceType
from dcdrl_ros.runtime.context import delete_entity
from dcdrl_ros.runtime.qos import QoSProfile
from dcdrl_ros.runtime.readable import Readable
from dcdrl_ros.runtime.service_endpoints import REQUEST_HEADER, open_service_endpoints, user_data_item
from dcdrl_ros.runtime.task import Future

if TYPE_CHECKING:
    from dcdrl_ros.runtime.node import Node


class Client(Readable):
    def __init__(self, node: Node, srv_type: type[ServiceType], name: str, qos: QoSProfile) -> None:
        super().__init__(node.context)
        self.srv_type = srv_type
        self.srv_name = name
        self._node = node
        self.writer, self.reader = open_service_endpoints(node.context, srv_type, name, qos, is_service=False)
        self._register()
        # As rmw_cyclonedds_cpp: the request writer's instance handle identifies this client.
        self.guid = self.writer.instance_handle & 0xFFFFFFFFFFFFFFFF
        self._sequence = 0
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()

    def service_is_ready(self) -> bool:
        if self.writer is None:
            return False
        service_ids = set()
        for handle in self.writer.get_matched_subscriptions():
            service_id = user_data_item(self.writer.get_matched_subscription_data(handle), 'serviceid')
            if service_id:
                service_ids.add(service_id)
        writers = self.reader.get_matched_publications()
        if not service_ids:
            return bool(self.writer.get_matched_subscriptions()) and bool(writers)
        return any(user_data_item(self.reader.get_matched_publication_data(h), 'serviceid') in service_ids
                   for h in writers)

    def wait_for_service(self, timeout_sec: float | None = None) -> bool:
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        while self._context.ok():
            if self.service_is_ready():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)  # discovery has no event here; bounded poll like rclpy's wait_for_service
        return False

    def call_async(self, request: Message) -> Future:
        if not isinstance(request, self.srv_type.Request):
            raise TypeError(f'client of {self.srv_name} expects {self.srv_type.Request._spec.full_name}, '
                            f'got {type(request).__name__}')
        future = Future()
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
            self._pending[sequence] = future
        future.add_done_callback(lambda _f: self._forget(sequence))
        payload = self.srv_type.Request._codec.encode(request, REQUEST_HEADER.pack(self.guid, sequence))
        padding = -len(payload) % 4
        ddspy_write(self.writer._ref, payload + b'\x00' * padding)
        return future

    def call(self, request: Message, timeout_sec: float | None = None) -> Any:
        """Blocks until the reply; needs an executor spinning in another thread, as in rclpy."""
        future = self.call_async(request)
        if not future.wait(timeout_sec):
            future.cancel()
            raise TimeoutError(f'no reply from {self.srv_name} within {timeout_sec} s')
        return future.result()

    def remove_pending_request(self, future: Future) -> None:
        future.cancel()

    def _forget(self, sequence: int) -> None:
        with self._lock:
            self._pending.pop(sequence, None)

    def _dispatch(self) -> None:
        codec = self.srv_type.Response._codec
        for data, _info in self._take():
            try:
                guid, seq = REQUEST_HEADER.unpack(data[HEADER_SIZE:HEADER_SIZE + REQUEST_HEADER.size])
            except struct.error:
                continue
            if guid != self.guid:
                continue  # another client's reply on the shared reply topic
            with self._lock:
                future = self._pending.get(seq)
            if future is None:
                continue
            try:
                future.set_result(codec.decode(data, HEADER_SIZE + REQUEST_HEADER.size))
            except SerializationError as error:
                future.set_exception(error)

    def destroy(self) -> None:
        self._unregister()
        delete_entity(self.writer)
        self.writer = None
