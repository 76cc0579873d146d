"""The ``--ros-args ... [--]`` command-line blocks of ROS 2, parsed the way rcl parses them.

``split_ros_args(argv)`` returns the user's own arguments and a :class:`RosArgs`:

- ``-r/--remap [node:]from:=to``: ``__node:=name``, ``__ns:=/ns`` and topic/service remaps.
  The first rule that matches wins (rcl's rule), so ``-r __node:=a -r __node:=b`` names the node a.
- ``-p/--param [node:]name:=value``: the value is typed as rcl types YAML (1 -> integer,
  1.0 -> double, true -> bool, [1, 2] -> integer array, 'quoted' -> string; see param_files).
  A later ``-p`` for the same name wins.
- ``--params-file FILE`` (repeatable; later files win for the same node key).
- ``--log-level LEVEL`` or ``--log-level logger_name:=LEVEL``.
- ``-e/--enclave``, ``--log-file-name``, ``--log-config-file`` and the
  ``--enable/--disable-{stdout,rosout,external-lib}-logs`` flags are accepted and ignored.
- Anything else inside a ``--ros-args`` block raises RosArgsError (rclpy raises too).

A block runs from ``--ros-args`` to ``--`` or to the end; there may be several blocks.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .param_files import (
    ParameterFileError,
    ParameterOverride,
    ParameterTable,
    format_parameter_value,
    fully_qualified_name,
    node_key_matches,
    parse_parameter_value,
)

__all__ = ['RosArgsError', 'RemapRule', 'RosArgs', 'ResolvedNodeArgs', 'split_ros_args', 'remove_ros_args']

ROS_ARGS_FLAG = '--ros-args'
ROS_ARGS_END = '--'
LOG_LEVELS = ('DEBUG', 'INFO', 'WARN', 'ERROR', 'FATAL', 'UNSET')

_NODE_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
_NAMESPACE = re.compile(r'^/([A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*)?$')
# A topic/service name in a remap rule: optional scheme, '~', tokens, '*'/'**' on the match side.
_REMAP_NAME = re.compile(r'^(rostopic://|rosservice://)?[A-Za-z0-9_~/{}*]+$')
_NODE_PREFIX = re.compile(r'^([A-Za-z_][A-Za-z0-9_]*):(?![=/])')
_IGNORED_FLAGS_WITH_VALUE = ('-e', '--enclave', '--log-file-name', '--log-config-file')
_IGNORED_SWITCHES = tuple(
    f'--{verb}-{what}-logs' for verb in ('enable', 'disable') for what in ('stdout', 'rosout', 'external-lib'))


class RosArgsError(ValueError):
    """A ``--ros-args`` block that rcl would reject; the message names the argument."""


@dataclass(frozen=True)
class RemapRule:
    """``[node:]match:=replacement``; ``node`` None applies to every node in the process."""

    node: str | None
    match: str
    replacement: str

    def applies_to(self, node_name: str) -> bool:
        return self.node is None or self.node == node_name


@dataclass
class ResolvedNodeArgs:
    """What the rules in a RosArgs mean for one node."""

    node_name: str
    namespace: str
    remaps: dict[str, str]
    param_overrides: dict[str, ParameterOverride]

    @property
    def fully_qualified_name(self) -> str:
        return fully_qualified_name(self.node_name, self.namespace)


@dataclass
class RosArgs:
    """Everything found in the ``--ros-args`` blocks of one command line."""

    node_name: str | None = None  # global '__node:=' (first one wins)
    namespace: str | None = None  # global '__ns:=' (first one wins)
    remaps: dict[str, str] = field(default_factory=dict)  # global topic/service remaps
    params_files: list[str] = field(default_factory=list)
    param_overrides: dict[str, Any] = field(default_factory=dict)  # global '-p' values
    log_level: str | None = None  # default level from '--log-level LEVEL'
    logger_levels: dict[str, str] = field(default_factory=dict)  # '--log-level name:=LEVEL'
    enclave: str | None = None  # accepted, not used (no DDS security in the ROS-free runtime)
    remap_rules: list[RemapRule] = field(default_factory=list)  # all rules, command-line order
    node_param_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # 'node:name:=v'
    ignored: list[str] = field(default_factory=list)  # accepted flags that change nothing here
    param_sources: dict[str, str] = field(default_factory=dict, repr=False)  # '-p' rule as typed

    def to_argv(self) -> list[str]:
        """A ``--ros-args`` block that parses back to this RosArgs (empty list if nothing set)."""
        argv: list[str] = []
        for rule in self.remap_rules:
            prefix = f'{rule.node}:' if rule.node else ''
            argv += ['-r', f'{prefix}{rule.match}:={rule.replacement}']
        for path in self.params_files:
            argv += ['--params-file', path]
        for name, value in self.param_overrides.items():
            argv += ['-p', f'{name}:={format_parameter_value(value)}']
        for node, values in self.node_param_overrides.items():
            for name, value in values.items():
                argv += ['-p', f'{node}:{name}:={format_parameter_value(value)}']
        if self.log_level:
            argv += ['--log-level', self.log_level]
        for logger, level in self.logger_levels.items():
            argv += ['--log-level', f'{logger}:={level}']
        if self.enclave:
            argv += ['--enclave', self.enclave]
        return [ROS_ARGS_FLAG] + argv if argv else []

    def resolve(self, default_node_name: str, default_namespace: str = '/') -> ResolvedNodeArgs:
        """Apply the rules to a node created in code as ``default_node_name`` in ``default_namespace``.

        ``__node``/``__ns`` rules match the name given in code (as in rcl); topic remaps and
        node-specific ``-p`` match the final name. Parameter files are read here, so this raises
        ParameterFileError for a bad file.
        """
        node_name, namespace = default_node_name, default_namespace or '/'
        for rule in self.remap_rules:  # first matching rule wins
            if rule.match == '__node' and rule.applies_to(default_node_name):
                node_name = rule.replacement
                break
        for rule in self.remap_rules:
            if rule.match == '__ns' and rule.applies_to(default_node_name):
                namespace = rule.replacement
                break
        remaps: dict[str, str] = {}
        for rule in self.remap_rules:
            if rule.match not in ('__node', '__ns') and rule.applies_to(node_name):
                remaps.setdefault(rule.match, rule.replacement)
        return ResolvedNodeArgs(node_name, namespace, remaps,
                                self.parameter_overrides_for(node_name, namespace))

    def parameter_overrides_for(self, node_name: str, namespace: str = '/') -> dict[str, ParameterOverride]:
        """Files first (rcl's merge and wildcard order), then ``-p`` values, which always win."""
        table = ParameterTable()
        for path in self.params_files:
            table.add_file(path)
        result = table.for_node(node_name, namespace)
        for name, value in self.param_overrides.items():
            source = self.param_sources.get(name) or f'-p {name}:={format_parameter_value(value)}'
            result[name] = ParameterOverride(value, source)
        fqn = fully_qualified_name(node_name, namespace)
        for node_key, values in self.node_param_overrides.items():
            if node_key_matches(node_key, fqn):
                for name, value in values.items():
                    source = (self.param_sources.get(f'{node_key}:{name}')
                              or f'-p {node_key}:{name}:={format_parameter_value(value)}')
                    result[name] = ParameterOverride(value, source)
        return result


def _take_value(argv: Sequence[str], index: int, flag: str, what: str) -> str:
    if index + 1 >= len(argv):
        raise RosArgsError(f"'{flag}' at the end of --ros-args needs {what}")
    return argv[index + 1]


def _split_node_prefix(rule: str) -> tuple[str | None, str]:
    match = _NODE_PREFIX.match(rule)
    if match is None:
        return None, rule
    return match.group(1), rule[match.end():]


def _parse_remap(rule: str, result: RosArgs) -> None:
    node, body = _split_node_prefix(rule)
    if ':=' not in body:
        raise RosArgsError(f"remap rule '{rule}' must look like 'from:=to' (or 'node:from:=to')")
    match, replacement = body.split(':=', 1)
    if match == '__node':
        if not _NODE_NAME.match(replacement):
            raise RosArgsError(
                f"remap rule '{rule}': '{replacement}' is not a valid node name "
                '(letters, digits and _, not starting with a digit)')
    elif match == '__ns':
        if not _NAMESPACE.match(replacement):
            raise RosArgsError(
                f"remap rule '{rule}': '{replacement}' is not a fully qualified namespace "
                "(it must start with '/', e.g. '__ns:=/robot1')")
    else:
        for part, side in ((match, 'from'), (replacement, 'to')):
            if not part or not _REMAP_NAME.match(part) or (side == 'to' and '*' in part):
                raise RosArgsError(f"remap rule '{rule}': '{part}' is not a valid {side} name")
    result.remap_rules.append(RemapRule(node, match, replacement))
    if node is None:
        if match == '__node':
            result.node_name = result.node_name or replacement
        elif match == '__ns':
            result.namespace = result.namespace or replacement
        else:
            result.remaps.setdefault(match, replacement)


def _parse_param(rule: str, result: RosArgs) -> None:
    node, body = _split_node_prefix(rule)
    if ':=' not in body:
        raise RosArgsError(f"parameter rule '{rule}' must look like 'name:=value' (or 'node:name:=value')")
    name, text = body.split(':=', 1)
    if not name or not re.match(r'^[A-Za-z0-9_.~/]+$', name):
        raise RosArgsError(f"parameter rule '{rule}': '{name}' is not a valid parameter name")
    try:
        value = parse_parameter_value(text, where=f"-p '{rule}'", name=name)
    except ParameterFileError as err:
        raise RosArgsError(str(err)) from None
    if node is None:
        result.param_overrides[name] = value
        result.param_sources[name] = f'-p {rule}'
    else:
        result.node_param_overrides.setdefault(node, {})[name] = value
        result.param_sources[f'{node}:{name}'] = f'-p {rule}'


def _parse_log_level(rule: str, result: RosArgs) -> None:
    logger, level = (rule.split(':=', 1) if ':=' in rule else (None, rule))
    level_upper = level.strip().upper()
    level_upper = 'WARN' if level_upper == 'WARNING' else level_upper
    if level_upper not in LOG_LEVELS:
        raise RosArgsError(
            f"--log-level '{rule}': '{level}' is not a log level (one of {', '.join(LOG_LEVELS)})")
    if logger is None:
        result.log_level = level_upper
    elif not logger:
        raise RosArgsError(f"--log-level '{rule}': the logger name is empty")
    else:
        result.logger_levels[logger] = level_upper


def split_ros_args(argv: Sequence[str]) -> tuple[list[str], RosArgs]:
    """Split a command line into (user arguments, RosArgs).

    ``argv`` may include the program name (it is returned with the user arguments).
    Raises RosArgsError, naming the argument, for anything rcl would reject.
    """
    user_args: list[str] = []
    result = RosArgs()
    in_ros_args = False
    index = 0
    while index < len(argv):
        arg = argv[index]
        if not in_ros_args:
            if arg == ROS_ARGS_FLAG:
                in_ros_args = True
            else:
                user_args.append(arg)
            index += 1
            continue
        if arg == ROS_ARGS_FLAG:
            index += 1
        elif arg == ROS_ARGS_END:
            in_ros_args = False
            index += 1
        elif arg in ('-r', '--remap'):
            _parse_remap(_take_value(argv, index, arg, "a rule 'from:=to'"), result)
            index += 2
        elif arg in ('-p', '--param'):
            _parse_param(_take_value(argv, index, arg, "a rule 'name:=value'"), result)
            index += 2
        elif arg == '--params-file':
            result.params_files.append(_take_value(argv, index, arg, 'a file path'))
            index += 2
        elif arg == '--log-level':
            _parse_log_level(_take_value(argv, index, arg, 'a level'), result)
            index += 2
        elif arg in _IGNORED_FLAGS_WITH_VALUE:
            value = _take_value(argv, index, arg, 'a value')
            if arg in ('-e', '--enclave'):
                result.enclave = value
            result.ignored += [arg, value]
            index += 2
        elif arg in _IGNORED_SWITCHES:
            result.ignored.append(arg)
            index += 1
        else:
            hint = ''
            if ':=' in arg:
                hint = f"; did you mean '-r {arg}' (remap) or '-p {arg}' (parameter)?"
            raise RosArgsError(
                f"unknown ROS argument '{arg}' inside --ros-args{hint} (known: -r/--remap, "
                '-p/--param, --params-file, --log-level, -e/--enclave; end the block with --)')
    return user_args, result


def remove_ros_args(argv: Sequence[str]) -> list[str]:
    """The user arguments only, like ``rclpy.utilities.remove_ros_args``."""
    return split_ros_args(argv)[0]
