"""The real `ros2` command against ROS-free nodes, and each `dcdrl` verb against the `ros2` verb on the
same graph: a ROS-free node (/ours/cli_peer) and an rclpy node (/theirs/cli_peer), both
test/fixtures/cli_peer.py, on the real ROS 2 (the `ros2_ws` fixture).

Every `ros2` verb that could start a daemon runs with --no-daemon; both tools get --spin-time 3
(discovery on a loaded machine). Outputs are compared as text; what must differ is normalised:
message counters, and the publishers of /rosout and /parameter_events that the ros2 tool adds itself.
"""
import os
import re
import subprocess
import sys

import pytest

from dcdrl_core.testing import ChildProcess, fresh_domain_id, loopback_env

pytestmark = [pytest.mark.dds]
TIMEOUT = 90.0
SPIN = ['--spin-time', '3']
PEER = os.path.join(os.path.dirname(__file__), 'fixtures', 'cli_peer.py')
NODES = ('/ours/cli_peer', '/theirs/cli_peer')


class Graph:
    def __init__(self, domain, ros_env):
        self.domain = domain
        self.ros_env = ros_env

    def ros2(self, *args, timeout=TIMEOUT):
        result = subprocess.run(['ros2', *args], env=self.ros_env, capture_output=True, text=True, timeout=timeout)
        return result

    def dcdrl(self, *args, timeout=TIMEOUT):
        return subprocess.run([sys.executable, '-m', 'dcdrl_core.cli', *args], env=loopback_env(self.domain),
                              capture_output=True, text=True, timeout=timeout)

    def both(self, *args):
        """(dcdrl's stdout, ros2's stdout) of the same verb; both must succeed."""
        ours, theirs = self.dcdrl(*args), self.ros2(*args)
        assert ours.returncode == 0, ours.stderr
        assert theirs.returncode == 0, theirs.stderr
        assert 'Traceback' not in ours.stderr
        # Our endpoints carry rmw's USER_DATA type hash: a ROS 2 process has nothing to warn about.
        assert 'Failed to parse type hash' not in theirs.stderr, theirs.stderr
        return ours.stdout, theirs.stdout

    def child_ros2(self, *args):
        return ChildProcess(['ros2', *args], env=self.ros_env)

    def child_dcdrl(self, *args):
        return ChildProcess([sys.executable, '-m', 'dcdrl_core.cli', *args], env=loopback_env(self.domain))


@pytest.fixture(scope='module')
def graph(ros2_ws):
    domain = fresh_domain_id()
    ros_env = ros2_ws.environment(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    with ChildProcess([sys.executable, PEER, '--ros-args', '-r', '__ns:=/ours'], env=loopback_env(domain)) as ours, \
            ChildProcess([ros2_ws.python(), PEER, '--ros-args', '-r', '__ns:=/theirs'],
                         env=dict(ros_env, DCDRL_BACKEND='rclpy')) as theirs:
        ours.wait_for_line('cli peer ready on cyclone', TIMEOUT)
        theirs.wait_for_line('cli peer ready on rclpy', TIMEOUT)
        yield Graph(domain, ros_env)


def test_node_list(graph):
    ours, theirs = graph.both('node', 'list', '--no-daemon', *SPIN)
    assert set(NODES) <= set(theirs.split())
    assert ours == theirs


@pytest.mark.parametrize('node', NODES)
def test_node_info(graph, node):
    ours, theirs = graph.both('node', 'info', node, '--no-daemon', *SPIN)
    ns = node.split('/')[1]
    for line in (f'    /{ns}/reliable_chatter: std_msgs/msg/String', f'    /{ns}/commands: std_msgs/msg/String',
                 f'    /{ns}/latched: dcdrl_msgs/msg/PolicyWeights',
                 f'    /{ns}/get_policy: dcdrl_msgs/srv/GetPolicy',
                 f'    /{ns}/remote_policy: dcdrl_msgs/srv/GetPolicy'):
        assert line in theirs.splitlines(), theirs
    assert theirs.index('Service Servers:') < theirs.index(f'/{ns}/get_policy:') < theirs.index('Service Clients:')
    assert ours == theirs


def test_topic_list_with_types(graph):
    ours, theirs = graph.both('topic', 'list', '-t', '--no-daemon', *SPIN)
    for ns in ('ours', 'theirs'):
        for line in (f'/{ns}/best_effort_stats [std_msgs/msg/String]', f'/{ns}/latched [dcdrl_msgs/msg/PolicyWeights]'):
            assert line in theirs.splitlines()
    assert ours == theirs


def test_topic_list_verbose_counts(graph):
    ours, theirs = graph.both('topic', 'list', '-v', '--no-daemon', *SPIN)
    assert ' * /ours/reliable_chatter [std_msgs/msg/String] 1 publisher' in theirs.splitlines()

    def without_tool_topics(text):  # the ros2 tool's own node publishes /rosout and /parameter_events
        return [line for line in text.splitlines() if '/rosout ' not in line and '/parameter_events ' not in line]
    assert without_tool_topics(ours) == without_tool_topics(theirs)


@pytest.mark.parametrize('topic, expected', [
    ('/ours/reliable_chatter', ['Reliability: RELIABLE', 'History (Depth): KEEP_LAST (10)', 'Node namespace: /ours']),
    ('/ours/best_effort_stats', ['Reliability: BEST_EFFORT', 'History (Depth): KEEP_LAST (5)']),
    ('/ours/latched', ['Durability: TRANSIENT_LOCAL', 'Endpoint type: PUBLISHER']),
    ('/theirs/latched', ['Durability: TRANSIENT_LOCAL', 'Node namespace: /theirs']),
    ('/ours/commands', ['Endpoint type: SUBSCRIPTION', 'Subscription count: 1']),
    ('/theirs/commands', ['Endpoint type: SUBSCRIPTION', 'Node name: cli_peer']),
])
def test_topic_info_verbose(graph, topic, expected):
    ours, theirs = graph.both('topic', 'info', '-v', topic, '--no-daemon', *SPIN)
    lines = [line.strip() for line in theirs.splitlines()]
    for line in expected:
        assert line in lines, theirs
    assert ours == theirs


def test_topic_info_unknown_topic_is_an_error_in_both(graph):
    ours, theirs = graph.dcdrl('topic', 'info', '/nothing'), graph.ros2('topic', 'info', '/nothing', '--no-daemon')
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr.strip() == theirs.stderr.strip().splitlines()[-1] == "Unknown topic '/nothing'"


def test_service_list_with_types(graph):
    ours, theirs = graph.both('service', 'list', '-t', '--no-daemon', *SPIN)
    for ns in ('ours', 'theirs'):
        assert f'/{ns}/get_policy [dcdrl_msgs/srv/GetPolicy]' in theirs.splitlines()
        assert f'/{ns}/cli_peer/get_parameters [rcl_interfaces/srv/GetParameters]' in theirs.splitlines()
    assert ours == theirs


@pytest.mark.parametrize('service', ['/ours/get_policy', '/theirs/get_policy'])
def test_service_call(graph, service):
    ours, theirs = graph.both('service', 'call', service, 'dcdrl_msgs/srv/GetPolicy',
                              '{architecture_id: mlp, min_version: 3}')

    def without_wait(text):  # whether a tool waited for discovery is timing, not output
        return [line for line in text.splitlines() if line != 'waiting for service to become available...']
    assert "available=True, message='for mlp'" in theirs and 'version=4' in theirs
    assert "tensors=[dcdrl_msgs.msg.Tensor(name='w', shape=[2], data=[1.5, -2.0])]" in theirs
    assert without_wait(ours) == without_wait(theirs)


@pytest.mark.parametrize('topic, pattern', [
    ('/ours/reliable_chatter', r"data: reliable \d+\n---\n"),
    ('/ours/best_effort_stats', r"data: best effort \d+\n---\n"),
    ('/theirs/best_effort_stats', r"data: best effort \d+\n---\n"),
    ('/ours/latched', None),
    ('/theirs/latched', None),
])
def test_topic_echo_once(graph, topic, pattern):
    """Best-effort and transient-local publishers on both backends: dcdrl asks for the QoS they offer."""
    ours, theirs = graph.both('topic', 'echo', '--once', topic, '--no-daemon')
    if pattern is None:   # the latched PolicyWeights: the same message in both
        assert 'version: 42' in theirs and '  - 0.5\n' in theirs and '  - -1.25\n' in theirs
        assert ours == theirs
    else:
        assert re.fullmatch(pattern, theirs), theirs
        assert re.fullmatch(pattern, ours), ours


@pytest.mark.parametrize('options, expected', [
    (['--field', 'tensors'], "[dcdrl_msgs.msg.Tensor(name='b', shape=[3], data=[0.5, -1.25, 2.0])]\n---\n"),
    (['--field', 'tensors', '--field', 'version'], '42\n---\n'),
    (['--flow-style'], 'tensors: [{name: b, shape: [3], data: [0.5, -1.25, 2.0]}]\n---\n'),
    (['-l', '2'], '  data:\n  - 0.5\n  - -1.25\n  - \'...\'\n---\n'),
])
def test_topic_echo_field_and_layout_options(graph, options, expected):
    ours, theirs = graph.both('topic', 'echo', '--once', '/ours/latched', *options, '--no-daemon')
    assert theirs.endswith(expected), theirs
    assert ours == theirs


@pytest.mark.parametrize('topic', ['/ours/reliable_chatter', '/theirs/best_effort_stats'])
def test_topic_hz(graph, topic):
    rates = []
    for start in (graph.child_ros2, graph.child_dcdrl):
        with start('topic', 'hz', topic) as hz:
            rates.append(float(hz.wait_for_line('average rate:', TIMEOUT).split(':')[1]))
            line = hz.wait_for_line('window:', TIMEOUT)
        assert re.fullmatch(r'\tmin: \d+\.\d{3}s max: \d+\.\d{3}s std dev: \d+\.\d{5}s window: \d+', line), line
    assert all(8.0 < rate < 40.0 for rate in rates), rates  # 20 Hz nominal; loose: the machine is shared


def test_pkg_executables(graph):
    ours, theirs = graph.both('pkg', 'executables', 'dcdrl_cloud')
    assert 'dcdrl_cloud learner' in theirs.splitlines()
    assert ours == theirs


@pytest.mark.parametrize('interface', ['dcdrl_msgs/msg/ExperienceBatch', 'dcdrl_msgs/srv/GetPolicy'])
@pytest.mark.parametrize('option', [[], ['--no-comments']])
def test_interface_show(graph, interface, option):
    ours, theirs = graph.both('interface', 'show', *option, interface)
    if interface.endswith('ExperienceBatch'):
        assert 'std_msgs/Header header\n\tbuiltin_interfaces/Time stamp\n\t\tint32 sec\n' in theirs
        assert 'float32[] obs' in theirs
    assert ours == theirs
