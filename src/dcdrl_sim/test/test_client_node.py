"""The client node over real DDS: it takes up a published policy, stamps its experience, refuses strangers."""
import json
import sys

import numpy as np
import pytest

from dcdrl_learning.codec import make_payload
from dcdrl_learning.inference import actor_shapes
from dcdrl_learning.networks import architecture_id, network_config
from dcdrl_learning.weights_msg import fill_weights
from dcdrl_ros import runtime
from dcdrl_ros.runtime.context import Context
from dcdrl_ros.testing import ChildProcess, fresh_domain_id, loopback_env, spin_until

pytestmark = [pytest.mark.dds, pytest.mark.slow]
TIMEOUT = 60.0  # generous for a loaded machine; each wait ends as soon as its condition holds
OBS, ACT = 73, 20  # dcdrl_sim/MecOffload-v0 (N = 10 users), set in each command


def policy_message(version, preset='dcdrl'):
    from dcdrl_msgs.msg import PolicyWeights, Tensor
    shapes = actor_shapes(network_config(preset), OBS, ACT)
    rng = np.random.default_rng(version)
    names = sorted(shapes)
    arrays = [rng.normal(0.0, 0.05, shapes[n]).astype(np.float32) for n in names]
    payload = make_payload(architecture_id(network_config(preset), OBS, ACT), version, names,
                           [shapes[n] for n in names], arrays)
    return fill_weights(PolicyWeights(), payload, Tensor, producer='test_learner')


def start_client(monkeypatch, *ros_args):
    """The client node as a child on a fresh loopback domain, and this test's context on that domain."""
    domain = fresh_domain_id()
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    context = Context()
    context.init([], domain_id=domain)
    argv = [sys.executable, '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_sim', 'client', '--ros-args',
            '-r', '__ns:=/dcdrl', *ros_args, '-p', 'publish_rate_hz:=50.0', '-p', 'env_id:=dcdrl_sim/MecOffload-v0']
    return context, ChildProcess(argv, env=loopback_env(domain))


def node_and_executor(context):
    """This test's node in the client's namespace, and an executor spinning it."""
    node = runtime.Node('tester', namespace='/dcdrl', context=context)
    executor = runtime.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    return node, executor


def test_client_acts_with_the_published_policy_and_refuses_another_architecture(monkeypatch):
    from dcdrl_msgs.msg import ExperienceBatch, PolicyWeights
    context, client = start_client(monkeypatch, '-r', '__node:=client_7', '-p', 'num_envs:=2',
                                   '-p', 'batch_steps:=4', '-p', 'seed:=7')
    try:
        node, executor = node_and_executor(context)
        batches = []
        node.create_subscription(
            ExperienceBatch, 'experience', lambda m: batches.append((m.client_id, m.sequence, m.policy_version)),
            runtime.QoSProfile(depth=100, reliability=runtime.ReliabilityPolicy.RELIABLE))
        policy = node.create_publisher(
            PolicyWeights, 'policy', runtime.QoSProfile(depth=1, reliability=runtime.ReliabilityPolicy.RELIABLE,
                                                        durability=runtime.DurabilityPolicy.TRANSIENT_LOCAL))
        client.wait_for_line('client client_7 started', TIMEOUT)
        spin_until(executor, lambda: batches, TIMEOUT, 'random-action experience')
        assert batches[0][0] == 'client_7' and batches[0][2] == 0  # no policy yet: version 0

        policy.publish(policy_message(5))
        spin_until(executor, lambda: batches[-1][2] == 5, TIMEOUT, 'experience stamped with version 5')
        client.wait_for_line('acting with policy version 5', TIMEOUT)
        first = next(i for i, b in enumerate(batches) if b[2] == 5)

        policy.publish(policy_message(6, preset='cloud_edge'))  # newer, but another architecture
        client.wait_for_line('refused policy version 6', TIMEOUT)
        seen = len(batches)
        spin_until(executor, lambda: len(batches) >= seen + 3, TIMEOUT, 'more experience after the refusal')
    finally:
        client.stop(timeout=30.0)
        context.shutdown()
    # versions never go back, and the refused policy never produced experience
    assert all(version == 0 for _, _, version in batches[:first])
    assert all(version == 5 for _, _, version in batches[first:])
    sequences = [s for _, s, _ in batches]
    assert sequences == sorted(sequences)
    report_line = next(line for line in client.lines if line.startswith('CLIENT REPORT '))
    report = json.loads(report_line.split(' ', 2)[2])
    assert report['policies_refused'] == {'wrong_architecture': 1} and report['policies_accepted'] == 1
    assert report['policy_version'] == 5 and report['errors'] == 0


def test_collective_client_submits_generations_and_pulls_a_better_merged_model(monkeypatch):
    from dcdrl_msgs.msg import ExperienceBatch, PolicyWeights
    context, client = start_client(
        monkeypatch, '-r', '__node:=client_9', '-p', 'mode:=collective', '-p', 'num_envs:=2',
        '-p', 'batch_steps:=8', '-p', 'generation_steps:=64', '-p', 'learning_starts:=32', '-p', 'batch_size:=16',
        '-p', 'eval_episodes:=1', '-p', 'evaluate_merged:=false', '-p', 'mutation_probability:=0.0', '-p', 'seed:=9')
    try:
        node, executor = node_and_executor(context)
        models, versions = [], []
        node.create_subscription(PolicyWeights, 'client_model', models.append,
                                 runtime.QoSProfile(depth=10, reliability=runtime.ReliabilityPolicy.RELIABLE))
        node.create_subscription(ExperienceBatch, 'experience', lambda m: versions.append(m.policy_version),
                                 runtime.QoSProfile(depth=100, reliability=runtime.ReliabilityPolicy.RELIABLE))
        merged = node.create_publisher(
            PolicyWeights, 'merged_policy', runtime.QoSProfile(
                depth=1, reliability=runtime.ReliabilityPolicy.RELIABLE,
                durability=runtime.DurabilityPolicy.TRANSIENT_LOCAL))
        spin_until(executor, lambda: models, TIMEOUT, 'the first model submission')
        first = models[0]
        assert (first.producer, first.generation, first.version) == ('client_9', 1, 1)
        assert first.has_fitness and np.isfinite(first.fitness)
        assert first.architecture_id == architecture_id(network_config('dcdrl'), OBS, ACT)

        better = policy_message(1)
        better.generation, better.has_fitness, better.fitness = 1, True, first.fitness + 1000.0
        merged.publish(better)
        client.wait_for_line('merged generation 1: pull', TIMEOUT)
        spin_until(executor, lambda: any(m.generation == 2 for m in models), TIMEOUT, 'a submission for generation 2')
        spin_until(executor, lambda: versions and versions[-1] == 1, TIMEOUT, 'experience of the pulled model')
    finally:
        client.stop(timeout=30.0)
        context.shutdown()
    assert all(m.generation in (1, 2) for m in models)
    report = json.loads(next(line for line in client.lines if line.startswith('CLIENT REPORT ')).split(' ', 2)[2])
    assert report['pulls'] == 1 and report['no_pulls'] == 0 and report['merged_accepted'] == 1
    assert report['updates'] > 0 and report['errors'] == 0
