"""`dcdrl bag info DIR` and `dcdrl bag play DIR ...`: ros2 bag info / ros2 bag play's arguments and output."""
from __future__ import annotations

import argparse
from typing import Any

from dcdrl_ros.cli_common import fail, non_negative_float, positive_float

DEFAULT_CLOCK_HZ = 40.0  # what `ros2 bag play --clock` publishes at without a value


def _open(path: str) -> Any:
    from dcdrl_ros.bag.reader import BagReader
    return BagReader(path)


def cmd_info(args: argparse.Namespace) -> int:
    from dcdrl_ros.bag.player import info_text
    try:
        reader = _open(args.bag_path)
    except (OSError, ValueError) as error:
        return fail(f'Could not read bag {args.bag_path}: {error}')
    if args.topic_name:
        print(*(topic.name for topic in reader.topics), sep='\n')
        return 0
    print(info_text(reader))
    return 0


def cmd_play(args: argparse.Namespace) -> int:
    from dcdrl_ros.bag.player import Player, PlayOptions, parse_remaps
    from dcdrl_ros.cli_common import graph_session
    from dcdrl_ros.messages import InterfaceNotFoundError
    from dcdrl_ros.stop_signals import StopSignals
    if args.rate <= 0:
        return fail(f'--rate must be positive, not {args.rate}')
    try:
        options = PlayOptions(rate=args.rate, loop=args.loop, start_offset=args.start_offset,
                              topics=args.topics or (), remap=parse_remaps(args.remap or ()),
                              clock_hz=args.clock or 0.0, delay=args.delay)
        reader = _open(args.bag_path)
    except (OSError, ValueError) as error:
        return fail(f'Could not play bag {args.bag_path}: {error}')
    signals = StopSignals()
    with graph_session('rosbag2_player') as (runtime, node, _watcher):
        assert node is not None
        signals.install()  # after init: Ctrl-C and SIGTERM stop playback between two messages, cleanly
        logger = node.get_logger()
        if reader.damage:
            logger.warning(f'Damaged bag: {reader.damage}')
        try:
            player = Player(node, reader, options, log=logger.warning, ok=runtime.ok, stop=signals.requested)
        except (InterfaceNotFoundError, ValueError) as error:
            return fail(f'Could not play bag {args.bag_path}: {error}')
        logger.info(f'Set rate to {args.rate:g}')
        logger.info('Playback until timestamp: -1')
        try:
            published = player.run()
        finally:
            player.close()
            signals.uninstall()
        logger.info(f'Playback done: {published} messages published'
                    + (f', {player.failed} failed' if player.failed else '')
                    + (f', {reader.bad_messages} unreadable' if reader.bad_messages else '')
                    + (' (stopped)' if signals.requested.is_set() and signals.first is not None else ''))
    return 0


def add_arguments(bag_verbs: Any) -> None:
    sub = bag_verbs.add_parser('info', help="a bag's files, duration, topics and message counts (as ros2 bag info)")
    sub.add_argument('bag_path', help='bag directory (or one .mcap file)')
    sub.add_argument('-s', '--storage', choices=['mcap'], help='accepted for ros2 compatibility (mcap only)')
    sub.add_argument('-t', '--topic-name', action='store_true', help='only the topic names')
    sub.set_defaults(handler=cmd_info)
    sub = bag_verbs.add_parser('play', help='publish the messages of a bag with their original timing and QoS')
    sub.add_argument('bag_path', help='bag directory (or one .mcap file)')
    sub.add_argument('-s', '--storage', choices=['mcap'], help='accepted for ros2 compatibility (mcap only)')
    sub.add_argument('-r', '--rate', type=float, default=1.0, help='playback speed factor (default: 1.0)')
    sub.add_argument('-l', '--loop', action='store_true', help='play again from the start at the end')
    sub.add_argument('--start-offset', type=non_negative_float, default=0.0, metavar='S',
                     help='start S seconds into the bag (default: 0)')
    sub.add_argument('--topics', nargs='+', metavar='TOPIC', help='play only these topics')
    sub.add_argument('-m', '--remap', nargs='+', metavar='FROM:=TO', help='publish topic FROM as TO')
    sub.add_argument('--clock', type=positive_float, nargs='?', const=DEFAULT_CLOCK_HZ, default=0.0, metavar='HZ',
                     help=f'publish the bag time on /clock at HZ (default when given: {DEFAULT_CLOCK_HZ:g})')
    sub.add_argument('-d', '--delay', type=non_negative_float, default=0.0, metavar='S',
                     help='wait S seconds before playing (e.g. for subscribers to match)')
    sub.add_argument('--read-ahead-queue-size', type=int, default=1000, metavar='N',
                     help='accepted for ros2 compatibility: messages are read lazily, one chunk at a time')
    sub.set_defaults(handler=cmd_play)
