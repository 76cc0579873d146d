"""Every node stops cleanly, its final state written, on both backends.

One SIGINT, two SIGINTs (the second while the node writes its final state, as under ``ros2
launch`` where the terminal and the launcher each send one) and SIGTERM: each ends the process with
exit code 0, no traceback, the node's report printed and its files complete (replay.npz holds the
transitions the report counts; the learner's checkpoint loads at the version it reports).

Per backend one graph runs twice in the same folders: the training graph (replay_buffer, learner,
parameter_server, a client) and the cloud-edge pair (controller, segment_learner), each
node stopped by a different way in each round, so every node meets every way over the two
backends; the second round also checks that the final state of the first is what a restart picks
up. The last test stops a small `ros2 launch` graph with SIGINT to its process group.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from dcdrl_ros import runtime
from dcdrl_ros.testing import ChildProcess, TopicRecorder, fresh_domain_id, node_process

pytestmark = [pytest.mark.dds]
ROOT = Path(__file__).resolve().parents[1]
FAST = ROOT / 'test' / 'fixtures' / 'train_fast.yaml'
EDGE = ROOT / 'config' / 'cloud_edge.yaml'
LAUNCH = ROOT / 'test' / 'fixtures' / 'stop_graph.launch.yaml'
TIMEOUT = 120.0        # generous: torch imports and discovery on a loaded 2-core machine
STOP_TIMEOUT = 60.0    # from the signal to the exit, final evaluation and snapshot included
WAYS = ('sigint', 'sigint_twice', 'sigterm')


@dataclass(frozen=True)
class NodeCase:
    package: str
    executable: str
    name: str
    graph: str              # 'cloud' (FAST parameters) or 'edge' (config/cloud_edge.yaml)
    params: tuple[str, ...]
    final_line: str         # what its destroy_node prints


NODES = (
    NodeCase('dcdrl_cloud', 'replay_buffer', 'replay_buffer', 'cloud', ('snapshot_period_s:=0.0',), 'REPORT {'),
    NodeCase('dcdrl_cloud', 'learner', 'learner', 'cloud', ('duration_s:=0.0', 'tensorboard:=false'),
             'learner stopped:'),
    NodeCase('dcdrl_cloud', 'parameter_server', 'parameter_server', 'cloud', (), 'PARAMETER_SERVER REPORT'),
    NodeCase('dcdrl_sim', 'client', 'client_0', 'cloud', ('client_id:=client_0',), 'CLIENT REPORT'),
    NodeCase('dcdrl_edge', 'controller', 'controller', 'edge', ('rate_hz:=150.0', 'sim_rate_hz:=30.0'),
             'CONTROLLER REPORT'),
    NodeCase('dcdrl_cloud', 'segment_learner', 'segment_learner', 'edge',
             ('critic_start:=200', 'actor_start:=300', 'tensorboard:=false', 'device:=cpu',
              'stop_when_converged:=false'), 'learner stopped:'),
)
WRITES_FILES = ('replay_buffer', 'learner', 'segment_learner', 'parameter_server')


def way_for(index: int, backend: str, round_: int) -> str:
    """Node ``index``'s way to be stopped: a different one per round, shifted between the backends."""
    return WAYS[(index + round_ + (2 if backend == 'rclpy' else 0)) % len(WAYS)]


class Starter:
    """Starts a node of the workspace on one backend: ours (the source tree) or rclpy (colcon build)."""

    def __init__(self, backend: str, ros2_ws) -> None:
        self.backend, self.ros2_ws = backend, ros2_ws

    def node(self, case: NodeCase, domain: int, output_dir: Path) -> ChildProcess:
        params = case.params + ((f'output_dir:={output_dir}',) if case.executable in WRITES_FILES else ())
        params_file = FAST if case.graph == 'cloud' else EDGE
        if self.backend == 'cyclone':
            return node_process(case.package, case.executable, case.name, domain, str(params_file), *params)
        argv = [self.ros2_ws.python(), '-m', 'dcdrl_ros.cli', 'run', case.package, case.executable, '--ros-args',
                '-r', f'__node:={case.name}', '-r', '__ns:=/dcdrl', '--params-file', str(params_file)]
        for param in params:
            argv += ['-p', param]
        return ChildProcess(argv, env=self.environment(domain))

    def environment(self, domain: int) -> dict[str, str]:
        return self.ros2_ws.environment(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
                                        DCDRL_BACKEND='rclpy')


class Monitor(TopicRecorder):
    """What shows that a graph works: the replay's size and the learner's updates."""

    def __init__(self, domain: int) -> None:
        from dcdrl_msgs.msg import ReplayStats, TrainingStats
        super().__init__(domain, namespace='/dcdrl')
        best_effort = runtime.qos_profile_sensor_data
        self.replay_sizes = self.record(ReplayStats, 'replay/stats', best_effort, lambda m: m.size)
        self.updates = self.record(TrainingStats, 'learner/stats', best_effort, lambda m: m.updates)

    def wait_until_trained(self, min_replay: int | None, what: str) -> None:
        self.wait_for(lambda: self.updates and self.updates[-1] >= 20
                      and (min_replay is None or (self.replay_sizes and self.replay_sizes[-1] >= min_replay)),
                      TIMEOUT, what)


def send(child: ChildProcess, signum: int) -> None:
    """To the child's process group, as a terminal's Ctrl-C reaches a foreground job."""
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        pass


def stop_all(children: dict[int, ChildProcess], ways: dict[int, str]) -> dict[int, tuple[int | None, float]]:
    """Stops every child its way, all at once; (exit code or None, seconds from its first signal) each."""
    results: dict[int, tuple[int | None, float]] = {}

    def await_exit(index: int, child: ChildProcess, started: float) -> None:
        try:
            code: int | None = child.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
        results[index] = (code, round(time.monotonic() - started, 1))

    waiters = []
    for index, child in children.items():
        waiters.append(threading.Thread(target=await_exit, args=(index, child, time.monotonic())))
        send(child, signal.SIGTERM if ways[index] == 'sigterm' else signal.SIGINT)
        waiters[-1].start()
    for index, child in children.items():
        if ways[index] == 'sigint_twice':   # the second lands while destroy_node writes the final state
            try:
                child.wait_for_line('SIGINT: stopping', STOP_TIMEOUT)
            except RuntimeError:            # exited already: nothing left to interrupt
                pass
            send(child, signal.SIGINT)
    for waiter in waiters:
        waiter.join(STOP_TIMEOUT + 5)
    for child in children.values():
        child.stop()   # collects the rest of its output (kills it only if it did not exit)
    return results


def report_of(child: ChildProcess, marker: str) -> dict:
    line = next(line for line in child.lines if marker in line)
    return json.loads(line.split(marker, 1)[1].strip())


def stopped_line(child: ChildProcess) -> tuple[int, int]:
    """(version, updates) from 'learner stopped: version V, U updates, ...'."""
    match = re.search(r'learner stopped: version (\d+), (\d+) updates', '\n'.join(child.lines))
    assert match, '\n'.join(child.lines[-20:])
    return int(match.group(1)), int(match.group(2))


def check_final_state(case: NodeCase, child: ChildProcess, output_dir: Path) -> dict:
    """The node's final files and report; returns what the next round's restart should pick up."""
    from dcdrl_learning.checkpoint import load_state
    if case.executable == 'replay_buffer':
        report = report_of(child, 'REPORT ')
        with np.load(output_dir / 'replay.npz', allow_pickle=False) as snapshot:
            rows = snapshot['rows'].shape[0]
        assert report['replay_size'] > 0 and rows == report['replay_size'], (rows, report)
        return {'replay_size': rows}
    if case.executable in ('learner', 'segment_learner'):
        version, updates = stopped_line(child)
        state = load_state(output_dir / 'learner.ckpt')
        assert updates > 0 and state['version'] == version and state['extra']['updates'] == updates, \
            (version, updates, state['version'], state['extra'].get('updates'))
        return {'version': version}
    if case.executable == 'parameter_server':
        assert report_of(child, 'PARAMETER_SERVER REPORT')['learner_version'] is not None
    elif case.executable == 'client':
        assert report_of(child, 'CLIENT REPORT')['transitions'] > 0
    elif case.executable == 'controller':
        assert report_of(child, 'CONTROLLER REPORT')['segments_sent'] > 0
    return {}


def check_restart(case: NodeCase, child: ChildProcess, before: dict) -> None:
    """The restarted node picked up the final state the first round left."""
    if case.executable == 'replay_buffer':
        line = child.wait_for_line('restored', TIMEOUT)
        assert f"restored {before['replay_size']} transitions" in line, line
    elif case.executable == 'learner':
        line = child.wait_for_line('learner started', TIMEOUT)
        assert int(re.search(r'version (\d+) next', line).group(1)) > before['version'], line
    elif case.executable == 'segment_learner':
        line = child.wait_for_line('segment learner started', TIMEOUT)
        assert int(re.search(r'version (\d+),', line).group(1)) >= before['version'], line


@pytest.fixture
def starter(request):
    backend = request.param
    return Starter(backend, request.getfixturevalue('ros2_ws') if backend == 'rclpy' else None)


@pytest.mark.slow
@pytest.mark.timeout(420)
@pytest.mark.parametrize('starter', ['cyclone', 'rclpy'], indirect=True)
def test_every_node_stops_cleanly_with_its_final_state(starter, tmp_path):
    domains = {'cloud': fresh_domain_id(), 'edge': fresh_domain_id()}
    folders = {'cloud': tmp_path / 'cloud', 'edge': tmp_path / 'edge'}
    before: dict[int, dict] = {}
    for round_ in (0, 1):
        monitors = {graph: Monitor(domain) for graph, domain in domains.items()}
        children: dict[int, ChildProcess] = {}
        ways = {index: way_for(index, starter.backend, round_) for index in range(len(NODES))}
        try:
            for index, case in enumerate(NODES):
                children[index] = starter.node(case, domains[case.graph], folders[case.graph])
            if round_:
                for index, case in enumerate(NODES):
                    check_restart(case, children[index], before[index])
            monitors['cloud'].wait_until_trained(200, 'the replay buffer holding data and the learner training')
            monitors['edge'].wait_until_trained(None, 'the segment learner training on the controller\'s steps')
            results = stop_all(children, ways)
        finally:
            for child in children.values():
                child.stop()
            for monitor in monitors.values():
                monitor.close()
        print(f'{starter.backend} round {round_}: ' + ', '.join(
            f'{case.graph} {case.name} {ways[index]} -> {results[index][0]} in {results[index][1]} s'
            for index, case in enumerate(NODES)))
        for index, case in enumerate(NODES):
            child, (code, seconds) = children[index], results[index]
            label = f'{case.graph} {case.name} ({starter.backend}, round {round_}, {ways[index]}, {seconds} s)'
            output = '\n'.join(child.lines[-40:])
            assert code == 0, f'{label}: exit code {code}\n{output}'
            assert not any('Traceback' in line for line in child.lines), f'{label}\n{output}'
            assert any(case.final_line in line for line in child.lines), f'{label}: no {case.final_line!r}\n{output}'
            before[index] = check_final_state(case, child, folders[case.graph])


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ros2_launch_graph_stops_cleanly_on_ctrl_c(ros2_ws, tmp_path):
    """Ctrl-C in the terminal of `ros2 launch`: SIGINT to the launch's process group (every node gets
    it from there and again from the launcher); every node finishes cleanly with its final state."""
    domain = fresh_domain_id()
    env = Starter('rclpy', ros2_ws).environment(domain)
    monitor = Monitor(domain)
    launch = ChildProcess(['ros2', 'launch', str(LAUNCH), f'output_dir:={tmp_path}'], env=env)
    try:
        monitor.wait_until_trained(200, 'the launched graph training')
        send(launch, signal.SIGINT)
        try:
            code = launch.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            code = None
    finally:
        launch.stop()
        monitor.close()
    output = '\n'.join(launch.lines)
    assert code == 0, f'ros2 launch exit code {code}\n{output[-6000:]}'
    assert 'Traceback' not in output and 'process has died' not in output, output[-6000:]
    for name in ('replay_buffer', 'learner', 'client'):
        assert re.search(rf'\[{name}-\d+\]: process has finished cleanly', output), (name, output[-6000:])
    report = json.loads(re.search(r'\[replay_buffer-\d+\] REPORT (\{.*\})', output).group(1))
    with np.load(tmp_path / 'replay.npz', allow_pickle=False) as snapshot:
        assert snapshot['rows'].shape[0] == report['replay_size'] > 0
    from dcdrl_learning.checkpoint import load_state
    version, updates = (int(v) for v in re.search(r'learner stopped: version (\d+), (\d+) updates', output).groups())
    state = load_state(tmp_path / 'learner.ckpt')
    assert state['version'] == version and state['extra']['updates'] == updates > 0
