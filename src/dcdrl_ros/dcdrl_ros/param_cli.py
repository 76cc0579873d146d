"""`dcdrl param list|get|set|dump|describe`: `ros2 param` on a machine without ROS 2.

The same arguments and the same output as ros2param (Jazzy) against the same graph, through the
same rcl_interfaces services (any node: ours or rclpy's). The difference: there is no daemon, so
discovery happens in this process: ``--timeout`` (default 5 s here instead of ros2's 1 s) ends as
soon as the node is seen; `list` without a node name waits ``--spin-time``.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

import yaml

from dcdrl_ros.runtime.parameters import PARAMETER_SEPARATOR_STRING, Parameter

SERVICE_WAIT_SEC = 5.0     # as ros2param: each verb waits this long for the node's parameter services
CALL_TIMEOUT_SEC = 10.0    # ros2param waits forever for a reply; a dead peer should not hang us
NODE_WAIT_SEC = 5.0
LIST_SPIN_SEC = 1.5

TYPE_NAMES = {   # ros2param.api.get_parameter_type_string
    Parameter.Type.BOOL: 'boolean', Parameter.Type.INTEGER: 'integer', Parameter.Type.DOUBLE: 'double',
    Parameter.Type.STRING: 'string', Parameter.Type.BYTE_ARRAY: 'byte array',
    Parameter.Type.BOOL_ARRAY: 'boolean array', Parameter.Type.INTEGER_ARRAY: 'integer array',
    Parameter.Type.DOUBLE_ARRAY: 'double array', Parameter.Type.STRING_ARRAY: 'string array',
    Parameter.Type.NOT_SET: 'not set',
}
GET_LABELS = {   # what `ros2 param get` prints before the value
    Parameter.Type.BOOL: 'Boolean value is:', Parameter.Type.INTEGER: 'Integer value is:',
    Parameter.Type.DOUBLE: 'Double value is:', Parameter.Type.STRING: 'String value is:',
    Parameter.Type.BYTE_ARRAY: 'Byte values are:', Parameter.Type.BOOL_ARRAY: 'Boolean values are:',
    Parameter.Type.INTEGER_ARRAY: 'Integer values are:', Parameter.Type.DOUBLE_ARRAY: 'Double values are:',
    Parameter.Type.STRING_ARRAY: 'String values are:', Parameter.Type.NOT_SET: 'Parameter not set.',
}


class ParamCliError(Exception):
    """Ends the verb: the message goes to stderr and the exit status is 1 (ros2cli's returned string)."""


# --- pure formatting and typing (unit-tested) ------------------------------------------------------------
def value_from_text(text: str) -> tuple[Parameter.Type, Any]:
    """The type and value `ros2 param set` sends for TEXT: rclpy.parameter.get_parameter_value's
    rules (PyYAML's safe_load typing, not rcl's: '1e3' is a string here), lists of one kind."""
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError:
        loaded = text
    if isinstance(loaded, bool):
        return Parameter.Type.BOOL, loaded
    if isinstance(loaded, int):
        return Parameter.Type.INTEGER, loaded
    if isinstance(loaded, float):
        return Parameter.Type.DOUBLE, loaded
    if isinstance(loaded, list):
        for kind, element in ((Parameter.Type.BOOL_ARRAY, bool), (Parameter.Type.INTEGER_ARRAY, int),
                              (Parameter.Type.DOUBLE_ARRAY, float), (Parameter.Type.STRING_ARRAY, str)):
            if all(isinstance(item, element) for item in loaded):
                return kind, [element(item) for item in loaded]
        return Parameter.Type.STRING, text
    return Parameter.Type.STRING, loaded if isinstance(loaded, str) else text


def python_value(value_msg: Any) -> Any:
    """rclpy.parameter.parameter_value_to_python: scalars as they are, arrays as lists."""
    from dcdrl_ros.runtime.parameters import value_from_message
    return value_from_message(value_msg)[1]


def format_get(value_msg: Any, hide_type: bool) -> str:
    """The line `ros2 param get` prints (arrays as Python lists, as rclpy's message fields print)."""
    kind = Parameter.Type(int(value_msg.type))
    value = python_value(value_msg)
    if hide_type:
        return str(value)
    return GET_LABELS[kind] if value is None else f'{GET_LABELS[kind]} {value}'


def format_dump(full_name: str, names: list[str], values: list[Any]) -> str:
    """`ros2 param dump`'s YAML: dotted names nested, keys sorted by yaml.dump."""
    tree: dict[str, Any] = {}
    for name, value in zip(names, values):
        branch = tree
        *parents, leaf = name.split(PARAMETER_SEPARATOR_STRING)
        for part in parents:
            branch = branch.setdefault(part, {})
        branch[leaf] = value
    return yaml.dump({full_name: {'ros__parameters': tree}}, default_flow_style=False)


def format_descriptor(descriptor: Any) -> list[str]:
    """The lines `ros2 param describe` prints for one descriptor."""
    lines = [f'Parameter name: {descriptor.name}', f'  Type: {TYPE_NAMES[Parameter.Type(int(descriptor.type))]}']
    if descriptor.description:
        lines.append(f'  Description: {descriptor.description}')
    lines.append('  Constraints:')
    if descriptor.read_only:
        lines.append('    Read only: true')
    ranges = list(descriptor.floating_point_range) + list(descriptor.integer_range)
    if ranges:
        lines += [f'    Min value: {ranges[0].from_value}', f'    Max value: {ranges[0].to_value}']
        if ranges[0].step:
            lines.append(f'    Step: {ranges[0].step}')
    if descriptor.additional_constraints:
        lines.append(f'    Additional constraints: {descriptor.additional_constraints}')
    return lines


def absolute_node_name(name: str) -> str:
    return name if name.startswith('/') else '/' + name


# --- talking to the node -------------------------------------------------------------------------------
class ParameterClient:
    """The six parameter services of one remote node, called from a hidden node of ours."""

    SERVICES = {'describe_parameters': 'DescribeParameters', 'get_parameters': 'GetParameters',
                'get_parameter_types': 'GetParameterTypes', 'list_parameters': 'ListParameters',
                'set_parameters': 'SetParameters', 'set_parameters_atomically': 'SetParametersAtomically'}

    def __init__(self, runtime: Any, node: Any, remote: str) -> None:
        from dcdrl_ros.messages import get_interface
        from dcdrl_ros.runtime.qos import qos_profile_parameters
        self._runtime, self._node, self.remote = runtime, node, remote
        self._clients = {service: node.create_client(get_interface(f'rcl_interfaces/srv/{type_name}'),
                                                     f'{remote}/{service}', qos_profile=qos_profile_parameters)
                         for service, type_name in self.SERVICES.items()}

    def wait_for_services(self, timeout_sec: float) -> bool:
        """All six, as rclpy's AsyncParameterClient.wait_for_services."""
        import time
        deadline = time.monotonic() + timeout_sec
        return all(client.wait_for_service(max(0.0, deadline - time.monotonic()))
                   for client in self._clients.values())

    def call(self, service: str, **fields: Any) -> Any:
        client = self._clients[service]
        future = client.call_async(client.srv_type.Request(**fields))
        self._runtime.spin_until_future_complete(self._node, future, timeout_sec=CALL_TIMEOUT_SEC)
        if not future.done() or future.result() is None:
            future.cancel()
            raise ParamCliError(f'Exception while calling service of node {self.remote}: '
                                f'no reply within {CALL_TIMEOUT_SEC} s')
        return future.result()


class Session:
    """A context with a hidden node, a graph watcher and parameter clients; closed after the verb."""

    def __init__(self) -> None:
        from dcdrl_ros import runtime
        from dcdrl_ros.graph import GraphWatcher
        from dcdrl_ros.runtime.context import Context
        self.runtime = runtime
        self.context = Context()
        self.context.init([])
        self.node = runtime.Node('_dcdrl_param', context=self.context, start_parameter_services=False)
        self.watcher = GraphWatcher(self.context)

    def node_names(self, wait_sec: float, include_hidden: bool, until: Callable[[set], bool] | None = None) -> list:
        """(name, namespace, full name) of the nodes seen, as ros2node's NodeName tuples."""
        def names(graph: Any) -> set:
            return {(n.name, n.namespace, n.full_name) for n in graph.nodes(include_hidden)
                    if n.participant != self.watcher._own_participant}
        graph = self.watcher.wait(wait_sec, (lambda g: until(names(g))) if until else None)
        return sorted(names(graph))

    def wait_for_node(self, full_name: str, wait_sec: float, include_hidden: bool) -> bool:
        return any(n[2] == full_name for n in self.node_names(
            wait_sec, include_hidden, lambda found: any(n[2] == full_name for n in found)))

    def client(self, remote: str) -> ParameterClient:
        client = ParameterClient(self.runtime, self.node, remote)
        if not client.wait_for_services(SERVICE_WAIT_SEC):
            raise ParamCliError(f'Wait for service timed out waiting for parameter services for node {remote}')
        return client

    def close(self) -> None:
        self.watcher.close()
        self.context.shutdown()


# --- verbs -----------------------------------------------------------------------------------------------
def _require_node(session: Session, args: argparse.Namespace) -> str:
    full_name = absolute_node_name(args.node_name)
    if not session.wait_for_node(full_name, args.timeout, args.include_hidden_nodes):
        raise ParamCliError('Node not found')
    return full_name


def verb_list(session: Session, args: argparse.Namespace) -> None:
    wanted = absolute_node_name(args.node_name) if args.node_name else None
    nodes = session.node_names(args.spin_time if wanted is None else args.timeout, args.include_hidden_nodes,
                               (lambda found: any(n[2] == wanted for n in found)) if wanted else None)
    if wanted is not None:
        nodes = [n for n in nodes if n[2] == wanted]
        if not nodes:
            raise ParamCliError('Node not found')
    pattern = re.compile(args.filter[0]) if args.filter else None
    for node in nodes:
        try:
            client = session.client(node[2])
        except ParamCliError as error:
            print(error)   # ros2 param list prints this one on stdout and goes on
            continue
        names = sorted(client.call('list_parameters', prefixes=list(args.param_prefixes)).result.names)
        if pattern is not None:
            names = [name for name in names if pattern.match(name)]
        if not args.node_name and names:
            print(f'{node[2]}:')
        types = {}
        if args.param_type:
            for descriptor in client.call('describe_parameters', names=names).descriptors:
                types[descriptor.name] = TYPE_NAMES[Parameter.Type(int(descriptor.type))]
        for name in names:
            print(f'  {name} (type: {types[name]})' if args.param_type else f'  {name}')


def verb_get(session: Session, args: argparse.Namespace) -> None:
    _require_node(session, args)
    values = session.client(args.node_name).call('get_parameters', names=[args.parameter_name]).values
    if not values:
        raise ParamCliError('Parameter not set')
    print(format_get(values[0], args.hide_type))


def verb_set(session: Session, args: argparse.Namespace) -> None:
    _require_node(session, args)
    parameter = Parameter(args.parameter_name, *value_from_text(args.value))
    results = session.client(args.node_name).call('set_parameters', parameters=[parameter.to_parameter_msg()]).results
    if len(results) != 1:
        raise ParamCliError(f'{args.node_name} answered {len(results)} results for one parameter')
    result = results[0]
    if result.successful:
        print('Set parameter successful' + (f': {result.reason}' if result.reason else ''))
    else:
        print('Setting parameter failed' + (f': {result.reason}' if result.reason else ''), file=sys.stderr)


def verb_dump(session: Session, args: argparse.Namespace) -> None:
    full_name = _require_node(session, args)
    client = session.client(full_name)
    names = sorted(client.call('list_parameters', prefixes=[]).result.names)
    values = [python_value(value) for value in client.call('get_parameters', names=names).values]
    print(format_dump(full_name, names, values))


def verb_describe(session: Session, args: argparse.Namespace) -> None:
    _require_node(session, args)
    response = session.client(args.node_name).call('describe_parameters', names=args.parameter_names)
    for descriptor in response.descriptors:
        print('\n'.join(format_descriptor(descriptor)))


VERBS = {'list': verb_list, 'get': verb_get, 'set': verb_set, 'dump': verb_dump, 'describe': verb_describe}


def add_parser(verbs: Any) -> None:
    """Adds `param` and its verbs to the `dcdrl` parser (cli.py)."""
    param = verbs.add_parser('param', help='list, get, set, dump and describe node parameters')
    sub = param.add_subparsers(dest='verb', required=True)

    def common(parser: argparse.ArgumentParser, node_required: bool = True) -> None:
        parser.add_argument('node_name', nargs=None if node_required else '?', help='Name of the ROS node')
        parser.add_argument('--include-hidden-nodes', action='store_true', help='Consider hidden nodes as well')
        parser.add_argument('--timeout', type=float, default=NODE_WAIT_SEC,
                            help='Wait for N seconds until node becomes available (default %(default)s sec)')

    parser = sub.add_parser('list', help='Output a list of available parameters')
    common(parser, node_required=False)
    parser.add_argument('--filter', nargs=1, help='Only parameters matching the regex expression')
    parser.add_argument('--param-prefixes', nargs='+', default=[], help='Only parameters with these prefixes')
    parser.add_argument('--param-type', action='store_true', help='Print parameter types with parameter names')
    parser.add_argument('--spin-time', type=float, default=LIST_SPIN_SEC,
                        help='Seconds to wait for discovery when no node is named')
    parser = sub.add_parser('get', help='Get parameter')
    common(parser)
    parser.add_argument('parameter_name')
    parser.add_argument('--hide-type', action='store_true', help='Hide the type information')
    parser = sub.add_parser('set', help='Set parameter')
    common(parser)
    parser.add_argument('parameter_name')
    parser.add_argument('value', help='Value of the parameter (typed as YAML, as ros2 param set does)')
    parser = sub.add_parser('dump', help='Show all of the parameters of a node in a YAML file format')
    common(parser)
    parser = sub.add_parser('describe', help='Show descriptive information about declared parameters')
    common(parser)
    parser.add_argument('parameter_names', nargs='+')


def cmd_param(args: argparse.Namespace) -> int:
    session = Session()
    try:
        VERBS[args.verb](session, args)
    except ParamCliError as error:
        sys.stderr.write(f'{error}\n')
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        session.close()
    return 0
