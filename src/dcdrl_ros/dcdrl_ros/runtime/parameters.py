"""rclpy's (Jazzy) parameters for the ROS-free runtime: types, values, rclpy's exceptions and checks.

A parameter is statically typed by its default (or by a ``Parameter.Type``) unless its descriptor
says ``dynamic_typing``; a value of another type is refused (no int-to-double conversion: rclpy
refuses ``0`` for a DOUBLE). Descriptors are rcl_interfaces/msg/ParameterDescriptor messages (read
only, integer/floating-point ranges with a step), checked here with rclpy's rules and words.

One addition: an override that is refused at declaration names where it came from (``-p``, a
parameter file and line) after rclpy's own words, so the node's one-line [FATAL] says what to fix.

The node's side (declare, get, set, callbacks, /parameter_events) is runtime/node_parameters.py;
the parameter services are runtime/parameter_service.py.
"""
from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from dcdrl_ros.messages import get_interface

PARAMETER_SEPARATOR_STRING = '.'
DEPTH_RECURSIVE = 0   # rcl_interfaces/srv/ListParameters.Request.DEPTH_RECURSIVE


def rcl_message(name: str) -> Any:
    return get_interface(f'rcl_interfaces/msg/{name}')


# The message classes rclpy's nodes use for descriptors and on-set results (rcl_interfaces.msg).
ParameterDescriptor = rcl_message('ParameterDescriptor')
SetParametersResult = rcl_message('SetParametersResult')
IntegerRange = rcl_message('IntegerRange')
FloatingPointRange = rcl_message('FloatingPointRange')


# ---------------------------------------------------------------------------
# Parameter
# ---------------------------------------------------------------------------
class Parameter:
    """rclpy.parameter.Parameter: a name, a type and a value that agree with it."""

    class Type(enum.Enum):
        """The types of rcl_interfaces/msg/ParameterType (a plain Enum, so str() reads 'Type.DOUBLE')."""

        NOT_SET = 0
        BOOL = 1
        INTEGER = 2
        DOUBLE = 3
        STRING = 4
        BYTE_ARRAY = 5
        BOOL_ARRAY = 6
        INTEGER_ARRAY = 7
        DOUBLE_ARRAY = 8
        STRING_ARRAY = 9

        @classmethod
        def from_parameter_value(cls, value: Any) -> Parameter.Type:
            """The type of a Python value, tested in rclpy's order (so an empty list is a BYTE_ARRAY)."""
            if value is None:
                return cls.NOT_SET
            if isinstance(value, bool):
                return cls.BOOL
            if isinstance(value, int):
                return cls.INTEGER
            if isinstance(value, float):
                return cls.DOUBLE
            if isinstance(value, str):
                return cls.STRING
            if isinstance(value, (list, tuple)):
                for kind, element in ((cls.BYTE_ARRAY, bytes), (cls.BOOL_ARRAY, bool), (cls.INTEGER_ARRAY, int),
                                      (cls.DOUBLE_ARRAY, float), (cls.STRING_ARRAY, str)):
                    if all(isinstance(item, element) for item in value):
                        return kind
                raise TypeError(f"The given value is not a list of one of the allowed types '{value}'.")
            raise TypeError(f"The given value is not one of the allowed types '{value}'.")

        def check(self, value: Any) -> bool:
            """True when ``value`` can be a value of this type."""
            Type = Parameter.Type
            if self is Type.NOT_SET:
                return value is None
            scalar = {Type.BOOL: bool, Type.INTEGER: int, Type.DOUBLE: float, Type.STRING: str}.get(self)
            if scalar is not None:
                return isinstance(value, scalar)
            if not isinstance(value, (list, tuple)):
                return False
            if self is Type.BYTE_ARRAY:
                return all(isinstance(item, bytes) and len(item) == 1 for item in value)
            element = {Type.BOOL_ARRAY: bool, Type.INTEGER_ARRAY: int, Type.DOUBLE_ARRAY: float,
                       Type.STRING_ARRAY: str}[self]
            return all(isinstance(item, element) for item in value)

    def __init__(self, name: str, type_: Parameter.Type | None = None, value: Any = None) -> None:
        if type_ is None:
            type_ = Parameter.Type.from_parameter_value(value)
        if not isinstance(type_, Parameter.Type):
            raise TypeError(f"type must be an instance of '{Parameter.Type!r}'")
        if not type_.check(value):
            raise ValueError(f"Type '{type_}' and value '{value}' do not agree")
        self._name = name
        self._type_ = type_
        self._value = value

    @property
    def name(self) -> str:
        return self._name

    @property
    def type_(self) -> Parameter.Type:
        return self._type_

    @property
    def value(self) -> Any:
        return self._value

    @classmethod
    def from_parameter_msg(cls, message: Any) -> Parameter:
        """From rcl_interfaces/msg/Parameter; arrays become Python lists (bytes: 1-byte items, as rclpy)."""
        return cls(message.name, *value_from_message(message.value))

    def get_parameter_value(self) -> Any:
        """This value as rcl_interfaces/msg/ParameterValue."""
        return value_to_message(self._type_, self._value)

    def to_parameter_msg(self) -> Any:
        return rcl_message('Parameter')(name=self._name, value=self.get_parameter_value())

    def __repr__(self) -> str:
        return f'Parameter({self._name!r}, {self._type_}, {self._value!r})'


ParameterType = Parameter.Type   # the name this runtime exported before (runtime.ParameterType)

# ParameterValue field of each type.
_VALUE_FIELDS = {
    Parameter.Type.BOOL: 'bool_value', Parameter.Type.INTEGER: 'integer_value',
    Parameter.Type.DOUBLE: 'double_value', Parameter.Type.STRING: 'string_value',
    Parameter.Type.BYTE_ARRAY: 'byte_array_value', Parameter.Type.BOOL_ARRAY: 'bool_array_value',
    Parameter.Type.INTEGER_ARRAY: 'integer_array_value', Parameter.Type.DOUBLE_ARRAY: 'double_array_value',
    Parameter.Type.STRING_ARRAY: 'string_array_value',
}


def value_from_message(value_msg: Any) -> tuple[Parameter.Type, Any]:
    """(type, Python value) of an rcl_interfaces/msg/ParameterValue; ValueError for an unknown type."""
    try:
        kind = Parameter.Type(int(value_msg.type))
    except ValueError:
        raise ValueError(f'unexpected parameter type {value_msg.type}') from None
    if kind is Parameter.Type.NOT_SET:
        return kind, None
    raw = getattr(value_msg, _VALUE_FIELDS[kind])
    if kind is Parameter.Type.BYTE_ARRAY:
        return kind, [bytes([int(item)]) for item in raw]
    if kind in (Parameter.Type.BOOL_ARRAY, Parameter.Type.INTEGER_ARRAY, Parameter.Type.DOUBLE_ARRAY):
        return kind, [item.item() if isinstance(item, np.generic) else item for item in raw]
    if kind is Parameter.Type.STRING_ARRAY:
        return kind, list(raw)
    return kind, raw.item() if isinstance(raw, np.generic) else raw


def value_to_message(kind: Parameter.Type, value: Any) -> Any:
    message = rcl_message('ParameterValue')(type=kind.value)
    if kind is Parameter.Type.NOT_SET:
        return message
    if kind is Parameter.Type.BYTE_ARRAY:
        value = np.frombuffer(b''.join(value), dtype=np.uint8).copy()
    elif kind is Parameter.Type.BOOL_ARRAY:
        value = np.asarray(value, dtype=bool)
    elif kind is Parameter.Type.INTEGER_ARRAY:
        value = np.asarray(value, dtype=np.int64)
    elif kind is Parameter.Type.DOUBLE_ARRAY:
        value = np.asarray(value, dtype=np.float64)
    elif kind is Parameter.Type.STRING_ARRAY:
        value = list(value)
    setattr(message, _VALUE_FIELDS[kind], value)
    return message


# ---------------------------------------------------------------------------
# Exceptions: rclpy.exceptions' classes and messages
# ---------------------------------------------------------------------------
class ParameterException(Exception):
    """Base of the parameter errors; the message ends with the parameter name(s), as in rclpy."""

    def __init__(self, error_msg: str, parameters: Any, source: str = '') -> None:
        super().__init__(f'{error_msg}: {parameters}' + (f' (from {source})' if source else ''))


class ParameterNotDeclaredException(ParameterException):
    def __init__(self, parameters: Any) -> None:
        super().__init__('Invalid access to undeclared parameter(s)', parameters)


class ParameterAlreadyDeclaredException(ParameterException):
    def __init__(self, parameters: Any) -> None:
        super().__init__('Parameter(s) already declared', parameters)


class InvalidParameterException(ParameterException):
    def __init__(self, parameter_name: str) -> None:
        super().__init__('Invalid parameter name', parameter_name)


class InvalidParameterTypeException(ParameterException):
    """A value whose type is not the parameter's; ``source`` says where an override came from."""

    def __init__(self, desired_parameter: Parameter, expected_type: str, source: str = '') -> None:
        actual = Parameter.Type.from_parameter_value(desired_parameter.value).name
        super().__init__(f"Trying to set parameter '{desired_parameter.name}' to '{desired_parameter.value}'"
                         f" of type '{actual}', expecting type '{expected_type}'", desired_parameter.name, source)


class InvalidParameterValueException(ParameterException):
    """A value refused by a descriptor (range) or an on-set callback."""

    def __init__(self, parameter: str, value: Any, reason: str, source: str = '') -> None:
        super().__init__(f'Invalid parameter value ({value}) for parameter. Reason: {reason}', parameter, source)


class ParameterImmutableException(ParameterException):
    def __init__(self, parameter_name: str) -> None:
        super().__init__('Attempted to modify read-only parameter', parameter_name)


class ParameterUninitializedException(ParameterException):
    def __init__(self, parameter_name: str) -> None:
        super().__init__(f"The parameter '{parameter_name}' is not initialized", parameter_name)


# ---------------------------------------------------------------------------
# Descriptor checks (pure functions: unit-tested without a node)
# ---------------------------------------------------------------------------
PARAM_REL_TOL = 1e-6   # rclpy's Node.PARAM_REL_TOL: floating-point bounds and steps


def parameters_result(successful: bool, reason: str = '') -> Any:
    return SetParametersResult(successful=successful, reason=reason)


def check_integer_range(parameter: Parameter, integer_range: Any) -> Any:
    low, high = sorted((integer_range.from_value, integer_range.to_value))
    value = parameter.value
    if value in (low, high):   # the bounds are always valid, whatever the step
        return parameters_result(True)
    if not low < value < high:
        return parameters_result(False, f'Parameter {parameter.name} out of range. '
                                        f'Min: {low}, Max: {high}, value: {value}')
    if integer_range.step != 0 and (value - low) % integer_range.step != 0:
        return parameters_result(False, f'The parameter value for {parameter.name} is not a valid step. '
                              f'Min: {low}, max: {high}, value: {value}, step: {integer_range.step}')
    return parameters_result(True)


def check_floating_point_range(parameter: Parameter, floating_range: Any) -> Any:
    low, high = sorted((floating_range.from_value, floating_range.to_value))
    value = parameter.value
    if math.isclose(value, low, rel_tol=PARAM_REL_TOL) or math.isclose(value, high, rel_tol=PARAM_REL_TOL):
        return parameters_result(True)
    if not low < value < high:
        # rclpy's wording: no full stop after "out of range" here, unlike the integer case
        return parameters_result(False, f'Parameter {parameter.name} out of range '
                                        f'Min: {low}, Max: {high}, value: {value}')
    step = floating_range.step
    if step != 0.0 and not math.isclose(low + round((value - low) / step) * step, value, rel_tol=PARAM_REL_TOL):
        return parameters_result(False, f'The parameter value for {parameter.name} '
                                        'is not close enough to a valid step. '
                              f'Min: {low}, max: {high}, value: {value}, step: {step}')
    return parameters_result(True)


WRONG_TYPE_REASON = 'Wrong parameter type'


def check_against_descriptor(parameter: Parameter, descriptor: Any, declared: bool, check_read_only: bool) -> Any:
    """rclpy's Node._apply_descriptor: read-only, static type, ranges. A dynamically typed
    descriptor takes the value's type (the descriptor is updated, as in rclpy)."""
    descriptor.name = parameter.name
    if check_read_only and descriptor.read_only:
        return parameters_result(False, f'Trying to set a read-only parameter: {parameter.name}.')
    Type = Parameter.Type
    if descriptor.dynamic_typing:
        descriptor.type = parameter.type_.value
    elif declared and parameter.type_ is Type.NOT_SET:
        return parameters_result(False, 'Static parameter cannot be undeclared')
    elif parameter.type_ is not Type.NOT_SET and parameter.type_.value != descriptor.type:
        return parameters_result(False, f"{WRONG_TYPE_REASON}, "
                                        f"expected '{Type(descriptor.type)}' got '{parameter.type_}'")
    if parameter.type_ is Type.INTEGER and len(descriptor.integer_range):
        return check_integer_range(parameter, descriptor.integer_range[0])
    if parameter.type_ is Type.DOUBLE and len(descriptor.floating_point_range):
        return check_floating_point_range(parameter, descriptor.floating_point_range[0])
    return parameters_result(True)


def list_parameter_names(names: Iterable[str], prefixes: Sequence[str], depth: int) -> Any:
    """rclpy's Node.list_parameters over ``names``: an rcl_interfaces/msg/ListParametersResult.

    No prefixes and depth 0 (DEPTH_RECURSIVE): every name. Otherwise a name is listed when it has
    fewer than ``depth`` separators (no prefixes), or equals a prefix, or lies under one within
    ``depth`` more levels. ``prefixes`` of the result: the listed names' parents, first-seen order.
    """
    if not isinstance(prefixes, (list, tuple)) or not all(isinstance(p, str) for p in prefixes):
        raise TypeError('The prefixes argument must be a list of str')
    if not isinstance(depth, int) or isinstance(depth, bool):
        raise TypeError('The depth must be instance of type int')
    if depth < 0:
        raise ValueError('The depth must be greater than or equal to zero')
    separator = PARAMETER_SEPARATOR_STRING

    def shallow(name: str) -> bool:
        return name.count(separator) < depth

    def under_a_prefix(name: str) -> bool:
        return any(name == prefix or (name.startswith(prefix + separator) and (
            depth == DEPTH_RECURSIVE or shallow(name[len(prefix) + 1:]))) for prefix in prefixes)

    result = rcl_message('ListParametersResult')()
    recursive = not prefixes and depth == DEPTH_RECURSIVE
    for name in names:
        if not recursive and not (not prefixes and shallow(name)) and not under_a_prefix(name):
            continue
        result.names.append(name)
        parent = name.rpartition(separator)[0]
        if separator in name and parent not in result.prefixes:
            result.prefixes.append(parent)
    return result


__all__ = [
    'DEPTH_RECURSIVE', 'FloatingPointRange', 'IntegerRange', 'InvalidParameterException',
    'InvalidParameterTypeException', 'InvalidParameterValueException', 'PARAMETER_SEPARATOR_STRING',
    'PARAM_REL_TOL', 'Parameter', 'ParameterAlreadyDeclaredException', 'ParameterDescriptor',
    'ParameterException', 'ParameterImmutableException', 'ParameterNotDeclaredException', 'ParameterType',
    'ParameterUninitializedException', 'SetParametersResult', 'WRONG_TYPE_REASON', 'check_against_descriptor',
    'check_floating_point_range', 'check_integer_range', 'list_parameter_names', 'value_from_message',
    'parameters_result', 'rcl_message', 'value_to_message']
