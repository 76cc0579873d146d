"""The logic behind the `dcdrl` verbs, without DDS: the graph model's answers (what ros2cli shows),
the QoS a reader chooses, hz statistics, rosidl-style repr, and `interface show`'s layout."""
import numpy as np
import pytest

from dcdrl_ros.cli_common import field_str, ros_repr
from dcdrl_ros.cli_interface import _without_comment, interface_lines, nested_type
from dcdrl_ros.cli_topic import RateMeter, endpoint_text, rate_text
from dcdrl_ros.graph import (
    BARE_DDS_NODE,
    UNKNOWN_NODE,
    Endpoint,
    EndpointQos,
    Graph,
    GraphNode,
    choose_reader_qos,
    endpoint_qos,
    is_hidden_name,
    ros_service_name,
)
from dcdrl_ros.messages import default_registry, get_interface

PARTICIPANT = bytes(range(12)) + b'\x00\x00\x01\xc1'


def gid(n):
    return bytes(range(12)) + bytes([0, 0, n, 3])


def endpoint(n, topic, dds_type, reader=False, participant=PARTICIPANT, **qos):
    return Endpoint(gid=gid(n), participant=participant, dds_topic=topic, dds_type=dds_type, is_reader=reader,
                    qos=EndpointQos(**qos))


@pytest.fixture
def graph():
    graph = Graph()
    string = 'std_msgs::msg::dds_::String_'
    graph.add_endpoint(endpoint(1, 'rt/chatter', string))
    graph.add_endpoint(endpoint(2, 'rt/chatter', string, reader=True))
    graph.add_endpoint(endpoint(3, 'rt/_hidden/x', string))
    graph.add_endpoint(endpoint(4, 'rq/talker/get_parametersRequest',
                                'rcl_interfaces::srv::dds_::GetParameters_Request_', reader=True))
    graph.add_endpoint(endpoint(5, 'rr/talker/get_parametersReply',
                                'rcl_interfaces::srv::dds_::GetParameters_Response_'))
    graph.add_endpoint(endpoint(6, 'rr/get_policyReply', 'dcdrl_msgs::srv::dds_::GetPolicy_Response_', reader=True))
    graph.add_endpoint(endpoint(7, 'rt/chatter', 'other::msg::dds_::Chat_'))  # a second type, no node owns it
    graph.set_participant_nodes(PARTICIPANT, [
        GraphNode('talker', '/', PARTICIPANT, readers=frozenset({gid(4), gid(6)}),
                  writers=frozenset({gid(1), gid(3), gid(5)})),
        GraphNode('listener', '/demo', PARTICIPANT, readers=frozenset({gid(2)})),
        GraphNode('_hidden_tool', '/', PARTICIPANT)])
    return graph


def test_topic_and_service_names_as_rmw_lists_them(graph):
    assert graph.topic_names_and_types() == [('/chatter', ['other/msg/Chat', 'std_msgs/msg/String'])]
    assert [n for n, _ in graph.topic_names_and_types(include_hidden=True)] == ['/_hidden/x', '/chatter']
    assert graph.service_names_and_types() == [('/get_policy', ['dcdrl_msgs/srv/GetPolicy']),
                                               ('/talker/get_parameters', ['rcl_interfaces/srv/GetParameters'])]


def test_nodes_and_what_each_owns(graph):
    assert sorted(n.full_name for n in graph.nodes()) == ['/demo/listener', '/talker']
    assert len(graph.nodes(include_hidden=True)) == 3
    assert graph.topics_by_node('/talker', readers=False) == [('/_hidden/x', ['std_msgs/msg/String']),
                                                             ('/chatter', ['std_msgs/msg/String'])]
    assert graph.topics_by_node('/demo/listener', readers=True) == [('/chatter', ['std_msgs/msg/String'])]
    assert graph.services_by_node('/talker', servers=True) == [('/talker/get_parameters',
                                                                ['rcl_interfaces/srv/GetParameters'])]
    assert graph.services_by_node('/talker', servers=False) == [('/get_policy', ['dcdrl_msgs/srv/GetPolicy'])]


def test_endpoint_owner_names_follow_rmw_dds_common(graph):
    assert graph.node_of(graph.endpoints[gid(2)]) == ('listener', '/demo')
    assert graph.node_of(graph.endpoints[gid(7)]) == (BARE_DDS_NODE, BARE_DDS_NODE)
    stranger = endpoint(9, 'rt/chatter', 'std_msgs::msg::dds_::String_', participant=b'\xff' * 16)
    assert graph.node_of(stranger) == UNKNOWN_NODE


def test_publishers_in_gid_order_and_participant_removal(graph):
    assert [e.gid for e in graph.topic_endpoints('/chatter', readers=False)] == [gid(1), gid(7)]
    graph.remove_participant(PARTICIPANT)
    assert graph.endpoints == {} and graph.nodes() == []


def test_service_names_from_dds_topics():
    assert ros_service_name('rq/a/bRequest', 'p::srv::dds_::B_Request_') == ('/a/b', 'p/srv/B', 'rq')
    assert ros_service_name('rr/a/bReply', 'p::srv::dds_::B_Response_') == ('/a/b', 'p/srv/B', 'rr')
    assert ros_service_name('rt/a/bRequest', 'p::srv::dds_::B_Request_') is None
    assert is_hidden_name('/a/_b/c') and not is_hidden_name('/a/b_c')


def test_endpoint_text_as_ros2_topic_info_verbose_prints_it(graph):
    text = endpoint_text(graph, Endpoint(gid=gid(1), participant=PARTICIPANT, dds_topic='rt/chatter',
                                         dds_type='std_msgs::msg::dds_::String_', is_reader=False,
                                         qos=EndpointQos(reliability='BEST_EFFORT', depth=5, lifespan_ns=10**10),
                                         user_data='serviceid=1.2;typehash=RIHS01_ab;'))
    assert text.splitlines() == [
        'Node name: talker', 'Node namespace: /', 'Topic type: std_msgs/msg/String', 'Topic type hash: RIHS01_ab',
        'Endpoint type: PUBLISHER', 'GID: 00.01.02.03.04.05.06.07.08.09.0a.0b.00.00.01.03', 'QoS profile:',
        '  Reliability: BEST_EFFORT', '  History (Depth): KEEP_LAST (5)', '  Durability: VOLATILE',
        '  Lifespan: 10000000000 nanoseconds', '  Deadline: Infinite', '  Liveliness: AUTOMATIC',
        '  Liveliness lease duration: Infinite']


def test_endpoint_qos_from_cyclone_policies():
    from cyclonedds.core import Policy, Qos
    qos = endpoint_qos(Qos(Policy.Reliability.BestEffort, Policy.History.KeepAll, Policy.Durability.TransientLocal,
                           Policy.Liveliness.ManualByTopic(lease_duration=5), Policy.Lifespan(lifespan=7)))
    assert qos == EndpointQos(reliability='BEST_EFFORT', history='KEEP_ALL', depth=0, durability='TRANSIENT_LOCAL',
                              lifespan_ns=7, liveliness='MANUAL_BY_TOPIC', liveliness_lease_ns=5)


@pytest.mark.parametrize('offered, expected, notes', [
    ([], (None, None), 0),
    ([EndpointQos()], ('RELIABLE', 'VOLATILE'), 0),
    ([EndpointQos(reliability='BEST_EFFORT')], ('BEST_EFFORT', 'VOLATILE'), 0),
    ([EndpointQos(durability='TRANSIENT_LOCAL')] * 2, ('RELIABLE', 'TRANSIENT_LOCAL'), 0),
    ([EndpointQos(), EndpointQos(reliability='BEST_EFFORT', durability='TRANSIENT_LOCAL')],
     ('BEST_EFFORT', 'VOLATILE'), 2),
])
def test_reader_qos_matches_every_publisher(offered, expected, notes):
    reliability, durability, said = choose_reader_qos(offered)
    assert (reliability, durability) == expected and len(said) == notes


def test_rate_meter_reports_once_a_second_of_arrivals():
    meter = RateMeter(window=4)
    reports = []
    for i in range(33):   # 8 Hz for 4 s (binary fractions: no rounding at the 1 s boundaries)
        meter.tick(now=100.0 + i * 0.125)
        reports.append(meter.report())
    shown = [r for r in reports if r]
    assert len(shown) == 3   # the first arrival only starts the clock, as in ros2
    assert shown[-1]['window'] == 4 and shown[-1]['rate'] == 8.0
    assert rate_text(shown[-1]) == 'average rate: 8.000\n\tmin: 0.125s max: 0.125s std dev: 0.00000s window: 4'


def test_repr_as_rosidl_python_classes():
    tensor = get_interface('dcdrl_msgs/msg/Tensor')(name='w', shape=np.array([2], np.uint32),
                                                   data=np.array([1.5, 0.1], np.float32))
    assert ros_repr(tensor) == "dcdrl_msgs.msg.Tensor(name='w', shape=[2], data=[1.5, 0.10000000149011612])"
    empty = get_interface('dcdrl_msgs/msg/Tensor')()
    assert ros_repr(empty) == "dcdrl_msgs.msg.Tensor(name='', shape=[], data=[])"
    request = get_interface('dcdrl_msgs/srv/GetPolicy').Request(architecture_id='mlp', min_version=3)
    assert ros_repr(request) == "dcdrl_msgs.srv.GetPolicy_Request(architecture_id='mlp', min_version=3)"


def test_field_str_as_rclpy_holds_values():
    from dcdrl_ros.idl import FieldType
    assert field_str(np.array([0.5, 2.0], np.float32), FieldType('float32', is_array=True)) == "array('f', [0.5, 2.0])"
    assert field_str(np.array([], np.uint32), FieldType('uint32', is_array=True)) == "array('I')"
    assert field_str(np.array([1.0, 2.0]), FieldType('float64', is_array=True, array_size=2)) == '[1. 2.]'
    assert field_str([True, False], FieldType('bool', is_array=True)) == '[True, False]'
    assert field_str(np.float32(0.5), FieldType('float32')) == '0.5' and field_str('hi', FieldType('string')) == 'hi'


def test_interface_show_nests_definitions_as_ros2():
    lines = interface_lines(default_registry(), 'dcdrl_msgs/srv/GetPolicy', comments=False)
    assert lines[:5] == ['string architecture_id       #', 'uint64 min_version           #', '---',
                         'bool available', 'string message']
    assert '\t\tbuiltin_interfaces/Time stamp' in lines and '\t\tfloat32[] data' in lines
    assert nested_type('Tensor[] tensors', 'dcdrl_msgs') == 'dcdrl_msgs/msg/Tensor'
    assert nested_type('std_msgs/Header header', 'x') == 'std_msgs/msg/Header'
    assert nested_type('string<=5[3] names', 'x') is None and nested_type('int32 X=1', 'x') is None
    assert _without_comment('# only a comment') is None and _without_comment('int32 a  #x') == 'int32 a'
