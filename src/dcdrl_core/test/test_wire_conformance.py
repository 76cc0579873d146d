"""Wire conformance: our CDR equals rosbags' independent ROS 2 CDR, byte for byte.

rosbags implements ROS 2 serialisation independently of us (it reads and writes
rosbag2 files recorded by real ROS 2 nodes), so agreement on random instances of
every interface type is strong evidence that a ROS 2 node reads what we write.
"""
import importlib.util
import os

import numpy as np
import pytest
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from dcdrl_core.testing import all_message_types, message_class, random_message
from dcdrl_core.messages import InterfaceRegistry, Message


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
MSG_DIR = os.path.join(ROOT, 'src', 'dcdrl_msgs')
STD_DIR = os.path.join(ROOT, 'src', 'dcdrl_core', 'dcdrl_core', 'interfaces')
REGISTRY = InterfaceRegistry([os.path.join(ROOT, 'src'), STD_DIR])
JAZZY = get_typestore(Stores.ROS2_JAZZY)


def _dcdrl_types() -> list[str]:
    return [t for t in REGISTRY.list_types() if t.startswith('dcdrl_msgs/')]


def _std_types() -> list[str]:
    return [t for t in REGISTRY.list_types() if not t.startswith('dcdrl_msgs/')]


def _typestore():
    store = get_typestore(Stores.ROS2_JAZZY)
    for type_name in _dcdrl_types():
        package, kind, name = type_name.split('/')
        with open(os.path.join(MSG_DIR, kind, f'{name}.{kind}')) as handle:
            text = handle.read()
        if kind == 'msg':
            store.register(get_types_from_msg(text, type_name))
        else:
            request, response = text.split('\n---\n')
            # rosbags has no .srv parser: each half is registered as a message; the CDR is the same.
            store.register(get_types_from_msg(request, f'{package}/msg/{name}_Request'))
            store.register(get_types_from_msg(response, f'{package}/msg/{name}_Response'))
    return store


STORE = _typestore()


def _to_rosbags(message: Message):
    spec = message._spec
    values = {}
    for field in spec.fields:
        value = getattr(message, field.name)
        if field.type.is_message:
            value = [_to_rosbags(v) for v in value] if field.type.is_array else _to_rosbags(value)
        values[field.name] = value
    if not spec.fields:
        values['structure_needs_at_least_one_member'] = 0
    return STORE.types[_rosbags_name(spec.full_name)](**values)


def _rosbags_name(type_name: str) -> str:
    return type_name.replace('/srv/', '/msg/')


@pytest.mark.parametrize('type_name', all_message_types(REGISTRY))
def test_random_instances_serialise_exactly_like_rosbags(type_name):
    cls = message_class(type_name, REGISTRY)
    rng = np.random.default_rng(abs(hash(type_name)) % 2**32)
    for _ in range(20):
        message = random_message(cls, rng, REGISTRY)
        ours = message.serialize()
        theirs = bytes(STORE.serialize_cdr(_to_rosbags(message), _rosbags_name(type_name)))
        assert ours[:4] == b'\x00\x01\x00\x00'
        assert ours == theirs, f'{type_name}: {ours.hex()} != {theirs.hex()}'
        assert cls.deserialize(theirs) == message  # round trip from their bytes


@pytest.mark.parametrize('type_name', all_message_types(REGISTRY))
def test_default_instance_matches_rosbags(type_name):
    cls = message_class(type_name, REGISTRY)
    message = cls()
    assert message.serialize() == bytes(STORE.serialize_cdr(_to_rosbags(message), _rosbags_name(type_name)))


@pytest.mark.parametrize('type_name', [t for t in _std_types() if t.split('/')[1] == 'msg'])
def test_standard_definitions_match_ros2_jazzy(type_name):
    """Our copies of standard types have the field names and types of ROS 2 Jazzy."""
    ours = [(f.name, str(f.type)) for f in REGISTRY.get(type_name)._spec.fields]
    theirs = [name for name, _ in JAZZY.fielddefs[type_name][1]
              if name != 'structure_needs_at_least_one_member']
    assert [name for name, _ in ours] == theirs
    # Same layout: Jazzy's definition serialises our random instances to our bytes.
    message = random_message(REGISTRY.get(type_name), np.random.default_rng(7), REGISTRY)
    assert message.serialize() == bytes(JAZZY.serialize_cdr(_to_rosbags(message), type_name))


rclpy_only = pytest.mark.skipif(
    importlib.util.find_spec('rclpy') is None,
    reason='needs ROS 2 (rclpy); runs in .github/workflows/ros.yml, not on machines without ROS')


@rclpy_only
@pytest.mark.parametrize('type_name', [t for t in all_message_types(REGISTRY) if '/msg/' in t])
def test_rclpy_serialises_exactly_like_us(type_name):
    """With ROS 2 present: rclpy's generated classes produce our bytes, and we read theirs."""
    from rclpy.serialization import deserialize_message, serialize_message
    from rosidl_runtime_py.set_message import set_message_fields
    from rosidl_runtime_py.utilities import get_message
    from dcdrl_core.message_utils import message_to_dict
    cls = message_class(type_name, REGISTRY)
    theirs_class = get_message(type_name)
    if issubclass(theirs_class, Message):
        pytest.skip('DCDRL_BACKEND=cyclone gives this process our classes; run with DCDRL_BACKEND=rclpy')
    rng = np.random.default_rng(5)
    for _ in range(5):
        ours = random_message(cls, rng, REGISTRY)
        theirs = theirs_class()
        set_message_fields(theirs, message_to_dict(ours))
        data = serialize_message(theirs)
        assert bytes(data) == ours.serialize()
        assert cls.deserialize(bytes(data)) == ours
        assert serialize_message(deserialize_message(ours.serialize(), theirs_class)) == data
