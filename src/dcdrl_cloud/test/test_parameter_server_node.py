"""The parameter_server node over real DDS: a separate process, models from this test process."""
import csv
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
TIMEOUT = 60.0  # generous: a loaded 2-core machine; every wait ends as soon as its condition holds
ENV_ID = 'dcdrl_sim/CartPoleSwingUp-v0'  # small observations: small messages
OBS, ACT = 10, 1
ARCH = architecture_id(network_config('dcdrl'), OBS, ACT)


def weights_message(weights, producer, generation=0, fitness=None, version=0):
    from dcdrl_msgs.msg import PolicyWeights, Tensor
    names = sorted(weights)
    payload = make_payload(ARCH, version, names, [weights[n].shape for n in names], [weights[n] for n in names])
    return fill_weights(PolicyWeights(), payload, Tensor, producer=producer, generation=generation, fitness=fitness)


def constant_model(value):
    return {n: np.full(s, value, np.float32) for n, s in actor_shapes(network_config('dcdrl'), OBS, ACT).items()}


def call(executor, client, request):
    future = client.call_async(request)
    executor.spin_until_future_complete(future, timeout_sec=TIMEOUT)
    assert future.done(), 'get_policy did not answer'
    return future.result()


def test_parameter_server_merges_a_generation_serves_policies_and_survives_bad_models(tmp_path, monkeypatch):
    from dcdrl_msgs.msg import PolicyWeights
    from dcdrl_msgs.srv import GetPolicy
    domain = fresh_domain_id()
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    context = Context()
    context.init([], domain_id=domain)
    argv = [sys.executable, '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_cloud', 'parameter_server', '--ros-args',
            '-r', '__ns:=/dcdrl', '-p', f'env_id:={ENV_ID}', '-p', 'expected_models:=2', '-p', 'elite_fraction:=1.0',
            '-p', 'generation_timeout_s:=600.0', '-p', f'output_dir:={tmp_path}']
    server = ChildProcess(argv, env=loopback_env(domain))
    try:
        server.wait_for_line('parameter_server started', TIMEOUT)
        node = runtime.Node('tester', namespace='/dcdrl', context=context)
        executor = runtime.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        latched = runtime.QoSProfile(depth=1, reliability=runtime.ReliabilityPolicy.RELIABLE,
                                     durability=runtime.DurabilityPolicy.TRANSIENT_LOCAL)
        merged = []
        node.create_subscription(PolicyWeights, 'merged_policy', merged.append, latched)
        models = node.create_publisher(PolicyWeights, 'client_model',
                                       runtime.QoSProfile(depth=10, reliability=runtime.ReliabilityPolicy.RELIABLE))
        learner = node.create_publisher(PolicyWeights, 'policy', latched)
        get_policy = node.create_client(GetPolicy, 'get_policy')
        assert get_policy.wait_for_service(timeout_sec=TIMEOUT)
        spin_until(executor, lambda: models.get_subscription_count() > 0, TIMEOUT, 'the server to match client_model')

        # before anything: no policy to give
        reply = call(executor, get_policy, GetPolicy.Request())
        assert not reply.available and 'no policy yet' in reply.message

        # a learner policy is served while there is no merged generation
        learner.publish(weights_message(constant_model(0.25), 'learner', version=9))
        server.wait_for_line('learner policy version 9', TIMEOUT)
        reply = call(executor, get_policy, GetPolicy.Request(architecture_id=ARCH, min_version=1))
        assert reply.available and reply.weights.version == 9 and reply.weights.generation == 0

        # two clients submit generation 1: rank weights 2/3 (fitness -10) and 1/3 (fitness -40)
        models.publish(weights_message(constant_model(1.0), 'client_0', generation=1, fitness=-10.0, version=1))
        models.publish(weights_message(constant_model(4.0), 'client_1', generation=1, fitness=-40.0, version=1))
        spin_until(executor, lambda: merged, TIMEOUT, 'the merged generation')
        message = merged[0]
        assert (message.generation, message.version, message.architecture_id) == (1, 1, ARCH)
        assert message.has_fitness and message.fitness == pytest.approx(-20.0)
        assert message.producer == 'parameter_server'
        np.testing.assert_allclose(message.tensors[0].data, 2.0, rtol=1e-6)

        reply = call(executor, get_policy, GetPolicy.Request(architecture_id='', min_version=0))
        assert reply.available and reply.weights.generation == 1 and reply.weights.version == 1
        assert reply.weights.fitness == pytest.approx(-20.0)

        # a model with NaN and one of an unknown architecture are refused; the node keeps serving
        bad = constant_model(1.0)
        bad['bias_0'][0] = np.nan
        models.publish(weights_message(bad, 'client_0', generation=2, fitness=-5.0, version=2))
        server.wait_for_line('refused model from', TIMEOUT)
        stranger = weights_message(constant_model(1.0), 'client_9', generation=2, fitness=-1.0, version=2)
        stranger.architecture_id = architecture_id(network_config('cloud_edge'), OBS, ACT)
        models.publish(stranger)
        # one writer, reliable: once a later good model is in, the two bad ones were handled before it
        models.publish(weights_message(constant_model(3.0), 'client_0', generation=2, fitness=-3.0, version=2))
        server.wait_for_line("accepted model from 'client_0' for generation 2", TIMEOUT)
        reply = call(executor, get_policy, GetPolicy.Request(architecture_id=ARCH, min_version=2))
        assert reply.available and reply.weights.version == 9  # merged version 1 < 2: the learner's
        reply = call(executor, get_policy, GetPolicy.Request(architecture_id=ARCH, min_version=10))
        assert not reply.available and 'min_version 10' in reply.message
    finally:
        server.stop(timeout=30.0)
        context.shutdown()
    report_line = next(line for line in server.lines if line.startswith('PARAMETER_SERVER REPORT '))
    report = json.loads(report_line.split(' ', 2)[2])
    assert report['accepted'] == 3 and report['generations'] == 1 and report['open_submissions'] == 1
    assert report['refused'] == {'non_finite': 1, 'wrong_architecture': 1}
    assert report['learner_version'] == 9 and report['requests'] == 5
    with open(tmp_path / 'generations.csv', newline='') as handle:
        [row] = list(csv.DictReader(handle))
    assert row['generation'] == '1' and row['merged_clients'] == 'client_0;client_1'
