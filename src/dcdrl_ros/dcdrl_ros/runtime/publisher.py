"""rclpy.publisher.Publisher over a Cyclone DDS writer."""
from __future__ import annotations

from typing import TYPE_CHECKING

from cyclonedds._clayer import ddspy_write
from cyclonedds.pub import DataWriter

from dcdrl_ros.messages import Message
from dcdrl_ros.runtime.context import delete_entity
from dcdrl_ros.runtime.qos import QoSProfile
from dcdrl_ros.runtime.user_data import endpoint_qos

if TYPE_CHECKING:
    from dcdrl_ros.runtime.node import Node


class Publisher:
    def __init__(self, node: Node, msg_type: type[Message], topic: str, qos: QoSProfile) -> None:
        self.msg_type = msg_type
        self.topic_name = topic
        self.qos_profile = qos
        self._node = node
        dds_topic = node.context.topic('rt' + topic, msg_type)
        self.writer = DataWriter(node.context.participant, dds_topic, endpoint_qos(qos.to_dds(), msg_type))
        self.published = 0

    @property
    def topic(self) -> str:
        return self.topic_name

    def publish(self, msg: Message) -> None:
        if not isinstance(msg, self.msg_type):
            raise TypeError(f'publisher of {self.topic_name} expects {self.msg_type._spec.full_name}, '
                            f'got {type(msg).__name__}')
        ret = ddspy_write(self.writer._ref, self.msg_type._codec.encode_for_dds(msg))
        if ret < 0:
            raise RuntimeError(f'DDS write on {self.topic_name} failed with code {ret}')
        self.published += 1

    def publish_serialized(self, data: bytes) -> None:
        padding = -len(data) % 4
        ret = ddspy_write(self.writer._ref, data + b'\x00' * padding if padding else data)
        if ret < 0:
            raise RuntimeError(f'DDS write on {self.topic_name} failed with code {ret}')
        self.published += 1

    def get_subscription_count(self) -> int:
        return self.writer.get_publication_matched_status().current_count

    def destroy(self) -> None:
        delete_entity(self.writer)
        self.writer = None
