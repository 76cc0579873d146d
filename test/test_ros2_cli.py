"""The real `ros2` command against ROS-free nodes, and each `dcdrl` verb against the `ros2` verb on the
same graph: a ROS-free node (/ours/cli_peer) and an rclpy node (/theirs/cli_peer), both
test/fixtures/cli_peer.py, on the real ROS 2 (the `ros2_ws` fixture).

Every `ros2` verb that could start a daemon runs with --no-daemon; the graph verbs of both tools get
--spin-time 3 (discovery on a loaded machine). Outputs are compared as text; what must differ is
normalised: message counters, and the publishers of /rosout and /parameter_events that the ros2 tool adds.

Each command costs a process start (about 0.5 s of CPU) and a discovery wait of seconds, so the module
starts the graph once and runs all its commands concurrently (CONCURRENCY at a time, each with its own
time-out); the tests then assert on the stored outputs. Two phases, because a command that subscribes or calls a
service adds endpoints to the graph that `topic list -v` and `topic info -v` would show: first the
commands that only look at the graph (and the ROS-free ones), then those that take part in it.
"""
import os
import re
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from dcdrl_ros.testing import ChildProcess, fresh_domain_id, loopback_env

pytestmark = [pytest.mark.dds]
TIMEOUT = 90.0
# On 2 cores the starts queue for CPU while the discovery waits overlap. Under Cyclone's 32 participant
# indices on a LOCALHOST domain (rmw_cyclonedds and our runtime alike), with the two peers.
CONCURRENCY = 12
SPIN = ('--spin-time', '3')
PEER = os.path.join(os.path.dirname(__file__), 'fixtures', 'cli_peer.py')
NODES = ('/ours/cli_peer', '/theirs/cli_peer')

# --- the commands, one definition each: the tests below and the fixture that runs them both use these ---
NODE_LIST = ('node', 'list', '--no-daemon', *SPIN)
TOPIC_LIST_TYPES = ('topic', 'list', '-t', '--no-daemon', *SPIN)
TOPIC_LIST_VERBOSE = ('topic', 'list', '-v', '--no-daemon', *SPIN)
SERVICE_LIST_TYPES = ('service', 'list', '-t', '--no-daemon', *SPIN)
UNKNOWN_TOPIC_OURS = ('topic', 'info', '/nothing')
UNKNOWN_TOPIC_THEIRS = ('topic', 'info', '/nothing', '--no-daemon')
PKG_EXECUTABLES = ('pkg', 'executables', 'dcdrl_cloud')
TOPIC_INFO_CASES = [
    ('/ours/reliable_chatter', ['Reliability: RELIABLE', 'History (Depth): KEEP_LAST (10)', 'Node namespace: /ours']),
    ('/ours/best_effort_stats', ['Reliability: BEST_EFFORT', 'History (Depth): KEEP_LAST (5)']),
    ('/ours/latched', ['Durability: TRANSIENT_LOCAL', 'Endpoint type: PUBLISHER']),
    ('/theirs/latched', ['Durability: TRANSIENT_LOCAL', 'Node namespace: /theirs']),
    ('/ours/commands', ['Endpoint type: SUBSCRIPTION', 'Subscription count: 1']),
    ('/theirs/commands', ['Endpoint type: SUBSCRIPTION', 'Node name: cli_peer']),
]
SERVICES = ('/ours/get_policy', '/theirs/get_policy')
ECHO_ONCE_CASES = [
    ('/ours/reliable_chatter', r"data: reliable \d+\n---\n"),
    ('/ours/best_effort_stats', r"data: best effort \d+\n---\n"),
    ('/theirs/best_effort_stats', r"data: best effort \d+\n---\n"),
    ('/ours/latched', None),
    ('/theirs/latched', None),
]
ECHO_OPTION_CASES = [
    (['--field', 'tensors'], "[dcdrl_msgs.msg.Tensor(name='b', shape=[3], data=[0.5, -1.25, 2.0])]\n---\n"),
    (['--field', 'tensors', '--field', 'version'], '42\n---\n'),
    (['--flow-style'], 'tensors: [{name: b, shape: [3], data: [0.5, -1.25, 2.0]}]\n---\n'),
    (['-l', '2'], '  data:\n  - 0.5\n  - -1.25\n  - \'...\'\n---\n'),
]
HZ_TOPICS = ('/ours/reliable_chatter', '/theirs/best_effort_stats')
INTERFACES = ('dcdrl_msgs/msg/ExperienceBatch', 'dcdrl_msgs/srv/GetPolicy')
INTERFACE_OPTIONS = ((), ('--no-comments',))


def node_info(node: str) -> tuple:
    return ('node', 'info', node, '--no-daemon', *SPIN)


def topic_info(topic: str) -> tuple:
    return ('topic', 'info', '-v', topic, '--no-daemon', *SPIN)


def service_call(service: str) -> tuple:
    return ('service', 'call', service, 'dcdrl_msgs/srv/GetPolicy', '{architecture_id: mlp, min_version: 3}')


def echo_once(topic: str, *options: str) -> tuple:
    return ('topic', 'echo', '--once', topic, *options, '--no-daemon')


def interface_show(option: tuple, interface: str) -> tuple:
    return ('interface', 'show', *option, interface)


def hz(topic: str) -> tuple:
    return ('topic', 'hz', topic)


# What both tools run, in two phases (see the module's docstring); in each, the longest discovery waits first.
OBSERVING = ([NODE_LIST, TOPIC_LIST_TYPES, TOPIC_LIST_VERBOSE, SERVICE_LIST_TYPES]
             + [node_info(node) for node in NODES] + [topic_info(topic) for topic, _ in TOPIC_INFO_CASES])
ROS_FREE = [PKG_EXECUTABLES] + [interface_show(option, interface) for option in INTERFACE_OPTIONS
                                for interface in INTERFACES]
TAKING_PART = ([service_call(service) for service in SERVICES] + [echo_once(topic) for topic, _ in ECHO_ONCE_CASES]
               + [echo_once('/ours/latched', *options) for options, _ in ECHO_OPTION_CASES])


class Graph:
    """The two peers' domain, and the stored result of every command of the module run on it."""

    def __init__(self, domain: int, ros_env: dict) -> None:
        self.domain = domain
        self.ros_env = ros_env
        self.results: dict[tuple, Any] = {}

    def run_ros2(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(['ros2', *args], env=self.ros_env, capture_output=True, text=True, timeout=TIMEOUT)

    def run_dcdrl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, '-m', 'dcdrl_ros.cli', *args], env=loopback_env(self.domain),
                              capture_output=True, text=True, timeout=TIMEOUT)

    def child_ros2(self, *args: str) -> ChildProcess:
        return ChildProcess(['ros2', *args], env=self.ros_env)

    def child_dcdrl(self, *args: str) -> ChildProcess:
        return ChildProcess([sys.executable, '-m', 'dcdrl_ros.cli', *args], env=loopback_env(self.domain))

    def run_all(self, jobs: dict[tuple, Callable[[], Any]]) -> None:
        """Runs the jobs CONCURRENTLY at a time and stores each one's result, or the exception it raised."""
        with ThreadPoolExecutor(CONCURRENCY) as pool:
            futures = {key: pool.submit(job) for key, job in jobs.items()}
        for key, future in futures.items():
            self.results[key] = future.exception() or future.result()

    def result(self, *key: Any) -> Any:
        value = self.results[key]
        if isinstance(value, BaseException):
            raise value
        return value

    def ros2(self, *args: str) -> subprocess.CompletedProcess:
        return self.result('ros2', *args)

    def dcdrl(self, *args: str) -> subprocess.CompletedProcess:
        return self.result('dcdrl', *args)

    def both(self, *args: str) -> tuple[str, str]:
        """(dcdrl's stdout, ros2's stdout) of the same verb; both must succeed."""
        ours, theirs = self.dcdrl(*args), self.ros2(*args)
        assert ours.returncode == 0, ours.stderr
        assert theirs.returncode == 0, theirs.stderr
        assert 'Traceback' not in ours.stderr
        # Our endpoints carry rmw's USER_DATA type hash: a ROS 2 process has nothing to warn about.
        assert 'Failed to parse type hash' not in theirs.stderr, theirs.stderr
        return ours.stdout, theirs.stdout


def hz_reading(start: Callable[..., ChildProcess], topic: str) -> tuple[float, str]:
    """(the first average rate, the line with the window) of `topic hz` started by ``start``."""
    with start(*hz(topic)) as child:
        rate = float(child.wait_for_line('average rate:', TIMEOUT).split(':')[1])
        return rate, child.wait_for_line('window:', TIMEOUT)


def jobs_in_both_tools(graph: Graph, commands: list[tuple]) -> dict[tuple, Callable[[], Any]]:
    jobs: dict[tuple, Callable[[], Any]] = {}
    for args in commands:
        jobs[('ros2', *args)] = lambda args=args: graph.run_ros2(*args)
        jobs[('dcdrl', *args)] = lambda args=args: graph.run_dcdrl(*args)
    return jobs


@pytest.fixture(scope='module')
def graph(ros2_ws):
    domain = fresh_domain_id()
    ros_env = ros2_ws.environment(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    with ChildProcess([sys.executable, PEER, '--ros-args', '-r', '__ns:=/ours'], env=loopback_env(domain)) as ours, \
            ChildProcess([ros2_ws.python(), PEER, '--ros-args', '-r', '__ns:=/theirs'],
                         env=dict(ros_env, DCDRL_BACKEND='rclpy')) as theirs:
        ours.wait_for_line('cli peer ready on cyclone', TIMEOUT)
        theirs.wait_for_line('cli peer ready on rclpy', TIMEOUT)
        graph = Graph(domain, ros_env)
        observing = jobs_in_both_tools(graph, OBSERVING)
        # Both at their default spin time; ros2 with --no-daemon, as it would start a daemon otherwise.
        observing[('dcdrl', *UNKNOWN_TOPIC_OURS)] = lambda: graph.run_dcdrl(*UNKNOWN_TOPIC_OURS)
        observing[('ros2', *UNKNOWN_TOPIC_THEIRS)] = lambda: graph.run_ros2(*UNKNOWN_TOPIC_THEIRS)
        graph.run_all({**observing, **jobs_in_both_tools(graph, ROS_FREE)})
        taking_part = {}
        for topic in HZ_TOPICS:
            taking_part[('hz', 'ros2', topic)] = lambda topic=topic: hz_reading(graph.child_ros2, topic)
            taking_part[('hz', 'dcdrl', topic)] = lambda topic=topic: hz_reading(graph.child_dcdrl, topic)
        graph.run_all({**taking_part, **jobs_in_both_tools(graph, TAKING_PART)})
        yield graph


def test_node_list(graph):
    ours, theirs = graph.both(*NODE_LIST)
    assert set(NODES) <= set(theirs.split())
    assert ours == theirs


@pytest.mark.parametrize('node', NODES)
def test_node_info(graph, node):
    ours, theirs = graph.both(*node_info(node))
    ns = node.split('/')[1]
    for line in (f'    /{ns}/reliable_chatter: std_msgs/msg/String', f'    /{ns}/commands: std_msgs/msg/String',
                 f'    /{ns}/latched: dcdrl_msgs/msg/PolicyWeights',
                 f'    /{ns}/get_policy: dcdrl_msgs/srv/GetPolicy',
                 f'    /{ns}/remote_policy: dcdrl_msgs/srv/GetPolicy'):
        assert line in theirs.splitlines(), theirs
    assert theirs.index('Service Servers:') < theirs.index(f'/{ns}/get_policy:') < theirs.index('Service Clients:')
    assert ours == theirs


def test_topic_list_with_types(graph):
    ours, theirs = graph.both(*TOPIC_LIST_TYPES)
    for ns in ('ours', 'theirs'):
        for line in (f'/{ns}/best_effort_stats [std_msgs/msg/String]', f'/{ns}/latched [dcdrl_msgs/msg/PolicyWeights]'):
            assert line in theirs.splitlines()
    assert ours == theirs


def test_topic_list_verbose_counts(graph):
    ours, theirs = graph.both(*TOPIC_LIST_VERBOSE)
    assert ' * /ours/reliable_chatter [std_msgs/msg/String] 1 publisher' in theirs.splitlines()

    def without_tool_topics(text):  # the ros2 tool's own node publishes /rosout and /parameter_events
        return [line for line in text.splitlines() if '/rosout ' not in line and '/parameter_events ' not in line]
    assert without_tool_topics(ours) == without_tool_topics(theirs)


@pytest.mark.parametrize('topic, expected', TOPIC_INFO_CASES)
def test_topic_info_verbose(graph, topic, expected):
    ours, theirs = graph.both(*topic_info(topic))
    lines = [line.strip() for line in theirs.splitlines()]
    for line in expected:
        assert line in lines, theirs
    assert ours == theirs


def test_topic_info_unknown_topic_is_an_error_in_both(graph):
    ours, theirs = graph.dcdrl(*UNKNOWN_TOPIC_OURS), graph.ros2(*UNKNOWN_TOPIC_THEIRS)
    assert ours.returncode == theirs.returncode == 1
    assert ours.stderr.strip() == theirs.stderr.strip().splitlines()[-1] == "Unknown topic '/nothing'"


def test_service_list_with_types(graph):
    ours, theirs = graph.both(*SERVICE_LIST_TYPES)
    for ns in ('ours', 'theirs'):
        assert f'/{ns}/get_policy [dcdrl_msgs/srv/GetPolicy]' in theirs.splitlines()
        assert f'/{ns}/cli_peer/get_parameters [rcl_interfaces/srv/GetParameters]' in theirs.splitlines()
    assert ours == theirs


@pytest.mark.parametrize('service', SERVICES)
def test_service_call(graph, service):
    ours, theirs = graph.both(*service_call(service))

    def without_wait(text):  # whether a tool waited for discovery is timing, not output
        return [line for line in text.splitlines() if line != 'waiting for service to become available...']
    assert "available=True, message='for mlp'" in theirs and 'version=4' in theirs
    assert "tensors=[dcdrl_msgs.msg.Tensor(name='w', shape=[2], data=[1.5, -2.0])]" in theirs
    assert without_wait(ours) == without_wait(theirs)


@pytest.mark.parametrize('topic, pattern', ECHO_ONCE_CASES)
def test_topic_echo_once(graph, topic, pattern):
    """Best-effort and transient-local publishers on both backends: dcdrl asks for the QoS they offer."""
    ours, theirs = graph.both(*echo_once(topic))
    if pattern is None:   # the latched PolicyWeights: the same message in both
        assert 'version: 42' in theirs and '  - 0.5\n' in theirs and '  - -1.25\n' in theirs
        assert ours == theirs
    else:
        assert re.fullmatch(pattern, theirs), theirs
        assert re.fullmatch(pattern, ours), ours


@pytest.mark.parametrize('options, expected', ECHO_OPTION_CASES)
def test_topic_echo_field_and_layout_options(graph, options, expected):
    ours, theirs = graph.both(*echo_once('/ours/latched', *options))
    assert theirs.endswith(expected), theirs
    assert ours == theirs


@pytest.mark.parametrize('topic', HZ_TOPICS)
def test_topic_hz(graph, topic):
    readings = [graph.result('hz', tool, topic) for tool in ('ros2', 'dcdrl')]
    for _rate, line in readings:
        assert re.fullmatch(r'\tmin: \d+\.\d{3}s max: \d+\.\d{3}s std dev: \d+\.\d{5}s window: \d+', line), line
    rates = [rate for rate, _line in readings]
    assert all(8.0 < rate < 40.0 for rate in rates), rates  # 20 Hz nominal; loose: the machine is shared


def test_pkg_executables(graph):
    ours, theirs = graph.both(*PKG_EXECUTABLES)
    assert 'dcdrl_cloud learner' in theirs.splitlines()
    assert ours == theirs


@pytest.mark.parametrize('interface', INTERFACES)
@pytest.mark.parametrize('option', INTERFACE_OPTIONS)
def test_interface_show(graph, interface, option):
    ours, theirs = graph.both(*interface_show(option, interface))
    if interface.endswith('ExperienceBatch'):
        assert 'std_msgs/Header header\n\tbuiltin_interfaces/Time stamp\n\t\tint32 sec\n' in theirs
        assert 'float32[] obs' in theirs
    assert ours == theirs
