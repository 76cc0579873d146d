"""The learner node as a process on a loopback DDS domain; this test plays the replay buffer.

It answers SampleRequests with random MEC-sized SampledBatches and checks that versioned weights
(decodable for the expected architecture) and TrainingStats come back, that a bad batch is
counted while training goes on, and that a restarted learner resumes with a higher version and
ends with the TRAINING DONE line.
"""
import json
import time

import numpy as np
import pytest

from dcdrl_learning.codec import decode_weights
from dcdrl_learning.inference import actor_shapes
from dcdrl_learning.networks import architecture_id, network_config
from dcdrl_learning.weights_msg import read_weights
from dcdrl_ros import runtime
from dcdrl_ros.cli import find_executable
from dcdrl_ros.msg_arrays import set_array
from dcdrl_ros.runtime.qos import qos_profile_transient_local
from dcdrl_ros.testing import fresh_domain_id, python_child

pytestmark = pytest.mark.dds
TIMEOUT = 60.0  # generous: a loaded 2-core machine, torch import and agent construction in the child
OBS, ACT, BATCH = 73, 20, 16  # dcdrl_sim/MecOffload-v0 (N = 10 users), set below
ARCH = architecture_id(network_config('dcdrl'), OBS, ACT)
SHAPES = actor_shapes(network_config('dcdrl'), OBS, ACT)


def learner_command(output_dir, *params):
    """`dcdrl run dcdrl_cloud learner` (module form when the installed metadata predates the entry point)."""
    try:
        find_executable('dcdrl_cloud', 'learner')
        start = ['-m', 'dcdrl_ros.cli', 'run', 'dcdrl_cloud', 'learner']
    except LookupError:
        start = ['-m', 'dcdrl_cloud.learner_node']
    settings = ['env_id:=dcdrl_sim/MecOffload-v0', f'output_dir:={output_dir}',
                'tensorboard:=false', 'progress_period_s:=0.0', f'batch_size:={BATCH}',
                'publish_every_updates:=5', 'stats_period_s:=0.5', 'eval_period_s:=1.0', 'eval_episodes:=1',
                'final_eval_episodes:=1', 'oracle_episodes:=1', 'checkpoint_period_s:=0.0', 'actor_start:=0',
                *params]
    args = ['--ros-args', '-r', '__ns:=/dcdrl']
    for setting in settings:
        args += ['-p', setting]
    return start + args


class FakeReplay:
    """Serves every credit with a random valid batch; records weights and stats."""

    def __init__(self, context):
        from dcdrl_msgs.msg import PolicyWeights, SampledBatch, SampleRequest, TrainingStats
        self.SampledBatch = SampledBatch
        self.node = runtime.Node('fake_replay', namespace='/dcdrl', context=context)
        self.executor = runtime.SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        def reliable(depth):
            return runtime.QoSProfile(depth=depth, reliability=runtime.ReliabilityPolicy.RELIABLE)
        self.batch_pub = self.node.create_publisher(SampledBatch, 'replay/batches', reliable(64))
        self.node.create_subscription(SampleRequest, 'replay/sample_requests', self.on_request, reliable(100))
        self.node.create_subscription(PolicyWeights, 'policy', self.weights_append, qos_profile_transient_local)
        self.node.create_subscription(TrainingStats, 'learner/stats', self.stats_append,
                                      runtime.QoSProfile(depth=5, reliability=runtime.ReliabilityPolicy.BEST_EFFORT))
        self.credits, self.sequence = 0, 0
        self.requests, self.weights, self.stats = [], [], []
        self.rng = np.random.default_rng(0)

    def on_request(self, message):
        self.requests.append((message.requester, message.batches, message.batch_size))
        self.credits += message.batches

    def weights_append(self, message):
        self.weights.append(message)

    def stats_append(self, message):
        self.stats.append(message)

    def batch(self, requester='learner', bad=False):
        b, rng = BATCH, self.rng
        message = self.SampledBatch(requester=requester, sequence=self.sequence, batch_size=b, obs_dim=OBS,
                                    action_dim=ACT, replay_size=5000)
        rewards = -rng.random(b)
        if bad:
            rewards[3] = np.nan
        for name, values in (('obs', rng.random(b * OBS)), ('actions', rng.uniform(-1, 1, b * ACT)),
                             ('rewards', rewards), ('next_obs', rng.random(b * OBS)),
                             ('discounts', np.full(b, 0.9)), ('weights', np.ones(b))):
            set_array(message, name, values, np.float32)
        set_array(message, 'indices', rng.integers(0, 5000, b), np.uint64)
        version = self.weights[-1].version if self.weights else 0
        set_array(message, 'policy_versions', np.full(b, max(0, version - 1)), np.uint64)
        self.sequence += 1
        return message

    def spin_until(self, condition, timeout=TIMEOUT, what=''):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
            while self.credits > 0:
                self.batch_pub.publish(self.batch())
                self.credits -= 1
            if condition():
                return
        raise AssertionError(f'timed out waiting for {what}')


@pytest.fixture
def replay(loopback_graph):
    domain, context = loopback_graph
    return domain, FakeReplay(context)


def test_learner_trains_publishes_refuses_bad_batches_and_resumes(replay, tmp_path):
    domain, fake = replay
    output = tmp_path / 'train'
    with python_child(learner_command(output), domain) as learner:
        # Weights with increasing versions, each decodable for the dcdrl architecture.
        fake.spin_until(lambda: len(fake.weights) >= 3, what='three policy versions')
        versions = [m.version for m in fake.weights]
        assert versions == sorted(set(versions)) and versions[0] == 1
        for message in fake.weights:
            assert message.producer == 'learner'
            decode_weights(read_weights(message), ARCH, SHAPES)
        assert fake.requests[0][0] == 'learner' and fake.requests[0][2] == BATCH
        fake.spin_until(lambda: any(s.updates > 0 and np.isfinite(s.eval_return) for s in fake.stats),
                        what='training stats with an evaluation')
        stats = fake.stats[-1]
        assert stats.eval_cost > 0 and stats.version_lag_max >= 1 and stats.rejected_batches == 0

        # A bad batch is refused and counted; training goes on.
        fake.batch_pub.publish(fake.batch(bad=True))
        fake.spin_until(lambda: fake.stats[-1].rejected_batches >= 1, what='the bad batch in the stats')
        seen = fake.weights[-1].version
        fake.spin_until(lambda: fake.weights[-1].version > seen, what='weights after the bad batch')
        last = fake.weights[-1].version
        learner.wait_for_line('refused so far', TIMEOUT)
        assert learner.stop(timeout=TIMEOUT) == 0
    assert (output / 'learner.ckpt').is_file() and (output / 'evaluation.json').is_file()
    checkpoint_version = json.loads((output / 'learner.json').read_text())['version']
    assert checkpoint_version >= last

    # Restart: resumes from the checkpoint, versions continue upward, ends with TRAINING DONE.
    command = learner_command(output, 'duration_s:=4.0', 'exit_when_done:=true')
    with python_child(command, domain) as learner:
        fake.spin_until(lambda: fake.weights[-1].version > checkpoint_version, what='the resumed policy')
        versions = [m.version for m in fake.weights]  # both runs (the first run's last ones may come late)
        assert versions == sorted(set(versions))
        assert [v for v in versions if v > checkpoint_version][0] == checkpoint_version + 1
        deadline = time.monotonic() + TIMEOUT
        while learner.process.poll() is None and time.monotonic() < deadline:
            fake.spin_until(lambda: True, timeout=0.2)
        line = learner.wait_for_line('TRAINING DONE', TIMEOUT)
        summary = json.loads(line.split('TRAINING DONE ', 1)[1])
        assert learner.stop(timeout=TIMEOUT) == 0   # it exited by itself (exit_when_done)
    assert summary['version'] > checkpoint_version and summary['resumed_from_version'] == checkpoint_version
    for key in ('updates', 'env_steps', 'eval_cost', 'eval_return', 'output_dir', 'wall_s'):
        assert key in summary
    assert summary['output_dir'] == str(output) and summary['eval_cost'] > 0


def test_bad_parameter_stops_the_learner_with_exit_code_2(tmp_path):
    with python_child(learner_command(tmp_path, 'prefetch_batches:=0'), fresh_domain_id()) as learner:
        line = learner.wait_for_line('FATAL', TIMEOUT)
        assert 'prefetch_batches' in line
        assert learner.process.wait(TIMEOUT) == 2
