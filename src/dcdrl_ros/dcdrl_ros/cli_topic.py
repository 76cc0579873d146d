"""`dcdrl topic list|info|echo|hz|pub`: ros2topic's verbs, arguments and output on the ROS-free runtime."""
from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import yaml

from dcdrl_ros.cli_common import add_graph_arguments, fail, field_str, graph_session, positive_float, ros_repr

DEFAULT_TRUNCATE_LENGTH = 128
DEFAULT_WINDOW_SIZE = 10000
QOS_PRESETS = ('system_default', 'default', 'sensor_data', 'services_default', 'parameters', 'parameter_events')


# --- QoS: presets, overrides, and the choice that matches the publishers ------------------------------------
def add_qos_arguments(parser: argparse.ArgumentParser, default_profile: str) -> None:
    parser.add_argument('--qos-profile', choices=QOS_PRESETS, default=default_profile,
                        help=f'QoS preset (default: {default_profile})')
    parser.add_argument('--qos-depth', metavar='N', type=int, help='queue size (overrides the preset)')
    parser.add_argument('--qos-history', choices=['system_default', 'keep_last', 'keep_all'])
    parser.add_argument('--qos-reliability', choices=['system_default', 'reliable', 'best_effort', 'best_available'],
                        help='default: what the running publishers offer')
    parser.add_argument('--qos-durability', choices=['system_default', 'transient_local', 'volatile',
                                                     'best_available'],
                        help='default: what the running publishers offer')


def preset_profile(name: str) -> Any:
    from dcdrl_ros.runtime import qos
    return {'sensor_data': qos.qos_profile_sensor_data, 'services_default': qos.qos_profile_services_default,
            'parameters': qos.qos_profile_parameters, 'parameter_events': qos.qos_profile_parameter_events,
            }.get(name, qos.qos_profile_system_default)


def profile_from_args(args: argparse.Namespace, reliability: str | None = None,
                      durability: str | None = None) -> Any:
    """The preset with the command line's overrides; ``reliability``/``durability`` ('RELIABLE',
    'TRANSIENT_LOCAL', ...) fill in what the command line leaves open or 'best_available'."""
    from dataclasses import replace

    from dcdrl_ros.runtime.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy
    profile = replace(preset_profile(args.qos_profile))
    chosen_reliability = args.qos_reliability if args.qos_reliability not in (None, 'best_available') else None
    chosen_durability = args.qos_durability if args.qos_durability not in (None, 'best_available') else None
    reliability = (chosen_reliability or reliability or '').upper()
    durability = (chosen_durability or durability or '').upper()
    if reliability in ('RELIABLE', 'BEST_EFFORT'):
        profile.reliability = ReliabilityPolicy[reliability]
    if durability in ('VOLATILE', 'TRANSIENT_LOCAL'):
        profile.durability = DurabilityPolicy[durability]
    if args.qos_history == 'keep_all':
        profile.history = HistoryPolicy.KEEP_ALL
    if args.qos_depth is not None:
        profile.depth = args.qos_depth
    return profile


def _qos_given(args: argparse.Namespace) -> bool:
    return any(getattr(args, name) is not None for name in ('qos_reliability', 'qos_durability', 'qos_depth',
                                                             'qos_history'))


# --- list and info ------------------------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    with graph_session() as (_runtime, _node, watcher):
        graph = watcher.wait(args.spin_time)
        topics = graph.topic_names_and_types(args.include_hidden_topics)
        counts = {name: (graph.count(name, readers=False), graph.count(name, readers=True)) for name, _ in topics}
    if args.count_topics:
        print(len(topics))
        return 0
    if args.verbose:
        for index, title in ((0, 'Published topics:'), (1, 'Subscribed topics:')):
            print(title)
            for name, types in topics:
                count = counts[name][index]
                if count:
                    noun = 'publisher' if index == 0 else 'subscriber'
                    print(f' * {name} [{", ".join(types)}] {count} {noun}{"s" if count > 1 else ""}')
            print()
        return 0
    for name, types in topics:
        print(f'{name} [{", ".join(types)}]' if args.show_types else name)
    return 0


def endpoint_text(graph: Any, endpoint: Any) -> str:
    """One endpoint as rclpy's TopicEndpointInfo prints itself (`ros2 topic info -v`)."""
    from dcdrl_ros.graph import INFINITE_NS, format_gid, ros_type_name

    def duration(ns: int) -> str:
        return 'Infinite' if ns >= INFINITE_NS else f'{ns} nanoseconds'
    name, namespace = graph.node_of(endpoint)
    qos = endpoint.qos
    history = qos.history if qos.history != 'KEEP_LAST' else f'{qos.history} ({qos.depth})'
    return '\n'.join([
        f'Node name: {name}',
        f'Node namespace: {namespace}',
        f'Topic type: {ros_type_name(endpoint.dds_type)}',
        f'Topic type hash: {endpoint.type_hash}',
        f'Endpoint type: {"SUBSCRIPTION" if endpoint.is_reader else "PUBLISHER"}',
        f'GID: {format_gid(endpoint.gid)}',
        'QoS profile:',
        f'  Reliability: {qos.reliability}',
        f'  History (Depth): {history}',
        f'  Durability: {qos.durability}',
        f'  Lifespan: {duration(qos.lifespan_ns)}',
        f'  Deadline: {duration(qos.deadline_ns)}',
        f'  Liveliness: {qos.liveliness}',
        f'  Liveliness lease duration: {duration(qos.liveliness_lease_ns)}',
    ])


def cmd_info(args: argparse.Namespace) -> int:
    topic = args.topic_name  # not expanded, as ros2 topic info compares the name as given
    with graph_session() as (_runtime, _node, watcher):
        graph = watcher.wait(args.spin_time, lambda g: g.has_publisher(topic) and g.count(topic, True) > 0)
        types = dict(graph.topic_names_and_types(include_hidden=True)).get(topic)
        if types is None:
            return fail(f"Unknown topic '{topic}'")
        end = '\n\n' if args.verbose else '\n'
        print(f'Type: {types[0] if len(types) == 1 else types}', end=end)
        for readers, title in ((False, 'Publisher count'), (True, 'Subscription count')):
            endpoints = graph.topic_endpoints(topic, readers)
            print(f'{title}: {len(endpoints)}', end=end)
            if args.verbose:
                for endpoint in endpoints:
                    print(endpoint_text(graph, endpoint), end=end)
    return 0


# --- echo and hz: wait for the topic, choose the QoS its publishers need, then subscribe ---------------------
def _wait_for_type(watcher: Any, topic: str, given_type: str | None, spin_time: float,
                   deadline: float | None, running: Callable[[], bool]) -> str | None:
    """The topic's type once discovery shows it; prints ros2's warning and keeps waiting when it does
    not (returns None at the deadline or once ``running()`` is false: SIGTERM). With ``given_type``,
    only waits ``spin_time`` for publishers."""
    graph = watcher.wait(spin_time, lambda g: g.has_publisher(topic))
    if given_type:
        return given_type
    warned = False
    while True:
        types = dict(graph.topic_names_and_types(include_hidden=True)).get(topic)
        if types:
            if len(types) > 1:
                raise LookupError(f"Cannot echo topic '{topic}', as it contains more than one type: "
                                  f"[{', '.join(types)}]")
            return types[0]
        if not warned:
            print(f'WARNING: topic [{topic}] does not appear to be published yet', flush=True)
            warned = True
        remaining = None if deadline is None else deadline - time.monotonic()
        if (remaining is not None and remaining <= 0) or not running():
            return None
        graph = watcher.wait(1.0 if remaining is None else min(1.0, remaining),
                             lambda g: topic in dict(g.topic_names_and_types(include_hidden=True)))


def _subscribe_matching(args: argparse.Namespace, node: Any, watcher: Any, topic: str, message_class: Any,
                        callback: Any, raw: bool = False) -> None:
    from dcdrl_ros.graph import choose_reader_qos
    if _qos_given(args):
        profile = profile_from_args(args)
    else:
        publishers = [e.qos for e in watcher.graph.topic_endpoints(topic, readers=False)]
        reliability, durability, notes = choose_reader_qos(publishers)
        for note in notes:
            print(note, flush=True)
        profile = profile_from_args(args, reliability, durability)
    node.create_subscription(message_class, topic, callback, profile, raw=raw)


def _run_reader(verb: str, args: argparse.Namespace, on_ready: Any) -> int:
    """Common frame of echo and hz: session, topic type, then ``on_ready(runtime, node, watcher, topic, cls)``
    adds the subscription; spins until Ctrl-C, --timeout, or the verb shuts the runtime down."""
    from dcdrl_ros.messages import InterfaceNotFoundError, get_interface
    timeout = getattr(args, 'timeout', None)
    deadline = time.monotonic() + timeout if timeout else None
    try:
        with graph_session(f'_dcdrl_topic_{verb}') as (runtime, node, watcher):
            topic = node.resolve_topic_name(args.topic_name)
            try:
                type_name = _wait_for_type(watcher, topic, args.message_type, args.spin_time, deadline, runtime.ok)
                if type_name is None:
                    return 0
                message_class = get_interface(type_name)
            except (LookupError, InterfaceNotFoundError, ValueError) as error:
                return fail(str(error) if not isinstance(error, InterfaceNotFoundError)
                            else 'The passed message type is invalid')
            error_code = on_ready(runtime, node, watcher, topic, message_class)
            if error_code is not None:
                return error_code
            if deadline is not None:
                node.create_timer(max(0.001, deadline - time.monotonic()), runtime.default_context.request_shutdown)
            runtime.spin(node)
    except KeyboardInterrupt:
        pass
    return 0


class _EchoDumper(yaml.SafeDumper):
    """Mappings always in block style; --flow-style puts only sequences on one line (as ros2's echo)."""


_EchoDumper.add_representer(dict, lambda dumper, data: dumper.represent_mapping(
    'tag:yaml.org,2002:map', data, flow_style=False))


def message_yaml(message: Any, truncate_length: int | None, flow_style: bool = False) -> str:
    """The message as `ros2 topic echo` prints it (rosidl_runtime_py.message_to_yaml's layout)."""
    from dcdrl_ros.message_utils import message_to_dict
    return yaml.dump(message_to_dict(message, truncate_length), Dumper=_EchoDumper, sort_keys=False,
                     allow_unicode=True, width=sys.maxsize, default_flow_style=flow_style)


def cmd_echo(args: argparse.Namespace) -> int:
    received = [0]
    limit = 1 if args.once else args.count
    truncate = None if args.full_length else args.truncate_length
    field_path = [part for part in (args.field or '').split('.') if part]
    if args.field is not None and not field_path:
        return fail(f"Invalid field value '{args.field}'")

    def on_ready(runtime: Any, node: Any, watcher: Any, topic: str, message_class: Any) -> int | None:
        from dcdrl_ros.messages import get_interface
        spec, field_type = message_class._spec, None
        for part in field_path:
            fields = {f.name: f.type for f in spec.fields} if spec is not None else {}
            if part not in fields:
                owner = spec.name if spec is not None else 'value'
                return fail(f"Invalid field '{'.'.join(field_path)}': '{owner}' object has no attribute '{part}'")
            field_type = fields[part]
            nested = field_type.is_message and not field_type.is_array
            spec = get_interface(f'{field_type.package}/msg/{field_type.base}')._spec if nested else None

        def on_message(message: Any) -> None:
            value = message
            for part in field_path:
                value = getattr(value, part)
            if field_type is None or (field_type.is_message and not field_type.is_array):
                sys.stdout.write(message_yaml(value, truncate, args.flow_style) + '---\n')
            else:  # as ros2: a field that is not a message is printed as rclpy holds it
                sys.stdout.write(field_str(value, field_type) + '\n---\n')
            sys.stdout.flush()
            received[0] += 1
            if limit and received[0] >= limit:
                runtime.default_context.request_shutdown()
        _subscribe_matching(args, node, watcher, topic, message_class, on_message)
        return None
    return _run_reader('echo', args, on_ready)


class RateMeter:
    """`ros2 topic hz`'s statistics: intervals between arrivals over a sliding window, reported at most
    once a second of arrivals (nothing new, nothing printed)."""

    def __init__(self, window: int = DEFAULT_WINDOW_SIZE) -> None:
        self.window = window
        self._deltas: list[float] = []
        self._last: float | None = None
        self._last_report: float | None = None
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._last is not None:
                self._deltas.append(now - self._last)
                if len(self._deltas) > self.window:
                    del self._deltas[0]
            self._last = now

    def report(self) -> dict[str, float] | None:
        """The statistics when a second of arrivals passed since the last report, else None."""
        with self._lock:
            if not self._deltas:
                return None
            if self._last_report is None:
                self._last_report = self._last
                return None
            if self._last < self._last_report + 1.0:
                return None
            self._last_report = self._last
            deltas = list(self._deltas)
        mean = sum(deltas) / len(deltas)
        std = math.sqrt(sum((d - mean) ** 2 for d in deltas) / len(deltas))
        return {'rate': 1.0 / mean if mean > 0 else 0.0, 'min': min(deltas), 'max': max(deltas), 'std': std,
                'window': len(deltas)}


def rate_text(stats: dict[str, float]) -> str:
    return (f"average rate: {stats['rate']:.3f}\n\tmin: {stats['min']:.3f}s max: {stats['max']:.3f}s "
            f"std dev: {stats['std']:.5f}s window: {stats['window']}")


def cmd_hz(args: argparse.Namespace) -> int:
    meter = RateMeter(args.window_size)

    def on_data(_data: bytes) -> None:
        meter.tick()
        stats = meter.report()
        if stats:
            print(rate_text(stats), flush=True)

    def on_ready(runtime: Any, node: Any, watcher: Any, topic: str, message_class: Any) -> None:
        # ros2 topic hz subscribes with the sensor-data profile (best effort matches every publisher);
        # --qos-* options choose another.
        profile = profile_from_args(args, 'BEST_EFFORT', 'VOLATILE')
        node.create_subscription(message_class, topic, on_data, profile, raw=True)
    return _run_reader('hz', args, on_ready)


# --- pub ----------------------------------------------------------------------------------------------------
def cmd_pub(args: argparse.Namespace) -> int:
    from dcdrl_ros.message_utils import set_message_fields
    from dcdrl_ros.messages import InterfaceNotFoundError, get_interface
    try:
        message_class = get_interface(args.message_type)
    except (InterfaceNotFoundError, LookupError, ValueError):
        return fail('The passed message type is invalid')
    try:
        values = yaml.safe_load(args.values)
    except yaml.YAMLError as error:
        return fail(f'The passed value is not valid YAML: {error}')
    if not isinstance(values, dict):
        return fail('The passed value needs to be a dictionary in YAML format')
    try:  # checked before waiting for subscribers (ros2 finds a bad field only after the wait)
        message = set_message_fields(message_class(), values)
    except (ValueError, TypeError, LookupError) as error:
        return fail(f'Failed to populate field: {error}')
    times = 1 if args.once else args.times
    wanted = args.wait_matching_subscriptions if args.wait_matching_subscriptions is not None else int(times != 0)
    if wanted == 0 and args.max_wait_time_secs is not None:
        return fail('--max-wait-time-secs option is only effective with --wait-matching-subscriptions, '
                    '--once or --times')
    try:
        with graph_session(args.node_name or '_dcdrl_topic_pub') as (runtime, node, _watcher):
            publisher = node.create_publisher(message_class, node.resolve_topic_name(args.topic_name),
                                              profile_from_args(args))
            polls = 0
            while publisher.get_subscription_count() < wanted:
                if polls % 10 == 0:  # as ros2: say so once a second
                    print(f'Waiting for at least {wanted} matching subscription(s)...', flush=True)
                if args.max_wait_time_secs is not None and polls * 0.1 >= args.max_wait_time_secs:
                    return fail(f'Timed out waiting for subscribers: Expected {wanted} subcribers but only got '
                                f'{publisher.get_subscription_count()} subscribers')
                time.sleep(0.1)  # matching has no event to wait on here; ros2 polls every 0.1 s too
                polls += 1
            print('publisher: beginning loop', flush=True)
            period = 1.0 / args.rate
            next_time = time.monotonic()
            count = 0
            while runtime.ok() and (not times or count < times):
                count += 1
                if args.print and count % args.print == 0:
                    print(f'publishing #{count}: {ros_repr(message)}\n', flush=True)
                publisher.publish(message)
                if times and count >= times:
                    break
                next_time += period
                time.sleep(max(0.0, next_time - time.monotonic()))
            time.sleep(args.keep_alive)  # as ros2: let the last samples reach the wire before exiting
    except KeyboardInterrupt:
        pass
    return 0


# --- arguments ----------------------------------------------------------------------------------------------
def add_arguments(verbs: Any) -> None:
    topic = verbs.add_parser('topic', help='inspect and publish topics').add_subparsers(dest='verb', required=True)

    sub = topic.add_parser('list', help='topics on the graph')
    sub.add_argument('-t', '--show-types', action='store_true')
    sub.add_argument('-c', '--count-topics', action='store_true')
    sub.add_argument('--include-hidden-topics', action='store_true')
    sub.add_argument('-v', '--verbose', action='store_true')
    add_graph_arguments(sub)
    sub.set_defaults(handler=cmd_list)

    sub = topic.add_parser('info', help='type, publishers and subscriptions of a topic')
    sub.add_argument('topic_name')
    sub.add_argument('-v', '--verbose', action='store_true', help='each endpoint with its node, GID and QoS')
    add_graph_arguments(sub)
    sub.set_defaults(handler=cmd_info)

    sub = topic.add_parser('echo', help='print the messages of a topic')
    sub.add_argument('topic_name')
    sub.add_argument('message_type', nargs='?')
    add_qos_arguments(sub, 'sensor_data')
    sub.add_argument('--field', help="print one field ('.' selects sub-fields)")
    sub.add_argument('-f', '--full-length', action='store_true')
    sub.add_argument('-l', '--truncate-length', type=int, default=DEFAULT_TRUNCATE_LENGTH)
    sub.add_argument('--flow-style', action='store_true')
    sub.add_argument('--once', action='store_true')
    sub.add_argument('--count', type=int, default=0, help='exit after N messages')
    sub.add_argument('--timeout', type=positive_float, help='exit after N seconds')
    add_graph_arguments(sub)
    sub.set_defaults(handler=cmd_echo)

    sub = topic.add_parser('hz', help='print the rate of a topic')
    sub.add_argument('topic_name')
    sub.add_argument('message_type', nargs='?', help=argparse.SUPPRESS)  # older dcdrl accepted a type here
    sub.add_argument('-w', '--window', dest='window_size', type=int, default=DEFAULT_WINDOW_SIZE)
    sub.add_argument('--wall-time', action='store_true', help='accepted (this clock is the wall clock)')
    add_qos_arguments(sub, 'sensor_data')
    add_graph_arguments(sub)
    sub.set_defaults(handler=cmd_hz)

    sub = topic.add_parser('pub', help='publish a message')
    sub.add_argument('topic_name')
    sub.add_argument('message_type')
    sub.add_argument('values', nargs='?', default='{}')
    sub.add_argument('-r', '--rate', type=positive_float, default=1.0)
    sub.add_argument('-p', '--print', type=int, default=1, help='print every N-th message')
    group = sub.add_mutually_exclusive_group()
    group.add_argument('-1', '--once', action='store_true')
    group.add_argument('-t', '--times', type=int, default=0)
    sub.add_argument('-w', '--wait-matching-subscriptions', type=int, default=None)
    sub.add_argument('--max-wait-time-secs', '--wait-timeout', type=positive_float, default=None)
    sub.add_argument('--keep-alive', type=positive_float, default=0.1)
    sub.add_argument('-n', '--node-name')
    add_qos_arguments(sub, 'default')
    add_graph_arguments(sub)
    sub.set_defaults(handler=cmd_pub)
