"""With ROS 2 installed: rclpy nodes and ROS-free nodes on one DDS graph (both directions, services).

Skipped where rclpy is missing (our development machines); .github/workflows/ros.yml runs it in
ROS 2 Jazzy with rmw_cyclonedds_cpp, which is what keeps the rclpy path honest.
"""
import importlib.util
import os
import sys

import pytest

from dcdrl_core.testing import ChildProcess, fresh_domain_id, loopback_env

pytestmark = [pytest.mark.dds, pytest.mark.skipif(
    importlib.util.find_spec('rclpy') is None, reason='needs ROS 2 (rclpy) with rmw_cyclonedds_cpp')]
TIMEOUT = 60.0
DCDRL = [sys.executable, '-m', 'dcdrl_core.cli']
PEER = os.path.join(os.path.dirname(__file__), 'fixtures', 'graph_peer.py')


def _env(domain, backend):
    return loopback_env(domain, DCDRL_BACKEND=backend, RMW_IMPLEMENTATION='rmw_cyclonedds_cpp')


@pytest.mark.parametrize('talker_backend, listener_backend', [('rclpy', 'cyclone'), ('cyclone', 'rclpy')])
def test_talker_and_listener_across_backends(talker_backend, listener_backend):
    domain = fresh_domain_id()
    with ChildProcess([*DCDRL, 'run', 'dcdrl_core', 'listener'], env=_env(domain, listener_backend)) as listener, \
            ChildProcess([*DCDRL, 'run', 'dcdrl_core', 'talker', '--ros-args', '-p', 'period_s:=0.05'],
                         env=_env(domain, talker_backend)) as talker:
        talker.wait_for_line('talker started', TIMEOUT)
        listener.wait_for_line('I heard: [Hello World:', TIMEOUT)


def test_rclpy_client_calls_a_ros_free_service():
    domain = fresh_domain_id()
    with ChildProcess([sys.executable, PEER, 'service'], env=_env(domain, 'cyclone')) as service:
        service.wait_for_line('service ready', TIMEOUT)
        script = (
            'import rclpy\n'
            'from dcdrl_msgs.srv import GetPolicy\n'
            'rclpy.init()\n'
            'node = rclpy.create_node("caller")\n'
            'client = node.create_client(GetPolicy, "/get_policy")\n'
            'assert client.wait_for_service(timeout_sec=30)\n'
            'future = client.call_async(GetPolicy.Request(architecture_id="mlp", min_version=4))\n'
            'rclpy.spin_until_future_complete(node, future, timeout_sec=30)\n'
            'reply = future.result()\n'
            'print("VERSION", reply.weights.version, list(reply.weights.tensors[0].data))\n')
        with ChildProcess([sys.executable, '-c', script], env=_env(domain, 'rclpy')) as caller:
            line = caller.wait_for_line('VERSION', TIMEOUT)
    assert line == 'VERSION 5 [1.5, -2.0]'


def test_ros_free_cli_sees_rclpy_nodes_and_topics():
    domain = fresh_domain_id()
    with ChildProcess([*DCDRL, 'run', 'dcdrl_core', 'talker'], env=_env(domain, 'rclpy')) as talker:
        talker.wait_for_line('talker started', TIMEOUT)
        with ChildProcess([*DCDRL, 'node', 'list', '--spin-time', '3'], env=_env(domain, 'cyclone')) as nodes:
            nodes.wait_for_line('/talker', TIMEOUT)
        with ChildProcess([*DCDRL, 'topic', 'echo', '/chatter', '--once'], env=_env(domain, 'cyclone')) as echo:
            echo.wait_for_line("data: 'Hello World: ", TIMEOUT)
