"""The replay_buffer node as a process over loopback DDS: intake, credit serving, priorities, snapshot, restore."""
import json
import time

import numpy as np
import pytest

from dcdrl_cloud.learner import read_sampled_batch
from dcdrl_cloud.replay_messages import fill_priority_update
from dcdrl_learning.experience import fill_experience
from dcdrl_ros import runtime
from dcdrl_ros.runtime.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data, qos_profile_transient_local
from dcdrl_ros.testing import fresh_domain_id, python_child

from dcdrl_msgs.msg import ExperienceBatch, PolicyWeights, PriorityUpdate, ReplayStats, SampledBatch, SampleRequest

pytestmark = [pytest.mark.dds, pytest.mark.slow]
TIMEOUT = 30.0
OBS, ACT, ROWS = 6, 2, 8
RELIABLE = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def _replay_node(domain, output_dir, *extra):
    return python_child(
        ['-m', 'dcdrl_ros.cli', 'run', 'dcdrl_cloud', 'replay_buffer', '--ros-args', '-r', '__ns:=/dcdrl',
         '-p', f'output_dir:={output_dir}', '-p', 'env_id:=test/Env-v0', '-p', 'capacity:=1000',
         '-p', 'min_size_to_sample:=32', '-p', 'prioritized:=true', '-p', 'report_period_s:=0.2',
         '-p', 'snapshot_period_s:=0.0', *extra], domain)


class Peer:
    """The learner's and the clients' side of the protocol, in this process."""

    def __init__(self, context):
        self.context = context
        self.node = runtime.Node('tester', context=context, namespace='/dcdrl')
        self.executor = runtime.SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.batches, self.stats = [], []
        self.experience = self.node.create_publisher(ExperienceBatch, 'experience', RELIABLE)
        self.requests = self.node.create_publisher(SampleRequest, 'replay/sample_requests', RELIABLE)
        self.priorities = self.node.create_publisher(PriorityUpdate, 'replay/priorities', RELIABLE)
        self.policy = self.node.create_publisher(PolicyWeights, 'policy', qos_profile_transient_local)
        self.node.create_subscription(SampledBatch, 'replay/batches', self.batches.append,
                                      QoSProfile(depth=64, reliability=ReliabilityPolicy.RELIABLE))
        self.node.create_subscription(ReplayStats, 'replay/stats', self.stats.append, qos_profile_sensor_data)

    def spin_until(self, condition, what, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f'waited {timeout} s for {what}')
            self.executor.spin_once(timeout_sec=0.05)

    def _matches(self):
        return [p.get_subscription_count() for p in (self.experience, self.requests, self.priorities, self.policy)] \
            + [self.node.count_publishers('replay/batches')]

    def wait_connected(self):
        self.spin_until(lambda: min(self._matches()) >= 1, 'the replay node to match every topic')

    def wait_disconnected(self):
        """After a stop: so that wait_connected cannot see the old process's endpoints."""
        self.spin_until(lambda: max(self._matches()) == 0, 'the stopped replay node to leave the graph')

    def send_experience(self, sequence, version):
        rng = np.random.default_rng(sequence)
        obs = rng.random((ROWS, OBS)).astype(np.float32)
        obs[:, 0] = version  # served rows can be checked against the versions they carry
        self.experience.publish(fill_experience(
            ExperienceBatch(), client_id='client_0', sequence=sequence, policy_version=version, obs=obs,
            actions=rng.random((ROWS, ACT)), rewards=rng.random(ROWS), next_obs=rng.random((ROWS, OBS)),
            terminated=np.zeros(ROWS, bool), truncated=np.zeros(ROWS, bool)))

    def request(self, batches, batch_size):
        self.requests.publish(SampleRequest(requester='tester', batches=batches, batch_size=batch_size))

    def receive(self, count):
        self.spin_until(lambda: len(self.batches) >= count, f'{count} sampled batches')
        return [read_sampled_batch(m, 'tester', OBS, ACT) for m in self.batches[:count]]  # refuses others'


@pytest.fixture
def peer(loopback_graph):
    return loopback_graph


def _report(child):
    return json.loads(child.wait_for_line('REPORT ', TIMEOUT).split('REPORT ', 1)[1])


def test_serves_credits_takes_priorities_snapshots_and_restores(peer, tmp_path):
    domain, context = peer
    tester = Peer(context)
    (tmp_path / 'replay.npz').write_bytes(b'not a snapshot')  # refused, kept aside, the node starts empty
    with _replay_node(domain, tmp_path) as child:
        child.wait_for_line('snapshot not restored', TIMEOUT)
        child.wait_for_line('replay_buffer started', TIMEOUT)
        assert (tmp_path / 'replay.npz.refused').read_bytes() == b'not a snapshot'
        tester.wait_connected()
        tester.policy.publish(PolicyWeights(architecture_id='test', version=7, producer='tester'))
        child.wait_for_line('policy v7', TIMEOUT)  # so the lag of what follows is known: 7 - 5
        tester.request(3, 16)  # credits before data: served once min_size_to_sample (32) is stored
        for sequence in range(6):  # 48 transitions
            tester.send_experience(sequence, version=5)
        served = tester.receive(3)
        assert [b.sequence for b in served] == [0, 1, 2]
        for b in served:
            assert len(b) == 16 and b.obs.shape == (16, OBS)
            assert b.replay_size >= 32 and (b.policy_versions == 5).all()
            np.testing.assert_array_equal(b.obs[:, 0], 5.0)
            assert (b.weights > 0).all() and (b.weights <= 1).all()
        tester.spin_until(lambda: any(s.size == 48 for s in tester.stats), 'stats with all 48 transitions')
        stats = [s for s in tester.stats if s.size == 48][-1]
        assert stats.transitions_received == 48 and stats.capacity == 1000
        assert (stats.version_lag_min, stats.version_lag_mean, stats.version_lag_max) == (2.0, 2.0, 2.0)

        tester.priorities.publish(fill_priority_update(PriorityUpdate(), served[0].indices, np.ones(16)))
        tester.priorities.publish(fill_priority_update(PriorityUpdate(), [0, 1], [1.0]))  # sizes differ
        tester.priorities.publish(fill_priority_update(PriorityUpdate(), [0], [np.nan]))
        child.wait_for_line('refused priority update', TIMEOUT)
        tester.request(1, 8)  # still serving after the bad updates
        assert tester.receive(4)[3].sequence == 3
        assert child.stop() == 0
        report = _report(child)
    assert report['replay_size'] == report['transitions'] == 48 and report['rejected'] == 0
    assert report['priority_updates'] == 1 and report['rejected_priority_updates'] == 2
    assert report['batches_served'] == 4 and report['requesters']['tester']['served'] == 4
    assert report['latest_policy_version'] == 7 and report['version_lag']['mean'] == 2.0
    assert report['clients']['client_0'] == {'batches': 6, 'transitions': 48, 'lost_batches': 0, 'restarts': 0,
                                             'last_policy_version': 5}
    assert (tmp_path / 'replay.npz').exists()
    tester.wait_disconnected()

    with _replay_node(domain, tmp_path) as child:  # restart: the snapshot comes back
        child.wait_for_line('restored 48 transitions', TIMEOUT)
        child.wait_for_line('replay_buffer started', TIMEOUT)
        tester.wait_connected()
        tester.request(1, 8)
        again = tester.receive(5)[4]
        assert again.sequence == 4 and again.replay_size == 48  # sequences continue across restarts
        np.testing.assert_array_equal(again.obs[:, 0], again.policy_versions.astype(np.float32))
        assert child.stop() == 0
        report = _report(child)
    assert report['restored'] == 48 and report['replay_size'] == 48 and report['transitions_this_run'] == 0


def test_a_bad_parameter_stops_the_node_with_exit_code_2(tmp_path):
    child = _replay_node(fresh_domain_id(), tmp_path, '-p', 'min_size_to_sample:=5000')
    try:
        line = child.wait_for_line('[FATAL]', TIMEOUT)
        assert 'min_size_to_sample (5000) must be <= capacity (1000)' in line
        assert child.process.wait(TIMEOUT) == 2
    finally:
        child.stop()
