"""`dcdrl`: the ros2 command's verbs for a machine without ROS 2.

    dcdrl run PKG EXE [args] [--ros-args ...]
    dcdrl launch PKG FILE [name:=value ...]   |  dcdrl launch PATH [name:=value ...]
    dcdrl topic list [-t]
    dcdrl topic echo TOPIC [TYPE] [--once] [--count N] [--full-length]
    dcdrl topic hz TOPIC [--window N]
    dcdrl topic pub [--rate R] [--once] [--times N] TOPIC TYPE [VALUES]
    dcdrl node list
    dcdrl param list|get|set|dump|describe  (dcdrl_core/param_cli.py)
    dcdrl interface show TYPE  |  dcdrl interface list
"""
from __future__ import annotations

import argparse
import importlib.metadata
import math
import sys
import threading
import time
from typing import Any, Optional, Sequence

import yaml

EXIT_USAGE = 2


# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------
def find_executable(package: str, executable: str) -> importlib.metadata.EntryPoint:
    """The console_scripts entry point EXE of the installed distribution PKG (what ros2 run runs)."""
    try:
        distribution = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise LookupError(f"package '{package}' not found (run `make venv` or `colcon build` and source it)") from None
    scripts = [ep for ep in distribution.entry_points if ep.group == 'console_scripts']
    for entry_point in scripts:
        if entry_point.name == executable:
            return entry_point
    names = ', '.join(sorted(ep.name for ep in scripts)) or 'none'
    raise LookupError(f"no executable '{executable}' in package '{package}' (it has: {names})")


def cmd_run(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0].startswith('-'):
        sys.stderr.write('usage: dcdrl run PKG EXE [args...] [--ros-args ...]\n')
        return EXIT_USAGE
    package, executable, rest = argv[0], argv[1], argv[2:]
    try:
        entry_point = find_executable(package, executable)
    except LookupError as error:
        sys.stderr.write(f'dcdrl run: {error}\n')
        return 1
    sys.argv = [executable, *rest]
    result = entry_point.load()()
    return result if isinstance(result, int) else 0


# ---------------------------------------------------------------------------
# topic
# ---------------------------------------------------------------------------
def _start_runtime(node_name: str):
    from dcdrl_core import runtime
    runtime.init(args=[])
    return runtime, runtime.Node(node_name)


def _resolve_type(participant: Any, topic: str, type_name: Optional[str], wait_sec: float) -> str:
    from dcdrl_core.graph import discover_topics
    if type_name:
        return type_name
    topics = discover_topics(participant, wait_sec, until_topic=topic)
    types = topics.get(topic)
    if not types:
        raise LookupError(f'topic {topic} has no publisher yet; give its type: dcdrl topic echo {topic} pkg/msg/Type')
    if len(types) > 1:
        raise LookupError(f'topic {topic} has several types {sorted(types)}; give one')
    return next(iter(types))


def _qos_for(args: argparse.Namespace):
    from dcdrl_core.runtime.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    return QoSProfile(
        depth=getattr(args, 'qos_depth', 10),
        reliability=(ReliabilityPolicy.BEST_EFFORT if getattr(args, 'qos_reliability', '') == 'best_effort'
                     else ReliabilityPolicy.RELIABLE),
        durability=(DurabilityPolicy.TRANSIENT_LOCAL if getattr(args, 'qos_durability', '') == 'transient_local'
                    else DurabilityPolicy.VOLATILE))


def cmd_topic_list(args: argparse.Namespace) -> int:
    from dcdrl_core.graph import discover_topics
    runtime, node = _start_runtime('_dcdrl_topic_list')
    try:
        topics = discover_topics(node.context.participant, args.spin_time)
        for name in sorted(topics):
            suffix = f' [{", ".join(sorted(topics[name]))}]' if args.show_types else ''
            print(f'{name}{suffix}')
    finally:
        runtime.shutdown()
    return 0


def _run_topic_tool(verb: str, args: argparse.Namespace, setup: Any) -> int:
    """Resolves the topic's type, lets ``setup(runtime, node, topic, message_class)`` add its
    entities, then spins until Ctrl-C or until the tool shuts the runtime down itself."""
    from dcdrl_core.messages import get_interface
    runtime, node = _start_runtime(f'_dcdrl_topic_{verb}')
    topic = node.resolve_topic_name(args.topic)
    try:
        message_class = get_interface(_resolve_type(node.context.participant, topic, args.type, args.spin_time))
        setup(runtime, node, topic, message_class)
        runtime.spin(node)
    except KeyboardInterrupt:
        pass
    except LookupError as error:
        sys.stderr.write(f'dcdrl topic {verb}: {error}\n')
        return 1
    finally:
        runtime.try_shutdown()
    return 0


def cmd_topic_echo(args: argparse.Namespace) -> int:
    from dcdrl_core.message_utils import message_to_dict
    received = [0]
    limit = 1 if args.once else args.count
    truncate = None if args.full_length else args.truncate_length

    def setup(runtime: Any, node: Any, topic: str, message_class: Any) -> None:
        def on_message(message: Any) -> None:
            sys.stdout.write(yaml.safe_dump(message_to_dict(message, truncate), sort_keys=False,
                                            default_flow_style=False, allow_unicode=True) + '---\n')
            sys.stdout.flush()
            received[0] += 1
            if limit and received[0] >= limit:
                runtime.shutdown()
        node.create_subscription(message_class, topic, on_message, _qos_for(args))
    return _run_topic_tool('echo', args, setup)


class RateMeter:
    """The statistics `ros2 topic hz` prints, over a sliding window of arrival times."""

    def __init__(self, window: int = 10000) -> None:
        self.window = window
        self._times: list[float] = []
        self._lock = threading.Lock()

    def tick(self, now: Optional[float] = None) -> None:
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)
            if len(self._times) > self.window + 1:
                del self._times[0]

    def stats(self) -> Optional[dict[str, float]]:
        with self._lock:
            times = list(self._times)
        if len(times) < 2:
            return None
        deltas = [b - a for a, b in zip(times, times[1:])]
        mean = sum(deltas) / len(deltas)
        std = math.sqrt(sum((d - mean) ** 2 for d in deltas) / len(deltas))
        return {'rate': 1.0 / mean if mean > 0 else float('inf'), 'min': min(deltas), 'max': max(deltas),
                'std': std, 'window': len(deltas) + 1}


def cmd_topic_hz(args: argparse.Namespace) -> int:
    meter = RateMeter(args.window)

    def report() -> None:
        stats = meter.stats()
        if stats:
            print(f"average rate: {stats['rate']:.3f}\n\tmin: {stats['min']:.3f}s max: {stats['max']:.3f}s "
                  f"std dev: {stats['std']:.5f}s window: {stats['window']}", flush=True)

    def setup(runtime: Any, node: Any, topic: str, message_class: Any) -> None:
        node.create_subscription(message_class, topic, lambda _data: meter.tick(), _qos_for(args), raw=True)
        node.create_timer(1.0, report)
    return _run_topic_tool('hz', args, setup)


def cmd_topic_pub(args: argparse.Namespace) -> int:
    from dcdrl_core.message_utils import set_message_fields
    from dcdrl_core.messages import get_interface
    try:
        values = yaml.safe_load(args.values) if args.values else {}
        message = set_message_fields(get_interface(args.type)(), values)
    except (ValueError, LookupError, yaml.YAMLError) as error:
        sys.stderr.write(f'dcdrl topic pub: {error}\n')
        return 1
    runtime, node = _start_runtime('_dcdrl_topic_pub')
    try:
        publisher = node.create_publisher(type(message), node.resolve_topic_name(args.topic), _qos_for(args))
        times = 1 if args.once else args.times
        if times:  # like ros2 topic pub -w: wait for a subscriber before a bounded burst
            deadline = time.monotonic() + args.wait_timeout
            while publisher.get_subscription_count() < args.wait_matching_subscriptions:
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.02)
        sent = 0
        period = 1.0 / args.rate if args.rate > 0 else 0.0
        next_time = time.monotonic()
        while not times or sent < times:
            publisher.publish(message)
            sent += 1
            print(f'publishing #{sent}: {message!r}', flush=True)
            if times and sent >= times:
                break
            next_time += period
            time.sleep(max(0.0, next_time - time.monotonic()))
    except KeyboardInterrupt:
        pass
    finally:
        runtime.try_shutdown()
    return 0


# ---------------------------------------------------------------------------
# node
# ---------------------------------------------------------------------------
def discover_nodes(context: Any, wait_sec: float) -> list[str]:
    """Fully qualified names of the nodes announced on ros_discovery_info (ROS 2 and ours)."""
    from cyclonedds.sub import DataReader
    from dcdrl_core.messages import get_interface
    from dcdrl_core.runtime.qos import DurabilityPolicy, HistoryPolicy, QoSProfile
    from dcdrl_core.runtime.node import _ANY_STATE
    from dcdrl_core.runtime.interrupts import take_serialized
    info_class = get_interface('rmw_dds_common/msg/ParticipantEntitiesInfo')
    # Keep-all as rmw_dds_common's reader: the topic has no key, so depth 1 would keep one participant.
    qos = QoSProfile(history=HistoryPolicy.KEEP_ALL, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    reader = DataReader(context.participant, context.topic('ros_discovery_info', info_class), qos.to_dds())
    latest: dict[bytes, Any] = {}
    deadline = time.monotonic() + wait_sec
    while time.monotonic() < deadline:
        taken = take_serialized(reader._ref, _ANY_STATE, 256)
        for data, info in taken if not isinstance(taken, int) else []:
            if info.valid_data:
                message = info_class.deserialize(data)
                latest[bytes(message.gid.data)] = message
        time.sleep(0.05)  # discovery data trickles in; bounded by wait_sec like ros2's spin time
    own = context.participant.guid.bytes
    names = set()
    for gid, message in latest.items():
        if gid == own:
            continue
        for node in message.node_entities_info_seq:
            names.add(node.node_namespace.rstrip('/') + '/' + node.node_name)
    return sorted(names)


def cmd_node_list(args: argparse.Namespace) -> int:
    from dcdrl_core.runtime.context import Context
    context = Context()
    context.init([])
    try:
        for name in discover_nodes(context, args.spin_time):
            print(name)
    finally:
        context.shutdown()
    return 0


# ---------------------------------------------------------------------------
# interface
# ---------------------------------------------------------------------------
def cmd_interface(args: argparse.Namespace) -> int:
    from dcdrl_core.messages import InterfaceNotFoundError, default_registry
    registry = default_registry()
    if args.verb == 'list':
        for name in registry.list_types():
            print(name)
        return 0
    parts = args.type.strip('/').split('/')
    if len(parts) == 2:
        parts = [parts[0], 'msg', parts[1]]
    try:
        path = registry.find_file(parts[0], parts[1], parts[2])
    except (InterfaceNotFoundError, IndexError):
        sys.stderr.write(f'dcdrl interface show: unknown interface {args.type!r}\n')
        return 1
    with open(path, encoding='utf-8') as handle:
        sys.stdout.write(handle.read())
    return 0


# ---------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='dcdrl', description='ros2-style tools for the ROS-free DC-DRL runtime')
    verbs = parser.add_subparsers(dest='command', required=True)
    verbs.add_parser('run', help='run an executable of a package', add_help=False)
    verbs.add_parser('launch', help='run a launch file', add_help=False)

    topic = verbs.add_parser('topic', help='inspect and publish topics').add_subparsers(dest='verb', required=True)

    def add_qos(sub: argparse.ArgumentParser) -> None:
        sub.add_argument('--qos-reliability', choices=['reliable', 'best_effort'], default='reliable')
        sub.add_argument('--qos-durability', choices=['volatile', 'transient_local'], default='volatile')
        sub.add_argument('--qos-depth', type=int, default=10)
        sub.add_argument('--spin-time', type=float, default=2.0, help='seconds to wait for discovery')

    sub = topic.add_parser('list')
    sub.add_argument('-t', '--show-types', action='store_true')
    sub.add_argument('--spin-time', type=float, default=1.5)
    sub = topic.add_parser('echo')
    sub.add_argument('topic')
    sub.add_argument('type', nargs='?')
    sub.add_argument('--once', action='store_true')
    sub.add_argument('--count', type=int, default=0)
    sub.add_argument('--full-length', action='store_true')
    sub.add_argument('--truncate-length', type=int, default=128)
    add_qos(sub)
    sub = topic.add_parser('hz')
    sub.add_argument('topic')
    sub.add_argument('type', nargs='?')
    sub.add_argument('--window', '-w', type=int, default=10000)
    add_qos(sub)
    sub = topic.add_parser('pub')
    sub.add_argument('topic')
    sub.add_argument('type')
    sub.add_argument('values', nargs='?', default='')
    sub.add_argument('-r', '--rate', type=float, default=1.0)
    sub.add_argument('-1', '--once', action='store_true')
    sub.add_argument('-t', '--times', type=int, default=0)
    sub.add_argument('-w', '--wait-matching-subscriptions', type=int, default=1)
    sub.add_argument('--wait-timeout', type=float, default=5.0)
    add_qos(sub)

    node = verbs.add_parser('node', help='list nodes').add_subparsers(dest='verb', required=True)
    sub = node.add_parser('list')
    sub.add_argument('--spin-time', type=float, default=1.5)

    interface = verbs.add_parser('interface', help='show interface definitions').add_subparsers(
        dest='verb', required=True)
    interface.add_parser('list')
    sub = interface.add_parser('show')
    sub.add_argument('type')

    from dcdrl_core.param_cli import add_parser as add_param_parser
    add_param_parser(verbs)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == 'run':
        return cmd_run(argv[1:])
    if argv and argv[0] == 'launch':
        from dcdrl_core.launch import main as launch_main
        return launch_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == 'topic':
        return {'list': cmd_topic_list, 'echo': cmd_topic_echo, 'hz': cmd_topic_hz,
                'pub': cmd_topic_pub}[args.verb](args)
    if args.command == 'node':
        return cmd_node_list(args)
    if args.command == 'param':
        from dcdrl_core.param_cli import cmd_param
        return cmd_param(args)
    return cmd_interface(args)


if __name__ == '__main__':
    sys.exit(main())
