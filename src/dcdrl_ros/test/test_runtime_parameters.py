"""Parameters on the ROS-free runtime follow rclpy (Jazzy): each rule, the services, the start-up error.

The rules are the cases of parameter_cases.py, run here on our runtime and compared with what real
rclpy answered to the same cases (parameter_cases_rclpy.json, recorded from Jazzy's rclpy;
test_parameters_on_ros2.py checks that recording against the live rclpy on every run). The rest:
what we add (where a refused override came from), the pure checks, and the six services answered
to a client of ours.
"""
from __future__ import annotations

import json
import os
import re
import sys

import pytest

from dcdrl_ros import runtime
from dcdrl_ros.runtime.parameters import (
    DEPTH_RECURSIVE,
    FloatingPointRange,
    IntegerRange,
    InvalidParameterTypeException,
    InvalidParameterValueException,
    Parameter,
    ParameterDescriptor,
    check_floating_point_range,
    check_integer_range,
    list_parameter_names,
    value_from_message,
    value_to_message,
)
from dcdrl_ros.testing import ChildProcess, fresh_domain_id, loopback_env

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import parameter_cases  # noqa: E402  (a script beside this test, shared with the ROS 2 parity test)

RECORDED = os.path.join(HERE, 'parameter_cases_rclpy.json')
UNDECLARED_NAMES = re.compile(r'undeclared parameter\(s\): \[[^\]]*\]')


def comparable(outcomes: object) -> str:
    """The outcomes as JSON text, less the one place where we differ from rclpy on purpose: rclpy's
    "undeclared parameter(s): [...]" loses the names (a generator consumed by any()); ours lists them."""
    return UNDECLARED_NAMES.sub('undeclared parameter(s): [...]', json.dumps(outcomes, default=str))


@pytest.fixture
def context():
    from dcdrl_ros.runtime.context import Context
    made = Context()
    made.init(['prog'], domain_id=fresh_domain_id())
    yield made
    made.shutdown()


@pytest.fixture
def make_node(context):
    def make(name, **kwargs):
        return runtime.Node(name, context=context, **kwargs)
    return make


with open(RECORDED) as _handle:
    RCLPY_OUTCOMES = json.load(_handle)['outcomes']


@pytest.mark.parametrize('case', sorted(parameter_cases.CASES))
def test_each_rule_gives_what_rclpy_gives(case, make_node, tmp_path, monkeypatch):
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    ours = parameter_cases.run_all(make_node, str(tmp_path), [case])[case]
    assert comparable(ours) == comparable(RCLPY_OUTCOMES[case])


def test_the_recording_covers_every_case():
    assert sorted(RCLPY_OUTCOMES) == sorted(parameter_cases.CASES)


# --- what we add to rclpy's words ------------------------------------------------------------------------
def test_a_refused_override_names_where_it_came_from(make_node, tmp_path):
    path = parameter_cases.params_file(str(tmp_path), 'sourced', 'noise_half_life_steps: 0')
    node = make_node('sourced', cli_args=['--ros-args', '--params-file', path, '-p', 'steps:=5'])
    with pytest.raises(InvalidParameterTypeException) as error:
        node.declare_parameter('noise_half_life_steps', 1000.0)
    assert str(error.value) == (
        "Trying to set parameter 'noise_half_life_steps' to '0' of type 'INTEGER', expecting type 'DOUBLE': "
        f"noise_half_life_steps (from file {path}, line 3)")
    with pytest.raises(InvalidParameterValueException, match=r': steps \(from -p steps:=5\)$'):
        node.declare_parameter('steps', 4, ParameterDescriptor(
            integer_range=[IntegerRange(from_value=0, to_value=10, step=2)]))
    assert parameter_cases.SOURCE_SUFFIX.sub('', str(error.value)).endswith(': noise_half_life_steps')


def test_a_set_of_undeclared_parameters_names_them(make_node):
    node = make_node('strict')
    with pytest.raises(runtime.ParameterNotDeclaredException, match=r"\['a', 'b'\]"):
        node.set_parameters_atomically([Parameter('a', value=1), Parameter('b', value=2)])


def test_use_sim_time_true_is_refused_with_a_reason(make_node):
    node = make_node('clocked')
    result = node.set_parameters([Parameter('use_sim_time', value=True)])[0]
    assert not result.successful and 'no /clock' in result.reason
    with pytest.raises(InvalidParameterValueException, match='use_sim_time true is not supported'):
        make_node('clocked_too', cli_args=['--ros-args', '-p', 'use_sim_time:=true'])


def test_a_wrong_override_stops_a_node_with_one_fatal_line_and_exit_code_2():
    argv = [sys.executable, '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_ros', 'talker', '--ros-args', '-p', 'period_s:=1']
    with ChildProcess(argv, env=loopback_env(fresh_domain_id())) as child:
        assert child.process.wait(60.0) == 2
    child.stop()
    assert [line for line in child.lines if line.strip()] == [
        "[FATAL] Talker: Trying to set parameter 'period_s' to '1' of type 'INTEGER', expecting type 'DOUBLE': "
        "period_s (from -p period_s:=1)"]


# --- pure checks -------------------------------------------------------------------------------------------
def test_integer_ranges_accept_bounds_and_steps_from_the_lower_bound():
    span = IntegerRange(from_value=10, to_value=1, step=3)   # reversed bounds are sorted, as in rclpy
    accepted = [v for v in range(-2, 14) if check_integer_range(Parameter('n', value=v), span).successful]
    assert accepted == [1, 4, 7, 10]


def test_floating_ranges_use_a_relative_tolerance():
    span = FloatingPointRange(from_value=0.0, to_value=1.0, step=0.1)
    assert check_floating_point_range(Parameter('x', value=0.30000000000000004), span).successful
    assert not check_floating_point_range(Parameter('x', value=0.35), span).successful
    assert check_floating_point_range(Parameter('x', value=1.0 + 1e-7), span).successful
    assert 'out of range Min: 0.0' in check_floating_point_range(Parameter('x', value=1.01), span).reason


def test_listing_by_prefix_and_depth():
    names = ['a', 'a.b', 'a.b.c', 'x.y']
    assert list(list_parameter_names(names, [], DEPTH_RECURSIVE).names) == names
    assert list(list_parameter_names(names, [], 1).names) == ['a']
    found = list_parameter_names(names, ['a'], 1)
    assert (list(found.names), list(found.prefixes)) == (['a', 'a.b'], ['a'])
    with pytest.raises(ValueError):
        list_parameter_names(names, [], -1)


@pytest.mark.parametrize('value', [True, 3, 2.5, 'text', [b'\x00', b'\xff'], [True, False], [1, -2], [0.5], ['a', '']])
def test_values_round_trip_through_the_message(value):
    parameter = Parameter('p', value=value)
    message = parameter.to_parameter_msg()
    again = type(message).deserialize(message.serialize())
    kind, decoded = value_from_message(again.value)
    assert (kind, decoded) == (parameter.type_, value)
    assert all(type(a) is type(b) for a, b in zip(decoded, value)) if isinstance(value, list) else True


def test_an_unknown_type_number_is_a_value_error():
    message = value_to_message(Parameter.Type.INTEGER, 1)
    message.type = 42
    with pytest.raises(ValueError, match='unexpected parameter type 42'):
        value_from_message(message)


# --- the services, called by a client of ours --------------------------------------------------------------
def test_the_six_services_answer_as_rclpy_does(context, make_node, monkeypatch):
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    from dcdrl_ros.messages import get_interface
    server = make_node('served', namespace='/ns')
    server.declare_parameter('rate', 1.0, ParameterDescriptor(description='Hz'))
    server.declare_parameter('group.depth', 3, ParameterDescriptor(read_only=True))
    caller = make_node('_caller', start_parameter_services=False)
    executor = runtime.SingleThreadedExecutor(context=context)
    executor.add_node(server)
    executor.add_node(caller)

    def call(service, type_name, **fields):
        client = caller.create_client(get_interface(f'rcl_interfaces/srv/{type_name}'), f'/ns/served/{service}')
        assert client.wait_for_service(30.0)
        future = client.call_async(client.srv_type.Request(**fields))
        executor.spin_until_future_complete(future, timeout_sec=30.0)
        assert future.done()
        return future.result()

    listed = call('list_parameters', 'ListParameters').result
    assert sorted(listed.names) == ['group.depth', 'rate', 'start_type_description_service', 'use_sim_time']
    assert list(listed.prefixes) == ['group']
    assert list(call('list_parameters', 'ListParameters', prefixes=['group']).result.names) == ['group.depth']
    values = call('get_parameters', 'GetParameters', names=['rate', 'group.depth']).values
    assert [(v.type, v.double_value, v.integer_value) for v in values] == [(3, 1.0, 0), (2, 0.0, 3)]
    assert list(call('get_parameters', 'GetParameters', names=['rate', 'nope']).values) == []
    assert list(call('get_parameter_types', 'GetParameterTypes', names=['rate', 'use_sim_time']).types) == [3, 1]
    described = call('describe_parameters', 'DescribeParameters', names=['rate', 'group.depth']).descriptors
    assert [(d.name, d.type, d.description, d.read_only) for d in described] == [
        ('rate', 3, 'Hz', False), ('group.depth', 2, '', True)]
    results = call('set_parameters', 'SetParameters', parameters=[
        Parameter('rate', value=2.5).to_parameter_msg(), Parameter('rate', value=2).to_parameter_msg(),
        Parameter('group.depth', value=4).to_parameter_msg(), Parameter('nope', value=1).to_parameter_msg()]).results
    assert [(r.successful, r.reason) for r in results] == [
        (True, ''), (False, "Wrong parameter type, expected 'Type.DOUBLE' got 'Type.INTEGER'"),
        (False, 'Trying to set a read-only parameter: group.depth.'),
        (False, "Invalid access to undeclared parameter(s): ['nope']")]
    atomically = call('set_parameters_atomically', 'SetParametersAtomically', parameters=[
        Parameter('rate', value=9.0).to_parameter_msg(), Parameter('group.depth', value=4).to_parameter_msg()]).result
    assert not atomically.successful and server.get_parameter('rate').value == 2.5
    bad = Parameter('rate', value=1.0).to_parameter_msg()
    bad.value.type = 42   # not an rcl_interfaces type: an answer, not a crash of the node
    answer = call('set_parameters', 'SetParameters', parameters=[bad]).results[0]
    assert (answer.successful, answer.reason) == (False, 'unexpected parameter type 42')
    executor.shutdown()
