"""`dcdrl foxglove`: a live view of the graph in Foxglove (desktop or web) on a machine without ROS 2.

Follows every selected topic of the graph, also ones that appear later (the recorder's TopicFollower),
and forwards each message's CDR bytes with the topic's ros2msg schema to a Foxglove WebSocket server
(dcdrl_ros.foxglove_bridge). Loopback by default: another machine connects through an SSH tunnel or
with --host 0.0.0.0 (docs/recording.md, "Live view with Foxglove").
"""
from __future__ import annotations

import argparse
import re
from typing import Any

from dcdrl_ros.cli_common import fail

DEFAULT_HOST = '127.0.0.1'   # loopback: the server has no authentication, so nothing else reaches it unasked
DEFAULT_PORT = 8765          # Foxglove's default for a WebSocket connection
MAX_PORT = 65535
NODE_NAME = '_dcdrl_foxglove'   # hidden, as the other dcdrl tools' nodes
WILDCARD_HOSTS = ('0.0.0.0', '::')


def cmd_foxglove(args: argparse.Namespace) -> int:
    for pattern in (args.regex, args.exclude_regex):
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as error:
                return fail(f"Invalid regular expression '{pattern}': {error}")
    try:
        from dcdrl_ros.foxglove_bridge import BridgeStartError, FoxgloveBridge
    except ImportError as error:
        return fail(f'dcdrl foxglove needs foxglove-sdk (pip install -r requirements.txt): {error}')
    from dcdrl_ros.bag.schema import message_definition
    try:   # before DDS: a port in use ends the command at once
        bridge = FoxgloveBridge(args.host, args.port, message_definition, args.message_backlog)
    except BridgeStartError as error:
        return fail(str(error))
    for line in _connect_lines(bridge):
        print(line, flush=True)
    try:
        _forward_until_stopped(args, bridge)
    finally:
        bridge.close()
    messages, topics = sum(bridge.counts.forwarded.values()), len(bridge.counts.forwarded)
    print(f'stopped: forwarded {messages} message{"s" * (messages != 1)} on {topics} topic{"s" * (topics != 1)}',
          flush=True)
    return 0


def _connect_lines(bridge: Any) -> list[str]:
    """Where to point Foxglove: the URL (for a wildcard bind, how to reach it) and the web app's link."""
    if bridge.host in WILDCARD_HOSTS:
        return [f'Foxglove WebSocket server on every interface, port {bridge.port}: open ws://<this machine\'s '
                f'address>:{bridge.port} in Foxglove (Open connection -> Foxglove WebSocket; '
                f'ws://localhost:{bridge.port} here)']
    return [f'Foxglove WebSocket server at {bridge.url}: open it in Foxglove (Open connection -> Foxglove '
            'WebSocket)', f'or in a browser: {bridge.app_url()}']


def _forward_until_stopped(args: argparse.Namespace, bridge: Any) -> None:
    """Spins a hidden node that follows the selected topics until SIGINT, SIGTERM or shutdown."""
    from dcdrl_ros.bag.follow import TopicFollower, TopicSelection
    from dcdrl_ros.cli_common import graph_session
    from dcdrl_ros.stop_signals import STOP_CHECK_PERIOD_S, StopSignals
    selection = TopicSelection(all_topics=not (args.topics or args.regex), topics=args.topics or (),
                               include=args.regex, exclude=args.exclude_regex)

    def on_topic(info: Any) -> None:
        if bridge.add_topic(info.name, info.type):
            print(f'advertised {info.name} [{info.type}]', flush=True)
        elif info.name in bridge.counts.refused_topics:
            print(f'[WARN] not forwarded: {info.name}: {bridge.counts.refused_topics[info.name]}', flush=True)

    def on_message(topic: str, data: bytes, receive_ns: int, _publish_ns: int) -> None:
        bridge.forward(topic, data, receive_ns)

    def warn(text: str) -> None:
        print(f'[WARN] {text}', flush=True)

    stop = StopSignals()
    stop.install()
    try:
        with graph_session(NODE_NAME) as (runtime, node, watcher):
            follower = TopicFollower(node, watcher, selection, on_message, on_topic=on_topic, warn=warn)
            executor = runtime.SingleThreadedExecutor()
            executor.add_node(node)
            try:
                while not stop.requested.is_set() and runtime.ok():
                    follower.poll()
                    executor.spin_once(timeout_sec=STOP_CHECK_PERIOD_S)
            finally:
                follower.close()
                executor.shutdown()
    finally:
        stop.ignore_from_now()


def _int_within(low: int, high: int | None = None) -> Any:
    """An argparse type: an integer in [low, high], else argparse's one usage error (not the SDK's traceback)."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            bounds = f'within {low}..{high}' if high is not None else f'at least {low}'
            raise argparse.ArgumentTypeError(f'{text} is not {bounds}')
        return value
    return parse


def add_arguments(verbs: Any) -> None:
    sub = verbs.add_parser('foxglove', help='live view of the graph in Foxglove (a Foxglove WebSocket server)',
                           description='Forwards the graph\'s topics (ros2msg schemas, CDR payloads as received) '
                                       'to Foxglove desktop or web: Open connection -> Foxglove WebSocket -> the '
                                       'printed ws:// URL.')
    sub.add_argument('--port', type=_int_within(0, MAX_PORT), default=DEFAULT_PORT,
                     help=f'TCP port to listen on (default: {DEFAULT_PORT}; 0: any free port)')
    sub.add_argument('--host', default=DEFAULT_HOST,
                     help=f'address to bind (default: {DEFAULT_HOST}, this machine only; 0.0.0.0: every '
                          'interface, reachable by anyone on the network)')
    sub.add_argument('--topics', nargs='+', metavar='TOPIC', help='only these topics (default: every topic)')
    sub.add_argument('-e', '--regex', help='only topics matching this regular expression (also ones that '
                                           'appear later)')
    sub.add_argument('-x', '--exclude-regex', help='leave out topics matching this regular expression')
    sub.add_argument('--message-backlog', type=_int_within(1), default=None, metavar='N',
                     help="messages queued per client before the oldest is dropped (default: foxglove-sdk's, "
                          '1024)')
    sub.set_defaults(handler=cmd_foxglove)
