"""Our bags and ROS 2's bags, each read and played by the other side's tools.

- every message type we ship (dcdrl_msgs and the ROS 2 packages of our registry), one random message
  each, published by our runtime and recorded over DDS by `dcdrl bag record`, is decoded field by field
  by two independent readers: mcap_ros2 (mcap-ros2-support, with the ros2msg schema in the bag) and
  rosbags (its rosbag2 reader and CDR deserializer, types registered from the bag's definitions, which
  also checks each topic's type hash);
- a bag written by `dcdrl bag record` is read by the real `ros2 bag info` (counts, types) and played by
  the real `ros2 bag play` into the real `ros2 topic echo` (content, and a transient-local topic that
  reaches a late subscriber; a dcdrl_msgs message field by field, with this workspace built by colcon);
- a bag written by the real `ros2 bag record -s mcap` plays with `dcdrl bag play` into our ROS-free
  listener and a subscriber of this process.

Publishers live in this process (our runtime); a recording stops once every publisher has matched the
recorder and its reliable writer has every sample acknowledged, so each bag holds exactly what was sent.
One module fixture per bag; the ROS 2 parts skip where there is no ROS 2 (fail with DCDRL_REQUIRE_ROS2=1).
"""
from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dcdrl_ros.testing import (
    ChildProcess,
    TopicRecorder,
    all_message_types,
    first_difference,
    fresh_domain_id,
    loopback_env,
    message_class,
    random_message,
    wait_acked,
    wait_matched,
)

pytestmark = [pytest.mark.dds, pytest.mark.slow]
TIMEOUT = 60.0
CHATTER, LATCHED = '/bag_test/chatter', '/bag_test/latched'
CHATTER_TEXTS = [f'bag message {index:03d}' for index in range(1, 31)]
LATCHED_TEXT = 'latched state'
TYPES_PREFIX = '/bag_types'
PEER = Path(__file__).parent / 'fixtures' / 'backend_peer.py'


def _to_plain() -> Any:
    """backend_peer's message -> nested plain values conversion (what the mixed-graph test compares)."""
    spec = importlib.util.spec_from_file_location('backend_peer', PEER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.to_plain


# ------------------------------------------------------------------------------------------ recording
def dcdrl_argv(*args: str) -> list[str]:
    return [sys.executable, '-m', 'dcdrl_ros.cli', *args]


def ros2_argv(ros2: Any, *args: str) -> list[str]:
    return [shutil.which('ros2', path=ros2.environment()['PATH']) or 'ros2', *args]


def ros2_env(ros2: Any, domain: int) -> dict[str, str]:
    return ros2.environment(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')


def chatter_qos() -> tuple[Any, Any]:
    from dcdrl_ros import runtime
    from dcdrl_ros.runtime.qos import qos_profile_transient_local
    return runtime.QoSProfile(depth=50), qos_profile_transient_local


def string_class() -> Any:
    from dcdrl_ros import runtime  # noqa: F401  (installs the interface import hook)

    from std_msgs.msg import String
    return String


def record_chatter(recorder_argv: list[str], recorder_env: dict[str, str], domain: int) -> None:
    """Publishes LATCHED_TEXT (transient-local) and then CHATTER_TEXTS at 50 Hz (reliable) on ``domain``
    while the recorder command runs; stops it (SIGINT) once it holds every message."""
    String = string_class()
    node = TopicRecorder(domain)
    child = ChildProcess(recorder_argv, env=recorder_env)
    try:
        volatile, latched = chatter_qos()
        latched_publisher = node.node.create_publisher(String, LATCHED, latched)
        latched_publisher.publish(String(data=LATCHED_TEXT))  # before the recorder: it comes by durability
        chatter = node.node.create_publisher(String, CHATTER, volatile)
        wait_matched([latched_publisher, chatter], timeout=TIMEOUT)
        wait_acked([latched_publisher], timeout=TIMEOUT)
        for text in CHATTER_TEXTS:
            chatter.publish(String(data=text))
            time.sleep(0.02)  # pacing at 50 Hz, so that the bag has timing to reproduce
        wait_acked([chatter], timeout=TIMEOUT)
        code = child.stop(timeout=30)
        assert code == 0, f'{recorder_argv[:4]} exited {code}:\n' + '\n'.join(child.lines[-20:])
    finally:
        child.stop()
        node.close()


@pytest.fixture(scope='module')
def discovery_on_loopback() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:  # this process's contexts discover as loopback_env's children
        patch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
        yield


@pytest.fixture(scope='module')
def our_chatter_bag(tmp_path_factory: Any, discovery_on_loopback: None) -> Path:
    """CHATTER and LATCHED recorded by `dcdrl bag record`."""
    out = tmp_path_factory.mktemp('ours') / 'bag'
    domain = fresh_domain_id()
    record_chatter(dcdrl_argv('bag', 'record', CHATTER, LATCHED, '-o', str(out)), loopback_env(domain), domain)
    return out


@pytest.fixture(scope='module')
def their_chatter_bag(ros2: Any, tmp_path_factory: Any, discovery_on_loopback: None) -> Path:
    """CHATTER and LATCHED recorded by the real `ros2 bag record -s mcap`."""
    out = tmp_path_factory.mktemp('theirs') / 'bag'
    domain = fresh_domain_id()
    record_chatter(ros2_argv(ros2, 'bag', 'record', '-s', 'mcap', '-o', str(out), CHATTER, LATCHED),
                   ros2_env(ros2, domain), domain)
    return out


@pytest.fixture(scope='module')
def every_type_bag(tmp_path_factory: Any, discovery_on_loopback: None) -> tuple[Path, dict[str, dict]]:
    """One random message of every message type, each on its own transient-local topic, recorded by
    `dcdrl bag record -e`; returns the bag and {type: the message as plain values}."""
    from dcdrl_ros.runtime.qos import qos_profile_transient_local
    to_plain = _to_plain()
    out = tmp_path_factory.mktemp('types') / 'bag'
    domain = fresh_domain_id()
    node = TopicRecorder(domain)
    sent: dict[str, dict] = {}
    publishers = []
    try:
        for index, type_name in enumerate(message_types()):
            cls = message_class(type_name)
            message = random_message(cls, np.random.default_rng([11, index]))
            publisher = node.node.create_publisher(cls, type_topic(type_name), qos_profile_transient_local)
            publisher.publish(message)
            publishers.append(publisher)
            sent[type_name] = to_plain(message)
        child = ChildProcess(dcdrl_argv('bag', 'record', '-e', f'^{TYPES_PREFIX}/', '-o', str(out)),
                             env=loopback_env(domain))
        try:
            wait_matched(publishers, timeout=TIMEOUT)
            wait_acked(publishers, timeout=TIMEOUT)
            code = child.stop(timeout=30)
            assert code == 0, f'dcdrl bag record exited {code}:\n' + '\n'.join(child.lines[-20:])
        finally:
            child.stop()
    finally:
        node.close()
    return out, sent


def message_types() -> list[str]:
    return [type_name for type_name in all_message_types() if '/msg/' in type_name]


def type_topic(type_name: str) -> str:
    package, _, name = type_name.split('/')
    return f'{TYPES_PREFIX}/{package}/{name}'


# --------------------------------------------------------------------------- independent decoders
def mcap_file(bag: Path) -> Path:
    files = sorted(bag.glob('*.mcap'))
    assert len(files) == 1, f'{bag}: {[p.name for p in bag.iterdir()]}'
    return files[0]


def decoded_plain(value: Any, type_name: str) -> dict:
    """A message decoded by another library as nested plain values, walked with our definition of the type."""
    cls = message_class(type_name)
    return {field.name: _plain_field(getattr(value, field.name), field.type) for field in cls._spec.fields}


def _plain_field(value: Any, ftype: Any) -> Any:
    if ftype.is_message:
        nested = f'{ftype.package}/msg/{ftype.base}'
        return [decoded_plain(item, nested) for item in value] if ftype.is_array else decoded_plain(value, nested)
    if ftype.is_array:
        items = [_plain_scalar(item) for item in value]  # bytes -> ints, numpy -> numpy scalars -> Python
    else:
        items = [_plain_scalar(value)]
    if ftype.base == 'char':  # ROS 2's char is uint8; mcap_ros2 reads it as int8: same byte
        items = [item % 256 for item in items]
    return items if ftype.is_array else items[0]


def _plain_scalar(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)) and len(value) == 1:  # a 'byte' as a one-byte string
        return value[0]
    if isinstance(value, np.generic):
        return value.item()
    return value


def mcap_ros2_decoded(bag: Path) -> dict[str, list[tuple[str, Any]]]:
    """{topic: [(schema name, decoded message)]} by mcap_ros2's decoder from the schemas in the file."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    found: dict[str, list[tuple[str, Any]]] = {}
    with open(mcap_file(bag), 'rb') as stream:
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        for schema, channel, _, decoded in reader.iter_decoded_messages():
            assert schema is not None and schema.encoding == 'ros2msg' and channel.message_encoding == 'cdr'
            found.setdefault(channel.topic, []).append((schema.name, decoded))
    return found


def rosbags_decoded(bag: Path) -> dict[str, list[tuple[str, Any]]]:
    """{topic: [(type, decoded message)]} by rosbags' rosbag2 reader and CDR deserializer, its types made
    from the bag's msg definitions."""
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    found: dict[str, list[tuple[str, Any]]] = {}
    with Reader(bag) as reader:
        typestore = get_typestore(Stores.EMPTY)
        types: dict = {}
        for connection in reader.connections:
            assert connection.msgdef.format.name == 'MSG', (connection.topic, connection.msgdef.format)
            types.update(get_types_from_msg(connection.msgdef.data, connection.msgtype))
        typestore.register(types)
        for connection in reader.connections:
            # The recorded type hash is ROS 2's; rosbags computes the same one except where a type uses
            # char, which it reads as int8 (ROS 2: uint8), and so hashes differently.
            if not uses_char(connection.msgtype):
                assert connection.digest == typestore.hash_rihs01(connection.msgtype), connection.msgtype
        for connection, _, data in reader.messages():
            found.setdefault(connection.topic, []).append(
                (connection.msgtype, typestore.deserialize_cdr(data, connection.msgtype)))
    return found


def uses_char(type_name: str) -> bool:
    for field in message_class(type_name)._spec.fields:
        if field.type.base == 'char' or (field.type.is_message and uses_char(
                f'{field.type.package}/msg/{field.type.base}')):
            return True
    return False


DECODERS = {'mcap_ros2': mcap_ros2_decoded, 'rosbags': rosbags_decoded}


@pytest.mark.parametrize('decoder', sorted(DECODERS))
def test_independent_readers_decode_every_message_type_from_our_bag(every_type_bag: Any, decoder: str) -> None:
    bag, sent = every_type_bag
    decoded = DECODERS[decoder](bag)
    expected_topics = {type_topic(type_name): type_name for type_name in sent}
    assert sorted(decoded) == sorted(expected_topics), set(decoded) ^ set(expected_topics)
    assert len(sent) >= 49
    for topic, type_name in expected_topics.items():
        assert len(decoded[topic]) == 1, (topic, len(decoded[topic]))
        schema_name, message = decoded[topic][0]
        assert schema_name == type_name
        difference = first_difference(sent[type_name], decoded_plain(message, type_name))
        assert difference is None, (decoder, type_name, difference)


def test_our_bag_keeps_each_topics_offered_qos_for_rosbags(our_chatter_bag: Path) -> None:
    from rosbags.rosbag2 import Reader
    with Reader(our_chatter_bag) as reader:
        durability = {c.topic: [q.durability.name for q in c.ext.offered_qos_profiles] for c in reader.connections}
        counts = {c.topic: c.msgcount for c in reader.connections}
    assert durability == {CHATTER: ['VOLATILE'], LATCHED: ['TRANSIENT_LOCAL']}, durability
    assert counts == {CHATTER: len(CHATTER_TEXTS), LATCHED: 1}, counts


# ------------------------------------------------------------------------------ the real ROS 2 tools
def test_ros2_bag_info_reads_our_bag(ros2: Any, our_chatter_bag: Path) -> None:
    result = subprocess.run(ros2_argv(ros2, 'bag', 'info', str(our_chatter_bag)), env=ros2.environment(),
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    topics = dict((topic, (type_name, int(count))) for topic, type_name, count in re.findall(
        r'Topic: (\S+) \| Type: (\S+) \| Count: (\d+)', result.stdout))
    assert topics == {CHATTER: ('std_msgs/msg/String', len(CHATTER_TEXTS)),
                      LATCHED: ('std_msgs/msg/String', 1)}, result.stdout
    assert re.search(rf'Messages:\s+{len(CHATTER_TEXTS) + 1}\b', result.stdout), result.stdout
    assert re.search(r'Storage id:\s+mcap', result.stdout), result.stdout


def test_ros2_bag_play_plays_our_bag_into_ros2_topic_echo(ros2: Any, our_chatter_bag: Path) -> None:
    """--loop, so that the echo that matched after the first messages still gets every text; the latched
    text reaches an echo that starts after the player (transient-local, as recorded)."""
    domain = fresh_domain_id()
    env = ros2_env(ros2, domain)
    echo = ChildProcess(ros2_argv(ros2, 'topic', 'echo', '--no-daemon', CHATTER, 'std_msgs/msg/String'), env=env)
    player = ChildProcess(ros2_argv(ros2, 'bag', 'play', '--loop', str(our_chatter_bag)), env=env)
    late = None
    try:
        for text in CHATTER_TEXTS:
            echo.wait_for_line(text, TIMEOUT)
        late = ChildProcess(ros2_argv(ros2, 'topic', 'echo', '--no-daemon', LATCHED, 'std_msgs/msg/String'), env=env)
        assert LATCHED_TEXT in late.wait_for_line(LATCHED_TEXT, TIMEOUT)
    finally:
        for child in (late, player, echo):
            if child is not None:
                child.stop()


@pytest.mark.timeout(600)  # the ros2_ws fixture may first colcon-build this workspace (dcdrl_msgs for rosbag2)
def test_ros2_bag_play_plays_our_dcdrl_msgs_into_ros2_topic_echo(ros2_ws: Any, every_type_bag: Any) -> None:
    """A dcdrl_msgs message from our bag, played by rosbag2 with this workspace's messages, as ros2 topic echo
    prints it: every field as published (the topic is transient-local, so the echo may start after the player)."""
    import yaml
    bag, sent = every_type_bag
    type_name = 'dcdrl_msgs/msg/TrainingStats'
    topic = type_topic(type_name)
    env = ros2_ws.environment(ROS_DOMAIN_ID=str(fresh_domain_id()), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
    ros2_command = shutil.which('ros2', path=env['PATH']) or 'ros2'
    player = ChildProcess([ros2_command, 'bag', 'play', '--loop', '--topics', topic, '--', str(bag)], env=env)
    echo = ChildProcess([ros2_command, 'topic', 'echo', '--no-daemon', '--once', '--full-length', topic, type_name],
                        env=env)
    try:
        echo.wait_for_line('---', TIMEOUT)
    finally:
        echo.stop()
        player.stop()
    document = [line for line in echo.lines[:echo.lines.index('---')]
                if not line.startswith(('WARNING:', '['))]  # log lines, not the message's YAML
    printed = yaml.safe_load('\n'.join(document))
    assert first_difference(sent[type_name], printed) is None, first_difference(sent[type_name], printed)


def test_dcdrl_bag_play_plays_a_ros2_bag_into_our_listener(their_chatter_bag: Path,
                                                           discovery_on_loopback: None) -> None:
    String = string_class()
    domain = fresh_domain_id()
    listener = ChildProcess(dcdrl_argv('run', 'dcdrl_ros', 'listener', '--ros-args', '-p', f'topic:={CHATTER}'),
                            env=loopback_env(domain))
    player = ChildProcess(dcdrl_argv('bag', 'play', '--loop', str(their_chatter_bag)), env=loopback_env(domain))
    subscriber = None
    try:
        for text in CHATTER_TEXTS:
            listener.wait_for_line(f'I heard: [{text}]', TIMEOUT)
        subscriber = TopicRecorder(domain)  # joins after the player started: transient-local brings the state
        _, latched = chatter_qos()
        heard = subscriber.record(String, LATCHED, latched, lambda message: message.data)
        subscriber.wait_for(lambda: LATCHED_TEXT in heard, TIMEOUT, f'{LATCHED} from dcdrl bag play')
    finally:
        if subscriber is not None:
            subscriber.close()
        player.stop()
        listener.stop()


def test_independent_readers_read_the_ros2_bag_as_they_read_ours(their_chatter_bag: Path,
                                                                 our_chatter_bag: Path) -> None:
    """The same texts, types and QoS in both bags, by both decoders: ours is no special case of theirs."""
    for decoder in DECODERS.values():
        texts = [{topic: [(name, message.data) for name, message in items] for topic, items in decoder(bag).items()}
                 for bag in (their_chatter_bag, our_chatter_bag)]
        assert texts[0] == texts[1] == {CHATTER: [('std_msgs/msg/String', text) for text in CHATTER_TEXTS],
                                        LATCHED: [('std_msgs/msg/String', LATCHED_TEXT)]}
