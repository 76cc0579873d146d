"""Transport-level limits of our runtime (docs/robustness.md): the Cyclone configuration caps the
size of a whole DDS sample (G13), and samples that do not deserialise are counted per node (G14)."""
import threading
import time

import pytest

from dcdrl_ros import runtime
from dcdrl_ros.runtime.context import Context, discovery_config, max_sample_size
from dcdrl_ros.testing import fresh_domain_id


def test_the_limit_is_in_every_configuration_and_cyclonedds_uri_comes_last():
    for environ in ({}, {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'SYSTEM_DEFAULT'}, {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'OFF'},
                    {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST', 'ROS_STATIC_PEERS': '192.0.2.7'}):
        assert '<Internal><MaxSampleSize>16MiB</MaxSampleSize></Internal>' in discovery_config(environ)
    xml = discovery_config({'DCDRL_MAX_SAMPLE_SIZE': '64 MiB', 'CYCLONEDDS_URI': 'file:///etc/cyclone.xml'})
    assert '<MaxSampleSize>64 MiB</MaxSampleSize>' in xml and xml.endswith(',file:///etc/cyclone.xml')
    assert max_sample_size({'DCDRL_MAX_SAMPLE_SIZE': '500kB'}) == '500kB'
    for bad in ('16', 'lots', '16 MiB; <x/>', '-1MiB'):
        with pytest.raises(ValueError, match='DCDRL_MAX_SAMPLE_SIZE must be a size'):
            max_sample_size({'DCDRL_MAX_SAMPLE_SIZE': bad})


@pytest.mark.dds
def test_cyclone_drops_a_sample_over_the_limit_and_the_stream_goes_on(monkeypatch):
    from std_msgs.msg import String
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    monkeypatch.setenv('DCDRL_MAX_SAMPLE_SIZE', '4KiB')
    context = Context()
    context.init([], domain_id=fresh_domain_id())
    try:
        node = runtime.Node('sizes', context=context)
        got: list[int] = []
        done = threading.Event()
        node.create_subscription(String, '/sizes', lambda m: (got.append(len(m.data)), len(got) == 2 and done.set()),
                                 runtime.QoSProfile(depth=10, reliability=runtime.ReliabilityPolicy.RELIABLE))
        publisher = node.create_publisher(String, '/sizes', runtime.QoSProfile(
            depth=10, reliability=runtime.ReliabilityPolicy.RELIABLE))
        publisher.publish(String(data='a' * 100))
        with pytest.raises(RuntimeError, match='DDS write on /sizes failed'):   # Cyclone refuses to send it
            publisher.publish(String(data='b' * 10_000))
        publisher.publish(String(data='c' * 200))
        executor = runtime.SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + 10.0
        while not done.is_set() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert got == [100, 200]
    finally:
        context.shutdown()


@pytest.mark.dds
def test_malformed_samples_are_counted_per_node_and_the_subscription_goes_on(loopback_graph):
    from std_msgs.msg import String
    _, context = loopback_graph
    node = runtime.Node('counting', context=context)
    got: list[str] = []
    node.create_subscription(String, '/text', got.append, runtime.QoSProfile(
        depth=10, reliability=runtime.ReliabilityPolicy.RELIABLE))
    publisher = node.create_publisher(String, '/text', runtime.QoSProfile(
        depth=10, reliability=runtime.ReliabilityPolicy.RELIABLE))
    # Well-formed CDR (Cyclone passes it on) that is not a String: invalid UTF-8.
    publisher.publish_serialized(b'\x00\x01\x00\x00' + (5).to_bytes(4, 'little') + b'\xff\xfe\xfd\xfc\x00')
    publisher.publish(String(data='fine'))
    executor = runtime.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + 10.0
    while not got and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    assert [m.data for m in got] == ['fine'] and node.malformed_samples() == 1
    from dcdrl_ros import ros
    assert ros.malformed_samples(node) == 1 and ros.malformed_samples(object()) is None   # rclpy: no count
