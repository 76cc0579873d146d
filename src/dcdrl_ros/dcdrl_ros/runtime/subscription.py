"""rclpy.subscription.Subscription over a Cyclone DDS reader."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cyclonedds.sub import DataReader

from dcdrl_ros.messages import Message, SerializationError
from dcdrl_ros.runtime.qos import QoSProfile
from dcdrl_ros.runtime.readable import Readable
from dcdrl_ros.runtime.user_data import endpoint_qos

if TYPE_CHECKING:
    from dcdrl_ros.runtime.node import Node


class Subscription(Readable):
    def __init__(self, node: Node, msg_type: type[Message], topic: str,
                 callback: Callable[..., None], qos: QoSProfile, raw: bool = False,
                 sample_info: bool = False) -> None:
        super().__init__(node.context)
        self.msg_type = msg_type
        self.topic_name = topic
        self.callback = callback
        self.qos_profile = qos
        self.raw = raw
        self.sample_info = sample_info  # raw callbacks also get the DDS SampleInfo (source timestamp: a recorder)
        self._node = node
        self.rejected = 0  # samples that did not deserialise
        dds_topic = node.context.topic('rt' + topic, msg_type)
        self.reader = DataReader(node.context.participant, dds_topic, endpoint_qos(qos.to_dds(), msg_type))
        self._register()

    def _dispatch(self) -> None:
        codec = self.msg_type._codec
        for data, info in self._take():
            if self.raw:
                if self.sample_info:
                    self.callback(data, info)
                else:
                    self.callback(data)
                continue
            try:
                message = codec.decode(data)
            except SerializationError as error:
                self.rejected += 1
                self._node.get_logger().error(f'dropped a malformed sample on {self.topic_name}: {error}')
                continue
            self.callback(message)

    def get_publisher_count(self) -> int:
        return self.reader.get_subscription_matched_status().current_count

    def destroy(self) -> None:
        self._unregister()
