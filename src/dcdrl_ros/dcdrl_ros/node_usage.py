"""A node executable's own command line: ``--help`` prints its parameters, anything else is refused.

rclpy hands a node the arguments outside ``--ros-args`` blocks and leaves them to the program; our
nodes take none, so ``ros.run_node`` calls :func:`answer_command_line` before it starts anything:

- ``-h`` / ``--help``: the node's usage (name, namespace, every parameter with its type, default,
  description and whether it can change while the node runs), exit 0. The node is not started: no
  ``init``, no DDS participant, no training. Its class is built as a *probe* (a subclass whose
  base between the node class and ``ros.Node`` records ``declare_parameter`` calls and returns the
  command line's values), and the constructor is stopped once the declarations are done: at
  ``check_no_unknown_parameters`` (every DC-DRL node calls it after declaring, before it opens
  endpoints or starts threads) or at the first ``create_*``. So the parameters listed are the ones
  the node really declares, for the values given: ``learner --help --ros-args -p network_preset:=cloud_edge``
  shows that preset's learning rates as the defaults.
- any other argument (``--ros-arg``, ``foo``, ``x:=1`` outside ``--ros-args``): one ``[FATAL]``
  line with a hint, exit 2. A bad rule inside ``--ros-args`` too (rcl refuses it; rclpy would show
  a traceback).

Descriptions come from the parameter's descriptor, else from the ``Parameters`` section of the
docstring of the module that declared it (where the node files document them), else from the
comment after the field of that name in a config dataclass the module uses.
"""
from __future__ import annotations

import dataclasses
import difflib
import inspect
import os
import re
import sys
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dcdrl_ros.ros_args import ROS_ARGS_FLAG, RosArgsError, split_ros_args

__all__ = ['DeclarationsComplete', 'DeclaredParameter', 'NodeDeclarations', 'answer_command_line',
           'probe_declarations', 'format_usage', 'docstring_description', 'config_field_comment', 'EXIT_USAGE',
           'HELP_FLAGS']

EXIT_USAGE = 2
HELP_FLAGS = ('-h', '--help')
_TYPE_NAMES = {1: 'boolean', 2: 'integer', 3: 'double', 4: 'string', 5: 'byte array', 6: 'boolean array',
               7: 'integer array', 8: 'double array', 9: 'string array'}  # rcl_interfaces ParameterType


class DeclarationsComplete(Exception):
    """Raised inside a probed constructor once the node has declared its parameters."""


@dataclass
class DeclaredParameter:
    name: str
    default: Any
    type_name: str
    description: str
    read_only: bool
    value: Any            # what the command line gives it (the default when it gives nothing)
    source: str = ''      # where ``value`` came from ('' for the default)
    limits: str = ''      # the descriptor's range, in words ('' when it has none)


@dataclass
class NodeDeclarations:
    name: str
    namespace: str
    parameters: list[DeclaredParameter] = field(default_factory=list)
    branches: dict[str, Any] = field(default_factory=dict)  # read while declaring: they choose what else is declared
    complete: bool = True  # False: the node class could not be probed (a factory function)

    @property
    def fully_qualified_name(self) -> str:
        return ('' if self.namespace == '/' else self.namespace.rstrip('/')) + '/' + self.name


def _type_name(value: Any, descriptor: Any) -> str:
    declared = getattr(descriptor, 'type', 0)
    if declared in _TYPE_NAMES:
        return _TYPE_NAMES[declared]
    if isinstance(value, bool):
        return 'boolean'
    for kind, name in ((int, 'integer'), (float, 'double'), (str, 'string'), (bytes, 'byte array')):
        if isinstance(value, kind):
            return name
    if isinstance(value, (list, tuple)) and value:
        return _type_name(value[0], None) + ' array'
    return 'dynamic' if getattr(descriptor, 'dynamic_typing', False) else 'not set'


def _descriptor_limits(descriptor: Any) -> str:
    """A descriptor's range and constraints in words ('>= 1', 'range [0, 1]', 'one of: a, b'); '' when none."""
    from dcdrl_ros.live_parameters import LIVE_NOTE, READ_AT_START
    words = [part for part in (getattr(descriptor, 'additional_constraints', '') or '').split('; ')
             if part and part not in (LIVE_NOTE, READ_AT_START)]
    for field_name in ('integer_range', 'floating_point_range'):
        ranges = list(getattr(descriptor, field_name, None) or [])
        if ranges:
            low, high = ranges[0].from_value, ranges[0].to_value
            if high >= 2 ** 63 - 1:  # one-sided: the type's extreme is the other end
                words.insert(0, f'>= {low:g}')
            elif low <= -2 ** 63:
                words.insert(0, f'<= {high:g}')
            else:
                words.insert(0, f'range [{low:g}, {high:g}]')
    return ', '.join(words)


def _caller_module() -> str:
    """The module of the code that called declare_parameter (outside this file)."""
    frame: types.FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_globals.get('__name__') == __name__:
        frame = frame.f_back
    return frame.f_globals.get('__name__', '') if frame is not None else ''


class _Value:
    """What rclpy's declare_parameter / get_parameter return, as far as a constructor reads it."""

    def __init__(self, name: str, value: Any) -> None:
        self.name, self.value = name, value


class _Logger:
    def __getattr__(self, _level: str) -> Callable[..., None]:
        return lambda *_args, **_kwargs: None


def _probe_base(node_base: type) -> type:
    """A subclass of the backend's Node whose node methods only record (placed before it in the MRO)."""

    def stop(self: Any, *_args: Any, **_kwargs: Any) -> None:
        raise DeclarationsComplete()

    class Probe(node_base):
        declaring_only = True  # param_check.check_no_unknown_parameters stops the constructor here

        def __init__(self, node_name: str, *, namespace: str | None = None, **_options: Any) -> None:
            resolved = self._ros_args.resolve(node_name, namespace or '/')
            self._probe_name, self._probe_namespace = resolved.node_name, resolved.namespace
            self._probe_overrides = resolved.param_overrides
            self._probe_declared: dict[str, DeclaredParameter] = {}
            self._probe_reads: dict[str, int] = {}  # parameter read -> declarations made before the read

        def declare_parameter(self, name: str, value: Any = None, descriptor: Any = None,
                              ignore_override: bool = False) -> _Value:
            override = None if ignore_override else self._probe_overrides.get(name)
            module = _caller_module()
            description = (getattr(descriptor, 'description', '') or docstring_description(module, name)
                           or config_field_comment(module, name))
            self._probe_declared[name] = DeclaredParameter(
                name, value, _type_name(value, descriptor), description, bool(getattr(descriptor, 'read_only', False)),
                value if override is None else override.value, '' if override is None else override.source,
                _descriptor_limits(descriptor))
            return _Value(name, self._probe_declared[name].value)

        def declare_parameters(self, namespace: str, parameters: Sequence[tuple],
                               ignore_override: bool = False) -> list[_Value]:
            # entries are (name, value[, descriptor]): never long enough to reach ignore_override
            return [self.declare_parameter(f'{namespace}.{entry[0]}' if namespace else entry[0], *entry[1:],  # type: ignore[misc]
                                           ignore_override=ignore_override) for entry in parameters]

        def get_parameter(self, name: str) -> _Value:
            declared = self._probe_declared[name]
            self._probe_reads.setdefault(name, len(self._probe_declared))
            return _Value(name, declared.value)

        def get_parameters(self, names: Sequence[str]) -> list[_Value]:
            return [self.get_parameter(name) for name in names]

        def has_parameter(self, name: str) -> bool:
            return name in self._probe_declared

        def get_name(self) -> str:
            return self._probe_name

        def get_namespace(self) -> str:
            return self._probe_namespace

        def get_logger(self) -> _Logger:
            return _Logger()

        def add_on_set_parameters_callback(self, callback: Any) -> None:
            pass

        add_post_set_parameters_callback = add_pre_set_parameters_callback = add_on_set_parameters_callback
        create_publisher = create_subscription = create_timer = create_service = create_client = stop
        create_guard_condition = create_rate = get_clock = stop

    return Probe


def probe_declarations(node_class: Any, argv: Sequence[str]) -> NodeDeclarations:
    """The parameters ``node_class`` declares when started with ``argv``, without starting it.

    Raises RosArgsError or ParameterFileError for a command line the node would refuse."""
    from dcdrl_ros import ros
    _, ros_args = split_ros_args(list(argv))
    if not (isinstance(node_class, type) and issubclass(node_class, ros.Node)):
        return NodeDeclarations(getattr(node_class, '__name__', 'node'), '/', complete=False)
    probe_base = _probe_base(ros.Node)
    probe_class: Any = type(f'{node_class.__name__}Probe', (node_class, probe_base), {'_ros_args': ros_args})
    node = probe_class.__new__(probe_class)
    try:
        node.__init__()
    except DeclarationsComplete:
        pass
    declared = node._probe_declared
    # A value read before more declarations follow chooses what else is declared (the learner's mode).
    branches = {name: declared[name].value for name, count in node._probe_reads.items() if count < len(declared)}
    return NodeDeclarations(node._probe_name, node._probe_namespace, list(declared.values()), branches)


# ---------------------------------------------------------------------------------------------------------
# Descriptions from the declaring module's docstring
# ---------------------------------------------------------------------------------------------------------

def docstring_description(module_name: str, name: str) -> str:
    """The meaning of parameter ``name`` in the ``Parameters`` section of ``module_name``'s docstring
    ('' if it is not listed there). An entry is ``name default: meaning``, ``name (default)  meaning``
    or ``name  default  meaning``; several names may share one (``a 1, b 2: meaning``,
    ``width (640), height (480)  meaning``); deeper-indented lines continue it."""
    module = sys.modules.get(module_name)
    text = getattr(module, '__doc__', None) or ''
    start = text.find('Parameters')
    lines = text[start:].splitlines()[1:] if start >= 0 else []
    for index, line in enumerate(lines):
        indent = len(line) - len(line.lstrip())
        if not indent or not line.strip():
            continue
        names, meaning = _entry(line.strip())
        if name not in names:
            continue
        parts = [meaning]
        for following in lines[index + 1:]:
            if not following.strip() or len(following) - len(following.lstrip()) <= indent:
                break
            parts.append(following.strip())
        return ' '.join(part for part in parts if part)
    return ''


_PAREN_ENTRY = re.compile(r'^((?:\w+ \([^)]*\)(?:, )?)+)\s+(.*)$')


def _entry(text: str) -> tuple[list[str], str]:
    """(names, meaning) of one docstring line in the layouts docstring_description reads."""
    if text.endswith(':'):  # the meaning is on the lines below
        text += ' '
    match = _PAREN_ENTRY.match(text)
    if match:
        return re.findall(r'(\w+) \(', match.group(1)), match.group(2).strip()
    if ': ' in text:
        head, meaning = text.split(': ', 1)
        return [part.split()[0] for part in head.split(', ') if part.split()], meaning.strip()
    words = text.split(None, 2)
    return words[:1], words[2] if len(words) > 2 else ''


def config_field_comment(module_name: str, name: str) -> str:
    """The comment after field ``name`` of a config dataclass the module uses (``seed: int = 0  # meaning``):
    nodes that declare one parameter per field document them there."""
    module = sys.modules.get(module_name)
    line = re.compile(rf'^\s+{re.escape(name)}\s*:[^#\n]*#\s*(.+)$', re.MULTILINE)
    for value in list(vars(module).values()) if module is not None else []:
        if isinstance(value, type) and dataclasses.is_dataclass(value):
            try:
                match = line.search(inspect.getsource(value))
            except (OSError, TypeError):
                continue
            if match:
                return match.group(1).strip()
    return ''


# ---------------------------------------------------------------------------------------------------------
# The usage text and the command-line check
# ---------------------------------------------------------------------------------------------------------

def _show(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str):
        return repr(value)
    return str(list(value)) if isinstance(value, tuple) else str(value)


def _summary(node_class: Any) -> str:
    module = sys.modules.get(getattr(node_class, '__module__', ''), None)
    doc = (getattr(module, '__doc__', None) or '').strip()
    return doc.split('\n\n', 1)[0].replace('\n', ' ') if doc else ''


def format_usage(program: str, declarations: NodeDeclarations, summary: str = '') -> str:
    lines = [f'usage: {program} [-h] [--ros-args [-p NAME:=VALUE] [--params-file FILE] [-r FROM:=TO] '
             '[--log-level LEVEL]]', '']
    if summary:
        lines += [summary, '']
    if not declarations.complete:
        lines.append('Its parameters are not listed here: this node is built by a factory function '
                     '(`ros2 param list` / `dcdrl param list` show them once it runs).')
        return '\n'.join(lines) + '\n'
    lines.append(f'Node {declarations.fully_qualified_name} (rename with -r __node:=NAME, -r __ns:=/NAMESPACE).')
    if declarations.branches:
        chosen = ', '.join(f'{name} {_show(value)}' for name, value in declarations.branches.items())
        lines.append(f'Which parameters exist depends on {chosen}; for another value: '
                     f'{program} --help --ros-args -p {next(iter(declarations.branches))}:=VALUE')
    lines += ['', 'Parameters (set with --ros-args -p NAME:=VALUE or --params-file FILE; '
              "'live': can change while the node runs, with ros2 param set):"]
    for parameter in declarations.parameters:
        facts = [parameter.type_name, f'default {_show(parameter.default)}']
        if parameter.source:
            facts.append(f'{_show(parameter.value)} from {parameter.source}')
        if parameter.limits:
            facts.append(parameter.limits)
        if not parameter.read_only:
            facts.append('live')
        lines.append(f"  {parameter.name} ({', '.join(facts)})")
        if parameter.description:
            lines.append(f'      {parameter.description}')
    if not declarations.parameters:
        lines.append('  (none)')
    return '\n'.join(lines) + '\n'


def _refusal(program: str, argument: str) -> str:
    if ':=' in argument:
        hint = f"; a parameter goes after --ros-args: {program} --ros-args -p {argument}"
    else:
        close = difflib.get_close_matches(argument, [ROS_ARGS_FLAG, *HELP_FLAGS], n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ''
    return (f"[FATAL] {program}: unknown argument '{argument}'{hint} (the node takes no arguments of its own; "
            f"{program} --help lists its parameters)")


def answer_command_line(node_class: Any, argv: Sequence[str]) -> int | None:
    """None when the node may start; else the exit status after printing the usage (``--help``: 0)
    or a one-line refusal of the arguments (2). ``argv[0]`` is the program."""
    from dcdrl_ros.param_files import ParameterFileError
    argv = list(argv)
    program = os.path.basename(argv[0]) if argv and argv[0] else 'node'
    try:
        user_args, _ = split_ros_args(argv[1:])
        if any(argument in HELP_FLAGS for argument in user_args):
            declarations = probe_declarations(node_class, argv)
            sys.stdout.write(format_usage(program, declarations, _summary(node_class)))
            sys.stdout.flush()
            return 0
    except (RosArgsError, ParameterFileError) as error:
        sys.stderr.write(f'[FATAL] {program}: {error}\n')
        return EXIT_USAGE
    if user_args:
        sys.stderr.write(_refusal(program, user_args[0]) + '\n')
        return EXIT_USAGE
    return None
