"""The six rcl_interfaces parameter services of a node, named and answered as rclpy (Jazzy) does.

``<node name>/describe_parameters``, ``get_parameters``, ``get_parameter_types``, ``list_parameters``,
``set_parameters`` and ``set_parameters_atomically``, relative to the node's namespace, with
qos_profile_parameters (reliable, volatile, keep-last 1000): what `ros2 param` and rclpy's
AsyncParameterClient call. rclpy's answers are kept to the letter, odd corners included: a request
that names one undeclared parameter gets an empty list back (not a partial one), and a set of an
undeclared parameter answers with the exception's text as the reason.
"""
from __future__ import annotations

from typing import Any

from dcdrl_ros.messages import get_interface
from dcdrl_ros.runtime.parameters import (
    Parameter,
    ParameterNotDeclaredException,
    ParameterUninitializedException,
    SetParametersResult,
)
from dcdrl_ros.runtime.qos import qos_profile_parameters

SERVICES = ('describe_parameters', 'get_parameters', 'get_parameter_types', 'list_parameters',
            'set_parameters', 'set_parameters_atomically')


def _srv(name: str) -> Any:
    return get_interface(f'rcl_interfaces/srv/{name}')


class ParameterService:
    """Creates the services on ``node`` (so they are in the graph and destroyed with it)."""

    def __init__(self, node: Any) -> None:
        self._node = node
        handlers = {
            'describe_parameters': ('DescribeParameters', self._describe),
            'get_parameters': ('GetParameters', self._get),
            'get_parameter_types': ('GetParameterTypes', self._get_types),
            'list_parameters': ('ListParameters', self._list),
            'set_parameters': ('SetParameters', self._set),
            'set_parameters_atomically': ('SetParametersAtomically', self._set_atomically),
        }
        self.services = [node.create_service(_srv(type_name), f'{node.get_name()}/{service}', handler,
                                             qos_profile=qos_profile_parameters)
                         for service, (type_name, handler) in handlers.items()]

    def _describe(self, request: Any, response: Any) -> Any:
        try:
            response.descriptors = [self._node.describe_parameter(name) for name in request.names]
        except ParameterNotDeclaredException:
            response.descriptors = []
        return response

    def _get(self, request: Any, response: Any) -> Any:
        try:
            response.values = [self._node.get_parameter(name).get_parameter_value() for name in request.names]
        except (ParameterNotDeclaredException, ParameterUninitializedException):
            response.values = []
        return response

    def _get_types(self, request: Any, response: Any) -> Any:
        try:
            types = [self._node.get_parameter_type(name) for name in request.names]
        except ParameterNotDeclaredException:
            types = []
        response.types = [getattr(kind, 'value', kind) for kind in types]   # NOT_SET comes as the enum
        return response

    def _list(self, request: Any, response: Any) -> Any:
        try:
            response.result = self._node.list_parameters(list(request.prefixes), int(request.depth))
        except (TypeError, ValueError):
            response.result = get_interface('rcl_interfaces/msg/ListParametersResult')()
        return response

    def _set(self, request: Any, response: Any) -> Any:
        response.results = [self._set_one([parameter]) for parameter in request.parameters]
        return response

    def _set_atomically(self, request: Any, response: Any) -> Any:
        response.result = self._set_one(list(request.parameters))
        return response

    def _set_one(self, messages: list[Any]) -> Any:
        try:
            parameters = [Parameter.from_parameter_msg(message) for message in messages]
        except ValueError as error:   # a type number rcl_interfaces does not define
            return SetParametersResult(successful=False, reason=str(error))
        try:
            return self._node.set_parameters_atomically(parameters)
        except ParameterNotDeclaredException as error:
            return SetParametersResult(successful=False, reason=str(error))
