"""`ros2 bag info`'s text and `ros2 bag play`'s playback over a BagReader (no ROS import: a runtime node is passed in).

Playback publishes each message's recorded CDR bytes untouched, at ``start + (log time - first log time) / rate``
on the monotonic clock (each target computed from the start, so waiting errors do not add up), with the QoS
its publishers offered when it was recorded, adapted the way rosbag2 adapts it.
"""
from __future__ import annotations

import math
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcdrl_ros.bag.metadata import NO_TIME, TopicInfo, endpoint_qos_of
from dcdrl_ros.bag.reader import BagReader

NS = 1_000_000_000
SERVICE_EVENT_SUFFIX = '/_service_event'
_INDENT = ' ' * 19  # the width of rosbag2's longest label ('Topic information: ')
_SCHEMA_SEPARATOR = '=' * 80


# --- info ------------------------------------------------------------------------------------------------
def format_size(size: int) -> str:
    """Bytes as rosbag2 prints a bag's size: B without decimals, KiB..TiB with one."""
    value, unit = float(size), 0
    units = ('B', 'KiB', 'MiB', 'GiB', 'TiB')
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    return f'{value:.{0 if unit == 0 else 1}f} {units[unit]}'


def _seconds(ns: int) -> str:
    return f'{ns // NS}.{ns % NS:09d}'


def _time_point(ns: int) -> str:
    local = time.localtime(ns // NS)
    return f'{time.strftime("%b %e %Y", local)} {time.strftime("%H:%M:%S", local)}.{ns % NS:09d} ({_seconds(ns)})'


def _is_service_event(topic: TopicInfo) -> bool:
    return topic.name.endswith(SERVICE_EVENT_SUFFIX) and topic.type.endswith('_Event')


def info_text(reader: BagReader) -> str:
    """What `ros2 bag info DIR` prints (rosbag2 0.26's layout), plus a 'Damage:' line when something was lost."""
    meta = reader.metadata
    start = meta.starting_time if meta.starting_time != NO_TIME else 0
    topics = [(t, n) for t, n in meta.topics_with_message_count if not _is_service_event(t)]
    services = [(t, n) for t, n in meta.topics_with_message_count if _is_service_event(t)]
    lines = ['', 'Files:             ' + f'\n{_INDENT}'.join(meta.relative_file_paths),
             f'Bag size:          {format_size(reader.bag_size)}',
             f'Storage id:        {meta.storage_identifier}',
             f'ROS Distro:        {meta.ros_distro or "unknown"}',
             f'Duration:          {_seconds(meta.duration)}s',
             f'Start:             {_time_point(start)}',
             f'End:               {_time_point(start + meta.duration)}',
             f'Messages:          {meta.message_count - sum(n for _t, n in services)}',
             'Topic information: ' + f'\n{_INDENT}'.join(
                 f'Topic: {t.name} | Type: {t.type} | Count: {n} | Serialization Format: {t.serialization_format}'
                 for t, n in topics),
             f'Service:           {len(services)}',
             'Service information: ' + f'\n{_INDENT}  '.join(
                 f'Service: {t.name[:-len(SERVICE_EVENT_SUFFIX)]} | Type: {t.type[:-len("_Event")]} | '
                 f'Event Count: {n} | Serialization Format: {t.serialization_format}' for t, n in services)]
    if reader.damage:
        lines.append(f'Damage:            {reader.damage}')
    return '\n'.join(lines)


# --- QoS -------------------------------------------------------------------------------------------------
def playback_qos(topic: TopicInfo, warn: Callable[[str], None] = lambda _text: None) -> Any:
    """The QoS to offer when replaying ``topic``: reliability and durability of the recorded publishers when
    they all agree (so a transient-local topic latches again and a best-effort one stays best-effort), else
    rosbag2's default offer (reliable, volatile), as rosbag2's player adapts recorded offers. The depth is the
    largest recorded one, so a latched history is as long as it was."""
    from dcdrl_ros.runtime.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    offers = [endpoint_qos_of(profile) for profile in topic.offered_qos_profiles]
    depth = max([offer.depth for offer in offers if offer.history == 'KEEP_LAST'] + [10])
    profile = QoSProfile(depth=depth)
    if not offers:
        return profile
    if len({(o.reliability, o.durability) for o in offers}) > 1:
        warn(f'Not all original publishers on topic {topic.name} offered the same QoS profiles; '
             'falling back to the default publisher offer (reliable, volatile).')
        return profile
    if offers[0].reliability in ('RELIABLE', 'BEST_EFFORT'):
        profile.reliability = ReliabilityPolicy[offers[0].reliability]
    if offers[0].durability in ('VOLATILE', 'TRANSIENT_LOCAL'):
        profile.durability = DurabilityPolicy[offers[0].durability]
    return profile


# --- message classes: ours, else built from the definition the bag stores ------------------------------------
def split_definition(type_name: str, text: str) -> dict[str, str]:
    """A ros2msg schema (the type, then '=' * 80 and 'MSG: pkg/Name' before each nested type) as
    {'pkg/msg/Name': its .msg text}."""
    parts: dict[str, str] = {}
    name, lines = type_name, list[str]()
    for line in text.splitlines():
        if line.strip() == _SCHEMA_SEPARATOR:
            parts[name] = '\n'.join(lines) + '\n'
            name, lines = '', []
        elif not name and line.startswith('MSG: '):
            package, _, short = line[5:].strip().partition('/')
            name = f'{package}/msg/{short.split("/")[-1]}'
        else:
            lines.append(line)
    parts[name] = '\n'.join(lines) + '\n'
    return parts


class MessageClasses:
    """Message classes for a bag's types: our registry's where it has them, else the bag's stored definitions
    (written as .msg files to a temporary interface folder that lives as long as this object)."""

    def __init__(self, reader: BagReader) -> None:
        self._reader = reader
        self._folder: tempfile.TemporaryDirectory | None = None
        self._registry: Any = None

    def get(self, type_name: str) -> Any:
        from dcdrl_ros.messages import InterfaceNotFoundError, InterfaceRegistry, default_registry
        try:
            return default_registry().get(type_name)
        except InterfaceNotFoundError:
            pass
        text = self._reader.message_definition(type_name)
        if text is None:
            raise InterfaceNotFoundError(f'{type_name} is neither in our interfaces nor stored in the bag')
        if self._folder is None:
            self._folder = tempfile.TemporaryDirectory(prefix='dcdrl_bag_types_')
            self._registry = InterfaceRegistry([self._folder.name, *default_registry().search_path])
        for name, body in split_definition(type_name, text).items():
            package, _kind, short = name.split('/')
            path = Path(self._folder.name, package, 'msg', f'{short}.msg')
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(body, encoding='utf-8')
        return self._registry.get(type_name)

    def close(self) -> None:
        if self._folder is not None:
            self._folder.cleanup()


# --- playback --------------------------------------------------------------------------------------------
@dataclass
class PlayOptions:
    rate: float = 1.0
    loop: bool = False
    start_offset: float = 0.0         # seconds after the bag's start
    topics: Sequence[str] = ()        # empty: all
    remap: dict[str, str] = field(default_factory=dict)
    clock_hz: float = 0.0             # 0: no /clock
    delay: float = 0.0                # seconds before the first message
    measure: bool = False             # keep each message's lateness (for the timing benchmark)


def parse_remaps(rules: Iterable[str]) -> dict[str, str]:
    """'--remap /a:=/b' rules as {'/a': '/b'}; ValueError for a rule without ':='."""
    remaps = {}
    for rule in rules:
        source, sep, target = rule.partition(':=')
        if not sep or not source or not target:
            raise ValueError(f"remap rule {rule!r} is not 'from:=to'")
        remaps[source] = target
    return remaps


def playback_target(start_monotonic: float, first_ns: int, log_time_ns: int, rate: float) -> float:
    """When (monotonic seconds) a message is due: its offset in the bag scaled by 1/rate, from the start."""
    return start_monotonic + (log_time_ns - first_ns) / NS / rate


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))] if ordered else 0.0


class Player:
    """Plays a bag through ``node`` (our runtime's Node: its publishers take CDR bytes, publish_serialized)."""

    def __init__(self, node: Any, reader: BagReader, options: PlayOptions,
                 log: Callable[[str], None] = print, ok: Callable[[], bool] = lambda: True,
                 stop: threading.Event | None = None) -> None:
        self.node, self.reader, self.options, self.log, self.ok = node, reader, options, log, ok
        self.published = 0
        self.failed = 0                  # messages DDS refused to write (each topic's first one is logged)
        self.lateness: list[float] = []  # seconds each message went out after its target (options.measure)
        self._classes = MessageClasses(reader)
        self._publishers: dict[str, Any] = {}
        self._stop = stop or threading.Event()  # set by stop(), or by the caller's signal handler
        self._clock_anchor: tuple[float, int] | None = None
        self._clock_publisher: list[Any] = []   # /clock's, once run() made it
        wanted = set(options.topics)
        self.topics = [t for t in reader.topics if not wanted or t.name in wanted]
        for name in sorted(wanted - {t.name for t in reader.topics}):
            log(f'Topic {name} is not in the bag: nothing to play for it.')
        for topic in self.topics:
            cls = self._classes.get(topic.type)
            name = options.remap.get(topic.name, topic.name)
            self._publishers[topic.name] = node.create_publisher(cls, name, playback_qos(topic, log))

    def publisher(self, topic: str) -> Any:
        """The publisher of a recorded topic (published under its remapped name)."""
        return self._publishers[topic]

    def message_class(self, topic: str) -> Any:
        return self._publishers[topic].msg_type

    def offered_qos(self, topic: str) -> Any:
        return self._publishers[topic].qos_profile

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        for publisher in [*self._publishers.values(), *self._clock_publisher]:
            self.node.destroy_publisher(publisher)
        self._publishers, self._clock_publisher = {}, []
        self._classes.close()

    def run(self) -> int:
        """Plays (repeatedly with loop) until the end, stop() or ``ok()`` turning false; returns messages published."""
        clock = self._start_clock() if self.options.clock_hz > 0 else None
        try:
            if self.options.delay > 0 and self._stop.wait(self.options.delay):
                return self.published
            while self._play_once() and self.options.loop and not self._stop.is_set() and self.ok():
                if not self.published:
                    self.log('Nothing to play in the selected topics and time range: not looping.')
                    break
        finally:
            self._stop.set()
            if clock is not None:
                clock.join(5)
        return self.published

    def _play_once(self) -> bool:
        """One pass over the bag; False when it was stopped early."""
        meta = self.reader.metadata
        first_ns = meta.starting_time + int(self.options.start_offset * NS)
        start = 0.0
        rate, measure = self.options.rate, self.options.measure
        failed_topics: set[str] = set()
        for message in self.reader.messages(self._publishers.keys(), start_ns=first_ns):
            if not start:  # the clock starts with the first message, once what comes before it has been read
                start = time.monotonic()
                self._clock_anchor = (start, first_ns)
            target = playback_target(start, first_ns, message.log_time_ns, rate)
            wait = target - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return False
            if not self.ok():
                return False
            try:
                self._publishers[message.topic].publish_serialized(message.data)
            except RuntimeError as error:  # one bad message: counted, playback goes on
                self.failed += 1
                if message.topic not in failed_topics:
                    failed_topics.add(message.topic)
                    self.log(f'Could not publish a message of {message.topic}: {error}')
                continue
            if measure:
                self.lateness.append(time.monotonic() - target)
            self.published += 1
        return True

    def _start_clock(self) -> threading.Thread:
        """Publishes rosgraph_msgs/msg/Clock on /clock at clock_hz: the bag time playback has reached."""
        from dcdrl_ros.messages import get_interface
        clock_class = get_interface('rosgraph_msgs/msg/Clock')
        publisher = self.node.create_publisher(clock_class, '/clock', 1)
        self._clock_publisher.append(publisher)
        period = 1.0 / self.options.clock_hz

        def tick() -> None:
            next_time = time.monotonic()
            while not self._stop.is_set() and self.ok():
                if self._clock_anchor is not None:
                    anchor, first_ns = self._clock_anchor
                    now_ns = first_ns + int(max(0.0, time.monotonic() - anchor) * self.options.rate * NS)
                    message = clock_class()
                    message.clock.sec, message.clock.nanosec = divmod(now_ns, NS)
                    publisher.publish(message)
                next_time += period
                self._stop.wait(max(0.0, next_time - time.monotonic()))
        thread = threading.Thread(target=tick, name='bag_clock', daemon=True)
        thread.start()
        return thread
