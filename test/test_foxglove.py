"""`dcdrl foxglove`: a Foxglove WebSocket client written here from the protocol (subprotocol foxglove.sdk.v1,
the same protocol as foxglove.websocket.v1: serverInfo, advertise, subscribe, binary messageData) sees a stats
topic and an image topic of a running graph and decodes their payloads with rosbags, an independent ros2msg/CDR
implementation, from the schema text the server advertised."""
from __future__ import annotations

import json
import re
import socket
import struct
import sys
import threading
import time

import numpy as np
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from websockets.sync.client import connect

from dcdrl_ros.testing import ChildProcess, loopback_env

SUBPROTOCOL = 'foxglove.sdk.v1'
MESSAGE_DATA_OPCODE = 1
STATS_TOPIC, STATS_TYPE = '/dcdrl/replay/stats', 'dcdrl_msgs/msg/ReplayStats'
IMAGE_TOPIC, IMAGE_TYPE = '/camera/image_raw', 'sensor_msgs/msg/Image'
EXCLUDED_TOPIC = '/ignored/chatter'
WAIT_S = 30.0
UNKNOWN_CHANNEL = re.compile(r'Unknown channel ID: (\d+)')


class GraphSource:
    """A node of ours in the test's domain publishing a ReplayStats (best effort, as the replay buffer does),
    an Image (reliable) and a String on a topic the bridge is told to leave out, 20 times a second."""

    def __init__(self, domain: int) -> None:
        from dcdrl_ros import runtime
        from dcdrl_ros.messages import get_interface
        from dcdrl_ros.runtime.context import Context
        from dcdrl_ros.runtime.qos import QoSProfile, ReliabilityPolicy
        self.context = Context()
        self.context.init([], domain_id=domain)
        node = runtime.Node('foxglove_source', context=self.context)
        self.stats = get_interface(STATS_TYPE)(size=12345, capacity=100000, lost_batches=3,
                                               transitions_per_sec=1.5, version_lag_max=-2.25)
        self.stats.header.frame_id = 'replay'
        self.image = get_interface(IMAGE_TYPE)(height=6, width=8, encoding='rgb8', step=24, is_bigendian=0)
        self.image.header.frame_id = 'camera'
        self.image.data = np.arange(6 * 24, dtype=np.uint8)
        self._publishers = [
            (node.create_publisher(type(self.stats), STATS_TOPIC,
                                   QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)), self.stats),
            (node.create_publisher(type(self.image), IMAGE_TOPIC, 1), self.image),
            (node.create_publisher(get_interface('std_msgs/msg/String'), EXCLUDED_TOPIC, 10),
             get_interface('std_msgs/msg/String')(data='not for foxglove'))]
        self.started_ns = time.time_ns()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish, daemon=True)
        self._thread.start()

    def _publish(self) -> None:
        while not self._stop.wait(0.05):   # the period of the source, not a synchronisation
            for publisher, message in self._publishers:
                publisher.publish(message)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.context.shutdown()


def receive_json(ws, deadline: float) -> dict:
    """The next text (control) message; binary ones are not expected before subscribing."""
    while True:
        message = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(message, str):
            return json.loads(message)


def subscribe(ws, channel_of_subscription: dict[int, int]) -> None:
    ws.send(json.dumps({'op': 'subscribe', 'subscriptions': [
        {'id': number, 'channelId': channel} for number, channel in channel_of_subscription.items()]}))


def test_a_foxglove_client_subscribes_and_decodes_stats_and_image(domain):
    source = GraphSource(domain)
    bridge = ChildProcess([sys.executable, '-m', 'dcdrl_ros.cli', 'foxglove', '--port', '0',
                           '-x', f'^{EXCLUDED_TOPIC}$'], env=loopback_env(domain))
    try:
        url = re.search(r'ws://127\.0\.0\.1:\d+', bridge.wait_for_line('ws://', WAIT_S)).group(0)
        deadline = time.monotonic() + WAIT_S
        with connect(url, subprotocols=[SUBPROTOCOL], open_timeout=WAIT_S) as ws:
            assert ws.subprotocol == SUBPROTOCOL
            server_info = receive_json(ws, deadline)
            assert server_info['op'] == 'serverInfo' and server_info['name'] == 'dcdrl'
            channels: dict[str, dict] = {}
            while not {STATS_TOPIC, IMAGE_TOPIC} <= channels.keys():
                message = receive_json(ws, deadline)
                if message['op'] == 'advertise':
                    channels.update({channel['topic']: channel for channel in message['channels']})
            assert EXCLUDED_TOPIC not in channels
            for topic, type_name in ((STATS_TOPIC, STATS_TYPE), (IMAGE_TOPIC, IMAGE_TYPE)):
                channel = channels[topic]
                assert (channel['encoding'], channel['schemaName'], channel['schemaEncoding']) == (
                    'cdr', type_name, 'ros2msg')
            subscriptions = {1: STATS_TOPIC, 2: IMAGE_TOPIC}
            subscribe(ws, {number: channels[topic]['id'] for number, topic in subscriptions.items()})
            payloads: dict[str, tuple[int, bytes]] = {}
            while payloads.keys() != set(subscriptions.values()):
                message = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
                if isinstance(message, bytes):
                    opcode, subscription, log_time = struct.unpack_from('<BIQ', message)
                    assert opcode == MESSAGE_DATA_OPCODE
                    payloads[subscriptions[subscription]] = (log_time, message[13:])
                elif (unknown := UNKNOWN_CHANNEL.search(json.loads(message).get('message', ''))) is not None:
                    # foxglove-sdk may refuse a subscription that arrives just after a channel's advertise
                    # (the client's channel table is filled a moment later): a client subscribes again.
                    subscribe(ws, {number: channels[topic]['id'] for number, topic in subscriptions.items()
                                   if channels[topic]['id'] == int(unknown.group(1))})
        assert EXCLUDED_TOPIC not in '\n'.join(bridge.lines)
    finally:
        exit_code = bridge.stop()
        source.close()
    assert exit_code == 0, '\n'.join(bridge.lines)
    for topic in (STATS_TOPIC, IMAGE_TOPIC):
        assert any(topic in line for line in bridge.lines), f'no line advertising {topic}'
    store = get_typestore(Stores.EMPTY)
    for topic, type_name in ((STATS_TOPIC, STATS_TYPE), (IMAGE_TOPIC, IMAGE_TYPE)):
        store.register(get_types_from_msg(channels[topic]['schema'], type_name))
        log_time, _payload = payloads[topic]
        assert source.started_ns <= log_time <= time.time_ns()   # stamped with the bridge's receive time
    stats = store.deserialize_cdr(payloads[STATS_TOPIC][1], STATS_TYPE)
    assert (stats.header.frame_id, stats.size, stats.capacity, stats.lost_batches) == ('replay', 12345, 100000, 3)
    assert (stats.transitions_per_sec, stats.version_lag_max) == (1.5, -2.25)
    image = store.deserialize_cdr(payloads[IMAGE_TOPIC][1], IMAGE_TYPE)
    assert (image.header.frame_id, image.height, image.width, image.encoding, image.step) == (
        'camera', 6, 8, 'rgb8', 24)
    assert bytes(image.data) == source.image.data.tobytes()


def test_a_port_in_use_is_one_clear_error(capsys):
    from dcdrl_ros import cli
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(['foxglove', '--port', str(port)]) == 1
    error = capsys.readouterr().err
    assert error.count('\n') == 1 and f'127.0.0.1:{port}' in error and 'in use' in error, error



def test_a_port_or_backlog_out_of_range_is_a_usage_error(capsys):
    from dcdrl_ros import cli
    for arguments, why in ((['--port', '65536'], 'within 0..65535'), (['--port', '-1'], 'within 0..65535'),
                           (['--message-backlog', '0'], 'at least 1')):
        try:
            cli.main(['foxglove', *arguments])
        except SystemExit as stop:
            assert stop.code == 2
        else:
            raise AssertionError(f'{arguments} accepted')
        error = capsys.readouterr().err
        assert f'argument {arguments[0]}: {arguments[1]} is not {why}' in error, error
        assert 'Traceback' not in error


def test_the_bridge_advertises_each_topic_once_and_counts_what_it_cannot_forward():
    from dcdrl_ros.bag.schema import message_definition
    from dcdrl_ros.foxglove_bridge import FoxgloveBridge
    bridge = FoxgloveBridge('127.0.0.1', 0, message_definition)
    try:
        assert bridge.url == f'ws://127.0.0.1:{bridge.port}' and bridge.port > 0
        assert bridge.add_topic(STATS_TOPIC, STATS_TYPE)
        assert not bridge.add_topic(STATS_TOPIC, STATS_TYPE)
        assert not bridge.add_topic('/unknown', 'no_such_pkg/msg/Thing')
        assert 'no_such_pkg/msg/Thing' in bridge.counts.refused_topics['/unknown']
        bridge.forward(STATS_TOPIC, b'\x00\x01\x00\x00', time.time_ns())
        bridge.forward('/unknown', b'\x00\x01\x00\x00', time.time_ns())
        assert bridge.counts.forwarded == {STATS_TOPIC: 1} and bridge.counts.unadvertised_messages == 1
    finally:
        bridge.close()
