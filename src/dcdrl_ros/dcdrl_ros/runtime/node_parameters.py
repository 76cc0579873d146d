"""rclpy.node.Node's parameter methods for the ROS-free runtime's Node (runtime/node.py mixes them in).

Declare, get, list, describe, set (one by one or atomically), undeclare and set_descriptor, with the
pre-set, on-set and post-set callbacks and an rcl_interfaces/msg/ParameterEvent on
/parameter_events for each successful declaration or set, in rclpy's order and with its results
and exceptions (parameter_cases.py runs the same cases on both backends). Types, checks and
exceptions: runtime/parameters.py.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from dcdrl_ros.runtime.parameters import (
    PARAM_REL_TOL,
    PARAMETER_SEPARATOR_STRING,
    WRONG_TYPE_REASON,
    InvalidParameterException,
    InvalidParameterTypeException,
    InvalidParameterValueException,
    Parameter,
    ParameterAlreadyDeclaredException,
    ParameterDescriptor,
    ParameterImmutableException,
    ParameterNotDeclaredException,
    ParameterUninitializedException,
    check_against_descriptor,
    list_parameter_names,
    parameters_result,
    rcl_message,
    value_from_message,
)

USE_SIM_TIME = 'use_sim_time'
START_TYPE_DESCRIPTION_SERVICE = 'start_type_description_service'


PreSetCallback = Callable[[list[Parameter]], list[Parameter]]
OnSetCallback = Callable[[list[Parameter]], Any]
PostSetCallback = Callable[[list[Parameter]], None]


class NodeParameters:
    """rclpy.node.Node's parameter methods; the node calls ``_init_parameters`` first thing and gives
    ``_parameter_event_publisher`` (or None while it has none), ``get_name``, ``get_namespace``,
    ``get_clock``."""

    PARAM_REL_TOL = PARAM_REL_TOL
    _parameter_event_publisher: Any = None

    if TYPE_CHECKING:  # given by the node class
        def get_fully_qualified_name(self) -> str: ...
        def get_clock(self) -> Any: ...

    def _init_parameters(self, overrides: dict[str, Any], sources: dict[str, str],
                         allow_undeclared_parameters: bool) -> None:
        """``overrides``: name -> value (command line, then the constructor's parameter_overrides);
        ``sources``: where each came from, for error messages."""
        self._parameters: dict[str, Parameter] = {}
        self._descriptors: dict[str, Any] = {}
        self._parameter_overrides: dict[str, Parameter] = {
            name: value if isinstance(value, Parameter) else Parameter(name, value=value)
            for name, value in overrides.items()}
        self._override_sources = dict(sources)
        self._allow_undeclared_parameters = allow_undeclared_parameters
        self._pre_set_parameters_callbacks: list[PreSetCallback] = []
        self._on_set_parameters_callbacks: list[OnSetCallback] = []
        self._post_set_parameters_callbacks: list[PostSetCallback] = []

    # -- declare ----------------------------------------------------------------------
    def declare_parameter(self, name: str, value: Any = None, descriptor: Any = None,
                          ignore_override: bool = False) -> Parameter:
        if value is None and descriptor is None:
            entry: tuple = (name,)
        else:
            entry = (name, value, descriptor if descriptor is not None else ParameterDescriptor())
        return self.declare_parameters('', [entry], ignore_override)[0]

    def declare_parameters(self, namespace: str, parameters: Sequence[tuple],
                           ignore_override: bool = False) -> list[Parameter]:
        value_class = rcl_message('ParameterValue')
        to_declare: list[Parameter] = []
        descriptors: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for index, entry in enumerate(parameters):
            if not 1 <= len(entry) <= 3:
                raise TypeError(f'Invalid parameter tuple length at index {index} in parameters list: '
                                f'{entry}; expecting length between 1 and 3')
            name = entry[0]
            if not isinstance(name, str):
                raise TypeError(f'First element {name} at index {index} in parameters list is not a str.')
            if namespace:
                name = f'{namespace}.{name}'
            if not name:
                raise InvalidParameterException(name)
            second = entry[1] if len(entry) > 1 else None
            descriptor = entry[2] if len(entry) > 2 else ParameterDescriptor()
            if not isinstance(descriptor, ParameterDescriptor):
                raise TypeError(f'Third element {descriptor} at index {index} in parameters list '
                                'is not a ParameterDescriptor.')
            if len(entry) == 1:
                warnings.warn(f"when declaring parameter named '{name}', declaring a parameter only providing "
                              'its name is deprecated; give a default value, a type or a descriptor with '
                              'dynamic_typing=True', stacklevel=2)
                descriptor.dynamic_typing = True
            value = None
            if isinstance(second, Parameter.Type):
                if second is Parameter.Type.NOT_SET:
                    raise ValueError(f'Cannot declare parameter {{{name}}} as statically typed of type NOT_SET')
                if descriptor.dynamic_typing:
                    raise ValueError(f'When declaring parameter {{{name}}} passing a descriptor with'
                                     '`dynamic_typing=True` is not allowed when the parameter type is provided')
                descriptor.type = second.value
            else:
                value = second
                if not descriptor.dynamic_typing:
                    descriptor.type = (value.type if isinstance(value, value_class)
                                       else Parameter.Type.from_parameter_value(value).value)
                    if descriptor.type == Parameter.Type.NOT_SET.value:
                        raise ValueError('Cannot declare a statically typed parameter with default value '
                                         'of type PARAMETER_NOT_SET')
            if not ignore_override and name in self._parameter_overrides:
                value = self._parameter_overrides[name].value
                sources[name] = self._override_sources.get(name, 'parameter_overrides')
            to_declare.append(Parameter(name, value=value))
            descriptors[name] = descriptor
        already = [parameter.name for parameter in to_declare if parameter.name in self._parameters]
        if already:
            raise ParameterAlreadyDeclaredException(already)
        for parameter in to_declare:   # one at a time: those before a refusal stay declared, as in rclpy
            result = self._set_parameters_atomically_common([parameter], descriptors, allow_not_set_type=True)
            if not result.successful:
                source = sources.get(parameter.name, '')
                if result.reason.startswith(WRONG_TYPE_REASON):
                    raise InvalidParameterTypeException(
                        parameter, Parameter.Type(descriptors[parameter.name].type).name, source)
                raise InvalidParameterValueException(parameter.name, parameter.value, result.reason, source)
        return [self._parameters[parameter.name] for parameter in to_declare]

    def undeclare_parameter(self, name: str) -> None:
        """As rclpy: refused for a read-only parameter; publishes no event (rclpy does not)."""
        if not self.has_parameter(name):
            raise ParameterNotDeclaredException(name)
        if self._descriptors[name].read_only:
            raise ParameterImmutableException(name)
        del self._parameters[name]
        del self._descriptors[name]

    # -- read -------------------------------------------------------------------------
    def has_parameter(self, name: str) -> bool:
        return name in self._parameters

    def get_parameter_type(self, name: str) -> Any:
        if self.has_parameter(name):
            return self._parameters[name].type_.value
        if self._allow_undeclared_parameters:
            return Parameter.Type.NOT_SET
        raise ParameterNotDeclaredException(name)

    def get_parameter_types(self, names: Sequence[str]) -> list[Any]:
        if not all(isinstance(name, str) for name in names):
            raise TypeError('All names must be instances of type str')
        return [self.get_parameter_type(name) for name in names]

    def get_parameter(self, name: str) -> Parameter:
        if self.has_parameter(name):
            parameter = self._parameters[name]
            if parameter.type_ is not Parameter.Type.NOT_SET or self._descriptors[name].dynamic_typing:
                return parameter
            raise ParameterUninitializedException(name)
        if self._allow_undeclared_parameters:
            return Parameter(name, Parameter.Type.NOT_SET, None)
        raise ParameterNotDeclaredException(name)

    def get_parameters(self, names: Sequence[str]) -> list[Parameter]:
        if not all(isinstance(name, str) for name in names):
            raise TypeError('All names must be instances of type str')
        return [self.get_parameter(name) for name in names]

    def get_parameter_or(self, name: str, alternative_value: Parameter | None = None) -> Parameter:
        if alternative_value is None:
            alternative_value = Parameter(name, Parameter.Type.NOT_SET)
        parameter = self._parameters.get(name)
        if parameter is None or parameter.type_ is Parameter.Type.NOT_SET:
            return alternative_value
        return parameter

    def get_parameters_by_prefix(self, prefix: str) -> dict[str, Parameter]:
        if prefix:
            prefix += PARAMETER_SEPARATOR_STRING
        return {name[len(prefix):]: parameter for name, parameter in self._parameters.items()
                if name.startswith(prefix)}

    def list_parameters(self, prefixes: Sequence[str], depth: int) -> Any:
        if not isinstance(prefixes, list):
            raise TypeError('The prefixes argument must be a list')
        return list_parameter_names(list(self._parameters), prefixes, depth)

    def describe_parameter(self, name: str) -> Any:
        try:
            return self._descriptors[name]
        except KeyError:
            if self._allow_undeclared_parameters:
                return ParameterDescriptor()
            raise ParameterNotDeclaredException(name) from None

    def describe_parameters(self, names: Sequence[str]) -> list[Any]:
        return [self.describe_parameter(name) for name in names]

    # -- set ----------------------------------------------------------------------------
    def set_parameters(self, parameter_list: Sequence[Parameter]) -> list[Any]:
        """Each parameter set on its own (rclpy); ParameterNotDeclaredException for an undeclared one
        unless undeclared parameters are allowed (those before it stay set)."""
        return [self._set_parameters_atomically([parameter]) for parameter in parameter_list]

    def set_parameters_atomically(self, parameter_list: Sequence[Parameter]) -> Any:
        return self._set_parameters_atomically(list(parameter_list))

    def _set_parameters_atomically(self, parameter_list: list[Parameter]) -> Any:
        if self._pre_set_parameters_callbacks:
            modified: list[Parameter] = []
            for callback in self._pre_set_parameters_callbacks:
                modified.extend(callback(parameter_list))
            parameter_list = modified
            if not parameter_list:
                return parameters_result(False, 'parameter list cannot be empty, this might be due to '
                                      'pre_set_parameters_callback modifying the original parameters list.')
        if not all(isinstance(parameter, Parameter) for parameter in parameter_list):
            raise TypeError(f"parameter must be instance of type '{Parameter!r}'")
        undeclared = [parameter.name for parameter in parameter_list if parameter.name not in self._parameters]
        if undeclared and not self._allow_undeclared_parameters:
            raise ParameterNotDeclaredException(undeclared)
        return self._set_parameters_atomically_common(parameter_list)

    def _set_parameters_atomically_common(self, parameter_list: list[Parameter],
                                          descriptors: dict[str, Any] | None = None,
                                          allow_not_set_type: bool = False) -> Any:
        """Check against descriptors (the given new ones without the read-only check, or the stored
        ones with it), ask the on-set callbacks, store, publish one ParameterEvent, run the post-set
        callbacks. A NOT_SET value undeclares unless ``allow_not_set_type`` (declaration)."""
        new_descriptors = descriptors is not None
        checked = descriptors if new_descriptors else self._descriptors
        for parameter in parameter_list:
            if parameter.name in checked:
                result = check_against_descriptor(parameter, checked[parameter.name],
                                                  declared=self.has_parameter(parameter.name),
                                                  check_read_only=not new_descriptors)
                if not result.successful:
                    return result
        for callback in self._on_set_parameters_callbacks:
            result = callback(parameter_list)
            if not result.successful:
                return result
        event = rcl_message('ParameterEvent')(node=self.get_fully_qualified_name())
        for parameter in parameter_list:
            if not allow_not_set_type and parameter.type_ is Parameter.Type.NOT_SET:
                event.deleted_parameters.append(parameter.to_parameter_msg())
                self._parameters.pop(parameter.name, None)
                self._descriptors.pop(parameter.name, None)
                continue
            if new_descriptors:
                self._descriptors[parameter.name] = descriptors[parameter.name]
            elif parameter.name not in self._descriptors:
                self._descriptors[parameter.name] = ParameterDescriptor(dynamic_typing=True)
            if self.get_parameter_or(parameter.name).type_ is Parameter.Type.NOT_SET:
                event.new_parameters.append(parameter.to_parameter_msg())
            else:
                event.changed_parameters.append(parameter.to_parameter_msg())
            self._parameters[parameter.name] = parameter
        if self._parameter_event_publisher is not None:
            event.stamp = self.get_clock().now().to_msg()
            self._parameter_event_publisher.publish(event)
        for callback in self._post_set_parameters_callbacks:
            callback(parameter_list)
        return parameters_result(True)

    def set_descriptor(self, name: str, descriptor: Any, alternative_value: Any = None) -> Any:
        """A new descriptor for a declared parameter: keep the value if it complies, else take
        ``alternative_value`` (an rcl_interfaces/msg/ParameterValue); returns the resulting value."""
        if not self.has_parameter(name):
            if not self._allow_undeclared_parameters:
                raise ParameterNotDeclaredException(name)
            return self.get_parameter(name).get_parameter_value()
        if self.describe_parameter(name).read_only:
            raise ParameterImmutableException(name)
        current = self.get_parameter(name)
        alternative = current if alternative_value is None else Parameter(name, *value_from_message(alternative_value))
        for candidate in (current, alternative):
            result = check_against_descriptor(candidate, descriptor, declared=True, check_read_only=False)
            if result.successful:
                self._parameters[name] = candidate
                break
        else:
            raise InvalidParameterValueException(name, alternative.value, result.reason)
        self._descriptors[name] = descriptor
        return self.get_parameter(name).get_parameter_value()

    # -- callbacks (the newest is called first, as in rclpy) ----------------------------
    def add_pre_set_parameters_callback(self, callback: PreSetCallback) -> None:
        self._pre_set_parameters_callbacks.insert(0, callback)

    def add_on_set_parameters_callback(self, callback: OnSetCallback) -> None:
        self._on_set_parameters_callbacks.insert(0, callback)

    def add_post_set_parameters_callback(self, callback: PostSetCallback) -> None:
        self._post_set_parameters_callbacks.insert(0, callback)

    def remove_pre_set_parameters_callback(self, callback: PreSetCallback) -> None:
        self._pre_set_parameters_callbacks.remove(callback)

    def remove_on_set_parameters_callback(self, callback: OnSetCallback) -> None:
        self._on_set_parameters_callbacks.remove(callback)

    def remove_post_set_parameters_callback(self, callback: PostSetCallback) -> None:
        self._post_set_parameters_callbacks.remove(callback)

    # -- what rclpy's Node declares in every node ---------------------------------------
    def _declare_standard_parameters(self) -> None:
        """use_sim_time (rclpy's TimeSource) and start_type_description_service (read-only), with
        what this runtime can honour: no /clock, so use_sim_time true is refused with a reason."""
        self.add_on_set_parameters_callback(_refuse_sim_time)   # before declaring: an override is checked too
        if not self.has_parameter(USE_SIM_TIME):
            self.declare_parameter(USE_SIM_TIME, False)
        if not self.has_parameter(START_TYPE_DESCRIPTION_SERVICE):
            self.declare_parameter(START_TYPE_DESCRIPTION_SERVICE, True, ParameterDescriptor(
                name=START_TYPE_DESCRIPTION_SERVICE, type=Parameter.Type.BOOL.value,
                description='If enabled, start the ~/get_type_description service.', read_only=True))


NO_SIM_TIME_REASON = ('use_sim_time true is not supported by the ROS-free runtime (it has no /clock '
                      'subscription; nodes run on the system clock)')


def _refuse_sim_time(parameters: list[Parameter]) -> Any:
    for parameter in parameters:
        if parameter.name == USE_SIM_TIME:
            if parameter.type_ is not Parameter.Type.BOOL:
                return parameters_result(False, f'{USE_SIM_TIME} parameter set to something besides a bool')
            if parameter.value:
                return parameters_result(False, NO_SIM_TIME_REASON)
    return parameters_result(True)


__all__ = ['NodeParameters', 'START_TYPE_DESCRIPTION_SERVICE', 'USE_SIM_TIME']
