"""The dcdrl command as users type it: run with parameters, topic list/echo/hz/pub, interface show."""
import os
import subprocess
import sys

import pytest

from dcdrl_core.testing import ChildProcess, fresh_domain_id, loopback_env

pytestmark = pytest.mark.dds
DCDRL = [sys.executable, '-m', 'dcdrl_core.cli']
TIMEOUT = 30.0


@pytest.fixture
def domain():
    return fresh_domain_id()


def dcdrl(domain, *args):
    return ChildProcess([*DCDRL, *args], env=loopback_env(domain))


def test_parameters_from_yaml_with_command_line_override(domain, tmp_path):
    params = tmp_path / 'talker.yaml'
    params.write_text('talker:\n  ros__parameters:\n    topic: from_file\n    period_s: 0.5\n')
    with dcdrl(domain, 'run', 'dcdrl_core', 'talker', '--ros-args', '--params-file', str(params),
               '-p', 'period_s:=0.25') as talker:
        line = talker.wait_for_line('talker started', TIMEOUT)
    assert 'topic /from_file' in line and 'period 0.25 s' in line


def test_node_rename_and_namespace_apply_to_parameter_files(domain, tmp_path):
    params = tmp_path / 'p.yaml'
    params.write_text('/robot/speaker:\n  ros__parameters:\n    topic: renamed\n')
    with dcdrl(domain, 'run', 'dcdrl_core', 'talker', '--ros-args', '-r', '__node:=speaker', '-r', '__ns:=/robot',
               '--params-file', str(params)) as talker:
        line = talker.wait_for_line('talker started', TIMEOUT)
    assert '[robot.speaker]' in line and 'topic /robot/renamed' in line


def test_wrong_parameter_type_is_a_clear_error_and_exit_code_2(domain):
    result = subprocess.run([*DCDRL, 'run', 'dcdrl_core', 'talker', '--ros-args', '-p', 'period_s:=fast'],
                            env=loopback_env(domain), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "parameter 'period_s' expects double" in result.stderr and 'fast' in result.stderr
    assert 'Traceback' not in result.stderr


def test_unknown_executable_is_reported(domain):
    result = subprocess.run([*DCDRL, 'run', 'dcdrl_core', 'no_such_exe'], env=loopback_env(domain),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "no executable 'no_such_exe'" in result.stderr and 'talker' in result.stderr


def test_topic_list_echo_and_hz_see_a_running_talker(domain):
    with dcdrl(domain, 'run', 'dcdrl_core', 'talker', '--ros-args', '-p', 'period_s:=0.05') as talker:
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
    with dcdrl(domain, 'run', 'dcdrl_core', 'listener') as listener:
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
    with dcdrl(domain, 'run', 'dcdrl_core', 'talker', '--ros-args', '-r', '__ns:=/demo') as talker, \
            dcdrl(domain, 'run', 'dcdrl_core', 'listener') as listener:
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
    _signal_stops_cleanly(dcdrl(domain, 'run', 'dcdrl_core', 'talker'), signal.SIGTERM)


def test_sigint_stops_a_node_started_with_sigint_ignored(domain):
    """A node started in the background by a script inherits SIGINT ignored; a launcher's SIGINT
    must still stop it cleanly (rclpy nodes behave so)."""
    import signal
    ignore_then_exec = ('import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); '
                        'os.execv(sys.executable, [sys.executable] + sys.argv[1:])')
    talker = ChildProcess([sys.executable, '-c', ignore_then_exec, *DCDRL[1:], 'run', 'dcdrl_core', 'talker'],
                          env=loopback_env(domain))
    _signal_stops_cleanly(talker, signal.SIGINT)
