"""`dcdrl bag record|info|play`: ros2bag's verbs on the ROS-free runtime (rosbag2 directories with MCAP files)."""
from __future__ import annotations

from typing import Any


def add_arguments(verbs: Any) -> None:
    from dcdrl_ros.bag import play_cli, record_cli
    bag_verbs = verbs.add_parser('bag', help='record, inspect and play rosbag2 (MCAP) bags').add_subparsers(
        dest='verb', required=True)
    record_cli.add_arguments(bag_verbs)
    play_cli.add_arguments(bag_verbs)
