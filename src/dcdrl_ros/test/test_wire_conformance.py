"""Wire conformance: our CDR equals ROS 2's, byte for byte, for every interface type we know.

Two independent judges: rosbags (a ROS 2 CDR implementation of its own, which reads and writes
rosbag2 files recorded by real ROS 2 nodes; runs everywhere), and the real rclpy with the classes
rosidl generates (in a child process on the ROS 2 of the ros2_ws fixture; this process keeps our
classes). Both directions: they write our bytes from our field values, and read our bytes back.
"""
import json
import os
import subprocess
import zlib

import numpy as np
import pytest
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from dcdrl_ros.message_utils import message_to_dict
from dcdrl_ros.messages import InterfaceRegistry, Message
from dcdrl_ros.testing import all_message_types, message_class, random_message

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
MSG_DIR = os.path.join(ROOT, 'src', 'dcdrl_msgs')
STD_DIR = os.path.join(ROOT, 'src', 'dcdrl_ros', 'dcdrl_ros', 'interfaces')
REGISTRY = InterfaceRegistry([os.path.join(ROOT, 'src'), STD_DIR])
JAZZY = get_typestore(Stores.ROS2_JAZZY)


def _dcdrl_types() -> list[str]:
    return [t for t in REGISTRY.list_types() if t.startswith('dcdrl_msgs/')]


def _std_types() -> list[str]:
    return [t for t in REGISTRY.list_types() if not t.startswith('dcdrl_msgs/')]


def _typestore():
    store = get_typestore(Stores.ROS2_JAZZY)
    # Our messages, and the services of every package (rosbags' Jazzy store has standard messages only).
    for type_name in _dcdrl_types() + [t for t in _std_types() if '/srv/' in t]:
        package, kind, name = type_name.split('/')
        with open(REGISTRY.find_file(package, kind, name)) as handle:
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
    rng = np.random.default_rng(zlib.crc32(type_name.encode()))
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


# --- against the real rclpy (a child process on the ROS 2 of the ros2_ws fixture) ---------------------
RCLPY_PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'rclpy_codec_peer.py')
RCLPY_TYPES = all_message_types(REGISTRY)
RCLPY_INSTANCES = 6  # per type: the default instance and five random ones


def _rclpy_cases() -> list[tuple[str, Message]]:
    cases = []
    for type_name in RCLPY_TYPES:
        cls = message_class(type_name, REGISTRY)
        rng = np.random.default_rng(zlib.crc32(type_name.encode()))
        cases.append((type_name, cls()))
        cases += [(type_name, random_message(cls, rng, REGISTRY)) for _ in range(RCLPY_INSTANCES - 1)]
    return cases


@pytest.fixture(scope='module')
def rclpy_results(ros2_ws, tmp_path_factory):
    """{type name: [(our message, what rclpy made of it)]}: one child run for all types."""
    cases = _rclpy_cases()
    request = tmp_path_factory.mktemp('rclpy_codec') / 'cases.json'
    request.write_text(json.dumps({'cases': [
        {'type': type_name, 'values': message_to_dict(message), 'ours': message.serialize().hex()}
        for type_name, message in cases]}))
    done = subprocess.run([ros2_ws.python(), RCLPY_PEER, str(request)], env=ros2_ws.environment(),
                          capture_output=True, text=True, timeout=180)
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == len(cases), (
        f'rclpy peer exited {done.returncode} after {len(lines)} of {len(cases)} cases:\n{done.stderr[-3000:]}')
    results: dict[str, list] = {}
    for (type_name, message), line in zip(cases, lines):
        results.setdefault(type_name, []).append((message, json.loads(line)))
    return results


@pytest.mark.parametrize('type_name', RCLPY_TYPES)
def test_rclpy_serialises_exactly_like_us(rclpy_results, type_name):
    """rclpy's generated classes, given our field values, produce our bytes; rclpy reads our bytes to
    our field values; and we read rclpy's bytes back to our message."""
    cls = message_class(type_name, REGISTRY)
    for ours, theirs in rclpy_results[type_name]:
        assert 'error' not in theirs, f'{type_name}: the rclpy side failed: {theirs["error"]}'
        data = bytes.fromhex(theirs['serialized'])
        assert data == ours.serialize(), f'{type_name}: rclpy {data.hex()} != ours {ours.serialize().hex()}'
        assert cls.deserialize(data) == ours
        assert theirs['read'] == message_to_dict(ours)
        assert bytes.fromhex(theirs['reserialized']) == ours.serialize()
