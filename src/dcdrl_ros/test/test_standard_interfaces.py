"""Our copies of standard ROS 2 interfaces (dcdrl_ros/interfaces/) are Jazzy's own definitions.

Each .msg and .srv file we ship (rcl_interfaces, std_msgs, builtin_interfaces, ...) is parsed next
to the file of the same name in the real ROS 2's share/ (the `ros2` fixture): the same fields in
the same order with the same types and default values, and the same constants. Comments and
blank lines may differ (ours have none). test_wire_conformance.py checks the bytes.
"""
import os
from pathlib import Path

import pytest

from dcdrl_ros import idl
from dcdrl_ros.messages import InterfaceRegistry

OURS = Path(__file__).resolve().parents[1] / 'dcdrl_ros' / 'interfaces'
REGISTRY = InterfaceRegistry([str(OURS)])
TYPES = REGISTRY.list_types()


def _shape(spec):
    return ([(f.name, str(f.type), f.default) for f in spec.fields],
            [(c.name, c.type, c.value) for c in spec.constants])


def _parse(path, type_name):
    package, kind, name = type_name.split('/')
    text = Path(path).read_text()
    if kind == 'msg':
        return [_shape(idl.parse_message(text, package, name))]
    service = idl.parse_service(text, package, name)
    return [_shape(service.request), _shape(service.response)]


@pytest.fixture(scope='module')
def jazzy_share(ros2):
    prefixes = ros2.environment().get('AMENT_PREFIX_PATH', '').split(os.pathsep)

    def find(type_name):
        package, kind, name = type_name.split('/')
        for prefix in prefixes:
            candidate = Path(prefix) / 'share' / package / kind / f'{name}.{kind}'
            if candidate.is_file():
                return candidate
        pytest.fail(f'{type_name}: no {package}/{kind}/{name}.{kind} under {prefixes}')
    return find


def test_we_ship_the_parameter_interfaces():
    for name in ('msg/Parameter', 'msg/ParameterValue', 'msg/ParameterDescriptor', 'msg/ParameterEvent',
                 'msg/SetParametersResult', 'msg/ListParametersResult', 'srv/DescribeParameters',
                 'srv/GetParameters', 'srv/GetParameterTypes', 'srv/ListParameters', 'srv/SetParameters',
                 'srv/SetParametersAtomically'):
        assert f'rcl_interfaces/{name}' in TYPES


@pytest.mark.parametrize('type_name', TYPES)
def test_our_definition_is_jazzys(type_name, jazzy_share):
    package, kind, name = type_name.split('/')
    ours = _parse(REGISTRY.find_file(package, kind, name), type_name)
    assert ours == _parse(jazzy_share(type_name), type_name)
