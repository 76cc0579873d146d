"""The training graph over real DDS, in separate processes (distributed collective training).

- the full graph from the launch file: experience reaches the buffer, weights reach clients,
  versions increase, a late client gets the current policy at once, the policy improves, and the
  launch ends by itself after duration_s, every process cleanly;
- collective mode: generations are merged and clients decide pulls by the rule;
- a client killed mid-run: the learner and the other client go on; a restarted client rejoins;
- learner and replay buffer restarted: versions continue upward, the replay is restored.
"""
import json
import os
import re
import signal
import sys
from pathlib import Path

import pytest

from dcdrl_ros import runtime
from dcdrl_ros.runtime.qos import qos_profile_transient_local
from dcdrl_ros.testing import ChildProcess, TopicRecorder, loopback_env, node_process

pytestmark = [pytest.mark.dds, pytest.mark.slow]
FAST = Path(__file__).parent / 'fixtures' / 'train_fast.yaml'
TIMEOUT = 120.0  # generous: torch imports and discovery on a loaded 2-core machine
DCDRL = [sys.executable, '-m', 'dcdrl_ros.cli']


class Monitor(TopicRecorder):
    """Records what flows on the graph's topics (policy versions, experience, stats)."""

    def __init__(self, domain: int) -> None:
        from dcdrl_msgs.msg import ExperienceBatch, PolicyWeights, ReplayStats, TrainingStats
        super().__init__(domain, namespace='/dcdrl')
        best_effort = runtime.qos_profile_sensor_data  # how the nodes publish their stats
        self.policy_versions = self.record(PolicyWeights, 'policy', qos_profile_transient_local, lambda m: m.version)
        self.experience = self.record(ExperienceBatch, 'experience', runtime.QoSProfile(depth=100),
                                      lambda m: (m.client_id, m.sequence, m.policy_version))
        self.replay_sizes = self.record(ReplayStats, 'replay/stats', best_effort, lambda m: m.size)
        self.learner_updates = self.record(TrainingStats, 'learner/stats', best_effort, lambda m: m.updates)

    def wait_for(self, predicate, timeout: float = TIMEOUT, what: str = 'condition') -> None:
        super().wait_for(predicate, timeout, what)


def _run(package: str, executable: str, name: str, domain: int, output_dir: Path, *params: str) -> ChildProcess:
    if executable != 'client':   # clients write no files and declare no output_dir (an unknown -p stops a node)
        params = (f'output_dir:={output_dir}', *params)
    return node_process(package, executable, name, domain, FAST, *params)



def test_full_graph_from_the_launch_file(domain, tmp_path):
    monitor = Monitor(domain)
    launch = ChildProcess([*DCDRL, 'launch', 'dcdrl_cloud', 'train.launch.yaml', f'params_file:={FAST}',
                           f'output_dir:={tmp_path}', 'duration_s:=45.0', 'num_clients:=2'], env=loopback_env(domain))
    late = None
    try:
        # experience from both clients reaches the buffer
        monitor.wait_for(lambda: {c for c, _, _ in monitor.experience} >= {'client_0', 'client_1'},
                         what='experience from both clients')
        monitor.wait_for(lambda: monitor.replay_sizes and monitor.replay_sizes[-1] > 0, what='replay filling')
        # versions increase, and clients act with them
        monitor.wait_for(lambda: len(set(monitor.policy_versions)) >= 3, what='three policy versions')
        assert monitor.policy_versions == sorted(monitor.policy_versions)
        monitor.wait_for(lambda: any(v > 0 for _, _, v in monitor.experience), what='experience from a policy')
        # a late client gets the current policy at once (transient-local): its batches carry it soon
        current = monitor.policy_versions[-1]
        late = _run('dcdrl_sim', 'client', 'client_late', domain, tmp_path, 'client_id:=client_late', 'seed:=77')
        late.wait_for_line('ready for weights', TIMEOUT)  # its torch part is built; it streamed random actions so far
        late_batches = lambda: [v for c, _, v in monitor.experience if c == 'client_late']  # noqa: E731
        ready_at = len(late_batches())
        monitor.wait_for(lambda: any(v >= current for v in late_batches()),
                         what='the late client acting with the current policy')
        first_with_policy = next(i for i, v in enumerate(late_batches()) if v >= current)
        assert first_with_policy - ready_at <= 5  # at once: no wait for the next publication
        late.stop()
        line = launch.wait_for_line('TRAINING DONE', TIMEOUT + 45)
        launch.process.wait(TIMEOUT)  # the learner exits after TRAINING DONE and the launch stops the rest
    finally:
        if late is not None:
            late.stop()
        launch.stop(timeout=30)
        monitor.close()
    started = re.findall(r'^\[INFO\] \[([\w-]+)\]: process started', '\n'.join(launch.lines), re.M)
    assert len(started) == 5 and launch.process.returncode == 0, '\n'.join(launch.lines[-30:])
    assert all(f'[INFO] [{label}]: process has finished cleanly' in '\n'.join(launch.lines) for label in started)
    done = json.loads(line.split('TRAINING DONE ', 1)[1])
    assert done['version'] > 3 and done['rejected_batches'] == 0
    # the policy improved over the initial one: first evaluation (version 1) vs the final table
    evaluation = json.loads((tmp_path / 'evaluation.json').read_text())
    learned = next(r for r in evaluation['rows'] if r['policy'] == 'learned')
    initial = _first_scalar(tmp_path, 'eval/cost')
    assert learned['cost'] < initial, (learned['cost'], initial)
    assert not any('Traceback' in line for line in launch.lines), '\n'.join(launch.lines[-50:])


def _first_scalar(output_dir: Path, tag: str) -> float:
    csv_path = next(output_dir.glob('*/scalars.csv'))
    for row in csv_path.read_text().splitlines()[1:]:
        _, step, name, value = row.split(',')
        if name == tag:
            return float(value)
    raise AssertionError(f'no {tag} in {csv_path}')


def test_collective_generations_and_pull_rule(domain, tmp_path):
    nodes = [_run('dcdrl_cloud', 'replay_buffer', 'replay_buffer', domain, tmp_path),
             _run('dcdrl_cloud', 'parameter_server', 'parameter_server', domain, tmp_path,
                  'expected_models:=2', 'generation_timeout_s:=20.0')]
    clients = [_run('dcdrl_sim', 'client', f'client_{k}', domain, tmp_path, f'client_id:=client_{k}',
                    f'seed:={k + 5}', 'mode:=collective', 'generation_steps:=300', 'learning_starts:=200')
               for k in range(2)]
    try:
        nodes[1].wait_for_line('generation 1 merged', TIMEOUT)
        decisions = [c.wait_for_line('merged generation 1:', TIMEOUT) for c in clients]
    finally:
        for process in clients + nodes:
            process.stop()
    rows = (tmp_path / 'generations.csv').read_text().strip().splitlines()
    assert len(rows) >= 2  # header + generation 1
    for decision in decisions:  # "merged generation 1: pull (merged A > own B ...)" or "no pull (merged A <= own B"
        match = re.search(r'(no pull|pull) \(merged (-?[\d.]+) (>|<=) own (-?[\d.]+)', decision)
        assert match, decision
        assert (match.group(1) == 'pull') == (match.group(3) == '>'), decision  # pull_margin 0


def test_client_killed_and_restarted_while_the_learner_goes_on(domain, tmp_path):
    monitor = Monitor(domain)
    replay = _run('dcdrl_cloud', 'replay_buffer', 'replay_buffer', domain, tmp_path)
    learner = _run('dcdrl_cloud', 'learner', 'learner', domain, tmp_path, 'duration_s:=0.0')
    clients = {k: _run('dcdrl_sim', 'client', f'client_{k}', domain, tmp_path, f'client_id:=client_{k}',
                       f'seed:={k}') for k in range(2)}
    try:
        monitor.wait_for(lambda: monitor.learner_updates and monitor.learner_updates[-1] > 0, what='training')
        os.kill(clients[0].pid, signal.SIGKILL)  # no clean-up at all
        clients[0].process.wait(TIMEOUT)
        updates_at_kill = monitor.learner_updates[-1]
        seen = len(monitor.experience)
        monitor.wait_for(lambda: monitor.learner_updates[-1] > updates_at_kill + 20, what='learner going on')
        monitor.wait_for(lambda: any(c == 'client_1' for c, _, _ in monitor.experience[seen:]),
                         what='the other client going on')
        clients[0] = _run('dcdrl_sim', 'client', 'client_0', domain, tmp_path, 'client_id:=client_0', 'seed:=0')
        seen = len(monitor.experience)
        monitor.wait_for(lambda: any(c == 'client_0' and v > 0 for c, _, v in monitor.experience[seen:]),
                         what='the restarted client acting with the policy')
    finally:
        for process in [*clients.values(), learner, replay]:
            process.stop()
        monitor.close()
    report = next(json.loads(line.split('REPORT ', 1)[1]) for line in replay.lines if line.startswith('REPORT '))
    assert report['clients']['client_0']['restarts'] >= 1 and report['rejected'] == 0


def test_learner_and_replay_restart_continue_versions_and_data(domain, tmp_path):
    monitor = Monitor(domain)
    replay = _run('dcdrl_cloud', 'replay_buffer', 'replay_buffer', domain, tmp_path)
    learner = _run('dcdrl_cloud', 'learner', 'learner', domain, tmp_path, 'duration_s:=0.0')
    client = _run('dcdrl_sim', 'client', 'client_0', domain, tmp_path, 'client_id:=client_0')
    restarted = []
    try:
        monitor.wait_for(lambda: len(set(monitor.policy_versions)) >= 3, what='three versions')
        # SIGINT: final checkpoint / snapshot. The time-out is generous: under load writing them can
        # take longer than stop()'s default 10 s, and a SIGKILL would leave nothing to resume from.
        assert learner.stop(TIMEOUT) == 0, learner.lines[-20:]
        last_version = max(monitor.policy_versions)
        assert replay.stop(TIMEOUT) == 0, replay.lines[-20:]
        stored = next(json.loads(line.split('REPORT ', 1)[1]) for line in replay.lines if line.startswith('REPORT '))
        replay = _run('dcdrl_cloud', 'replay_buffer', 'replay_buffer', domain, tmp_path)
        learner = _run('dcdrl_cloud', 'learner', 'learner', domain, tmp_path, 'duration_s:=0.0')
        restarted = [replay, learner]
        learner.wait_for_line('resumed from', TIMEOUT)
        monitor.wait_for(lambda: max(monitor.policy_versions) > last_version, what='a newer version')
        monitor.wait_for(lambda: monitor.replay_sizes and monitor.replay_sizes[-1] >= stored['replay_size'],
                         what='the restored replay')
    finally:
        for process in [client, *restarted, learner, replay]:
            process.stop()
        monitor.close()
    assert min(v for v in monitor.policy_versions if v > last_version) == last_version + 1
    assert any('restored' in line for line in replay.lines), replay.lines[-20:]
