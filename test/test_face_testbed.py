"""The face-recognition offloading testbed over real DDS, in separate processes.

- the controller (mode offload) keeps deciding while there is no edge server, while one serves, and
  after it is killed: every task ends in an OffloadRecord, failed offloads run locally and are
  counted as fallen back;
- end to end on one machine (face_all.launch.yaml: camera, controller, face_server, replay_buffer,
  learner): experience reaches the replay buffer, both decisions occur, the controller's report has
  latency per mode;
- the four launch files resolve.

Frames are 320x240 (recognition ~0.2 s here, against ~0.5 s for 640x480).
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dcdrl_ros import runtime
from dcdrl_ros.testing import ChildProcess, TopicRecorder, loopback_env, node_process

pytestmark = [pytest.mark.dds, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'config' / 'face.yaml'
TIMEOUT = 60.0  # generous for a loaded 2-core machine (torch import, dlib models); waits end at their condition
DCDRL = [sys.executable, '-m', 'dcdrl_ros.cli']
SMALL = ('width:=320', 'height:=240')



def _run(package: str, executable: str, name: str, domain: int, *params: str) -> ChildProcess:
    return node_process(package, executable, name, domain, CONFIG, *params)


def _report(process: ChildProcess, tag: str) -> dict:
    match = re.search(tag + r' (\{.*\})', '\n'.join(process.lines))
    assert match, f'no {tag} line in:\n' + '\n'.join(process.lines[-30:])
    return json.loads(match.group(1))


class Records(TopicRecorder):
    def __init__(self, domain: int) -> None:
        from dcdrl_msgs.msg import OffloadRecord, ReplayStats
        super().__init__(domain, namespace='/dcdrl')
        self.records = self.record(OffloadRecord, 'offload_records', runtime.QoSProfile(depth=100),
                                   lambda m: (int(m.task_id), int(m.decision), bool(m.fell_back), m.header.frame_id,
                                              float(m.latency_s), len(m.observation)))
        self.replay = self.record(ReplayStats, 'replay/stats', runtime.qos_profile_sensor_data)

    def count(self, predicate) -> int:
        return sum(1 for r in self.records if predicate(r))

    def wait_count(self, predicate, at_least: int, what: str, timeout: float = TIMEOUT) -> None:
        self.wait_for(lambda: self.count(predicate) >= at_least, timeout, what)


def test_controller_keeps_deciding_without_a_server_and_falls_back_to_local(domain):
    monitor = Records(domain)
    camera = _run('dcdrl_edge', 'camera', 'camera', domain, *SMALL, 'rate_hz:=2.0', 'publish_raw:=false')
    controller = _run('dcdrl_edge', 'offload_controller', 'offload_controller', domain, 'policy:=offload',
                      'device_id:=pi_t', 'experience_batch_size:=4')
    server = None
    try:
        # No edge server: every offload falls back (no_server) and the task is recognised locally,
        # or dropped when the worker's queue is full (the first recognitions are slow).
        monitor.wait_count(lambda r: r[3] == 'fell_back', 6, 'tasks run locally without a server')
        with monitor.changed:
            early = list(monitor.records)
        assert all(r[1] == 1 and r[2] and r[3] in ('fell_back', 'dropped') and r[5] == 8 for r in early), early

        # A server appears: offloads are answered.
        server = _run('dcdrl_edge', 'face_server', 'face_server', domain)
        monitor.wait_count(lambda r: r[3] == 'offloaded' and not r[2], 3, 'offloads answered by the server')

        # The server dies (no clean goodbye): offloads time out or find no server, the device goes on.
        server.process.kill()
        server.process.wait(10)
        answered = monitor.count(lambda r: r[3] == 'offloaded')
        finished = len(monitor.records)
        monitor.wait_count(lambda r: r[3] == 'fell_back', monitor.count(lambda r: r[3] == 'fell_back') + 5,
                           'fallbacks after the server was killed')
        assert len(monitor.records) > finished + 4
        assert monitor.count(lambda r: r[3] == 'offloaded') <= answered + 2   # at most the replies under way
    finally:
        code = controller.stop(timeout=30.0)
        camera.stop()
        if server is not None:
            server.stop()
        monitor.close()
    assert code == 0, '\n'.join(controller.lines[-30:])
    report = _report(controller, 'OFFLOAD REPORT')
    assert report['device_id'] == 'pi_t' and report['policy'] == 'offload'
    assert report['decided'] == {'local': 0, 'offload': report['tasks']}
    assert report['ran']['fell_back'] >= 6
    assert report['fell_back_by_reason']['no_server'] >= 6
    assert report['ran']['offloaded'] >= 3 and report['latency']['offloaded']['count'] >= 3
    assert report['latency']['fell_back']['p95_s'] > 0 and report['callback_errors'] == 0
    task_ids = sorted(r[0] for r in monitor.records)
    assert len(set(task_ids)) == len(task_ids) == report['finished']   # one record per finished task
    assert report['tasks'] - report['finished'] == report['unfinished'] <= 2   # in flight at shutdown
    assert report['experience']['transitions'] >= len(task_ids) - 4


def test_end_to_end_on_one_machine_produces_experience_and_a_latency_report(domain, tmp_path):
    params = yaml.safe_load(CONFIG.read_text())
    params['/**/offload_controller'] = {'ros__parameters': {'experience_batch_size': 4, 'progress_period_s': 0.0}}
    params['/**/learner']['ros__parameters'].update(tensorboard=False, eval_period_s=0.0, final_eval_episodes=1)
    params_file = tmp_path / 'face.yaml'
    params_file.write_text(yaml.safe_dump(params))
    monitor = Records(domain)
    launch = ChildProcess([*DCDRL, 'launch', str(ROOT / 'launch' / 'face_all.launch.yaml'), 'policy:=random',
                           'rate_hz:=4.0', 'width:=320', 'height:=240', f'output_dir:={tmp_path / "run"}',
                           f'params_file:={params_file}'], env=loopback_env(domain))
    try:
        monitor.wait_count(lambda r: r[3] == 'offloaded', 3, 'tasks offloaded to the face_server', timeout=90.0)
        monitor.wait_count(lambda r: r[3] == 'local', 3, 'tasks recognised locally')
        monitor.wait_for(lambda: monitor.replay and monitor.replay[-1].size >= 8, TIMEOUT,
                         'experience in the replay buffer')
    finally:
        code = launch.stop(timeout=40.0)
        monitor.close()
    output = '\n'.join(launch.lines)
    assert code == 0, output[-3000:]
    report = _report(launch, 'OFFLOAD REPORT')
    assert report['decided']['local'] >= 3 and report['decided']['offload'] >= 3
    for mode in ('local', 'offloaded'):
        latency = report['latency'][mode]
        assert latency['count'] >= 3 and 0 < latency['p50_s'] <= latency['p95_s'], (mode, latency)
    assert set(report['latency']) == {'local', 'offloaded', 'fell_back'}
    replay = _report(launch, r'\[replay_buffer-1\] REPORT')
    assert replay['clients']['device_0']['transitions'] >= 8 and replay['rejected'] == 0
    server = _report(launch, 'FACE_SERVER REPORT')
    assert server['answered'] >= report['ran']['offloaded']


def test_a_bad_offload_parameter_stops_the_controller_with_one_line(domain):
    controller = _run('dcdrl_edge', 'offload_controller', 'offload_controller', domain, 'policy:=smart')
    try:
        code = controller.process.wait(TIMEOUT)
    finally:
        controller.stop()
    assert code == 2
    assert any('[FATAL]' in line and 'policy must be one of' in line for line in controller.lines), controller.lines


@pytest.mark.parametrize('name', ['face_device', 'face_edge_server', 'face_cloud', 'face_all'])
def test_face_launch_files_resolve(name):
    result = subprocess.run([*DCDRL, 'launch', '--print', str(ROOT / 'launch' / f'{name}.launch.yaml')],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    expected = {'face_device': ['dcdrl_edge camera', 'dcdrl_edge offload_controller'],
                'face_edge_server': ['dcdrl_edge face_server'],
                'face_cloud': ['dcdrl_cloud replay_buffer', 'dcdrl_cloud learner'],
                'face_all': ['dcdrl_edge camera', 'dcdrl_edge offload_controller', 'dcdrl_edge face_server',
                             'dcdrl_cloud replay_buffer', 'dcdrl_cloud learner']}[name]
    for command in expected:
        assert command in result.stdout, result.stdout
    assert '__ns:=/dcdrl' in result.stdout and 'face.yaml' in result.stdout
    assert 'mode:=' not in result.stdout   # the offload controller is its own executable, without a mode
