"""The cloud-edge workflow over real DDS, in separate processes (edge controller and cloud trainer).

- the controller starts and runs with no cloud (safe action, no segments), refuses weights with
  another architecture, NaN or an old version (keeps the old actor), takes valid ones and streams
  consecutive segments; commands from the cloud change its mode;
- an end-to-end run (controller process + segment_learner process) improves the
  swing-up return;
- the launch files of the workflow resolve.
"""
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dcdrl_ros import runtime
from dcdrl_ros.runtime.qos import qos_profile_transient_local
from dcdrl_ros.testing import ChildProcess, TopicRecorder, node_process

pytestmark = [pytest.mark.dds, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / 'config' / 'cloud_edge.yaml'
TIMEOUT = 90.0  # generous: torch imports and discovery on a loaded 2-core machine
DCDRL = [sys.executable, '-m', 'dcdrl_ros.cli']



def _run(package: str, executable: str, name: str, domain: int, *params: str) -> ChildProcess:
    return node_process(package, executable, name, domain, CONFIG, *params)


class EdgeMonitor(TopicRecorder):
    def __init__(self, domain: int) -> None:
        from dcdrl_msgs.msg import EdgeCommand, LoopStats, PolicyWeights, TrainingStats, TrajectorySegment
        super().__init__(domain, namespace='/dcdrl')
        best_effort = runtime.qos_profile_sensor_data
        self.stats = self.record(LoopStats, 'edge/stats', best_effort)
        self.segments = self.record(TrajectorySegment, 'segments', runtime.QoSProfile(depth=1000),
                                    lambda m: (m.sequence, m.episode, m.policy_version, m.flags))
        self.learner_stats = self.record(TrainingStats, 'learner/stats', best_effort)
        self.policy_pub = self.node.create_publisher(PolicyWeights, 'policy', qos_profile_transient_local)
        self.command_pub = self.node.create_publisher(EdgeCommand, 'edge/command', runtime.QoSProfile(depth=10))

    def latest(self):
        return self.stats[-1] if self.stats else None

    def wait_stats(self, predicate, what: str, timeout: float = TIMEOUT) -> None:
        self.wait_for(lambda: self.stats and predicate(self.stats[-1]), timeout, what)


def _actor_payload(version: int, preset: str = 'cloud_edge', nan: bool = False, seed: int = 0):
    from dcdrl_learning.codec import make_payload
    from dcdrl_learning.inference import actor_shapes
    from dcdrl_learning.networks import architecture_id, network_config
    config = network_config(preset)
    shapes = actor_shapes(config, 10, 1)
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(0, 0.1, shape).astype(np.float32) for shape in shapes.values()]
    if nan:
        arrays[0][0] = np.nan
    return make_payload(architecture_id(config, 10, 1), version, shapes.keys(), shapes.values(), arrays)


def _weights_message(payload):
    from dcdrl_learning.weights_msg import fill_weights

    from dcdrl_msgs.msg import PolicyWeights, Tensor
    return fill_weights(PolicyWeights(), payload, Tensor, producer='test')


def test_protocol_constants_are_the_generated_message_constants():
    """src/dcdrl_core/test/test_protocol.py checks protocol.py against the .msg text; this, against the
    classes the running backend generated from it."""
    from dcdrl_core.protocol import EdgeCommandKind, LoopMode, SegmentFlag

    from dcdrl_msgs.msg import EdgeCommand, LoopStats, TrajectorySegment
    for enum, message, prefix in ((EdgeCommandKind, EdgeCommand, ''), (SegmentFlag, TrajectorySegment, 'FLAG_'),
                                  (LoopMode, LoopStats, 'MODE_')):
        for member in enum:
            assert getattr(message, prefix + member.name) == member.value, (message, member)


@pytest.mark.parametrize('loop_process', [False, True], ids=['loop-thread', 'loop-process'])
def test_controller_without_cloud_refuses_bad_weights_and_takes_good_ones(domain, loop_process):
    from dcdrl_msgs.msg import EdgeCommand, LoopStats
    monitor = EdgeMonitor(domain)
    controller = _run('dcdrl_edge', 'controller', 'controller', domain, 'rate_hz:=200.0', 'device_id:=edge_t',
                      'stats_period_s:=0.2', f'loop_process:={str(loop_process).lower()}')
    try:
        # No cloud: it starts, runs at its rate on the safe action and streams nothing.
        monitor.wait_stats(lambda s: s.steps >= 100, 'controller running without a cloud')
        stats = monitor.latest()
        assert stats.mode == LoopStats.MODE_FALLBACK and stats.policy_version == 0
        assert stats.device_id == 'edge_t' and stats.rate_hz == 200.0
        assert monitor.segments == []

        # Another architecture: refused, still no actor.
        monitor.policy_pub.publish(_weights_message(_actor_payload(5, preset='dcdrl')))
        monitor.wait_stats(lambda s: s.weights_rejected >= 1, 'wrong architecture refused')
        assert monitor.latest().policy_version == 0

        # Valid weights: swapped in, segments flow, consecutive, stamped with the version.
        monitor.policy_pub.publish(_weights_message(_actor_payload(3)))
        monitor.wait_stats(lambda s: s.policy_version == 3 and s.mode == LoopStats.MODE_TRAIN, 'weights taken')
        monitor.wait_for(lambda: len(monitor.segments) >= 50, TIMEOUT, 'segments streamed')
        with monitor.changed:
            received = list(monitor.segments)
        sequences = [s[0] for s in received]
        assert sequences == list(range(sequences[0], sequences[0] + len(sequences)))
        assert {s[2] for s in received} == {3}

        # NaN and an older version: refused, the actor of version 3 stays.
        monitor.policy_pub.publish(_weights_message(_actor_payload(4, nan=True)))
        monitor.wait_stats(lambda s: s.weights_rejected >= 2, 'NaN weights refused')
        monitor.policy_pub.publish(_weights_message(_actor_payload(2, seed=1)))
        monitor.wait_stats(lambda s: s.weights_rejected >= 3, 'old version refused')
        assert monitor.latest().policy_version == 3
        steps_before = monitor.latest().steps
        monitor.wait_stats(lambda s: s.steps >= steps_before + 40, 'loop still running')

        # Commands from the cloud: HOLD stops episodes (safe action), RESUME restarts them.
        monitor.command_pub.publish(EdgeCommand(command=EdgeCommand.HOLD, sequence=1))
        monitor.wait_stats(lambda s: s.mode == LoopStats.MODE_HOLD, 'HOLD taken')
        monitor.command_pub.publish(EdgeCommand(command=EdgeCommand.RESUME, sequence=2))
        monitor.wait_stats(lambda s: s.mode == LoopStats.MODE_TRAIN, 'RESUME taken')
    finally:
        code = controller.stop()
        monitor.close()
    assert code == 0, '\n'.join(controller.lines)
    report = json.loads(re.search(r'CONTROLLER REPORT (\{.*\})', '\n'.join(controller.lines)).group(1))
    assert report['weights_rejected'] == 3 and report['weights_swapped'] >= 1
    assert report['segments_sent'] >= 50
    if loop_process:   # the loop process ended cleanly when the node stopped it
        assert report['loop_process_exitcode'] == 0
        assert 'leaked' not in '\n'.join(controller.lines)


def _mean_return(payload, episodes: int, **env_kwargs) -> float:
    """Mean return of the actor in `payload` on the simulated plant, same start states for every actor."""
    from dcdrl_learning.inference import NumpyActor
    from dcdrl_sim.cartpole.env import CartPoleSwingUpEnv
    from dcdrl_sim.evaluation import evaluate_policy
    actor = NumpyActor.from_payload(payload, 'cloud_edge', 10, 1)
    return evaluate_policy(CartPoleSwingUpEnv(**env_kwargs), actor, episodes, seed=10_000).summary['return']


MAX_UPDATES = 40_000     # the run's cap: the slowest of 11 measured runs needed 17,381 (docs/decisions.md)
JUDGE_EVERY = 8          # policy versions between two judged policies (2 s at the 0.25 s publish period)
MARGIN = 20.0            # a policy that pumps the pole up, not one that holds still (docs/decisions.md)
IMPROVED_POLICIES = 2    # judged policies that must beat the first by MARGIN: not one lucky version


@pytest.mark.timeout(720)
def test_end_to_end_learning_improves_the_swing_up_return(domain, tmp_path):
    """Controller process (150 Hz loop over the 30 Hz plant: 5x real time) + segment_learner process,
    from scratch. While it trains, every 8th policy version is judged by its mean
    return over the same 10 start states (hanging down) on the simulated plant; the run improves the
    swing-up return when two of them beat the first policy by 20, within 40,000 gradient updates. Single
    evaluation episodes are too noisy, and DDPG's policy swings from version to version (what keeping
    the best weights is for), so no single version at a fixed update count is judged. The learner
    does not stop at convergence here: a HOLD would stall the updates."""
    from dcdrl_learning.weights_msg import read_weights

    from dcdrl_msgs.msg import PolicyWeights
    monitor = EdgeMonitor(domain)
    policies = monitor.record(PolicyWeights, 'policy', qos_profile_transient_local, read_weights)
    learner = _run('dcdrl_cloud', 'segment_learner', 'segment_learner', domain, f'output_dir:={tmp_path}',
                   'critic_start:=1000', 'actor_start:=2000', 'eval_every_episodes:=5', 'publish_period_s:=0.25',
                   'stats_period_s:=0.5', 'tensorboard:=false', 'seed:=1', 'device:=cpu',
                   'stop_when_converged:=false')
    controller = _run('dcdrl_edge', 'controller', 'controller', domain, 'rate_hz:=150.0', 'sim_rate_hz:=30.0',
                      'seed:=1')
    plant = dict(integrator='euler')
    judged: dict[int, float] = {}

    def updates() -> int:
        return monitor.learner_stats[-1].updates if monitor.learner_stats else 0

    def improved() -> list[float]:
        return [value for value in judged.values() if value > before + MARGIN]

    try:
        monitor.wait_for(lambda: policies, TIMEOUT, 'the first policy')
        first_policy = policies[0]
        before = _mean_return(first_policy, 10, **plant)
        deadline = time.monotonic() + 540.0   # 40,000 updates at 75/s
        while len(improved()) < IMPROVED_POLICIES:
            last_judged = max(judged, default=first_policy.version)
            monitor.wait_for(lambda last_judged=last_judged: (policies[-1].version >= last_judged + JUDGE_EVERY
                                                              or updates() >= MAX_UPDATES),
                             max(0.0, deadline - time.monotonic()), 'the next policy to judge')
            if updates() >= MAX_UPDATES:
                break
            with monitor.changed:
                payload = policies[-1]
            judged[payload.version] = round(_mean_return(payload, 10, **plant), 1)
        last = monitor.learner_stats[-1]
    finally:
        controller.stop()
        learner.stop()
        monitor.close()
    print(f'mean return over 10 episodes: first policy {before:.1f}; judged policies {judged} '
          f'({last.updates} updates, {last.env_steps} transitions)')
    assert first_policy.version == 1 and last.rejected_batches == 0
    assert last.env_steps >= last.updates   # one update per transition at most (the learner's default)
    assert len(improved()) >= IMPROVED_POLICIES, \
        f'{len(improved())} judged policies beat the first by {MARGIN} in {MAX_UPDATES} updates'


@pytest.mark.parametrize('launch_file,package', [
    ('edge.launch.yaml', 'dcdrl_edge'), ('cloud_edge.launch.yaml', 'dcdrl_cloud'),
    ('cartpole_pretrain.launch.yaml', 'dcdrl_cloud'), ('cartpole_finetune.launch.yaml', 'dcdrl_cloud')])
def test_workflow_launch_files_resolve(launch_file, package):
    result = subprocess.run([*DCDRL, 'launch', '--print', str(ROOT / 'launch' / launch_file)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    if 'pretrain' in launch_file or 'finetune' in launch_file:
        assert 'dcdrl_cloud segment_learner' in result.stdout and 'dcdrl_edge controller' in result.stdout


def test_scope_draws_the_controllers_steps_headless(domain, tmp_path):
    from dcdrl_ros.msg_arrays import set_array

    from dcdrl_msgs.msg import TrajectorySegment
    monitor = EdgeMonitor(domain)
    publisher = monitor.node.create_publisher(TrajectorySegment, 'segments', runtime.QoSProfile(depth=100))
    output = tmp_path / 'scope.png'
    scope = _run('dcdrl_cloud', 'scope', 'scope', domain, f'output:={output}', 'window:=false',
                 'refresh_period_s:=0.2')
    try:
        scope.wait_for_line('scope started', TIMEOUT)
        line = ''
        for k in range(2000):  # until the scope has drawn one frame with data (it logs that once)
            message = TrajectorySegment(device_id='edge_t', sequence=k, episode=1, policy_version=1)
            set_array(message, 'observation', np.array([0.01 * k, 0, 0, 1, 0, 0, 0, 0, 0, 0]), np.float32)
            set_array(message, 'action', np.array([0.5]), np.float32)
            publisher.publish(message)
            try:
                line = scope.wait_for_line('first frame with data', 0.05)
                break
            except TimeoutError:
                continue
        assert 'first frame with data' in line
    finally:
        code = scope.stop()
        monitor.close()
    assert code == 0
    assert output.read_bytes()[:4] == b'\x89PNG'


def test_config_file_sets_only_declared_parameters_with_their_type():
    """config/cloud_edge.yaml is where users change numbers: what it sets (only values that differ from
    the defaults, test_parameter_docs) are fields of the nodes' parameters, typed as declared."""
    from dataclasses import fields

    import yaml

    from dcdrl_cloud.segment_config import SegmentLearnerParameters
    from dcdrl_edge.controller_parameters import ControllerParameters
    config = yaml.safe_load(CONFIG.read_text()) or {}   # comments only: every value at its default
    blocks = (('/**/controller', ControllerParameters), ('/**/segment_learner', SegmentLearnerParameters))
    for block, dataclass in blocks:
        defaults = {spec.name: spec.default for spec in fields(dataclass)}
        for name, value in config.get(block, {}).get('ros__parameters', {}).items():
            assert name in defaults and type(value) is type(defaults[name]), (block, name, value)
