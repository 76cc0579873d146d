"""rclpy.service.Service over Cyclone DDS."""
from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cyclonedds._clayer import ddspy_write

from dcdrl_ros.messages import HEADER_SIZE, SerializationError, ServiceType
from dcdrl_ros.runtime.context import delete_entity
from dcdrl_ros.runtime.qos import QoSProfile
from dcdrl_ros.runtime.readable import Readable
from dcdrl_ros.runtime.service_endpoints import REQUEST_HEADER, open_service_endpoints, user_data_item

if TYPE_CHECKING:
    from dcdrl_ros.runtime.node import Node


class Service(Readable):
    """Request topic 'rq<name>Request', reply topic 'rr<name>Reply', header {guid, seq} first."""

    REPLY_MATCH_WAIT_SEC = 0.1  # as rmw_cyclonedds_cpp: wait this long for the client's reader

    def __init__(self, node: Node, srv_type: type[ServiceType], name: str,
                 callback: Callable[[Any, Any], Any], qos: QoSProfile) -> None:
        super().__init__(node.context)
        self.srv_type = srv_type
        self.srv_name = name
        self.callback = callback
        self._node = node
        self.rejected = 0
        self.writer, self.reader = open_service_endpoints(node.context, srv_type, name, qos, is_service=True)
        self._register()

    def _dispatch(self) -> None:
        codec = self.srv_type.Request._codec
        for data, info in self._take():
            try:
                header = data[HEADER_SIZE:HEADER_SIZE + REQUEST_HEADER.size]
                guid, seq = REQUEST_HEADER.unpack(header)
                request = codec.decode(data, HEADER_SIZE + REQUEST_HEADER.size)
            except (SerializationError, struct.error) as error:
                self.rejected += 1
                self._node.get_logger().error(f'dropped a malformed request on {self.srv_name}: {error}')
                continue
            response = self.callback(request, self.srv_type.Response())
            if not isinstance(response, self.srv_type.Response):
                raise TypeError(f'service {self.srv_name} callback must return a '
                                f'{self.srv_type.Response._spec.full_name}, got {type(response).__name__}')
            if self._client_reader_matched(info.publication_handle):
                payload = self.srv_type.Response._codec.encode(response, REQUEST_HEADER.pack(guid, seq))
                padding = -len(payload) % 4
                ddspy_write(self.writer._ref, payload + b'\x00' * padding)

    def _client_reader_matched(self, request_writer_handle: int) -> bool:
        """True once the requesting client's reply reader is matched (or it names no client id)."""
        try:
            request_writer = self.reader.get_matched_publication_data(request_writer_handle)
        except Exception:  # the client is gone
            return False
        client_id = user_data_item(request_writer, 'clientid')
        if client_id is None:
            return True
        deadline = time.monotonic() + self.REPLY_MATCH_WAIT_SEC
        while True:
            for handle in self.writer.get_matched_subscriptions():
                try:
                    reader = self.writer.get_matched_subscription_data(handle)
                except Exception:  # unmatched since the list was taken (a reader going away): not ours to answer
                    continue
                if user_data_item(reader, 'clientid') == client_id:
                    return True
            if time.monotonic() >= deadline:
                self._node.get_logger().warning(f'{self.srv_name}: client reply reader not matched; reply dropped')
                return False
            time.sleep(0.01)  # bounded poll of discovery state, as rmw_cyclonedds_cpp does

    def destroy(self) -> None:
        self._unregister()
        delete_entity(self.writer)
        self.writer = None
