"""Parameter rules, one case each, written against rclpy's API so that they run on both backends.

Imported by test_runtime_parameters.py (our runtime, in process, against the outcomes rclpy gave)
and run as a script by the parity test on each backend in a child process:

    python parameter_cases.py OUT.json        # DCDRL_BACKEND=rclpy or cyclone; ros.init() done here

A case is ``case(make_node, tmp_dir) -> list`` of outcomes, each a plain JSON value: a parameter
as [name, type name, value], a set result as [successful, reason], an exception as
"ExceptionName: message" (our runtime adds " (from <where>)" to refusals of overrides; outcome()
drops that part, which its own test checks).
"""
from __future__ import annotations

import array
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from dcdrl_ros import ros

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult  # noqa: E402

SOURCE_SUFFIX = re.compile(r' \(from [^()]*(\([^()]*\)[^()]*)*\)$')
Parameter = ros.Parameter


def plain(value: Any) -> Any:
    if isinstance(value, (list, tuple, array.array)):
        return [plain(item) for item in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def param(parameter: Any) -> list:
    return [parameter.name, parameter.type_.name, plain(parameter.value)]


def result(set_result: Any) -> list:
    return [bool(set_result.successful), set_result.reason]


def attempt(call: Callable[[], Any], show: Callable[[Any], Any] = lambda value: value) -> Any:
    """The outcome of ``call``: ``show(its value)`` or 'ExceptionName: message' without our source suffix."""
    try:
        return show(call())
    except Exception as error:  # every refusal is an outcome to compare
        return f'{type(error).__name__}: {SOURCE_SUFFIX.sub("", str(error))}'


def sets(node: Any, *parameters: Any) -> Any:
    """set_parameters' outcome: [successful, reason] per parameter, or the exception."""
    return attempt(lambda: node.set_parameters(list(parameters)), lambda results: [result(r) for r in results])


def atomic(node: Any, *parameters: Any) -> Any:
    return attempt(lambda: node.set_parameters_atomically(list(parameters)), result)


def params_file(tmp_dir: str, node: str, body: str) -> str:
    path = os.path.join(tmp_dir, f'{node}.yaml')
    with open(path, 'w') as handle:
        handle.write(f'{node}:\n  ros__parameters:\n' + ''.join(f'    {line}\n' for line in body.splitlines()))
    return path


# --- declaration and overrides ---------------------------------------------------------------------------
def case_override_types(make_node, tmp_dir):
    """The case that once differed from rclpy: an INTEGER in a parameter file for a DOUBLE parameter stops the
    node; and -p."""
    path = params_file(tmp_dir, 'typed', 'noise_half_life_steps: 0\nrate: 2.5\ncount: 3\nflag: "true"\n'
                                          'gains: [1, 2]\nnames: [a, b]')
    node = make_node('typed', cli_args=['--ros-args', '--params-file', path, '-p', 'count:=4.0'])
    return [attempt(lambda: node.declare_parameter('noise_half_life_steps', 1000.0), param),
            attempt(lambda: node.declare_parameter('rate', 1.0), param),
            attempt(lambda: node.declare_parameter('count', 1), param),
            attempt(lambda: node.declare_parameter('flag', False), param),
            attempt(lambda: node.declare_parameter('gains', [0.5]), param),
            attempt(lambda: node.declare_parameter('names', ['x']), param),
            attempt(lambda: node.declare_parameter('count', 5), param),   # refused above, so not declared
            sorted(node._parameters)]


def case_declare_forms(make_node, tmp_dir):
    node = make_node('forms')
    return [attempt(lambda: node.declare_parameter('typed', Parameter.Type.DOUBLE), param),
            attempt(lambda: node.get_parameter('typed'), param),
            attempt(lambda: node.get_parameter_or('typed', Parameter('alt', value=1)), param),
            attempt(lambda: node.declare_parameter('unset', Parameter.Type.NOT_SET), param),
            attempt(lambda: node.declare_parameter('none', None, ParameterDescriptor()), param),
            attempt(lambda: node.declare_parameter('dyn', None, ParameterDescriptor(dynamic_typing=True)), param),
            attempt(lambda: node.declare_parameter('dyn2', Parameter.Type.INTEGER,
                                                   ParameterDescriptor(dynamic_typing=True)), param),
            attempt(lambda: node.declare_parameter('empty', []), param),
            attempt(lambda: node.declare_parameter('mixed', [1, 'a']), param),
            attempt(lambda: node.declare_parameter('numbers', [1, 2.5]), param),
            attempt(lambda: node.declare_parameter('mapping', {'a': 1}), param),
            attempt(lambda: node.declare_parameter('bytes', [b'a', b'b']), param),
            attempt(lambda: node.declare_parameter('', 1), param),
            attempt(lambda: node.declare_parameter('typed', 2.0), param),
            attempt(lambda: node.declare_parameters('ns', [('a', 1), ('b', 'x', ParameterDescriptor()),
                                                           ('c', Parameter.Type.BOOL)]),
                    lambda declared: [param(p) for p in declared]),
            attempt(lambda: node.declare_parameters('', [('x', 1, 2, 3)])),
            attempt(lambda: node.declare_parameters('', [('y', 1, 'not a descriptor')]))]


def case_parameter_objects(make_node, tmp_dir):
    return [attempt(lambda: Parameter('a', Parameter.Type.INTEGER, 1.5), param),
            attempt(lambda: Parameter('b', value={'x': 1}), param),
            attempt(lambda: Parameter('c', 5), param),
            attempt(lambda: Parameter('d', Parameter.Type.INTEGER, True), param),
            attempt(lambda: Parameter('e', value=(1, 2)), param),
            attempt(lambda: Parameter('f', Parameter.Type.BYTE_ARRAY, [b'ab']), param),
            attempt(lambda: Parameter('g', Parameter.Type.DOUBLE_ARRAY, [1.0, 2]), param),
            attempt(lambda: Parameter.Type.from_parameter_value([]).name),
            attempt(lambda: str(Parameter.Type.DOUBLE))]


def case_automatic_and_constructor_overrides(make_node, tmp_dir):
    node = make_node('auto', cli_args=['--ros-args', '-p', 'a:=1', '-p', 'b.c:=[x, z]'],
                     parameter_overrides=[Parameter('d', value=2.5), Parameter('a', value=False)],
                     automatically_declare_parameters_from_overrides=True)
    return [sorted(param(node.get_parameter(name)) for name in ('a', 'b.c', 'd')),
            sets(node, Parameter('d', value=1))]


# --- set ---------------------------------------------------------------------------------------------------
def case_set_types_and_read_only(make_node, tmp_dir):
    node = make_node('setter', cli_args=['--ros-args', '-p', 'fixed:=7'])
    node.declare_parameter('rate', 1.0)
    node.declare_parameter('fixed', 1, ParameterDescriptor(read_only=True, description='set once'))
    node.declare_parameter('any', 1, ParameterDescriptor(dynamic_typing=True))
    node.declare_parameter('list', [1, 2])
    to_set = [Parameter('rate', value=2), Parameter('rate', value=3.5), Parameter('rate', value=True),
            Parameter('fixed', value=8), Parameter('any', value='text'), Parameter('any', value=[1.5]),
            Parameter('list', value=[3]), Parameter('list', value=[1.0]), Parameter('list', value=[]),
            Parameter('rate', Parameter.Type.NOT_SET), Parameter('any', Parameter.Type.NOT_SET)]
    outcomes = [sets(node, parameter) for parameter in to_set]
    described = node.describe_parameter('fixed')
    return outcomes + [
        param(node.get_parameter('rate')), param(node.get_parameter('fixed')), node.has_parameter('any'),
        [described.name, described.type, described.read_only, described.description],
        sets(node, Parameter('nope', value=1)),
        sets(node, Parameter('rate', value=4.0), Parameter('nope', value=1), Parameter('rate', value=5.0)),
        param(node.get_parameter('rate')),
        attempt(lambda: node.undeclare_parameter('fixed')),
        attempt(lambda: node.undeclare_parameter('nope')),
        attempt(lambda: node.undeclare_parameter('list')), node.has_parameter('list')]


def case_ranges(make_node, tmp_dir):
    node = make_node('ranged', cli_args=['--ros-args', '-p', 'steps:=5'])
    integer = ParameterDescriptor(integer_range=[IntegerRange(from_value=0, to_value=10, step=2)])
    floating = ParameterDescriptor(floating_point_range=[FloatingPointRange(from_value=1.0, to_value=0.0, step=0.25)])
    outcomes = [attempt(lambda: node.declare_parameter('steps', 4, integer), param),
                attempt(lambda: node.declare_parameter('even', 4, ParameterDescriptor(
                    integer_range=[IntegerRange(from_value=0, to_value=10, step=2)])), param),
                attempt(lambda: node.declare_parameter('fraction', 0.5, floating), param)]
    for name, values in (('even', (6, 7, 10, 11, -1, 0)), ('fraction', (0.75, 0.3, 1.0000001, 1.5, -0.0, 0.6))):
        outcomes += [sets(node, Parameter(name, value=value)) for value in values]
    return outcomes


def case_callbacks(make_node, tmp_dir):
    node = make_node('called', cli_args=['--ros-args', '-p', 'limit:=-1'])
    seen = []

    def refuse_negative(parameters):
        seen.append([p.name for p in parameters])
        for p in parameters:
            if p.name == 'limit' and p.value < 0:
                return SetParametersResult(successful=False, reason=f'limit must be >= 0, got {p.value}')
        return SetParametersResult(successful=True)

    def later(parameters):
        seen.append(['later'] + [p.name for p in parameters])
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(refuse_negative)
    outcomes = [attempt(lambda: node.declare_parameter('limit', 3), param), node.has_parameter('limit'),
                attempt(lambda: node.declare_parameter('limit2', 3), param)]
    node.add_on_set_parameters_callback(later)
    node.add_post_set_parameters_callback(lambda parameters: seen.append(['post'] + [p.name for p in parameters]))
    node.add_pre_set_parameters_callback(lambda parameters: parameters + [Parameter('extra', value=1)]
                                         if parameters[0].name == 'limit2' and parameters[0].value == 9 else parameters)
    node.declare_parameter('extra', 0)
    outcomes += [sets(node, Parameter('limit2', value=-5)),
                 atomic(node, Parameter('limit2', value=6), Parameter('extra', value=2)),
                 atomic(node, Parameter('limit2', value=8), Parameter('extra', value=2.0)),
                 param(node.get_parameter('limit2')),
                 sets(node, Parameter('limit2', value=9)),
                 param(node.get_parameter('extra'))]
    node.remove_on_set_parameters_callback(refuse_negative)
    outcomes += [sets(node, Parameter('limit2', value=-5)),
                 attempt(lambda: node.remove_on_set_parameters_callback(refuse_negative))]
    return outcomes + [seen]


def case_undeclared_allowed(make_node, tmp_dir):
    node = make_node('open', allow_undeclared_parameters=True)
    return [attempt(lambda: node.get_parameter('free'), param),
            sets(node, Parameter('free', value=1)),
            attempt(lambda: node.get_parameter('free'), param),
            sets(node, Parameter('free', value='now text')),
            attempt(lambda: node.describe_parameter('free').dynamic_typing),
            attempt(lambda: node.get_parameter_types(['free', 'other'])),
            attempt(lambda: node.describe_parameter('other').type)]


# --- reading -------------------------------------------------------------------------------------------------
def case_listing(make_node, tmp_dir):
    node = make_node('lister')
    for name in ('a.b.c', 'a.b', 'a.x', 'b', 'a.b.d.e'):
        node.declare_parameter(name, 1)

    def listed(prefixes, depth):
        found = node.list_parameters(prefixes, depth)
        return [sorted(found.names), sorted(found.prefixes)]
    return [listed([], 0), listed([], 1), listed([], 2), listed(['a'], 1), listed(['a'], 0), listed(['a.b'], 1),
            listed(['a.b', 'b'], 2), listed(['c'], 0), attempt(lambda: listed([], -1)),
            sorted(node.get_parameters_by_prefix('a.b')), sorted(node.get_parameters_by_prefix('')),
            attempt(lambda: node.get_parameter_types(['b', 'use_sim_time'])),
            attempt(lambda: node.get_parameter_types(['b', 'nope'])),
            attempt(lambda: node.get_parameter('nope'))]


def case_standard_parameters(make_node, tmp_dir):
    node = make_node('standard')
    described = node.describe_parameter('start_type_description_service')
    return [sorted(node._parameters), param(node.get_parameter('use_sim_time')),
            param(node.get_parameter('start_type_description_service')),
            [described.read_only, described.type, described.description],
            sets(node, Parameter('use_sim_time', value='yes')), sets(node, Parameter('use_sim_time', value=False))]


def case_events(make_node, tmp_dir):
    """What /parameter_events carries for declare, set, set-to-NOT_SET (undeclare) and undeclare_parameter."""
    from rcl_interfaces.msg import ParameterEvent
    node = make_node('evented')
    events = []
    node.create_subscription(ParameterEvent, '/parameter_events', events.append,
                             ros.QoSProfile(depth=1000, reliability=ros.ReliabilityPolicy.RELIABLE))
    deadline = time.monotonic() + 30
    while node.count_publishers('/parameter_events') < 1 and time.monotonic() < deadline:
        ros.spin_once(node, timeout_sec=0.1)
    node.declare_parameter('value', 1)
    node.declare_parameter('loose', 'a', ParameterDescriptor(dynamic_typing=True))
    node.set_parameters([Parameter('value', value=2)])
    node.set_parameters_atomically([Parameter('value', value=3), Parameter('loose', value=1.5)])
    node.set_parameters([Parameter('loose', Parameter.Type.NOT_SET)])
    node.declare_parameter('gone', True)
    node.undeclare_parameter('gone')
    node.set_parameters([Parameter('value', value='refused')])
    expected = 6   # declare x2, set, atomic set, undeclare by NOT_SET, declare gone (refusals publish none)
    while len([e for e in events if e.node == "/evented"]) < expected and time.monotonic() < deadline:
        ros.spin_once(node, timeout_sec=0.1)
    time_ok = all(e.stamp.sec > 0 for e in events)
    return [time_ok] + [[e.node] + [[param(Parameter.from_parameter_msg(p)) for p in group]
                                   for group in (e.new_parameters, e.changed_parameters, e.deleted_parameters)]
                        for e in events if e.node == '/evented']


CASES = {name[len('case_'):]: function for name, function in sorted(globals().items()) if name.startswith('case_')}


def run_all(make_node: Callable[..., Any], tmp_dir: str, names=None) -> dict[str, Any]:
    outcomes = {}
    for name in names or CASES:
        try:
            outcomes[name] = CASES[name](make_node, tmp_dir)
        except Exception as error:   # a case that breaks is an outcome too (and shows up in the diff)
            outcomes[name] = f'CASE FAILED: {type(error).__name__}: {error}'
    return outcomes


def main(out_path: str) -> int:
    ros.init(args=sys.argv[:1])
    nodes = []

    def make_node(name, **kwargs):
        node = ros.Node(name, **kwargs)
        nodes.append(node)
        return node
    try:
        with tempfile.TemporaryDirectory() as tmp_dir:
            outcomes = run_all(make_node, tmp_dir)
    finally:
        for node in nodes:
            node.destroy_node()
        ros.try_shutdown()
    with open(out_path, 'w') as handle:
        json.dump({'backend': ros.BACKEND, 'outcomes': outcomes}, handle, indent=1, default=str)
    print(f'PARAMETER CASES DONE {ros.BACKEND}', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
