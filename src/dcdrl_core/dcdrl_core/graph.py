"""What is on the DDS graph, read from the DDS built-in topics, in ROS 2 names."""
from __future__ import annotations

import time
from typing import Optional

from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsPublication, BuiltinTopicDcpsSubscription
from cyclonedds.domain import DomainParticipant

from dcdrl_core.runtime.interrupts import deferred_interrupts

_PREFIXES = {'rt': 'topic', 'rq': 'service request', 'rr': 'service reply'}


def ros_type_name(dds_type_name: str) -> str:
    """'pkg::msg::dds_::Name_' -> 'pkg/msg/Name' (unchanged when it is not a ROS 2 name)."""
    parts = dds_type_name.split('::')
    if len(parts) == 4 and parts[2] == 'dds_' and parts[3].endswith('_'):
        return f'{parts[0]}/{parts[1]}/{parts[3][:-1]}'
    return dds_type_name


def ros_topic_name(dds_topic_name: str) -> Optional[str]:
    """'rt/a/b' -> '/a/b'; None for DDS topics that are not ROS topics."""
    if dds_topic_name.startswith('rt/'):
        return dds_topic_name[2:]
    return None


def discover_topics(participant: DomainParticipant, wait_sec: float = 1.0,
                    until_topic: Optional[str] = None) -> dict[str, set[str]]:
    """ROS topic name -> type names, from the endpoints seen within wait_sec.

    With until_topic, returns as soon as that topic has a publisher (or at the time-out).
    """
    readers = [BuiltinDataReader(participant, BuiltinTopicDcpsPublication),
               BuiltinDataReader(participant, BuiltinTopicDcpsSubscription)]
    topics: dict[str, set[str]] = {}
    publishers: set[str] = set()
    deadline = time.monotonic() + wait_sec
    while True:
        for index, reader in enumerate(readers):
            with deferred_interrupts():  # the builtin take also calls Python from C
                samples = reader.take(N=256)
            for sample in samples:
                name = ros_topic_name(getattr(sample, 'topic_name', '') or '')
                if name is None:
                    continue
                topics.setdefault(name, set()).add(ros_type_name(sample.type_name))
                if index == 0:
                    publishers.add(name)
        if until_topic is not None and until_topic in publishers:
            return topics
        if time.monotonic() >= deadline:
            return topics
        time.sleep(0.05)  # discovery data arrives asynchronously; bounded by wait_sec
