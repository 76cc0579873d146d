"""Two processes on one DDS graph: every message type, services, transient-local, domains."""
import os
import threading
import time

import numpy as np
import pytest

from dcdrl_ros import runtime
from dcdrl_ros.runtime.context import Context
from dcdrl_ros.runtime.qos import qos_profile_transient_local
from dcdrl_ros.testing import all_message_types, fresh_domain_id, message_class, python_child, random_message

pytestmark = pytest.mark.dds
PEER = os.path.join(os.path.dirname(__file__), 'fixtures', 'graph_peer.py')
TIMEOUT = 30.0


@pytest.fixture
def graph(loopback_graph):
    """A fresh domain on loopback, and a context of ours in it (root conftest.py)."""
    return loopback_graph


def _spin_until(context, node, done: threading.Event, timeout: float) -> bool:
    executor = runtime.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout
    while not done.is_set() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    return done.is_set()


def test_every_message_type_crosses_processes_both_ways(graph):
    domain, context = graph
    types = [t for t in all_message_types() if '/msg/' in t]
    rng = np.random.default_rng(11)
    sent = {t: random_message(message_class(t), rng) for t in types}
    received = {}
    done = threading.Event()
    with python_child([PEER, 'echo-all'], domain) as peer:
        peer.wait_for_line('echoing', TIMEOUT)
        node = runtime.Node('tester', context=context)

        def on_echo(message, type_name):
            received[type_name] = message
            if len(received) == len(types):
                done.set()
        for type_name in types:
            cls = message_class(type_name)
            package, _, name = type_name.split('/')
            node.create_subscription(cls, f'/from_peer/{package}/{name}',
                                     lambda m, t=type_name: on_echo(m, t), qos_profile_transient_local)
            node.create_publisher(cls, f'/to_peer/{package}/{name}', qos_profile_transient_local).publish(
                sent[type_name])
        assert _spin_until(context, node, done, TIMEOUT), f'missing: {sorted(set(types) - set(received))}'
    assert len(types) >= 20
    for type_name in types:
        assert received[type_name] == sent[type_name], type_name


def test_service_call_across_processes(graph):
    domain, context = graph
    from dcdrl_msgs.srv import GetPolicy
    with python_child([PEER, 'service'], domain) as peer:
        peer.wait_for_line('service ready', TIMEOUT)
        node = runtime.Node('caller', context=context)
        client = node.create_client(GetPolicy, '/get_policy')
        assert client.wait_for_service(timeout_sec=TIMEOUT)
        executor = runtime.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        for version in (3, 9):  # two calls: sequence numbers and reply matching work repeatedly
            future = client.call_async(GetPolicy.Request(architecture_id='mlp', min_version=version))
            executor.spin_until_future_complete(future, timeout_sec=TIMEOUT)
            assert future.done()
            reply = future.result()
            assert reply.available and reply.message == 'for mlp'
            assert reply.weights.version == version + 1
            assert reply.weights.tensors[0].data.tolist() == [1.5, -2.0]


def test_transient_local_reaches_a_late_subscriber(graph):
    domain, context = graph
    from dcdrl_msgs.msg import PolicyWeights
    with python_child([PEER, 'latched'], domain) as peer:
        peer.wait_for_line('latched', TIMEOUT)  # published before we subscribe
        node = runtime.Node('late', context=context)
        got = []
        done = threading.Event()
        node.create_subscription(PolicyWeights, '/policy', lambda m: (got.append(m), done.set()),
                                 qos_profile_transient_local)
        assert _spin_until(context, node, done, TIMEOUT)
    assert got[0].version == 42 and got[0].tensors[0].data.tolist() == [0.0, 1.0, 2.0]


def test_different_domain_ids_do_not_see_each_other(graph):
    domain, context = graph
    from std_msgs.msg import String
    other = Context()
    other.init([], domain_id=fresh_domain_id())
    try:
        same_node = runtime.Node('same_domain', context=context)
        other_node = runtime.Node('other_domain', context=other)
        same, foreign = [], []
        done = threading.Event()

        def on_same(message):
            same.append(message)
            if len(same) >= 20:
                done.set()
        same_node.create_subscription(String, '/chatter', on_same, 10)
        other_node.create_subscription(String, '/chatter', foreign.append, 10)
        other_executor = runtime.SingleThreadedExecutor(context=other)
        other_executor.add_node(other_node)
        with python_child([PEER, 'talk'], domain) as peer:
            peer.wait_for_line('talking', TIMEOUT)
            assert _spin_until(context, same_node, done, TIMEOUT)
            for _ in range(5):  # give the other domain's queue its chance to deliver
                other_executor.spin_once(timeout_sec=0.05)
        assert foreign == []
    finally:
        other.shutdown()
