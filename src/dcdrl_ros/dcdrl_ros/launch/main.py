"""``dcdrl launch``: the command-line front of the launch runner (mirrors ``ros2 launch``).

    dcdrl launch PKG FILE [name:=value ...]
    dcdrl launch PATH [name:=value ...]
    (an argument no file declares is refused, where ros2 launch ignores it: launch/arguments.py)
    dcdrl launch --show-args PKG FILE      (declared arguments, as ros2 launch -s)
    dcdrl launch --print PKG FILE [...]    (the command line of every process, nothing started)
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

from ..param_files import ParameterFileError
from ..workspace import PackageNotFoundError, find_launch_file
from .arguments import check_known_arguments, described, parse_launch_arguments
from .context import DeclaredArgument, LaunchContext
from .description import (
    DeclareArgument,
    Group,
    Include,
    LaunchDescription,
    execute_description,
    load_launch_file,
    resolve_frontend_file,
)
from .runner import LaunchRunner
from .substitutions import LaunchError, evaluate

__all__ = ['main', 'parse_launch_arguments', 'declared_arguments', 'locate_launch_file']

_LAUNCH_SUFFIXES = ('.launch.yaml', '.launch.yml', '.launch.py', '.yaml', '.yml')


def locate_launch_file(positionals: Sequence[str]) -> tuple[Path, list[str]]:
    """The launch file and the remaining ``name:=value`` items from ``PKG FILE ...`` or ``PATH ...``."""
    first, rest = positionals[0], list(positionals[1:])
    path = Path(first).expanduser()
    if path.is_file() or (first.endswith(_LAUNCH_SUFFIXES) and ('/' in first or not rest or ':=' in rest[0])):
        return resolve_frontend_file(path, 'dcdrl launch'), rest
    if not rest or ':=' in rest[0]:
        raise LaunchError(f"'{first}' is not a launch file; use: dcdrl launch PKG FILE [name:=value ...] "
                          'or dcdrl launch PATH [name:=value ...]')
    try:
        found = find_launch_file(first, rest[0])
    except PackageNotFoundError as err:
        raise LaunchError(str(err)) from None
    return resolve_frontend_file(found, 'dcdrl launch'), rest[1:]


def declared_arguments(description: LaunchDescription, arguments: dict[str, str]) -> list[DeclaredArgument]:
    """The arguments a description declares, including those of includes whose path is known."""
    found: list[DeclaredArgument] = []
    context = LaunchContext(configurations=dict(arguments), launch_file=description.path)
    context.environment = dict(os.environ)

    def walk(actions: list, depth: int) -> None:
        for action in actions:
            if isinstance(action, DeclareArgument):
                default = None if action.default is None else ''.join(
                    part if isinstance(part, str) else part.describe() for part in action.default)
                found.append(DeclaredArgument(action.name, default, described(action.description, action.choices),
                                              action.choices, action.where))
            elif isinstance(action, Group):
                walk(action.actions, depth)
            elif isinstance(action, Include) and depth < 8:
                try:
                    path = resolve_frontend_file(Path(evaluate(action.file, context, action.where)))
                    walk(load_launch_file(path).actions, depth + 1)
                except (LaunchError, PackageNotFoundError):
                    continue  # its path depends on values only known at launch time

    walk(description.actions, 0)
    unique: dict[str, DeclaredArgument] = {}
    for argument in found:
        unique.setdefault(argument.name, argument)
    return list(unique.values())


def _execute_known(description: LaunchDescription, arguments: dict[str, str], path: Path,
                   where: Sequence[str]) -> LaunchContext:
    """Evaluate the description; an argument that neither the files nor what ran declares is refused
    (a typo's error comes first: it may be why a required argument is missing)."""
    declared = {argument.name for argument in declared_arguments(description, arguments)}
    show = 'dcdrl launch -s ' + shlex.join(where)
    try:
        context = execute_description(description, arguments)
    except LaunchError:
        check_known_arguments(arguments, declared, path.name, show)
        raise
    check_known_arguments(arguments, declared | {a.name for a in context.declared_arguments}, path.name, show)
    return context


def _show_arguments(arguments: list[DeclaredArgument]) -> None:
    if not arguments:
        print('\n  No arguments.\n')
        return
    print("Arguments (pass arguments as '<name>:=<value>'):\n")
    for argument in arguments:
        print(f"    '{argument.name}':")
        print(f'        {argument.description}')
        print(f"        (default: '{argument.default}')" if argument.default is not None else
              '        (required: no default)')
        print()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='dcdrl launch',
        description='Run a ROS 2 YAML launch file without ROS 2 (same files as ros2 launch).')
    parser.add_argument('positionals', nargs='+', metavar='PKG FILE | PATH',
                        help="package and launch file name, or a path; then launch arguments 'name:=value'")
    parser.add_argument('-s', '--show-args', '--show-arguments', action='store_true',
                        help='show the declared launch arguments and exit')
    parser.add_argument('-p', '--print', '--print-description', dest='print_only', action='store_true',
                        help='print the command line of every process and exit')
    parser.add_argument('--grace-period', type=float, default=None,
                        help="seconds between SIGINT and SIGTERM when stopping (default: launch argument "
                             "'sigterm_timeout', else 5)")
    parser.add_argument('--kill-timeout', type=float, default=None,
                        help="seconds between SIGTERM and SIGKILL (default: 'sigkill_timeout', else 5)")
    return parser


def _seconds(value: float | None, configured: str | None, name: str) -> float:
    if value is None and configured is not None:
        try:
            value = float(configured)
        except ValueError:
            raise LaunchError(f"launch argument {name}:={configured!r} is not a number of seconds") from None
    value = 5.0 if value is None else value
    if value < 0:
        raise LaunchError(f'{name} must be >= 0 seconds, got {value}')
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dcdrl launch``; returns the exit status."""
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        path, rest = locate_launch_file(args.positionals)
        requested = args.positionals[0] if len(args.positionals) == len(rest) + 1 else args.positionals[1]
        if Path(requested).name != path.name:
            sys.stderr.write(f'[INFO] [launch]: {Path(requested).name} needs ROS 2; running {path.name}, '
                             'which it includes\n')
        arguments = parse_launch_arguments(rest)
        description = load_launch_file(path)
        if args.show_args:
            _show_arguments(declared_arguments(description, arguments))
            return 0
        context = _execute_known(description, arguments, path, args.positionals[:len(args.positionals) - len(rest)])
        grace = _seconds(args.grace_period, context.configurations.get('sigterm_timeout'), 'sigterm_timeout')
        kill = _seconds(args.kill_timeout, context.configurations.get('sigkill_timeout'), 'sigkill_timeout')
    except (LaunchError, PackageNotFoundError, ParameterFileError) as err:
        sys.stderr.write(f'[ERROR] [launch]: {err}\n')
        return 1
    if args.print_only:
        try:
            for spec in context.processes:
                print(f'{spec.label}: {shlex.join(spec.cmd)}')
            sys.stdout.flush()
        except BrokenPipeError:  # e.g. piped into head
            sys.stdout = open(os.devnull, 'w')  # noqa: SIM115 - keeps the interpreter's final flush quiet
        return 0
    if not context.processes:
        sys.stderr.write(f'[WARNING] [launch]: {path} starts no process\n')
        return 0
    return LaunchRunner(context.processes, grace_period=grace, kill_timeout=kill).run()
