"""rclpy nodes and ROS-free nodes on one DDS graph (both directions, services), on the real ROS 2
(the `ros2_ws` fixture: this workspace built by colcon on the ROS 2 that `make ros2` unpacks or a sourced ROS 2).
"""
import os
import sys

import pytest

from dcdrl_ros.testing import ChildProcess, fresh_domain_id, loopback_env

pytestmark = [pytest.mark.dds]
TIMEOUT = 60.0
PEER = os.path.join(os.path.dirname(__file__), 'fixtures', 'graph_peer.py')


@pytest.fixture
def run_on(ros2_ws):
    """run_on(backend, domain) -> (python, env): a child on our runtime (.venv) or on rclpy (ROS 2)."""
    def pick(backend, domain):
        if backend == 'rclpy':
            return ros2_ws.python(), ros2_ws.environment(
                ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST', DCDRL_BACKEND='rclpy')
        return sys.executable, loopback_env(domain)
    return pick


@pytest.mark.parametrize('talker_backend, listener_backend', [('rclpy', 'cyclone'), ('cyclone', 'rclpy')])
def test_talker_and_listener_across_backends(run_on, talker_backend, listener_backend):
    domain = fresh_domain_id()
    listener_python, listener_env = run_on(listener_backend, domain)
    talker_python, talker_env = run_on(talker_backend, domain)
    with ChildProcess([listener_python, '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_ros', 'listener'],
                      env=listener_env) as listener, \
            ChildProcess([talker_python, '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_ros', 'talker', '--ros-args', '-p',
                          'period_s:=0.05'], env=talker_env) as talker:
        talker.wait_for_line('talker started', TIMEOUT)
        listener.wait_for_line('I heard: [Hello World:', TIMEOUT)


def test_rclpy_client_calls_a_ros_free_service(run_on):
    domain = fresh_domain_id()
    with ChildProcess([sys.executable, PEER, 'service'], env=loopback_env(domain)) as service:
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
        with ChildProcess(list(run_on('rclpy', domain)[:1]) + ['-c', script], env=run_on('rclpy', domain)[1]) as caller:
            line = caller.wait_for_line('VERSION', TIMEOUT)
    assert line == 'VERSION 5 [1.5, -2.0]'


def test_ros_free_cli_sees_rclpy_nodes_and_topics(run_on):
    domain = fresh_domain_id()
    python, env = run_on('rclpy', domain)
    dcdrl = [sys.executable, '-m', 'dcdrl_ros.cli']
    with ChildProcess([python, '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_ros', 'talker'], env=env) as talker:
        talker.wait_for_line('talker started', TIMEOUT)
        with ChildProcess([*dcdrl, 'node', 'list', '--spin-time', '3'], env=loopback_env(domain)) as nodes:
            nodes.wait_for_line('/talker', TIMEOUT)
        with ChildProcess([*dcdrl, 'topic', 'echo', '/chatter', '--once'], env=loopback_env(domain)) as echo:
            echo.wait_for_line("data: 'Hello World: ", TIMEOUT)
