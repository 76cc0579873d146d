"""`dcdrl`: the ros2 command's verbs, arguments and output for a machine without ROS 2.

    dcdrl run PKG EXE [args] [--ros-args ...]        (dcdrl run PKG lists PKG's executables)
    dcdrl launch PKG FILE [name:=value ...]   |  dcdrl launch PATH [name:=value ...]
    dcdrl topic list [-t] | info TOPIC [-v] | echo TOPIC [TYPE] [--once] | hz TOPIC | pub TOPIC TYPE [VALUES]
    dcdrl node list | info NODE
    dcdrl service list [-t] | type SERVICE | call SERVICE TYPE [VALUES]
    dcdrl param list|get|set|dump|describe  (dcdrl_ros/param_cli.py)
    dcdrl pkg executables [PKG] | list
    dcdrl interface show TYPE  |  dcdrl interface list
    dcdrl bag record ... | info DIR | play DIR [--rate R] [--loop] ...   (dcdrl_ros/bag/, rosbag2 MCAP bags)
    dcdrl foxglove [--port 8765] [--host 127.0.0.1] [--topics ...] [-e REGEX] [-x REGEX]   (live view in Foxglove)

Each verb lives in a cli_<command>.py module whose add_arguments(verbs) registers its parser with a
``handler``; this module only dispatches.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from dcdrl_ros.cli_pkg import cmd_run, find_executable  # noqa: F401  (find_executable: used by tests)


def _parser() -> argparse.ArgumentParser:
    from dcdrl_ros import cli_bag, cli_foxglove, cli_interface, cli_node, cli_pkg, cli_service, cli_topic
    parser = argparse.ArgumentParser(prog='dcdrl', description='ros2-style tools for the ROS-free DC-DRL runtime')
    verbs = parser.add_subparsers(dest='command', required=True)
    cli_pkg.add_arguments(verbs)
    verbs.add_parser('launch', help='run a launch file', add_help=False)
    cli_topic.add_arguments(verbs)
    cli_node.add_arguments(verbs)
    cli_service.add_arguments(verbs)
    cli_interface.add_arguments(verbs)
    cli_bag.add_arguments(verbs)
    cli_foxglove.add_arguments(verbs)

    from dcdrl_ros.param_cli import add_parser as add_param_parser
    add_param_parser(verbs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == 'run':
        return cmd_run(argv[1:])
    if argv and argv[0] == 'launch':
        from dcdrl_ros.launch import main as launch_main
        return launch_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == 'param':
            from dcdrl_ros.param_cli import cmd_param
            return cmd_param(args)
        return args.handler(args)
    except BrokenPipeError:  # the reader went away (`dcdrl topic list | head`): not an error worth a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == '__main__':
    sys.exit(main())
