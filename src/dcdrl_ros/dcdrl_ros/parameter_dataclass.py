"""Each node parameter declared once: a dataclass field with its default, a one-line doc and its limits.

A node's parameters are the fields of one dataclass (as CleanRL's ``Args``)::

    @dataclass(frozen=True)
    class ScopeParameters:
        window_s: float = parameter(10.0, 'seconds of control steps shown', above=0.0, live=True)
        output: str = parameter('runs/scope.png', "PNG written when there is no display ('' = never)")

From it come, with nothing written twice:

- the node's declarations (``declare_parameters``): every field in order, with an
  rcl_interfaces ParameterDescriptor (description, integer or floating-point range, read_only
  unless ``live``), then the check that no unknown parameter was given (param_check), then the
  values read back, checked here (:func:`build`) and by the dataclass's own ``__post_init__``;
- ``--help`` (node_usage reads the descriptors the node declared);
- the parameter tables of the docs (:func:`markdown_table`; dcdrl_ros.parameter_docs writes them).

Limits: ``low`` / ``high`` are inclusive and go into the descriptor, so rcl refuses a value
outside them at start and on ``ros2 param set`` (rclpy and our runtime alike); one-sided limits get
the type's extreme as the other end. ``above`` is an exclusive lower bound (a period > 0): no
descriptor can say it, so only :func:`build` and the live check enforce it. ``choices``: the
allowed strings. A tuple of strings (``()`` included) is a string list: declared with dynamic typing, so
that both ``-p name:=[a, b]`` (a string array) and ``name:=a,b`` or ``''`` from a launch argument (a string,
split at commas) are taken; launch_ros refuses an empty list, and rclpy types one as a byte array.
The logic here imports nothing of ROS; only ``declare_parameters`` does, when called.
"""
from __future__ import annotations

import array
import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dcdrl_ros.live_parameters import LIVE_NOTE, READ_AT_START

INT64_MAX = 2 ** 63 - 1
INT64_MIN = -2 ** 63
_KEY = 'dcdrl_parameter'


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter as its field states it."""

    name: str
    default: Any
    doc: str
    low: float | None = None
    high: float | None = None
    above: float | None = None
    choices: tuple[str, ...] = ()
    live: bool = False

    @property
    def type_name(self) -> str:
        for kind, name in ((bool, 'boolean'), (int, 'integer'), (float, 'double'), (str, 'string')):
            if isinstance(self.default, kind):
                return name
        if _is_double_tuple(self.default):
            return 'double_array'
        if _is_string_tuple(self.default):
            return 'string_list'
        raise TypeError(f'parameter {self.name}: default {self.default!r} is not a bool, int, float, str, a '
                        f'non-empty tuple of floats or a tuple of strings')

    def limits(self) -> str:
        """The limits in words ('' when none): '>= 1', '[0, 1]', '> 0', 'one of: ou, gaussian, none'."""
        if self.choices:
            return 'one of: ' + ', '.join(self.choices)
        if self.type_name == 'string_list':
            return 'list of strings, or one string split at commas'
        parts = []
        if self.above is not None:
            parts.append(f'> {self.above:g}')
        if self.low is not None and self.high is not None:
            return f'[{self.low:g}, {self.high:g}]'
        if self.low is not None:
            parts.append(f'>= {self.low:g}')
        if self.high is not None:
            parts.append(f'<= {self.high:g}')
        return ', '.join(parts)

    def refusal(self, value: Any) -> str:
        """'' or why ``value`` is not a valid value of this parameter."""
        if self.type_name == 'double_array':   # a non-empty list of numbers, each within the limits
            if not isinstance(value, (list, tuple, array.array)) or not value:   # rclpy may hand an array.array
                return f'{self.name} must be a non-empty list of numbers, got {value!r}'
            element = dataclasses.replace(self, name=f'each of {self.name}', default=0.0)
            return next((reason for item in value for reason in [element.refusal(item)] if reason), '')
        if self.type_name == 'string_list':
            if isinstance(value, str) or (isinstance(value, (list, tuple))
                                          and all(type(item) is str for item in value)):
                return ''
            return f'{self.name} must be a list of strings or one string, got {value!r}'
        kind = type(self.default)
        if kind is float:
            valid_type = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            valid_type = type(value) is kind
        if not valid_type:
            article = 'an' if self.type_name == 'integer' else 'a'
            return f'{self.name} must be {article} {self.type_name}, got {value!r}'
        if self.choices and value not in self.choices:
            return f'{self.name} must be {self.limits()}, got {value!r}'
        if kind in (int, float):
            if kind is float and not math.isfinite(value):
                return f'{self.name} must be a finite number, got {value!r}'
            if (self.above is not None and not value > self.above) or \
                    (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                return f'{self.name} must be {self.limits()}, got {value!r}'
        return ''


def parameter(default: Any, doc: str, *, low: float | None = None, high: float | None = None,
              above: float | None = None, choices: Sequence[str] = (), live: bool = False) -> Any:
    """A dataclass field that is a node parameter (see the module's docstring)."""
    if not doc or '\n' in doc:
        raise ValueError(f'a parameter needs a one-line doc, got {doc!r}')
    info = {'doc': doc, 'low': low, 'high': high, 'above': above, 'choices': tuple(choices), 'live': live}
    return dataclasses.field(default=default, metadata={_KEY: info})


def parameter_specs(parameters_class: type) -> list[ParameterSpec]:
    """The parameters of a dataclass built with :func:`parameter`, in field order (all its fields must be)."""
    specs = []
    for item in dataclasses.fields(parameters_class):
        info = item.metadata.get(_KEY)
        if info is None:
            raise TypeError(f'{parameters_class.__name__}.{item.name} is not declared with parameter()')
        spec = ParameterSpec(item.name, item.default, **info)
        refusal = spec.refusal(spec.default)
        if refusal:
            raise ValueError(f'{parameters_class.__name__}: the default breaks its own limits: {refusal}')
        specs.append(spec)
    return specs


def build(parameters_class: type, values: Mapping[str, Any]) -> Any:
    """The dataclass from ``values`` (missing names keep their defaults), after checking every value
    against its field's type and limits; ValueError lists every refusal, unknown names included."""
    specs = {spec.name: spec for spec in parameter_specs(parameters_class)}
    refusals = [f'unknown parameter {name!r}' for name in values if name not in specs]
    refusals += [reason for name, value in values.items() if name in specs for reason in [specs[name].refusal(value)]
                 if reason]
    if refusals:
        raise ValueError('; '.join(refusals))
    converted = {name: _converted(specs[name], value) for name, value in values.items()}
    return parameters_class(**converted)


def _is_double_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and bool(value) and all(type(item) is float for item in value)


def _is_string_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(type(item) is str for item in value)


def _converted(spec: ParameterSpec, value: Any) -> Any:
    """A checked value in the field's own type (ROS gives ints for some doubles, lists for arrays)."""
    if spec.type_name == 'double_array':
        return tuple(float(item) for item in value)
    if spec.type_name == 'string_list':   # 'a, b' -> ('a', 'b'); '' -> ()
        items = value.split(',') if isinstance(value, str) else value
        return tuple(item.strip() for item in items if item.strip())
    return float(value) if isinstance(spec.default, float) else value


def check_limits(instance: Any) -> None:
    """ValueError when a field of a built dataclass breaks its limits (for a ``__post_init__``)."""
    refusals = [reason for spec in parameter_specs(type(instance))
                for reason in [spec.refusal(getattr(instance, spec.name))] if reason]
    if refusals:
        raise ValueError('; '.join(refusals))


def live_names(parameters_class: type) -> set[str]:
    return {spec.name for spec in parameter_specs(parameters_class) if spec.live}


# ---------------------------------------------------------------------------------------------------------
# Docs
# ---------------------------------------------------------------------------------------------------------

def _shown_default(value: Any) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, tuple):
        return '[' + ', '.join(str(item) for item in value) + ']'
    if value == '':
        return "''"
    return str(value)


def markdown_table(parameters_class: type) -> str:
    """The docs' table of a node's parameters: name, default, limits, live (can change while the node runs), meaning."""
    lines = ['| name | default | limits | live | meaning |', '| --- | --- | --- | --- | --- |']
    for spec in parameter_specs(parameters_class):
        cells = [f'`{spec.name}`', f'`{_shown_default(spec.default)}`', spec.limits(), 'yes' if spec.live else '',
                 spec.doc]
        lines.append('| ' + ' | '.join(cell.replace('|', '\\|') for cell in cells) + ' |')
    return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------------------------------------
# The ROS side: declarations (rclpy or our runtime; imported only when a node calls this)
# ---------------------------------------------------------------------------------------------------------

def descriptor(spec: ParameterSpec) -> Any:
    """The rcl_interfaces/msg/ParameterDescriptor of one parameter."""
    from dcdrl_ros import ros  # noqa: F401  (our runtime's interface import hook, when it is the backend)

    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    unranged = spec.choices or spec.above is not None or isinstance(spec.default, tuple)
    notes = [spec.limits()] if unranged and spec.limits() else []
    notes.append(LIVE_NOTE if spec.live else READ_AT_START)
    result = ParameterDescriptor(description=spec.doc, read_only=not spec.live,
                                 additional_constraints='; '.join(notes),
                                 dynamic_typing=spec.type_name == 'string_list')
    if spec.low is not None or spec.high is not None:   # single numbers only: rcl has no ranges for arrays
        if isinstance(spec.default, int) and not isinstance(spec.default, bool):
            low = INT64_MIN if spec.low is None else int(spec.low)
            high = INT64_MAX if spec.high is None else int(spec.high)
            result.integer_range = [IntegerRange(from_value=low, to_value=high, step=0)]
        elif isinstance(spec.default, float):
            low_f = -math.inf if spec.low is None else float(spec.low)
            high_f = math.inf if spec.high is None else float(spec.high)
            result.floating_point_range = [FloatingPointRange(from_value=low_f, to_value=high_f, step=0.0)]
    return result


def declare_parameters(node: Any, parameters_class: type, live: Any = None) -> Any:
    """Declare every field of ``parameters_class`` on ``node`` (rclpy or ours), refuse unknown
    parameters given to it (param_check), and return the dataclass built from the values.

    ``live``: the node's LiveParameters (dcdrl_ros.live_parameters); it must list exactly the
    fields marked ``live``, and it is attached to the node here. Raises ValueError (or rcl's
    ParameterException) for a bad value: ``ros.run_node`` prints it as one line and exits 2."""
    from dcdrl_ros.param_check import check_no_unknown_parameters
    specs = parameter_specs(parameters_class)
    marked, listed = live_names(parameters_class), set(live.live) if live is not None else set()
    if marked != listed:
        raise RuntimeError(f'{parameters_class.__name__}: fields marked live {sorted(marked)} but the node '
                           f'applies {sorted(listed)}')
    for spec in specs:   # a double array as a list (rcl's DOUBLE_ARRAY), a string list as one string (see above)
        if spec.type_name == 'string_list':
            default: Any = ','.join(spec.default)
        else:
            default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        node.declare_parameter(spec.name, default, descriptor(spec))
    check_no_unknown_parameters(node)
    values = {spec.name: node.get_parameter(spec.name).value for spec in specs}
    built = build(parameters_class, values)
    if live is not None:
        for name in marked:  # the on-set check applies the same limits as at start
            live.live[name] = dataclasses.replace(live.live[name], check=_checked(specs, name, live.live[name].check))
        live.attach(node)
    return built


def _checked(specs: list[ParameterSpec], name: str, check: Any) -> Any:
    spec = next(spec for spec in specs if spec.name == name)

    def combined(value: Any) -> str:
        return spec.refusal(value) or check(value)
    return combined


__all__ = ['ParameterSpec', 'build', 'check_limits', 'declare_parameters', 'descriptor',
           'live_names', 'markdown_table', 'parameter', 'parameter_specs']
