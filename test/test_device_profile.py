"""The device profile (README): a venv with only what a Raspberry Pi installs runs the device's nodes against a cloud
graph from the main venv.

The device venv holds dcdrl_core, dcdrl_ros, dcdrl_learning (no torch extra), dcdrl_sim and dcdrl_edge[camera,face]
with their declared dependencies (and face_recognition with --no-deps), so a missing install_requires or a
torch/gymnasium import on the device fails here. It is built once per set of setup.py files into .device-venv/<hash>
(pip's cache makes a rebuild ~40 s).
"""
import hashlib
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dcdrl_ros import runtime
from dcdrl_ros.testing import ChildProcess, TopicRecorder, loopback_env

pytestmark = [pytest.mark.dds, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ('dcdrl_core', 'dcdrl_ros', 'dcdrl_learning', 'dcdrl_sim', 'dcdrl_edge')
# The README's device profile, as pip arguments (editable: the venv runs this tree's code).
DEVICE_INSTALL = ('-e', 'src/dcdrl_core', '-e', 'src/dcdrl_ros', '-e', 'src/dcdrl_learning',
                  '-e', 'src/dcdrl_sim', '-e', 'src/dcdrl_edge[camera,face]')
FACE_RECOGNITION = 'face-recognition==1.3.0'   # --no-deps: it pins the source dlib (dlib-bin comes with [face])
TIMEOUT = 60.0   # discovery, torch import of the cloud nodes and dlib models on a loaded 2-core machine


def _venv_key() -> str:
    digest = hashlib.sha256(repr((DEVICE_INSTALL, FACE_RECOGNITION, sys.version_info[:2])).encode())
    for package in PACKAGES:
        digest.update((ROOT / 'src' / package / 'setup.py').read_bytes())
    return digest.hexdigest()[:12]


def _pip(python: Path, *args: str) -> None:
    out = subprocess.run([str(python), '-m', 'pip', 'install', '-q', '--disable-pip-version-check', *args],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f'pip install {" ".join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}'


@pytest.fixture(scope='session')
def device_python() -> Path:
    """The device venv's python; built on first use, reused while the setup.py files stay the same."""
    home = ROOT / '.device-venv'
    venv = home / _venv_key()
    python = venv / 'bin' / 'python'
    if not (venv / '.complete').exists():
        shutil.rmtree(home, ignore_errors=True)   # older keys: one device venv on disk at a time
        subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True, timeout=120)
        _pip(python, *DEVICE_INSTALL)
        _pip(python, '--no-deps', FACE_RECOGNITION)
        (venv / '.complete').touch()
    return python


def _device_env(domain: int) -> dict:
    """A child on the loopback domain that sees only the device venv (no source-tree PYTHONPATH)."""
    env = loopback_env(domain)
    env.pop('PYTHONPATH', None)
    return env


def _device_node(python: Path, module: str, name: str, domain: int, config: str, *params: str) -> ChildProcess:
    argv = [str(python), '-m', module, '--ros-args', '-r', f'__node:={name}', '-r', '__ns:=/dcdrl',
            '--params-file', str(ROOT / 'config' / config)]
    for param in params:
        argv += ['-p', param]
    return ChildProcess(argv, env=_device_env(domain), cwd=str(ROOT))


def _cloud_node(module: str, name: str, domain: int, config: str, *params: str) -> ChildProcess:
    argv = [sys.executable, '-m', module, '--ros-args', '-r', f'__node:={name}', '-r', '__ns:=/dcdrl',
            '--params-file', str(ROOT / 'config' / config)]
    for param in params:
        argv += ['-p', param]
    return ChildProcess(argv, env=loopback_env(domain))


def test_the_device_venv_has_neither_torch_nor_gymnasium(device_python):
    code = ('import importlib.util as u, json; '
            'print(json.dumps([u.find_spec(m) is None for m in ("torch", "gymnasium", "dcdrl_edge", "cv2")]))')
    out = subprocess.run([str(device_python), '-c', code], capture_output=True, text=True, timeout=60,
                         env=_device_env(0))
    assert out.stdout.strip() == '[true, true, false, false]', out.stderr


def test_dcdrl_bag_runs_in_the_device_venv(device_python, tmp_path):
    """A pip-only device records and reads bags: dcdrl_ros brings mcap itself (no ros2 bag there)."""
    missing = tmp_path / 'no_bag'
    out = subprocess.run([str(device_python), '-m', 'dcdrl_ros.cli', 'bag', 'info', str(missing)],
                         capture_output=True, text=True, timeout=60, env=_device_env(0))
    assert out.returncode != 0 and 'Traceback' not in out.stderr and str(missing) in out.stderr, out.stderr
    code = 'import dcdrl_ros.bag.reader, dcdrl_ros.bag.writer, dcdrl_ros.bag.recorder'
    out = subprocess.run([str(device_python), '-c', code], capture_output=True, text=True, timeout=60,
                         env=_device_env(0))
    assert out.returncode == 0, out.stderr


def test_the_readme_gives_this_device_profile():
    """The README's device row is the profile this file builds, so its commands are the tested ones."""
    row = next(line for line in (ROOT / 'README.md').read_text().splitlines() if line.startswith('| device'))
    commands = [shlex.split(c)[2:] for c in re.findall(r'`(pip install [^`]*)`', row)]
    assert commands == [list(DEVICE_INSTALL), ['--no-deps', FACE_RECOGNITION]]


class Cloud(TopicRecorder):
    def __init__(self, domain: int) -> None:
        from dcdrl_msgs.msg import LoopStats, OffloadRecord, TrainingStats
        from std_msgs.msg import Float64MultiArray
        super().__init__(domain, namespace='/dcdrl')
        best_effort = runtime.qos_profile_sensor_data
        self.edge_stats = self.record(LoopStats, 'edge/stats', best_effort, lambda m: (m.steps, m.policy_version))
        self.learner_stats = self.record(TrainingStats, 'learner/stats', best_effort, lambda m: m.env_steps)
        self.commands = self.record(Float64MultiArray, 'plant/command', best_effort, lambda m: list(m.data))
        self.records = self.record(OffloadRecord, 'offload_records', runtime.QoSProfile(depth=100),
                                   lambda m: m.header.frame_id)
        self.state_pub = self.node.create_publisher(Float64MultiArray, 'plant/state', best_effort)


def _wait(cloud: Cloud, predicate, what: str, *processes: ChildProcess, timeout: float = TIMEOUT) -> None:
    """cloud.wait_for, failing with the last lines of the nodes involved."""
    try:
        cloud.wait_for(predicate, timeout, what)
    except TimeoutError as exc:
        pytest.fail('\n'.join([str(exc)] + [f'--- {" ".join(p.argv[:3])}\n' + '\n'.join(p.lines[-15:])
                                            for p in processes]), pytrace=False)


def _stop_all(*processes: ChildProcess) -> list:
    return [process.stop(timeout=30.0) for process in processes]


def test_device_controller_trains_with_the_cloud_learner(device_python, domain, tmp_path):
    """Sim plant on the device, segment learner on the cloud: segments go up, the cloud's policy comes down."""
    cloud = Cloud(domain)
    learner = _cloud_node('dcdrl_cloud.segment_learner_node', 'segment_learner', domain, 'cloud_edge.yaml',
                          f'output_dir:={tmp_path}', 'tensorboard:=false', 'device:=cpu', 'publish_period_s:=0.25',
                          'stats_period_s:=0.5')
    controller = _device_node(device_python, 'dcdrl_edge.controller_node', 'controller', domain, 'cloud_edge.yaml',
                              'rate_hz:=150.0', 'sim_rate_hz:=30.0', 'stats_period_s:=0.2')
    try:
        # The learner imports torch and builds its agent first: the longer wait.
        _wait(cloud, lambda: cloud.edge_stats and cloud.edge_stats[-1][1] >= 1, "the cloud's policy on the device",
              learner, controller, timeout=2 * TIMEOUT)
        _wait(cloud, lambda: cloud.learner_stats and cloud.learner_stats[-1] >= 100,
              "the device's transitions in the cloud learner", learner, controller)
    finally:
        codes = _stop_all(controller, learner)
        cloud.close()
    assert codes[0] == 0, '\n'.join(controller.lines[-30:])


def test_device_controller_drives_a_topic_plant(device_python, domain):
    """plant:=topic: the device reads the robot's state topic and commands it (safe action without a policy)."""
    from std_msgs.msg import Float64MultiArray
    cloud = Cloud(domain)
    controller = _device_node(device_python, 'dcdrl_edge.controller_node', 'controller', domain, 'cloud_edge.yaml',
                              'plant:=topic', 'loop_process:=false', 'rate_hz:=50.0', 'stats_period_s:=0.2')
    # The robot: its state at 50 Hz from a timer of the recorder's node (hanging down, at rest).
    hanging = Float64MultiArray(data=[0.0, 0.0, float(np.pi), 0.0])
    cloud.node.create_timer(0.02, lambda: cloud.state_pub.publish(hanging))
    try:
        _wait(cloud, lambda: len(cloud.commands) >= 20, 'commands from the device for the topic plant', controller)
        assert len(cloud.commands) >= 20
        assert all(len(c) == 1 and -1.0 <= c[0] <= 1.0 for c in cloud.commands)
    finally:
        codes = _stop_all(controller)
        cloud.close()
    assert codes[0] == 0, '\n'.join(controller.lines[-30:])


def test_device_camera_and_offload_controller_use_the_edge_server(device_python, domain, tmp_path):
    """Camera and offload controller on the device, face server on the edge host: tasks are offloaded and answered."""
    import cv2
    from skimage import data
    frames = tmp_path / 'frames'
    frames.mkdir()
    cv2.imwrite(str(frames / 'astronaut.jpg'), cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR))
    cloud = Cloud(domain)
    server = _cloud_node('dcdrl_edge.face_server_node', 'face_server', domain, 'face.yaml')
    camera = _device_node(device_python, 'dcdrl_edge.camera_node', 'camera', domain, 'face.yaml',
                          f'source:=images:{frames}', 'width:=320', 'height:=240', 'rate_hz:=2.0',
                          'loop:=true', 'publish_raw:=false')
    offload = _device_node(device_python, 'dcdrl_edge.offload_node', 'offload_controller', domain, 'face.yaml',
                           'policy:=offload', 'device_id:=pi_device_venv')
    try:
        _wait(cloud, lambda: sum(r == 'offloaded' for r in cloud.records) >= 2, 'offloads answered by the edge server',
              offload, camera, server)
    finally:
        codes = _stop_all(offload, camera, server)
        cloud.close()
    assert codes[:2] == [0, 0], '\n'.join(offload.lines[-20:] + camera.lines[-20:])
