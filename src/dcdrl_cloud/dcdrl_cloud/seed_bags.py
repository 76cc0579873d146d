"""Seeding a replay from recorded bags (no ROS): offline data first, then live data into the same buffer.

``seed_from_bags`` reads every message of one type (ExperienceBatch for the replay buffer,
TrajectorySegment for the segment learner) from one or more rosbag2 folders, on any topic, and hands
each to the same intake a live message goes through (``experience_intake``: ReplayService.ingest;
``segment_intake``: SegmentLearner.receive_message), so that a refused message (wrong architecture or
sizes, NaN, oversized) is refused and counted exactly as it would be live. A message over the DDS
sample limit (DCDRL_MAX_SAMPLE_SIZE) is refused as 'oversized': live, Cyclone drops it before any node
sees it. A missing or unreadable bag is one line in ``SeedSummary.problems``; a damaged one (a
recorder killed mid-write) gives what the reader recovered, and the damage is said.
"""
from __future__ import annotations

import collections
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcdrl_learning.experience import ExperienceRejected

EXPERIENCE_TYPE = 'dcdrl_msgs/msg/ExperienceBatch'
SEGMENT_TYPE = 'dcdrl_msgs/msg/TrajectorySegment'
# The runtime's DCDRL_MAX_SAMPLE_SIZE default; dcdrl_ros.runtime.context is not imported for it because it
# imports cyclonedds, which a ROS 2 machine running the rclpy backend need not have.
DEFAULT_MAX_MESSAGE_SIZE = '16MiB'
_SIZE_UNITS = {'B': 1, 'kB': 10 ** 3, 'KiB': 2 ** 10, 'MB': 10 ** 6, 'MiB': 2 ** 20, 'GB': 10 ** 9, 'GiB': 2 ** 30}


class SeedRefused(ValueError):
    """A recorded message the live intake refused; ``reason`` groups it in the summary."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Intake = Callable[[Any], int]   # a decoded message -> transitions stored; raises SeedRefused


@dataclass
class SeedSummary:
    """What seeding stored and refused, and which bags could not be (fully) read."""

    paths: int = 0
    bags_read: int = 0
    messages: int = 0
    transitions: int = 0
    refused: collections.Counter[str] = field(default_factory=collections.Counter)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        """'seeded 1200 transitions from 2 bags, refused 3 (2 obs contains NaN or Inf, 1 oversized)'."""
        total = sum(self.refused.values())
        reasons = ', '.join(f'{count} {reason}' for reason, count in self.refused.most_common())
        bags = f'{self.bags_read} bag{"" if self.bags_read == 1 else "s"}'
        unread = f' ({self.paths - self.bags_read} not readable)' if self.bags_read < self.paths else ''
        return (f'seeded {self.transitions} transitions from {bags}{unread}, refused {total}'
                + (f' ({reasons})' if reasons else ''))


def type_matches(recorded: str, wanted: str) -> bool:
    """'dcdrl_msgs/msg/X' also matches 'dcdrl_msgs/X' (the two spellings tools write)."""
    return recorded.replace('/msg/', '/') == wanted.replace('/msg/', '/')


def max_message_bytes(environ: Mapping[str, str] | None = None) -> int:
    """DCDRL_MAX_SAMPLE_SIZE in bytes (a Cyclone size such as 16MiB; the live limit of every sample)."""
    environ = os.environ if environ is None else environ
    text = environ.get('DCDRL_MAX_SAMPLE_SIZE', '').strip() or DEFAULT_MAX_MESSAGE_SIZE
    match = re.fullmatch(r'([0-9]+) ?(B|kB|KiB|MB|MiB|GB|GiB)', text)
    if match is None:
        raise ValueError(f'DCDRL_MAX_SAMPLE_SIZE must be a size such as 16MiB or 500kB, got {text!r}')
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


def decode(type_name: str, data: bytes) -> Any:
    """A message of our CDR codec from the bytes rosbag2 stores (with the 4-byte encapsulation header)."""
    from dcdrl_ros.messages import get_interface  # pure Python: either backend's intake reads its fields
    return get_interface(type_name).deserialize(data)


def _open_bag(path: str) -> Any:
    from dcdrl_ros.bag.reader import BagReader
    return BagReader(path)


def seed_from_bags(paths: Iterable[str], type_name: str, intake: Intake,
                   open_bag: Callable[[str], Any] = _open_bag, max_bytes: int | None = None) -> SeedSummary:
    """Every ``type_name`` message of the bags at ``paths``, in recorded order, through ``intake``.

    ``open_bag(path)`` returns a reader with ``topics`` (name, type), ``messages(topics)`` (each with
    ``type_name`` and ``data``) and ``damage`` (None or what was lost): dcdrl_ros.bag.reader.BagReader.
    Never raises for a bad bag or a bad message: they are in the summary.
    """
    limit = max_message_bytes() if max_bytes is None else max_bytes
    summary = SeedSummary()
    for path in paths:
        summary.paths += 1
        if not Path(path).exists():
            summary.problems.append(f'seed bag {path}: no such file or folder')
            continue
        before = summary.messages
        try:
            reader = open_bag(path)
            topics = [topic.name for topic in reader.topics if type_matches(topic.type, type_name)]
            records = iter(reader.messages(topics)) if topics else iter(())
        except Exception as error:   # any reader failure is this bag's problem, not the node's
            summary.problems.append(f'seed bag {path}: not readable: {error}')
            continue
        summary.bags_read += 1
        if not topics:   # say why it gave nothing: a bag of other topics is a common slip
            found = ', '.join(f'{topic.name} ({topic.type})' for topic in reader.topics) or 'none'
            summary.problems.append(f'seed bag {path}: no {type_name} topic in it (its topics: {found})')
        while True:
            try:
                record = next(records)
            except StopIteration:
                break
            except Exception as error:   # a damaged chunk: keep what came before it
                summary.problems.append(f'seed bag {path}: read {summary.messages - before} messages, then '
                                        f'failed: {error}')
                break
            if type_matches(record.type_name, type_name):
                _take(summary, type_name, record.data, intake, limit)
        damage = getattr(reader, 'damage', None)
        if damage:
            summary.problems.append(f'seed bag {path}: damaged ({damage}); used the {summary.messages - before} '
                                    f'messages recovered')
    return summary


def _take(summary: SeedSummary, type_name: str, data: bytes, intake: Intake, limit: int) -> None:
    summary.messages += 1
    if len(data) > limit:
        summary.refused['oversized'] += 1
        return
    try:
        message = decode(type_name, data)
    except Exception:   # truncated or foreign bytes: the codec's errors are of several kinds
        summary.refused['not decodable'] += 1
        return
    try:
        summary.transitions += intake(message)
    except SeedRefused as error:
        summary.refused[error.reason] += 1


def experience_intake(service: Any) -> Intake:
    """ReplayService.ingest (validation, counters, journal) as a seeding intake."""
    def take(message: Any) -> int:
        try:
            return len(service.ingest(message, live=False))
        except ExperienceRejected as error:   # 'batch 3 from client_0: obs contains NaN' -> 'obs contains NaN'
            raise SeedRefused(str(error).split(': ', 1)[-1]) from None
    return take


def segment_intake(learner: Any) -> Intake:
    """SegmentLearner.receive_message (validation, pairing, its refusal counters) as a seeding intake."""
    def take(message: Any) -> int:
        before = collections.Counter(learner.rejected)
        transition = learner.receive_message(message)
        refused = collections.Counter(learner.rejected) - before
        if refused:
            raise SeedRefused(next(iter(refused)))
        return 0 if transition is None else 1
    return take


__all__ = ['EXPERIENCE_TYPE', 'SEGMENT_TYPE', 'SeedRefused', 'SeedSummary', 'experience_intake',
           'max_message_bytes', 'seed_from_bags', 'segment_intake']
