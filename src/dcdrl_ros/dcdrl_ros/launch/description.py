"""The ROS 2 YAML launch format (launch_yaml + launch_ros), parsed and evaluated without ROS.

A file is ``launch: [ {action: {attributes}}, ... ]``. Supported actions, with the attributes
``ros2 launch`` reads (same names, same types; an unknown attribute is an error, as in ROS):

- ``arg``: name, default, description, choice (list of {value})
- ``let``: name, value
- ``node``: pkg, exec, name, namespace, exec_name, param (list of {name, value[, type]},
  nested {name, param: [...]}, or {from: file}), remap (list of {from, to}), args, ros_args,
  output, respawn, respawn_delay, respawn_max_retries, on_exit (shutdown), env (list of
  {name, value}), cwd, launch-prefix, sigterm_timeout, sigkill_timeout, emulate_tty
- ``executable``: cmd, name, cwd, env, output, respawn..., on_exit, launch-prefix (no shell)
- ``include``: file, arg (list of {name, value})
- ``group``: scoped, forwarding, keep, children (or a plain list of children)
- ``push_ros_namespace`` / ``push-ros-namespace``: namespace
- ``set_env``: name, value; ``unset_env``: name
Every action takes ``if`` / ``unless`` (text that expands to true/false/1/0).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..param_files import format_parameter_value
from .arguments import described
from .context import DeclaredArgument, LaunchContext, ProcessSpec
from .entity import Entity
from .parameters import ParameterFile, evaluate_parameter, parse_parameters
from .substitutions import LaunchError, Template, evaluate, launch_bool, parse_template, template_text

__all__ = ['LaunchDescription', 'load_launch_file', 'parse_launch_text', 'execute_description',
           'resolve_frontend_file', 'MAX_INCLUDE_DEPTH']

MAX_INCLUDE_DEPTH = 32
_NODE_NAME = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
_NS_TOKEN = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
_OUTPUTS = ('screen', 'log', 'both', 'own_log')


# ---------------------------------------------------------------------------------------------
# YAML with line numbers
# ---------------------------------------------------------------------------------------------

class _LineDict(dict):
    line: int = 0


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose maps remember their line (for error messages)."""


def _construct_map(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _LineDict:
    mapping = _LineDict(loader.construct_mapping(node, deep=True))
    mapping.line = node.start_mark.line + 1
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)


# ---------------------------------------------------------------------------------------------
# Actions
# ---------------------------------------------------------------------------------------------

@dataclass
class Condition:
    expression: Template
    negate: bool  # True for 'unless'

    def holds(self, context: LaunchContext, where: str) -> bool:
        value = evaluate(self.expression, context, where).strip().lower()
        if value in ('true', '1'):
            result = True
        elif value in ('false', '0'):
            result = False
        else:
            raise LaunchError(
                f"{where}: condition {template_text(self.expression)!r} expanded to {value!r}; "
                "it must be 'true', 'false', '1' or '0'")
        return not result if self.negate else result


@dataclass
class Action:
    where: str
    condition: Condition | None

    def run(self, context: LaunchContext) -> None:
        if self.condition is None or self.condition.holds(context, self.where):
            self.execute(context)

    def execute(self, context: LaunchContext) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


@dataclass
class DeclareArgument(Action):
    name: str
    default: Template | None
    description: str
    choices: list[str] | None

    def execute(self, context: LaunchContext) -> None:
        context.declared_arguments.append(DeclaredArgument(
            self.name, None if self.default is None else template_text(self.default),
            described(self.description, self.choices), self.choices, self.where))
        if self.name not in context.configurations:
            if self.default is None:
                raise LaunchError(
                    f"{self.where}: launch argument '{self.name}' is required "
                    f"({self.description or 'no description given'}); pass {self.name}:=VALUE")
            context.configurations[self.name] = evaluate(self.default, context, self.where)
        value = context.configurations[self.name]
        if self.choices is not None and value not in self.choices:  # launch's check and words
            raise LaunchError(f'{self.where}: argument "{self.name}" provided value "{value}" is not valid. '
                              f'Valid options are: {self.choices}')


@dataclass
class Let(Action):
    name: Template
    value: Template

    def execute(self, context: LaunchContext) -> None:
        context.configurations[evaluate(self.name, context, self.where)] = evaluate(self.value, context, self.where)


@dataclass
class SetEnv(Action):
    name: Template
    value: Template

    def execute(self, context: LaunchContext) -> None:
        context.environment[evaluate(self.name, context, self.where)] = evaluate(self.value, context, self.where)


@dataclass
class UnsetEnv(Action):
    name: Template

    def execute(self, context: LaunchContext) -> None:
        context.environment.pop(evaluate(self.name, context, self.where), None)


def prefix_namespace(base: str | None, namespace: str | None) -> str | None:
    """launch_ros's rule: a relative namespace goes under the base; an absolute one replaces it."""
    if base is None and namespace is None:
        return None
    if namespace is None:
        combined = base
    elif not base or namespace.startswith('/'):
        combined = namespace
    else:
        combined = ('' if base == '/' else base) + '/' + namespace
    return combined if combined == '/' else combined.rstrip('/')


def make_absolute(namespace: str | None) -> str | None:
    if namespace is None:
        return None
    return namespace if namespace.startswith('/') else '/' + namespace


def _check_namespace(namespace: str, where: str) -> None:
    if namespace == '/':
        return
    tokens = namespace[1:].split('/')
    if not namespace.startswith('/') or not all(_NS_TOKEN.match(token) for token in tokens):
        raise LaunchError(
            f"{where}: invalid namespace '{namespace}' (tokens of letters, digits and _, "
            'not starting with a digit, separated by /)')


@dataclass
class PushNamespace(Action):
    namespace: Template

    def execute(self, context: LaunchContext) -> None:
        pushed = evaluate(self.namespace, context, self.where)
        namespace = make_absolute(prefix_namespace(context.ros_namespace, pushed))
        _check_namespace(namespace, self.where)
        context.configurations['ros_namespace'] = namespace


@dataclass
class Group(Action):
    actions: list
    scoped: bool = True
    forwarding: bool = True
    keep: list = field(default_factory=list)  # [(name Template, value Template)]

    def execute(self, context: LaunchContext) -> None:
        kept = [(evaluate(n, context, self.where), evaluate(v, context, self.where)) for n, v in self.keep]
        if not self.scoped:
            context.configurations.update(kept)
            _run_all(self.actions, context)
            return
        saved_configurations, saved_environment = dict(context.configurations), dict(context.environment)
        try:
            if not self.forwarding:  # a fresh scope: only 'keep' gets in, environment as at start
                context.configurations = {}
                context.environment = dict(context.initial_environment)
            context.configurations.update(kept)
            _run_all(self.actions, context)
        finally:
            context.configurations, context.environment = saved_configurations, saved_environment


@dataclass
class Include(Action):
    file: Template
    arguments: list  # [(name Template, value Template)]

    def execute(self, context: LaunchContext) -> None:
        path = resolve_frontend_file(Path(evaluate(self.file, context, self.where)).expanduser(), self.where)
        if context.include_depth >= MAX_INCLUDE_DEPTH:
            raise LaunchError(f'{self.where}: includes nested deeper than {MAX_INCLUDE_DEPTH} (a cycle?)')
        for name, value in self.arguments:  # set in the including scope, as launch does
            context.configurations[evaluate(name, context, self.where)] = evaluate(value, context, self.where)
        description = load_launch_file(path)
        saved_file = context.launch_file
        context.launch_file, context.include_depth = path, context.include_depth + 1
        try:
            _run_all(description.actions, context)
        finally:
            context.launch_file, context.include_depth = saved_file, context.include_depth - 1


def _parse_bool_text(text: str, what: str, where: str) -> bool:
    value = launch_bool(text)
    if value is None:
        raise LaunchError(f'{where}: {what} must be true or false, got {text!r}')
    return value


@dataclass
class ProcessOptions:
    """Attributes shared by ``node`` and ``executable`` (launch's ExecuteProcess)."""

    name: Template | None = None
    cwd: Template | None = None
    output: Template | None = None
    env: list = field(default_factory=list)  # [(name Template, value Template)]
    launch_prefix: list = field(default_factory=list)  # cmdline templates
    respawn: Template | None = None
    respawn_delay: float | None = None
    respawn_max_retries: int | None = None
    on_exit_shutdown: bool = False
    sigterm_timeout: float | None = None
    sigkill_timeout: float | None = None

    def spec(self, label: str, cmd: list[str], context: LaunchContext, where: str,
             node_name: str | None = None) -> ProcessSpec:
        env = dict(context.environment)
        for name, value in self.env:
            env[evaluate(name, context, where)] = evaluate(value, context, where)
        env.setdefault('PYTHONUNBUFFERED', '1')  # so node output reaches the screen line by line
        output = evaluate(self.output, context, where) if self.output is not None else 'log'
        if output not in _OUTPUTS:
            raise LaunchError(f"{where}: output must be one of {list(_OUTPUTS)}, got {output!r}")
        prefix = [evaluate(t, context, where) for t in self.launch_prefix]
        return ProcessSpec(
            label=evaluate(self.name, context, where) if self.name is not None else label,
            cmd=prefix + cmd, env=env,
            cwd=evaluate(self.cwd, context, where) if self.cwd is not None else None,
            output='log' if output == 'own_log' else output,
            respawn=(_parse_bool_text(evaluate(self.respawn, context, where), 'respawn', where)
                     if self.respawn is not None else False),
            respawn_delay=self.respawn_delay or 0.0,
            respawn_max_retries=-1 if self.respawn_max_retries is None else self.respawn_max_retries,
            on_exit_shutdown=self.on_exit_shutdown,
            sigterm_timeout=self.sigterm_timeout, sigkill_timeout=self.sigkill_timeout,
            node_name=node_name, where=where)


@dataclass
class ExecuteProcess(Action):
    cmd: list  # cmdline templates
    options: ProcessOptions

    def execute(self, context: LaunchContext) -> None:
        cmd = [evaluate(t, context, self.where) for t in self.cmd]
        if not cmd or not cmd[0]:
            raise LaunchError(f"{self.where}: 'executable' has an empty cmd")
        env_path = context.environment.get('PATH', os.defpath)
        if os.sep not in cmd[0]:
            found = shutil.which(cmd[0], path=env_path)
            if found is None:
                raise LaunchError(f"{self.where}: executable '{cmd[0]}' not found on PATH")
            cmd[0] = found
        context.processes.append(self.options.spec(Path(cmd[0]).name, cmd, context, self.where))


@dataclass
class Node(Action):
    package: Template
    executable: Template
    node_name: Template | None
    namespace: Template | None
    exec_name: Template | None
    parameters: list  # ParameterFile | ParameterValue, in file order
    remaps: list  # [(from Template, to Template)]
    arguments: list  # cmdline templates
    ros_arguments: list  # cmdline templates
    options: ProcessOptions

    def command(self, context: LaunchContext) -> tuple[list[str], str | None, str]:
        """The node's command line, its fully qualified name (if named) and its label."""
        where = self.where
        package = evaluate(self.package, context, where)
        executable = evaluate(self.executable, context, where)
        name = evaluate(self.node_name, context, where) if self.node_name is not None else None
        if name is not None and not _NODE_NAME.match(name):
            raise LaunchError(f"{where}: invalid node name '{name}' (letters, digits and _, "
                              'not starting with a digit)')
        namespace = evaluate(self.namespace, context, where) if self.namespace is not None else None
        namespace = make_absolute(prefix_namespace(context.ros_namespace, namespace))
        if namespace is not None:
            _check_namespace(namespace, where)
        cmd = [sys.executable, '-m', 'dcdrl_ros.cli', 'run', package, executable]
        cmd += [evaluate(t, context, where) for t in self.arguments]
        if self.ros_arguments:
            cmd += ['--ros-args'] + [evaluate(t, context, where) for t in self.ros_arguments]
        cmd.append('--ros-args')
        if name is not None:
            cmd += ['-r', f'__node:={name}']
        if namespace is not None:
            cmd += ['-r', f'__ns:={namespace}']
        for param in self.parameters:
            if isinstance(param, ParameterFile):
                path = Path(evaluate(param.path, context, where)).expanduser()
                if not path.is_file():
                    raise LaunchError(f"{where}: parameter file '{path}' does not exist")
                cmd += ['--params-file', str(path.resolve())]
            else:
                param_name, value = evaluate_parameter(param, context, where)
                cmd += ['-p', f'{param_name}:={format_parameter_value(value)}']
        for source, target in self.remaps:
            cmd += ['-r', f'{evaluate(source, context, where)}:={evaluate(target, context, where)}']
        fqn = None
        if name is not None:
            fqn = ('' if namespace in (None, '/') else namespace) + '/' + name
        label = evaluate(self.exec_name, context, where) if self.exec_name is not None else executable
        return cmd, fqn, label

    def execute(self, context: LaunchContext) -> None:
        cmd, fqn, label = self.command(context)  # a node's 'name' names the node, not the process
        context.processes.append(self.options.spec(label, cmd, context, self.where, node_name=fqn))


def _run_all(actions: list, context: LaunchContext) -> None:
    for action in actions:
        action.run(context)


# ---------------------------------------------------------------------------------------------
# Parsing entities into actions
# ---------------------------------------------------------------------------------------------

def _condition(entity: Entity) -> Condition | None:
    if_text, unless_text = entity.template('if', True), entity.template('unless', True)
    if if_text is not None and unless_text is not None:
        raise entity.error("'if' and 'unless' cannot be used together")
    if if_text is not None:
        return Condition(if_text, negate=False)
    if unless_text is not None:
        return Condition(unless_text, negate=True)
    return None


def parse_cmdline(text: str, where: str) -> list[Template]:
    """Split a command line into argument templates like launch's ExecuteProcess does:
    plain text is split with shlex; a substitution stays inside the argument it touches."""
    template = parse_template(text, where)
    args: list[Template] = []
    current: list = []
    for part in template:
        if not isinstance(part, str):
            current.append(part)
            continue
        try:
            tokens = shlex.split(part)
        except ValueError as err:
            raise LaunchError(f'{where}: cannot split {text!r}: {err}') from None
        if not tokens:
            if current:
                args.append(tuple(current))
                current = []
            continue
        if part[0].isspace() and current:
            args.append(tuple(current))
            current = []
        current.append(tokens[0])
        if len(tokens) > 1:
            args.append(tuple(current))
            args.extend((token,) for token in tokens[1:-1])
            current = [tokens[-1]]
        if part[-1].isspace():
            args.append(tuple(current))
            current = []
    if current:
        args.append(tuple(current))
    return [tuple(_merge_strings(arg)) for arg in args]


def _merge_strings(parts: tuple) -> list:
    merged: list = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        else:
            merged.append(part)
    return merged


def _pairs(entity: Entity, attribute: str, first: str, second: str) -> list:
    pairs = []
    for item in entity.sub_entities(attribute):
        pairs.append((item.template(first), item.template(second)))
        item.finish()
    return pairs


def _process_options(entity: Entity) -> ProcessOptions:
    options = ProcessOptions(
        cwd=entity.template('cwd', True), output=entity.template('output', True),
        env=_pairs(entity, 'env', 'name', 'value'),
        respawn=entity.template('respawn', True),
        respawn_delay=entity.number('respawn_delay', float),
        respawn_max_retries=entity.number('respawn_max_retries', int),
        sigterm_timeout=entity.number('sigterm_timeout', float),
        sigkill_timeout=entity.number('sigkill_timeout', float),
    )
    prefix = entity.text('launch-prefix', True)
    if prefix is not None:
        options.launch_prefix = parse_cmdline(prefix, f"{entity.where}: 'launch-prefix'")
    on_exit = entity.text('on_exit', True)
    if on_exit is not None:
        if on_exit != 'shutdown':
            raise entity.error(f"on_exit must be 'shutdown' (the only value launch supports), got {on_exit!r}")
        options.on_exit_shutdown = True
    if entity.boolean('shell'):
        raise entity.error('shell: true is not supported (DC-DRL never starts a shell from a launch file)')
    entity.boolean('emulate_tty')  # accepted; output is line-buffered through pipes either way
    return options


def _parse_action(entity: Entity) -> Action:
    kind = entity.type_name
    where = entity.where
    if kind == 'arg':
        condition = _condition(entity)
        default = entity.raw('default')
        if default is not None and not isinstance(default, str):
            raise entity.error(f"attribute 'default' must be text, got {type(default).__name__} "
                               f"{default!r} (quote it: \"{default}\"; ros2 launch rejects it too)")
        choices = [choice.text('value') for choice in entity.sub_entities('choice')] or None
        action: Action = DeclareArgument(
            where, condition, entity.text('name'),
            None if default is None else parse_template(default, f"{where}: 'arg.default'"),
            entity.text('description', True) or '', choices)
    elif kind == 'let':
        action = Let(where, _condition(entity), entity.template('name'), entity.template('value'))
    elif kind == 'set_env':
        action = SetEnv(where, _condition(entity), entity.template('name'), entity.template('value'))
    elif kind == 'unset_env':
        action = UnsetEnv(where, _condition(entity), entity.template('name'))
    elif kind in ('push_ros_namespace', 'push-ros-namespace'):
        action = PushNamespace(where, _condition(entity), entity.template('namespace'))
    elif kind == 'group':
        condition = _condition(entity) if isinstance(entity.element, dict) else None
        scoped, forwarding = entity.boolean('scoped'), entity.boolean('forwarding')
        keep = _pairs(entity, 'keep', 'name', 'value') if isinstance(entity.element, dict) else []
        action = Group(where, condition, [_parse_action(child) for child in entity.children()],
                       True if scoped is None else scoped, True if forwarding is None else forwarding, keep)
    elif kind == 'include':
        action = Include(where, _condition(entity), entity.template('file'), _pairs(entity, 'arg', 'name', 'value'))
    elif kind == 'executable':
        condition = _condition(entity)
        if isinstance(entity.element, dict) and 'args' in entity.element:
            raise entity.error("'args' is not an attribute of executable in ROS 2 launch; put the "
                               "arguments in 'cmd'")
        cmd = parse_cmdline(entity.text('cmd'), f"{where}: 'executable.cmd'")
        options = _process_options(entity)
        options.name = entity.template('name', True)
        action = ExecuteProcess(where, condition, cmd, options)
    elif kind == 'node':
        condition = _condition(entity)
        args_text, ros_args_text = entity.text('args', True), entity.text('ros_args', True)
        action = Node(
            where, condition,
            package=entity.template('pkg'), executable=entity.template('exec'),
            node_name=entity.template('name', True), namespace=entity.template('namespace', True),
            exec_name=entity.template('exec_name', True),
            parameters=parse_parameters(entity),
            remaps=_pairs(entity, 'remap', 'from', 'to'),
            arguments=parse_cmdline(args_text, f"{where}: 'node.args'") if args_text else [],
            ros_arguments=parse_cmdline(ros_args_text, f"{where}: 'node.ros_args'") if ros_args_text else [],
            options=_process_options(entity))
    else:
        raise entity.error(
            'unknown or unsupported action; supported: arg, let, node, executable, include, group, '
            'push_ros_namespace, set_env, unset_env')
    entity.finish()
    return action


@dataclass
class LaunchDescription:
    path: Path | None
    actions: list


def parse_launch_text(text: str, source: str = '<string>', path: Path | None = None) -> LaunchDescription:
    """Parse the text of a YAML launch file (``launch: [...]``)."""
    try:
        tree = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise LaunchError(f'{source}: not valid YAML: {err}') from None
    if not isinstance(tree, dict) or len(tree) != 1 or 'launch' not in tree:
        raise LaunchError(f"{source}: a YAML launch file has exactly one top-level key, 'launch'")
    root = Entity('launch', tree['launch'], source, getattr(tree, 'line', 1))
    actions = [_parse_action(child) for child in root.children()]
    return LaunchDescription(path, actions)


def resolve_frontend_file(path: Path, where: str = 'launch') -> Path:
    """A YAML launch file for ``path``: itself, or for a ``.launch.py`` wrapper the YAML file
    with the same stem next to it (the wrappers in launch/ only include that file)."""
    if path.name.endswith('.py'):
        stem = path.name[:-len('.launch.py')] if path.name.endswith('.launch.py') else path.stem
        for suffix in ('.launch.yaml', '.launch.yml'):
            candidate = path.with_name(stem + suffix)
            if candidate.is_file():
                return candidate
        raise LaunchError(
            f'{where}: {path} is a Python launch file, which needs ROS 2 (ros2 launch); dcdrl launch '
            f'reads YAML launch files and found no {stem}.launch.yaml next to it')
    if not path.is_file():
        raise LaunchError(f'{where}: launch file {path} does not exist '
                          '(relative paths are relative to the current directory; use $(dirname)/...)')
    return path


def load_launch_file(path: Path) -> LaunchDescription:
    try:
        text = path.read_text(encoding='utf-8')
    except OSError as err:
        raise LaunchError(f'cannot read launch file {path}: {err.strerror}') from None
    return parse_launch_text(text, str(path), path.resolve())


def execute_description(description: LaunchDescription, arguments: dict[str, str],
                        environment: dict[str, str] | None = None) -> LaunchContext:
    """Evaluate a description with launch arguments; returns the context with its ProcessSpecs."""
    environment = dict(os.environ if environment is None else environment)
    context = LaunchContext(configurations=dict(arguments), environment=environment,
                            launch_file=description.path)
    context.initial_environment = dict(environment)
    _run_all(description.actions, context)
    return context
