"""Type hashes (REP-2011 RIHS01) of our definitions, and the USER_DATA our endpoints announce them in.

ROS-free: the hash of known Jazzy types, field type ids, and the USER_DATA of every kind of endpoint
we create, read from the DDS built-in topics. On the real ROS 2: our hash of every type we know equals
the one rosidl generated (share/<pkg>/msg|srv/<Name>.json), and an rclpy process on a graph with our
endpoints reads each endpoint's hash and logs no "Failed to parse type hash" warning.
"""
import json
import os
import time

import pytest

from dcdrl_ros import idl
from dcdrl_ros.messages import InterfaceRegistry
from dcdrl_ros.testing import ChildProcess, all_message_types, message_class
from dcdrl_ros.type_hash import field_type_description, type_hash, user_data_entry

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
STD_DIR = os.path.join(ROOT, 'src', 'dcdrl_ros', 'dcdrl_ros', 'interfaces')
REGISTRY = InterfaceRegistry([os.path.join(ROOT, 'src'), STD_DIR])
TIMEOUT = 60.0
ROS2_WARNING = 'Failed to parse type hash'

# From Jazzy's share/<pkg>/msg/<Name>.json (rosidl_generator_type_description).
JAZZY_HASHES = {
    'std_msgs/msg/String': 'RIHS01_df668c740482bbd48fb39d76a70dfd4bd59db1288021743503259e948f6b1a18',
    'std_msgs/msg/Empty': 'RIHS01_20b625256f32d5dbc0d04fee44f43c41e51c70d3502f84b4a08e7a9c26a96312',
    'std_msgs/msg/Header': 'RIHS01_f49fb3ae2cf070f793645ff749683ac6b06203e41c891e17701b1cb597ce6a01',
    'rmw_dds_common/msg/ParticipantEntitiesInfo':
        'RIHS01_91a0593bacdcc50ea9bdcf849a938b128412cc1ea821245c663bcd26f83c295e',
}


@pytest.mark.parametrize('type_name', sorted(JAZZY_HASHES))
def test_hash_of_known_jazzy_types(type_name):
    assert message_class(type_name, REGISTRY).get_type_hash() == JAZZY_HASHES[type_name]


@pytest.mark.parametrize('text, type_id, capacity, string_capacity, nested', [
    ('byte', 16, 0, 0, ''),          # octet
    ('char', 3, 0, 0, ''),           # rosidl turns a .msg char into uint8
    ('bool', 15, 0, 0, ''),
    ('float32[3]', 58, 3, 0, ''),
    ('uint8[<=7]', 99, 7, 0, ''),
    ('float64[]', 155, 0, 0, ''),
    ('string<=5', 21, 0, 5, ''),
    ('string<=5[<=2]', 117, 2, 5, ''),
    ('wstring[4]', 66, 4, 0, ''),
    ('Header', 1, 0, 0, 'std_msgs/msg/Header'),
    ('Tensor[]', 145, 0, 0, 'pkg/msg/Tensor'),
    ('geometry_msgs/Point[2]', 49, 2, 0, 'geometry_msgs/msg/Point'),
])
def test_field_type_ids_are_type_description_interfaces_ones(text, type_id, capacity, string_capacity, nested):
    assert field_type_description(idl.parse_field_type(text, 'pkg')) == {
        'type_id': type_id, 'capacity': capacity, 'string_capacity': string_capacity, 'nested_type_name': nested}


def test_the_hash_covers_field_names_types_and_nested_types_but_not_defaults():
    def hash_of(text, nested='float64 x'):
        specs = {'Inner': idl.parse_message(nested, 'pkg', 'Inner')}
        return type_hash(idl.parse_message(text, 'pkg', 'Outer'), lambda _package, name: specs[name])
    base = hash_of('Inner inner\nint32 a 5')
    assert base == hash_of('Inner inner\nint32 a 7\nint32 B=3')  # defaults and constants: not hashed
    assert base != hash_of('Inner inner\nint32 b 5')
    assert base != hash_of('Inner inner\nint64 a 5')
    assert base != hash_of('Inner inner\nint32 a 5', nested='float32 x')


def test_user_data_entry_is_what_rmw_dds_common_writes():
    hash_string = JAZZY_HASHES['std_msgs/msg/String']
    assert user_data_entry(hash_string) == f'typehash={hash_string};'


# --- our endpoints on DDS ----------------------------------------------------------------------------
def _user_data_by_topic(participant, wanted, timeout):
    """{(dds topic, 'writer'|'reader'): [USER_DATA text]} of ``participant``'s own endpoints (another
    test process may share the domain) from the built-in topics, once ``wanted`` (a set of such keys)
    are all there."""
    from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsPublication, BuiltinTopicDcpsSubscription
    from cyclonedds.core import InstanceState, Policy, ReadCondition, SampleState, ViewState, WaitSet
    from cyclonedds.util import duration
    found = {}
    readers = {'writer': BuiltinDataReader(participant, BuiltinTopicDcpsPublication),
               'reader': BuiltinDataReader(participant, BuiltinTopicDcpsSubscription)}
    waitset = WaitSet(participant)
    for reader in readers.values():
        waitset.attach(ReadCondition(reader, SampleState.Any | ViewState.Any | InstanceState.Any))
    deadline = time.monotonic() + timeout
    while not wanted <= found.keys():
        remaining = deadline - time.monotonic()
        assert remaining > 0, f'endpoints {sorted(wanted - found.keys())} not seen within {timeout} s'
        waitset.wait(duration(seconds=min(remaining, 1.0)))
        for kind, reader in readers.items():
            for sample in reader.take(N=256):
                if sample.participant_key != participant.guid:
                    continue
                user_data = sample.qos[Policy.Userdata]
                found.setdefault((sample.topic_name, kind), []).append(
                    user_data.data.decode() if user_data is not None else '')
    return found


def _probe_node(context):
    """A node of ours with one endpoint of each kind (publisher, subscription, service, client):
    (node, its message type, its service type)."""
    from dcdrl_ros import runtime
    string = REGISTRY.get('std_msgs/msg/String')
    service_type = REGISTRY.get('dcdrl_msgs/srv/GetPolicy')
    node = runtime.Node('hash_probe', context=context)
    node.create_publisher(string, '/said', 10)
    node.create_subscription(string, '/heard', lambda _message: None, 10)
    node.create_service(service_type, '/probe', lambda _request, response: response)
    node.create_client(service_type, '/probe')
    return node, string, service_type


@pytest.mark.dds
def test_every_endpoint_we_create_announces_its_type_hash(loopback_graph):
    _domain, context = loopback_graph
    node, string, service_type = _probe_node(context)
    request_hash = service_type.Request.get_type_hash()
    reply_hash = service_type.Response.get_type_hash()
    info_hash = JAZZY_HASHES['rmw_dds_common/msg/ParticipantEntitiesInfo']
    expected = {
        ('rt/said', 'writer'): [f'typehash={string.get_type_hash()};'],
        ('rt/heard', 'reader'): [f'typehash={string.get_type_hash()};'],
        ('ros_discovery_info', 'writer'): [f'typehash={info_hash};'],
    }
    found = _user_data_by_topic(context.participant, set(expected) | {
        ('rq/probeRequest', 'writer'), ('rq/probeRequest', 'reader'),
        ('rr/probeReply', 'writer'), ('rr/probeReply', 'reader')}, TIMEOUT)
    for key, user_data in expected.items():
        assert found[key] == user_data, key
    # Service and client: their id first, then the hash of the half they write or read.
    assert [u.split(';')[0].split('=')[0] for u in found[('rq/probeRequest', 'reader')]] == ['serviceid']
    assert [u.split(';')[0].split('=')[0] for u in found[('rq/probeRequest', 'writer')]] == ['clientid']
    for key, hash_string in [(('rq/probeRequest', 'writer'), request_hash),
                             (('rq/probeRequest', 'reader'), request_hash),
                             (('rr/probeReply', 'writer'), reply_hash), (('rr/probeReply', 'reader'), reply_hash)]:
        [user_data] = found[key]
        assert user_data.endswith(f';typehash={hash_string};'), (key, user_data)
    node.destroy_node()


# --- against the real ROS 2 --------------------------------------------------------------------------
def _rosidl_hashes(environment: dict) -> dict[str, str]:
    """{type name: hash} from every share/<pkg>/{msg,srv}/*.json on the AMENT_PREFIX_PATH."""
    hashes: dict[str, str] = {}
    for prefix in reversed(environment.get('AMENT_PREFIX_PATH', '').split(os.pathsep)):
        share = os.path.join(prefix, 'share')
        if not os.path.isdir(share):
            continue
        for package in os.listdir(share):
            for kind in ('msg', 'srv'):
                folder = os.path.join(share, package, kind)
                if not os.path.isdir(folder):
                    continue
                for name in os.listdir(folder):
                    if name.endswith('.json'):
                        with open(os.path.join(folder, name), encoding='utf-8') as handle:
                            for entry in json.load(handle).get('type_hashes', []):
                                hashes[entry['type_name']] = entry['hash_string']
    return hashes


@pytest.fixture(scope='module')
def rosidl_hashes(ros2_ws):
    return _rosidl_hashes(ros2_ws.environment())


@pytest.mark.parametrize('type_name', all_message_types(REGISTRY))
def test_our_hash_equals_the_one_rosidl_generates(rosidl_hashes, type_name):
    assert type_name in rosidl_hashes, f'rosidl generated no hash for {type_name}'
    assert message_class(type_name, REGISTRY).get_type_hash() == rosidl_hashes[type_name]


RCLPY_GRAPH_READER = r'''
import sys, time
import rclpy
rclpy.init()
node = rclpy.create_node('hash_reader')
wanted = [('rt/said', True), ('rt/heard', False), ('rq/probeRequest', True), ('rq/probeRequest', False),
          ('rr/probeReply', True), ('rr/probeReply', False)]
def ours(topic, writers):
    infos = (node.get_publishers_info_by_topic if writers else node.get_subscriptions_info_by_topic)(
        topic, no_mangle=True)
    return [i for i in infos if i.node_name == 'hash_probe']
deadline = time.monotonic() + float(sys.argv[1])
while not all(ours(t, w) for t, w in wanted):
    if time.monotonic() > deadline:
        sys.exit('our endpoints not discovered')
    rclpy.spin_once(node, timeout_sec=0.1)  # wakes on graph changes
for topic, writers in wanted:
    for info in ours(topic, writers):
        print('HASH', topic, 'writer' if writers else 'reader', info.topic_type_hash, flush=True)
print('DONE', flush=True)
'''


@pytest.mark.dds
def test_rclpy_reads_our_type_hashes_without_warnings(ros2_ws, loopback_graph):
    domain, context = loopback_graph
    node, string, service_type = _probe_node(context)
    env = ros2_ws.environment(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    with ChildProcess([ros2_ws.python(), '-c', RCLPY_GRAPH_READER, str(TIMEOUT)], env=env) as reader:
        reader.wait_for_line('DONE', TIMEOUT + 30)
        reader.stop()
    hashes = {tuple(line.split()[1:3]): line.split()[3] for line in reader.lines if line.startswith('HASH ')}
    assert hashes == {
        ('rt/said', 'writer'): string.get_type_hash(), ('rt/heard', 'reader'): string.get_type_hash(),
        ('rq/probeRequest', 'writer'): service_type.Request.get_type_hash(),
        ('rq/probeRequest', 'reader'): service_type.Request.get_type_hash(),
        ('rr/probeReply', 'writer'): service_type.Response.get_type_hash(),
        ('rr/probeReply', 'reader'): service_type.Response.get_type_hash(),
    }
    assert not [line for line in reader.lines if ROS2_WARNING in line]
    node.destroy_node()


@pytest.mark.dds
def test_ros2_topic_info_shows_the_hash_of_a_ros_free_publisher(ros2_ws, domain):
    import sys

    from dcdrl_ros.testing import loopback_env
    env = ros2_ws.environment(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    with ChildProcess([sys.executable, '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_ros', 'talker'],
                      env=loopback_env(domain)) as talker:
        talker.wait_for_line('talker started', TIMEOUT)
        # --no-daemon: this process discovers the graph itself, so rmw's warnings come to its output.
        with ChildProcess(['ros2', 'topic', 'echo', '--once', '--no-daemon', '/chatter'], env=env) as echo:
            echo.wait_for_line('data:', TIMEOUT)
        with ChildProcess(['ros2', 'topic', 'info', '-v', '--no-daemon', '--spin-time', '2', '/chatter'],
                          env=env) as info:
            line = info.wait_for_line('Topic type hash:', TIMEOUT)
            info.stop()
    assert line.split()[-1] == JAZZY_HASHES['std_msgs/msg/String']
    assert not [text for text in echo.lines + info.lines if ROS2_WARNING in text]
