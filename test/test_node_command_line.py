"""A node executable's own arguments, run as a user runs it (node_usage.py).

`dcdrl run dcdrl_cloud learner --help` used to start the learner (3 minutes of training, runs/train
written in the current directory). Now --help prints the node's parameters and starts nothing, on our
runtime and under `ros2 run` on the real ROS 2 (the same executable); an argument the node does not
take (`--ros-arg`, a typo) is one [FATAL] line and exit 2 instead of being ignored.
"""
import re
import shutil
import subprocess
import sys

import pytest

from dcdrl_ros.testing import ChildProcess, fresh_domain_id, loopback_env

pytestmark = [pytest.mark.dds]
TIMEOUT = 60.0  # the learner's imports (torch) on a loaded 2-core machine
DCDRL_RUN = [sys.executable, '-m', 'dcdrl_ros.cli', 'run']


def finished(argv: list, env: dict, cwd) -> ChildProcess:
    """Runs argv to its end (stopped by its id if it runs past the time-out, as a started node would)."""
    child = ChildProcess(argv, env=env, cwd=str(cwd))
    with child:
        try:
            child.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    return child


def assert_help_without_start(child: ChildProcess, cwd) -> None:
    out = '\n'.join(child.lines)
    assert child.process.returncode == 0, out
    assert out.startswith('usage: learner [-h] [--ros-args') and 'Node /dcdrl/learner' in out
    assert re.search(r'\n  duration_s \(double, default [0-9.]+, >= 0, live\)\n      training time', out), out
    assert 'learner started' not in out and list(cwd.iterdir()) == []  # nothing trained, nothing written


def assert_refused(child: ChildProcess, hint: str) -> None:
    own = [line for line in child.lines if not line.startswith('[ros2run]')]  # ros2 run adds its exit line
    assert child.process.returncode == 2 and len(own) == 1 and hint in own[0], child.lines


def test_help_of_a_node_prints_its_parameters_and_starts_nothing(tmp_path):
    env = loopback_env(fresh_domain_id())
    assert_help_without_start(finished([*DCDRL_RUN, 'dcdrl_cloud', 'learner', '--help'], env, tmp_path), tmp_path)
    typo = finished([*DCDRL_RUN, 'dcdrl_ros', 'talker', '--ros-arg', '-p', 'period_s:=1.0'], env, tmp_path)
    assert_refused(typo, "[FATAL] talker: unknown argument '--ros-arg'; did you mean '--ros-args'?")


def test_ros2_run_of_the_same_executables_on_the_real_ros2(ros2_ws, tmp_path):
    env = ros2_ws.environment(ROS_DOMAIN_ID=str(fresh_domain_id()), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    ros2 = shutil.which('ros2', path=env['PATH'])
    assert_help_without_start(finished([ros2, 'run', 'dcdrl_cloud', 'learner', '--help'], env, tmp_path), tmp_path)
    typo = finished([ros2, 'run', 'dcdrl_ros', 'talker', 'period_s:=1.0'], env, tmp_path)
    assert_refused(typo, '[FATAL] talker: unknown argument \'period_s:=1.0\'; a parameter goes after --ros-args')
