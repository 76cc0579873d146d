"""`dcdrl bag info DIR` and `dcdrl bag play DIR ...`: the arguments of ros2 bag info / ros2 bag play."""
from __future__ import annotations

import argparse
from typing import Any

from dcdrl_ros.cli_common import fail


def cmd_info(args: argparse.Namespace) -> int:
    return fail('dcdrl bag info: not available yet')


def cmd_play(args: argparse.Namespace) -> int:
    return fail('dcdrl bag play: not available yet')


def add_arguments(bag_verbs: Any) -> None:
    sub = bag_verbs.add_parser('info', help="a bag's files, duration, topics and message counts (as ros2 bag info)")
    sub.add_argument('bag_path', help='bag directory (or one .mcap file)')
    sub.set_defaults(handler=cmd_info)
    sub = bag_verbs.add_parser('play', help='publish the messages of a bag with their original timing and QoS')
    sub.add_argument('bag_path', help='bag directory (or one .mcap file)')
    sub.set_defaults(handler=cmd_play)
