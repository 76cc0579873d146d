"""The dcdrl command as users type it: run with parameters, topic list/info/echo/hz/pub, node info,
service list/call, pkg executables, interface show (ROS-free nodes only; against the real ros2 verbs:
test_ros2_cli.py)."""
import os
import subprocess
import sys

import pytest

from dcdrl_ros.testing import ChildProcess, fresh_domain_id, loopback_env

pytestmark = pytest.mark.dds
DCDRL = [sys.executable, '-m', 'dcdrl_ros.cli']
TIMEOUT = 60.0
PEER = os.path.join(os.path.dirname(__file__), 'fixtures', 'cli_peer.py')


@pytest.fixture
def domain():
    return fresh_domain_id()


def dcdrl(domain, *args):
    return ChildProcess([*DCDRL, *args], env=loopback_env(domain))


def test_parameters_from_yaml_with_command_line_override(domain, tmp_path):
    params = tmp_path / 'talker.yaml'
    params.write_text('talker:\n  ros__parameters:\n    topic: from_file\n    period_s: 0.5\n')
    with dcdrl(domain, 'run', 'dcdrl_ros', 'talker', '--ros-args', '--params-file', str(params),
               '-p', 'period_s:=0.25') as talker:
        line = talker.wait_for_line('talker started', TIMEOUT)
    assert 'topic /from_file' in line and 'period 0.25 s' in line


def test_node_rename_and_namespace_apply_to_parameter_files(domain, tmp_path):
    params = tmp_path / 'p.yaml'
    params.write_text('/robot/speaker:\n  ros__parameters:\n    topic: renamed\n')
    with dcdrl(domain, 'run', 'dcdrl_ros', 'talker', '--ros-args', '-r', '__node:=speaker', '-r', '__ns:=/robot',
               '--params-file', str(params)) as talker:
        line = talker.wait_for_line('talker started', TIMEOUT)
    assert '[robot.speaker]' in line and 'topic /robot/renamed' in line


def test_wrong_parameter_type_is_a_clear_error_and_exit_code_2(domain):
    result = subprocess.run([*DCDRL, 'run', 'dcdrl_ros', 'talker', '--ros-args', '-p', 'period_s:=fast'],
                            env=loopback_env(domain), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "'period_s'" in result.stderr and "'fast'" in result.stderr and 'double' in result.stderr.lower()
    assert 'Traceback' not in result.stderr


def run_dcdrl(domain, *args):
    return subprocess.run([*DCDRL, *args], env=loopback_env(domain), capture_output=True, text=True, timeout=120)


def test_run_with_a_package_alone_lists_its_executables(domain):
    result = run_dcdrl(domain, 'run', 'dcdrl_ros')
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ['dcdrl_ros bag_recorder', 'dcdrl_ros dcdrl', 'dcdrl_ros listener',
                                          'dcdrl_ros talker']
    assert run_dcdrl(domain, 'pkg', 'executables', 'dcdrl_ros').stdout == result.stdout
    unknown = run_dcdrl(domain, 'pkg', 'executables', 'no_such_pkg')
    assert unknown.returncode == 1 and unknown.stderr.strip() == "Package 'no_such_pkg' not found"
    everything = run_dcdrl(domain, 'pkg', 'executables').stdout.splitlines()
    assert 'dcdrl_cloud learner' in everything and 'dcdrl_ros talker' in everything


def test_unknown_executable_is_reported(domain):
    result = subprocess.run([*DCDRL, 'run', 'dcdrl_ros', 'no_such_exe'], env=loopback_env(domain),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no executable 'no_such_exe'" in result.stderr and 'talker' in result.stderr


def test_topic_list_echo_and_hz_see_a_running_talker(domain):
    with dcdrl(domain, 'run', 'dcdrl_ros', 'talker', '--ros-args', '-p', 'period_s:=0.05') as talker:
        talker.wait_for_line('talker started', TIMEOUT)
        listing = subprocess.run([*DCDRL, 'topic', 'list', '-t', '--spin-time', '3'], env=loopback_env(domain),
                                 capture_output=True, text=True, timeout=60)
        assert '/chatter [std_msgs/msg/String]' in listing.stdout.splitlines()
        with dcdrl(domain, 'topic', 'echo', '/chatter', '--once') as echo:
            echo.wait_for_line("data: 'Hello World: ", TIMEOUT)
            assert echo.process.wait(TIMEOUT) == 0
        with dcdrl(domain, 'topic', 'hz', '/chatter') as hz:
            line = hz.wait_for_line('average rate:', TIMEOUT)
        rate = float(line.split(':')[1])
        assert 5.0 < rate < 40.0  # 20 Hz nominal; loose because the machine is shared


def test_topic_pub_once_reaches_a_listener(domain):
    with dcdrl(domain, 'run', 'dcdrl_ros', 'listener') as listener:
        listener.wait_for_line('listener started', TIMEOUT)
        result = subprocess.run([*DCDRL, 'topic', 'pub', '--once', '/chatter', 'std_msgs/msg/String',
                                 '{data: hello from pub}'], env=loopback_env(domain),
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        listener.wait_for_line('I heard: [hello from pub]', TIMEOUT)


def test_topic_pub_rejects_unknown_fields(domain):
    result = subprocess.run([*DCDRL, 'topic', 'pub', '--once', '/x', 'std_msgs/msg/String', '{nope: 1}'],
                            env=loopback_env(domain), capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "has no field 'nope'" in result.stderr


def test_interface_show_prints_the_definition():
    result = subprocess.run([*DCDRL, 'interface', 'show', 'dcdrl_msgs/msg/PolicyWeights'],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert 'uint64 version' in result.stdout and 'Tensor[] tensors' in result.stdout
    listing = subprocess.run([*DCDRL, 'interface', 'list'], capture_output=True, text=True, timeout=60)
    assert 'dcdrl_msgs/srv/RecognizeFaces' in listing.stdout.splitlines()


def test_node_list_sees_nodes_announced_on_ros_discovery_info(domain):
    with dcdrl(domain, 'run', 'dcdrl_ros', 'talker', '--ros-args', '-r', '__ns:=/demo') as talker, \
            dcdrl(domain, 'run', 'dcdrl_ros', 'listener') as listener:
        talker.wait_for_line('talker started', TIMEOUT)
        listener.wait_for_line('listener started', TIMEOUT)
        listing = subprocess.run([*DCDRL, 'node', 'list', '--spin-time', '3'], env=loopback_env(domain),
                                 capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert {'/demo/talker', '/listener'} <= set(listing.stdout.split())


def _signal_stops_cleanly(talker: ChildProcess, signum: int) -> None:
    try:
        talker.wait_for_line('talker started', TIMEOUT)
        os.kill(talker.pid, signum)
        assert talker.process.wait(TIMEOUT) == 0
    finally:
        talker.stop()
    assert not any('Traceback' in line or 'Exception' in line for line in talker.lines), talker.lines


def test_sigterm_stops_a_node_cleanly(domain):
    import signal
    _signal_stops_cleanly(dcdrl(domain, 'run', 'dcdrl_ros', 'talker'), signal.SIGTERM)


def test_sigint_stops_a_node_started_with_sigint_ignored(domain):
    """A node started in the background by a script inherits SIGINT ignored; a launcher's SIGINT
    must still stop it cleanly (rclpy nodes behave so)."""
    import signal
    ignore_then_exec = ('import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); '
                        'os.execv(sys.executable, [sys.executable] + sys.argv[1:])')
    talker = ChildProcess([sys.executable, '-c', ignore_then_exec, *DCDRL[1:], 'run', 'dcdrl_ros', 'talker'],
                          env=loopback_env(domain))
    _signal_stops_cleanly(talker, signal.SIGINT)


@pytest.fixture
def peer(domain):
    """test/fixtures/cli_peer.py on our runtime: best-effort, reliable and latched publishers, a
    subscription, a service and a client, under /ours."""
    with peer_process(domain, PEER) as node:
        node.wait_for_line('cli peer ready on cyclone', TIMEOUT)
        yield node


def peer_process(domain, *argv):
    return ChildProcess([sys.executable, *argv, '--ros-args', '-r', '__ns:=/ours'], env=loopback_env(domain))


def test_echo_asks_for_the_qos_the_publishers_offer(domain, peer):
    """A reliable reader hears nothing from a best-effort publisher, a volatile one misses a latched
    message: echo subscribes as the discovered publishers need (ros2's rule)."""
    best_effort = run_dcdrl(domain, 'topic', 'echo', '/ours/best_effort_stats', '--once')
    assert best_effort.returncode == 0, best_effort.stderr
    assert best_effort.stdout.startswith("data: best effort ") and best_effort.stdout.endswith('\n---\n')
    latched = run_dcdrl(domain, 'topic', 'echo', '/ours/latched', '--once')
    assert 'version: 42' in latched.stdout and "architecture_id: arch" in latched.stdout
    assert latched.stdout.count('---') == 1
    forced = run_dcdrl(domain, 'topic', 'echo', '/ours/latched', '--once', '--timeout', '4',
                       '--qos-durability', 'volatile')
    assert forced.returncode == 0 and 'version' not in forced.stdout  # the latched sample needs transient local


def test_echo_and_hz_warn_until_the_topic_is_published_then_wait(domain):
    with dcdrl(domain, 'topic', 'echo', '/late', '--once') as echo, dcdrl(domain, 'topic', 'hz', '/late') as hz:
        echo.wait_for_line('WARNING: topic [/late] does not appear to be published yet', TIMEOUT)
        hz.wait_for_line('WARNING: topic [/late] does not appear to be published yet', TIMEOUT)
        with dcdrl(domain, 'topic', 'pub', '-r', '10', '/late', 'std_msgs/msg/String', '{data: late}') as pub:
            pub.wait_for_line('publishing #1', TIMEOUT)
            echo.wait_for_line('data: late', TIMEOUT)
            assert echo.process.wait(TIMEOUT) == 0
            hz.wait_for_line('average rate:', TIMEOUT)


def test_sigterm_ends_an_echo_that_waits_for_its_topic(domain):
    import signal
    with dcdrl(domain, 'topic', 'echo', '/never') as echo:
        echo.wait_for_line('does not appear to be published yet', TIMEOUT)
        os.kill(echo.pid, signal.SIGTERM)
        assert echo.process.wait(TIMEOUT) == 0
    assert not any('Traceback' in line for line in echo.lines), echo.lines


def test_topic_info_node_info_and_services_of_a_ros_free_node(domain, peer):
    info = run_dcdrl(domain, 'topic', 'info', '-v', '/ours/best_effort_stats')
    assert info.returncode == 0, info.stderr
    lines = info.stdout.splitlines()
    for line in ('Type: std_msgs/msg/String', 'Publisher count: 1', 'Node name: cli_peer', 'Node namespace: /ours',
                 'Endpoint type: PUBLISHER', '  Reliability: BEST_EFFORT', '  History (Depth): KEEP_LAST (5)',
                 'Subscription count: 0'):
        assert line in lines, info.stdout
    assert any(line.startswith('Topic type hash: RIHS01_') for line in lines)
    node = run_dcdrl(domain, 'node', 'info', '/ours/cli_peer').stdout
    assert node.startswith('/ours/cli_peer\n  Subscribers:\n    /ours/commands: std_msgs/msg/String\n')
    assert '  Service Servers:\n' in node and '    /ours/get_policy: dcdrl_msgs/srv/GetPolicy\n' in node
    assert '  Service Clients:\n    /ours/remote_policy: dcdrl_msgs/srv/GetPolicy\n' in node
    services = run_dcdrl(domain, 'service', 'list', '-t').stdout.splitlines()
    assert '/ours/get_policy [dcdrl_msgs/srv/GetPolicy]' in services
    call = run_dcdrl(domain, 'service', 'call', '/ours/get_policy', 'dcdrl_msgs/srv/GetPolicy',
                     '{architecture_id: mlp, min_version: 3}')
    assert call.returncode == 0, call.stderr
    assert "requester: making request: dcdrl_msgs.srv.GetPolicy_Request(architecture_id='mlp', min_version=3)" \
        in call.stdout
    assert "response:\ndcdrl_msgs.srv.GetPolicy_Response(available=True, message='for mlp'" in call.stdout
    assert "data=[1.5, -2.0])]))" in call.stdout


def test_unknown_node_topic_and_service_type_are_one_line_errors(domain):
    for args, message in ((('node', 'info', '/nobody', '--spin-time', '0.5'), "Unable to find node '/nobody'"),
                          (('topic', 'info', '/nothing', '--spin-time', '0.5'), "Unknown topic '/nothing'"),
                          (('service', 'call', '/x', 'no_pkg/srv/Nope'), 'The passed service type is invalid'),
                          (('service', 'call', '/x', 'std_msgs/msg/String'), 'The passed type is not a service')):
        result = run_dcdrl(domain, *args)
        assert (result.returncode, result.stderr.strip()) == (1, message)
