"""Which topics a recorder takes (`ros2 bag record`'s -a, TOPIC..., -e, -x) and raw subscriptions to each.

`TopicFollower` subscribes to a topic once it has a publisher (its offered QoS is what the bag records and
what the reader asks for), so a topic that appears after the start is picked up by the next `poll()`.
Samples arrive as the CDR bytes on the wire, encapsulation header included: what rosbag2 stores.
"""
from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dcdrl_ros.bag.metadata import TopicInfo, qos_profile_dict
from dcdrl_ros.graph import choose_reader_qos, is_hidden_name

MIN_READER_DEPTH = 100  # the reader's keep-last depth at least; a recorder that falls behind a burst keeps it

MessageCallback = Callable[[str, bytes, int, int], None]  # topic, CDR bytes, receive ns, publish ns


@dataclass
class TopicSelection:
    """`ros2 bag record`'s choice of topics. Hidden topics (a token starting with '_') only with
    include_hidden, unless named; topics of the exclude_types never (the node's include_weights)."""
    all_topics: bool = False
    topics: Sequence[str] = ()
    include: str | None = None
    exclude: str | None = None
    include_hidden: bool = False
    exclude_types: Sequence[str] = ()

    def __post_init__(self) -> None:
        self.topics = tuple(name if name.startswith('/') else '/' + name for name in self.topics)
        self._include = _compile(self.include) if self.include else None
        self._exclude = _compile(self.exclude) if self.exclude else None
        if not (self.all_topics or self.topics or self._include):
            raise ValueError('no topics to record: give -a, topic names or -e REGEX')

    def matches(self, topic: str) -> bool:
        if topic in self.topics:
            return True
        if not self.include_hidden and is_hidden_name(topic):
            return False
        if self._exclude is not None and self._exclude.search(topic):
            return False
        return self.all_topics or (self._include is not None and self._include.search(topic) is not None)


def _compile(pattern: str) -> re.Pattern:
    """A ValueError naming the expression (the node's one [FATAL] line), not re.error's traceback."""
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(f"invalid regular expression '{pattern}': {error}") from None


class TopicFollower:
    """Raw subscriptions to the selected topics of a graph, added as their publishers appear."""

    def __init__(self, node: Any, watcher: Any, selection: TopicSelection, on_message: MessageCallback,
                 on_topic: Callable[[TopicInfo], None] | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        self._node = node
        self._watcher = watcher
        self._selection = selection
        self._on_message = on_message
        self._on_topic = on_topic
        self._warn = warn or node.get_logger().warning
        self.topics: dict[str, TopicInfo] = {}
        self._subscriptions: list[Any] = []
        self._refused: set[str] = set()  # topics warned about once (unknown or several types)

    def poll(self) -> list[TopicInfo]:
        """Applies discovery; subscribes to every selected topic not yet followed that has a publisher."""
        self._watcher.poll()
        graph = self._watcher.graph
        added = []
        for topic, types in graph.topic_names_and_types(include_hidden=True):
            if topic in self.topics or topic in self._refused or not self._selection.matches(topic):
                continue
            publishers = graph.topic_endpoints(topic, readers=False)
            if not publishers:
                continue
            info = self._subscribe(topic, types, publishers)
            if info is not None:
                added.append(info)
        return added

    def _refuse(self, topic: str, why: str) -> None:
        self._refused.add(topic)
        self._warn(f'not recording {topic}: {why}')

    def _subscribe(self, topic: str, types: list[str], publishers: list[Any]) -> TopicInfo | None:
        from dcdrl_ros.messages import get_interface
        from dcdrl_ros.runtime.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
        if len(types) != 1:
            self._refuse(topic, f'it has more than one type: {", ".join(types)}')
            return None
        type_name = types[0]
        if type_name in self._selection.exclude_types:
            self._refused.add(topic)   # left out on purpose: no warning
            return None
        try:
            message_class = get_interface(type_name)
        except (LookupError, ValueError) as error:
            self._refuse(topic, f'its type {type_name} is unknown here ({error})')
            return None
        offered = [endpoint.qos for endpoint in publishers]
        reliability, durability, _notes = choose_reader_qos(offered)
        profile = QoSProfile(depth=max(MIN_READER_DEPTH, *(q.depth for q in offered)),
                             reliability=ReliabilityPolicy[reliability or 'RELIABLE'],
                             durability=DurabilityPolicy[durability or 'VOLATILE'])
        hashes = {endpoint.type_hash for endpoint in publishers} - {'INVALID'}
        info = TopicInfo(name=topic, type=type_name, offered_qos_profiles=[qos_profile_dict(q) for q in offered],
                         type_description_hash=hashes.pop() if len(hashes) == 1 else message_class.get_type_hash())
        self.topics[topic] = info
        if self._on_topic is not None:
            self._on_topic(info)   # before the first message, so a writer has the channel

        def on_sample(data: bytes, sample_info: Any, topic: str = topic) -> None:
            self._on_message(topic, bytes(data), time.time_ns(), int(sample_info.source_timestamp))
        self._subscriptions.append(self._node.create_subscription(
            message_class, topic, on_sample, profile, raw=True, sample_info=True))
        return info

    def close(self) -> None:
        for subscription in self._subscriptions:
            self._node.destroy_subscription(subscription)
        self._subscriptions.clear()
