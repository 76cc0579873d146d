"""A client stopped while torch still loads exits at once and cleanly, on both backends.

The client streams experience as soon as it starts and builds its torch part (the import, the
networks) in a second thread. Its stop used to wait for that thread: on a busy 2-core machine the
import alone outlasts what `ros2 launch` allows after a Ctrl-C (SIGTERM after 5 s, SIGKILL after 10 s),
so a client stopped while starting logged 'stopped' and was killed. Here a sitecustomize
(fixtures/held_torch) holds `import torch` in the child, so the Ctrl-C lands while the import runs,
every time: the client must still exit with code 0 and its report ("armed": false), without waiting
for the import.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dcdrl_ros.testing import ChildProcess, fresh_domain_id, loopback_env

pytestmark = [pytest.mark.dds]
ROOT = Path(__file__).resolve().parents[1]
HELD_TORCH = ROOT / 'test' / 'fixtures' / 'held_torch'
TIMEOUT = 120.0      # start-up on a loaded 2-core machine
# From the Ctrl-C to the exit: twice what `ros2 launch` allows before SIGKILL, and far less than the
# held import lasts, so a client that waits for the import fails here.
STOP_TIMEOUT = 20.0
# (mode, SIGINTs): one as from a terminal, two as a node under `ros2 launch` gets.
CASES = (('central', 1), ('collective', 2))


def start_client(backend: str, ros2_ws, domain: int, mode: str) -> ChildProcess:
    if backend == 'cyclone':
        python, env = sys.executable, loopback_env(domain)
    else:
        python = ros2_ws.python()
        env = ros2_ws.environment(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
                                  DCDRL_BACKEND='rclpy', PYTHONUNBUFFERED='1')
    env['PYTHONPATH'] = os.pathsep.join([str(HELD_TORCH), env.get('PYTHONPATH', '')]).rstrip(os.pathsep)
    return ChildProcess([python, '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_sim', 'client', '--ros-args',
                         '-r', '__node:=client_0', '-r', '__ns:=/dcdrl', '-p', f'mode:={mode}'], env=env)


@pytest.mark.slow
@pytest.mark.timeout(400)
@pytest.mark.parametrize('backend', ['cyclone', 'rclpy'])
def test_client_stopped_while_torch_loads_exits_at_once(backend, request):
    ros2_ws = request.getfixturevalue('ros2_ws') if backend == 'rclpy' else None
    domain = fresh_domain_id()
    for mode, signals in CASES:
        child = start_client(backend, ros2_ws, domain, mode)
        try:
            child.wait_for_line('import of torch held in thread', TIMEOUT)
            child.wait_for_line('client client_0 started', TIMEOUT)
            for _ in range(signals):
                os.killpg(child.pid, signal.SIGINT)
            try:
                code: int | None = child.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                code = None
        finally:
            child.stop()
        label = f'{backend}, {mode} mode, {signals} SIGINT'
        output = '\n'.join(child.lines[-40:])
        assert code == 0, f'{label}: exit code {code} (None: still running {STOP_TIMEOUT} s after the Ctrl-C)\n{output}'
        assert not any('Traceback' in line for line in child.lines), f'{label}\n{output}'
        assert any('stopping before the networks were built' in line for line in child.lines), f'{label}\n{output}'
        report = json.loads(next(line.split('CLIENT REPORT ', 1)[1] for line in child.lines
                                 if 'CLIENT REPORT ' in line))
        assert report['armed'] is False and report['errors'] == 0, f'{label}: {report}'
