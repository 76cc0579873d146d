"""`dcdrl bag record`: ros2 bag record's arguments, defaults and messages, on our runtime (bag.recorder)."""
from __future__ import annotations

import argparse
import time
from typing import Any

from dcdrl_ros.cli_common import fail

MILLISECONDS = 1e-3
FLUSH_PERIOD_S = 5.0   # a chunk goes to disk after this long at the latest (BagWriter.flush_stale); the node's too


def _selection(args: argparse.Namespace) -> Any:
    from dcdrl_ros.bag.follow import TopicSelection
    return TopicSelection(all_topics=args.all, topics=[*args.topics, *(args.topics_option or [])],
                          include=args.regex or None, exclude=args.exclude_regex or None,
                          include_hidden=args.include_hidden_topics)


def cmd_record(args: argparse.Namespace) -> int:
    from dcdrl_ros.bag.recorder import Recorder, default_bag_name, summary
    from dcdrl_ros.bag.writer import BagWriteError, BagWriter
    from dcdrl_ros.cli_common import graph_session
    from dcdrl_ros.stop_signals import StopSignals
    try:
        selection = _selection(args)
    except ValueError as error:
        return fail(f'Invalid choice of topics: {error}')
    if args.compression_mode != 'none' and not args.compression_format:
        return fail('--compression-format is required with --compression-mode file or message')
    try:
        writer = BagWriter(args.output or default_bag_name(), args.max_bag_size, args.max_bag_duration,
                           args.compression_mode, args.compression_format or '', flush_period_s=args.flush_period)
    except (BagWriteError, ValueError) as error:
        return fail(str(error))
    signals = StopSignals()
    with graph_session('rosbag2_recorder') as (runtime, node, watcher):
        assert node is not None
        signals.install()   # after init: Ctrl-C and SIGTERM end the loop below, then the bag is closed
        logger = node.get_logger()
        recorder = Recorder(node, watcher, selection, writer, logger.info, logger.error)
        executor = runtime.SingleThreadedExecutor()
        executor.add_node(node)
        logger.info('Listening for topics...')
        logger.info('Recording...')
        period = args.polling_interval * MILLISECONDS
        next_poll = 0.0
        try:
            while not signals.requested.is_set() and runtime.ok() and recorder.failed is None:
                now = time.monotonic()
                if now >= next_poll:
                    recorder.poll()
                    next_poll = now + period
                executor.spin_once(timeout_sec=min(period, max(0.0, next_poll - time.monotonic())))
        finally:
            recorder.close()
            executor.shutdown()
            signals.uninstall()
        logger.info(summary(recorder))
    return 1 if recorder.failed is not None else 0


def _non_negative(kind: type) -> Any:
    def parse(text: str) -> Any:
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f'{text} is negative')
        return value
    return parse


def add_arguments(bag_verbs: Any) -> None:
    sub = bag_verbs.add_parser('record', help='record topics into a rosbag2 folder of MCAP files (as ros2 bag record)')
    sub.add_argument('topics', nargs='*', metavar='TOPIC', help='topics to record')
    sub.add_argument('--topics', dest='topics_option', nargs='+', metavar='TOPIC', help='topics to record')
    sub.add_argument('-a', '--all', action='store_true', help='record every topic, also ones that appear later')
    sub.add_argument('-e', '--regex', default='', metavar='REGEX', help='record the topics this expression matches')
    sub.add_argument('-x', '--exclude-regex', default='', metavar='REGEX',
                     help='leave out the topics this expression matches (with -a or -e)')
    sub.add_argument('--include-hidden-topics', action='store_true',
                     help="also record hidden topics (a name token starting with '_')")
    sub.add_argument('-o', '--output', default='', metavar='DIR',
                     help='bag folder (default: rosbag2_YYYY_MM_DD-HH_MM_SS); it must not exist')
    sub.add_argument('-s', '--storage', choices=['mcap'], default='mcap', help='storage format (mcap only)')
    sub.add_argument('-b', '--max-bag-size', type=_non_negative(int), default=0, metavar='BYTES',
                     help='start a new file beyond this size (default: 0, one file)')
    sub.add_argument('-d', '--max-bag-duration', type=_non_negative(float), default=0.0, metavar='S',
                     help='start a new file after this many seconds (default: 0, one file)')
    sub.add_argument('--compression-mode', choices=['none', 'file', 'message'], default='none',
                     help="zstd: 'file' compresses each closed file whole, 'message' each payload (default: none)")
    sub.add_argument('--compression-format', choices=['zstd'], default='', help='compression format (zstd)')
    sub.add_argument('-p', '--polling-interval', type=_non_negative(int), default=100, metavar='MS',
                     help='how often new topics are looked for, in ms (default: 100)')
    sub.add_argument('--flush-period', type=_non_negative(float), default=FLUSH_PERIOD_S, metavar='S',
                     help='write a chunk to disk after S seconds at the latest: what a kill can lose '
                          f'(default: {FLUSH_PERIOD_S:g}; 0: when 768 KiB are full, as ros2 bag)')
    sub.set_defaults(handler=cmd_record)
