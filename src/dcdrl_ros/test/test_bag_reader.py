"""dcdrl_ros.bag.reader and the ROS-free parts of dcdrl_ros.bag.player (no DDS).

- a bag cut at any byte (a SIGKILLed recorder: no metadata.yaml, no summary, no footer) reads a prefix of
  its messages, every complete chunk of it, and says where it was cut; a chunk whose bytes changed is
  skipped and counted, the chunks after it still read; a file-compressed one cut short the same;
- split files and message compression read back what was written, in order, from a start time, per topic;
- info's sizes and service lines, the QoS a topic replays with, remap rules, ros2msg schemas split into
  .msg texts, playback targets.
"""
from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import zstandard

from dcdrl_ros.bag.metadata import BagMetadata, TopicInfo, qos_profile_dict
from dcdrl_ros.bag.player import (
    Player,
    PlayOptions,
    format_size,
    info_text,
    parse_remaps,
    percentile,
    playback_qos,
    playback_target,
    split_definition,
)
from dcdrl_ros.bag.reader import ZSTD_MAGIC, BagReader
from dcdrl_ros.bag.writer import BagWriter
from dcdrl_ros.graph import EndpointQos
from dcdrl_ros.messages import get_interface
from dcdrl_ros.runtime.qos import DurabilityPolicy, ReliabilityPolicy

String = get_interface('std_msgs/msg/String')
START_NS = 1_700_000_000_000_000_000
STEP_NS = 1_000_000
COUNT = 400
CHATTER = TopicInfo('/chatter', 'std_msgs/msg/String', offered_qos_profiles=[qos_profile_dict(EndpointQos())])
OTHER = TopicInfo('/other', 'std_msgs/msg/String', offered_qos_profiles=[qos_profile_dict(EndpointQos())])


def _text(index: int) -> str:
    return f'message {index:04d} ' + 'x' * 60


def _write(directory: Path, **options) -> Path:
    writer = BagWriter(directory, chunk_size=4096, **options)
    writer.add_topic(CHATTER)
    writer.add_topic(OTHER)
    for index in range(COUNT):
        topic = '/other' if index % 4 == 3 else '/chatter'
        stamp = START_NS + index * STEP_NS
        writer.write(topic, String(data=_text(index)).serialize(), stamp, stamp)
    writer.close()
    return directory


def _indexes(reader: BagReader, **selection) -> list[int]:
    return [int(String.deserialize(m.data).data.split()[1]) for m in reader.messages(**selection)]


@pytest.fixture(scope='module')
def plain_bag(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp('plain') / 'bag')


def _killed_copy(bag: Path, target: Path, keep: int) -> Path:
    """The bag as a SIGKILLed recorder leaves it: no metadata.yaml, its file cut after ``keep`` bytes."""
    target.mkdir()
    (source,) = bag.glob('*.mcap*')
    (target / source.name).write_bytes(source.read_bytes()[:keep])
    return target


def test_complete_bag_reads_whole_in_order_with_no_damage(plain_bag: Path) -> None:
    reader = BagReader(plain_bag)
    assert reader.damage is None
    assert _indexes(reader) == list(range(COUNT))
    assert [(t.name, n) for t, n in reader.metadata.topics_with_message_count] == [('/chatter', 300), ('/other', 100)]
    assert [m.type_name for m in reader.messages()][:1] == ['std_msgs/msg/String']
    assert _indexes(reader, topics=['/other']) == list(range(3, COUNT, 4))
    assert _indexes(reader, start_ns=START_NS + 250 * STEP_NS) == list(range(250, COUNT))
    assert 'string data' in (reader.message_definition('std_msgs/msg/String') or '')


def test_a_bag_cut_anywhere_reads_a_prefix_and_says_where(plain_bag: Path, tmp_path: Path) -> None:
    size = next(plain_bag.glob('*.mcap')).stat().st_size
    seen = set()
    for number, keep in enumerate([0, 5, 100, size // 5, size // 3, size // 2, size - 300, size - 1]):
        reader = BagReader(_killed_copy(plain_bag, tmp_path / f'cut{number}', keep))
        indexes = _indexes(reader)
        assert indexes == list(range(len(indexes))), keep   # a prefix: nothing out of order, nothing twice
        assert reader.metadata.message_count == len(indexes)
        assert reader.damage is not None and reader.damage.startswith('metadata.yaml missing: rebuilt from 1 file')
        if keep < size - 300:
            assert 'truncated at byte' in reader.damage and f'of {keep}' in reader.damage
        seen.add(len(indexes))
    assert len(seen) >= 5 and max(seen) >= COUNT * 0.9   # complete chunks kept, not only the first


def test_a_damaged_chunk_is_skipped_and_counted(plain_bag: Path, tmp_path: Path) -> None:
    (source,) = plain_bag.glob('*.mcap')
    data = bytearray(source.read_bytes())
    position = data.index(b'message 0100')   # inside the chunk that holds message 100
    data[position + 8] ^= 0xFF
    damaged = tmp_path / 'damaged'
    shutil.copytree(plain_bag, damaged)
    (damaged / source.name).write_bytes(bytes(data))
    (damaged / 'metadata.yaml').unlink()
    reader = BagReader(damaged)
    indexes = _indexes(reader)
    assert 100 not in indexes and indexes[-1] == COUNT - 1 and len(indexes) > COUNT * 0.8
    assert '1 unreadable chunk(s) skipped' in (reader.damage or '')


def test_split_and_message_compressed_bags_read_back(tmp_path: Path) -> None:
    split = BagReader(_write(tmp_path / 'split', max_bag_duration=0.1))
    assert len(split.metadata.relative_file_paths) >= 3 and split.damage is None
    assert _indexes(split) == list(range(COUNT))
    first = tmp_path / 'split' / split.metadata.relative_file_paths[0]
    first.unlink()
    without_first = BagReader(tmp_path / 'split')
    assert without_first.damage == f'files missing: {first.name}'
    assert _indexes(without_first) == list(range(COUNT))[-without_first.metadata.message_count:]
    compressed = BagReader(_write(tmp_path / 'message', compression_mode='message', compression_format='zstd'))
    assert _indexes(compressed) == list(range(COUNT))
    writer = BagWriter(tmp_path / 'broken_frame')
    writer.add_topic(CHATTER)
    for index, payload in enumerate([String(data=_text(0)).serialize(), ZSTD_MAGIC + b'\x00not a frame',
                                     String(data=_text(2)).serialize()]):
        writer.write('/chatter', payload, START_NS + index, START_NS + index)
    writer.close()
    damaged = BagReader(tmp_path / 'broken_frame')
    assert _indexes(damaged) == [0, 2] and damaged.bad_messages == 1


def test_a_file_compressed_bag_cut_short_reads_what_decompresses(tmp_path: Path) -> None:
    bag = _write(tmp_path / 'file', compression_mode='file', compression_format='zstd')
    assert _indexes(BagReader(bag)) == list(range(COUNT))
    (source,) = bag.glob('*.mcap.zstd')
    cut = tmp_path / 'cut'
    cut.mkdir()
    (cut / source.name).write_bytes(source.read_bytes()[:source.stat().st_size // 2])
    reader = BagReader(cut)
    indexes = _indexes(reader)
    assert indexes == list(range(len(indexes))) and 'truncated at byte' in (reader.damage or '')


def test_not_a_bag_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match='no bag at'):
        BagReader(tmp_path / 'absent')
    with pytest.raises(FileNotFoundError, match='neither metadata.yaml nor MCAP files'):
        BagReader(tmp_path)
    (tmp_path / 'x_0.mcap').write_bytes(b'not an mcap file at all')
    with pytest.raises(ValueError, match='not an MCAP file'):
        BagReader(tmp_path)
    assert zstandard  # the file compression above needs it


# --- player logic --------------------------------------------------------------------------------------
def test_sizes_and_service_lines_as_ros2_bag_info() -> None:
    assert [format_size(n) for n in (0, 1023, 1024, 20112, 5 * 1024 ** 3)] == [
        '0 B', '1023 B', '1.0 KiB', '19.6 KiB', '5.0 GiB']
    service = TopicInfo('/add/_service_event', 'example_interfaces/srv/AddTwoInts_Event')
    meta = BagMetadata(duration=1_500_000_000, starting_time=START_NS, message_count=7,
                       topics_with_message_count=[(CHATTER, 5), (service, 2)], relative_file_paths=['b_0.mcap'])
    text = info_text(SimpleNamespace(metadata=meta, bag_size=2048, damage='lost'))  # type: ignore[arg-type]
    lines = text.splitlines()
    assert lines[0] == '' and 'Duration:          1.500000000s' in lines and 'Messages:          5' in lines
    assert 'Topic information: Topic: /chatter | Type: std_msgs/msg/String | Count: 5 | Serialization Format: cdr' \
        in lines
    assert 'Service information: Service: /add | Type: example_interfaces/srv/AddTwoInts | Event Count: 2 | ' \
        'Serialization Format: cdr' in lines
    assert lines[-1] == 'Damage:            lost'


def _topic(*offers: EndpointQos) -> TopicInfo:
    return TopicInfo('/t', 'std_msgs/msg/String', offered_qos_profiles=[qos_profile_dict(o) for o in offers])


def test_replay_qos_follows_the_recorded_offers_as_rosbag2() -> None:
    latched = playback_qos(_topic(EndpointQos(durability='TRANSIENT_LOCAL', depth=3)))
    assert (latched.durability, latched.reliability, latched.depth) == (
        DurabilityPolicy.TRANSIENT_LOCAL, ReliabilityPolicy.RELIABLE, 10)
    best_effort = playback_qos(_topic(EndpointQos(reliability='BEST_EFFORT', depth=50)))
    assert (best_effort.reliability, best_effort.durability, best_effort.depth) == (
        ReliabilityPolicy.BEST_EFFORT, DurabilityPolicy.VOLATILE, 50)
    warnings: list[str] = []
    mixed = playback_qos(_topic(EndpointQos(reliability='BEST_EFFORT'), EndpointQos()), warnings.append)
    assert (mixed.reliability, mixed.durability) == (ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE)
    assert len(warnings) == 1 and '/t' in warnings[0]
    assert playback_qos(TopicInfo('/t', 'std_msgs/msg/String')).reliability == ReliabilityPolicy.RELIABLE


def test_remap_rules() -> None:
    assert parse_remaps(['/a:=/b', 'c:=/d/e']) == {'/a': '/b', 'c': '/d/e'}
    with pytest.raises(ValueError, match="not 'from:=to'"):
        parse_remaps(['/a=/b'])


def test_a_nested_schema_splits_into_msg_texts() -> None:
    schema = ('Vector3  linear\nVector3  angular\n\n' + '=' * 80 + '\nMSG: geometry_msgs/Vector3\n'
              'float64 x\nfloat64 y\nfloat64 z\n')
    parts = split_definition('geometry_msgs/msg/Twist', schema)
    assert list(parts) == ['geometry_msgs/msg/Twist', 'geometry_msgs/msg/Vector3']
    assert parts['geometry_msgs/msg/Vector3'].split() == ['float64', 'x', 'float64', 'y', 'float64', 'z']
    assert 'Vector3  linear' in parts['geometry_msgs/msg/Twist']


def test_playback_targets_scale_with_the_rate_from_the_start() -> None:
    assert playback_target(100.0, START_NS, START_NS + 3 * 10 ** 9, 2.0) == pytest.approx(101.5)
    assert playback_target(100.0, START_NS, START_NS, 0.5) == 100.0
    assert percentile([0.1 * i for i in range(1, 101)], 0.99) == pytest.approx(9.9)


# --- the Player over a fake node (timing, selection, stop; the DDS side is test/test_bag_play.py) ---------
class _FakePublisher:
    def __init__(self, msg_type, topic, qos) -> None:
        self.msg_type, self.topic, self.qos_profile = msg_type, topic, qos
        self.sent: list[tuple[float, bytes]] = []

    def publish_serialized(self, data: bytes) -> None:
        self.sent.append((time.monotonic(), data))

    def publish(self, message) -> None:
        self.sent.append((time.monotonic(), message))


class _FakeNode:
    def __init__(self) -> None:
        self.publishers: dict[str, _FakePublisher] = {}

    def create_publisher(self, msg_type, topic, qos) -> _FakePublisher:
        self.publishers[topic] = _FakePublisher(msg_type, topic, qos)
        return self.publishers[topic]

    def destroy_publisher(self, publisher) -> None:
        del self.publishers[publisher.topic]


def test_player_keeps_time_selection_and_remap(plain_bag: Path) -> None:
    node = _FakeNode()
    player = Player(node, BagReader(plain_bag), PlayOptions(rate=4.0, topics=['/chatter'], remap={'/chatter': '/r'},
                                                            measure=True, clock_hz=200.0))
    assert sorted(node.publishers) == ['/r']  # /clock comes with run()
    started = time.monotonic()
    assert player.run() == 300
    elapsed = time.monotonic() - started
    sent = node.publishers['/r'].sent
    assert [int(String.deserialize(data).data.split()[1]) for _t, data in sent] == [
        i for i in range(COUNT) if i % 4 != 3]
    assert (COUNT - 2) * STEP_NS / 1e9 / 4 <= elapsed < 0.5   # 399 ms of bag at 4x: about 0.1 s
    assert percentile([abs(x) for x in player.lateness], 0.5) < 0.005
    clock = [m.clock.sec * 10 ** 9 + m.clock.nanosec for _t, m in node.publishers['/clock'].sent]
    assert clock and clock == sorted(clock) and START_NS <= clock[0] and clock[-1] <= START_NS + COUNT * STEP_NS
    player.close()
    assert node.publishers == {}


def test_player_stops_within_a_long_wait_and_loops_from_the_offset(tmp_path: Path) -> None:
    writer = BagWriter(tmp_path / 'gap')
    writer.add_topic(CHATTER)
    for index, offset_s in enumerate((0.0, 0.1, 0.2, 30.0)):   # a 30 s gap before the last message
        writer.write('/chatter', String(data=_text(index)).serialize(), START_NS + int(offset_s * 1e9), START_NS)
    writer.close()
    node = _FakeNode()
    player = Player(node, BagReader(tmp_path / 'gap'), PlayOptions(start_offset=0.05, loop=True))
    runner = threading.Thread(target=player.run)
    runner.start()
    deadline = time.monotonic() + 10
    while len(node.publishers['/chatter'].sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    player.stop()
    runner.join(5)
    assert not runner.is_alive()
    assert [int(String.deserialize(d).data.split()[1]) for _t, d in node.publishers['/chatter'].sent] == [1, 2]


def test_player_counts_a_refused_message_and_does_not_spin_on_nothing(plain_bag: Path) -> None:
    node, logged = _FakeNode(), []
    player = Player(node, BagReader(plain_bag), PlayOptions(rate=100.0, topics=['/other']), log=logged.append)
    refused = String(data=_text(7)).serialize()
    publish = node.publishers['/other'].publish_serialized

    def refuse_one(data: bytes) -> None:
        if data == refused:
            raise RuntimeError('DDS write on /other failed with code -1')
        publish(data)
    node.publishers['/other'].publish_serialized = refuse_one  # type: ignore[method-assign]
    assert player.run() == 99 and player.failed == 1
    assert logged == ['Could not publish a message of /other: DDS write on /other failed with code -1']
    Player(_FakeNode(), BagReader(plain_bag), PlayOptions(topics=['/absent']), log=logged.append)
    assert logged[-1] == 'Topic /absent is not in the bag: nothing to play for it.'
    empty = Player(_FakeNode(), BagReader(plain_bag), PlayOptions(start_offset=60.0, loop=True), log=logged.append)
    runner = threading.Thread(target=empty.run)
    runner.start()
    runner.join(5)
    assert not runner.is_alive() and empty.published == 0 and 'not looping' in logged[-1]


def test_play_refuses_a_negative_start_offset_or_delay_as_ros2_bag_play(capsys: pytest.CaptureFixture) -> None:
    from dcdrl_ros.cli import main
    for option, named in (('--start-offset', '--start-offset'), ('--delay', '-d/--delay')):
        with pytest.raises(SystemExit) as stop:
            main(['bag', 'play', 'any_bag', option, '-1'])
        assert stop.value.code == 2 and f'argument {named}: -1 is negative' in capsys.readouterr().err


def test_a_file_that_ends_after_a_complete_record_is_said_to_be_not_closed(plain_bag: Path, tmp_path: Path) -> None:
    import struct
    source = next(plain_bag.glob('*.mcap'))
    data = source.read_bytes()
    position, chunk_end = 8, 0   # after the magic; records are opcode (1 byte) and length (8 bytes) first
    while not chunk_end:   # the end of the first chunk: a SIGKILL right after it was written leaves such a file
        opcode, length = struct.unpack_from('<BQ', data, position)
        position += 9 + length
        chunk_end = position if opcode == 0x06 else 0
    cut = tmp_path / 'clean'
    cut.mkdir()
    (cut / source.name).write_bytes(data[:chunk_end])
    damage = BagReader(cut).damage or ''
    assert f'{source.name} ends at byte {chunk_end} without its summary (not closed), messages after ' in damage
    assert 'truncated' not in damage
