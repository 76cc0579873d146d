"""`dcdrl bag info` and `dcdrl bag play` on bags the real `ros2 bag record -s mcap` wrote.

One module fixture records, for about 2 s, three topics at once with three real recorders: split files
with small chunks (SIGINT), file compression (SIGINT), and message compression with small chunks SIGKILLed
(no metadata.yaml, a truncated last file). The topics: /chatter (std_msgs/String, reliable, counted texts,
100 Hz), /latched (std_msgs/Int32, transient-local, 10 Hz) from this process, and /be
(geometry_msgs/Twist, best-effort, not in our interface registry, so played with the bag's own definition)
from `ros2 topic pub`.

- the reader gives what metadata.yaml counts, across splits and both compression modes; `dcdrl bag info`
  prints what `ros2 bag info` prints for the same bag;
- the SIGKILLed bag reads up to its last complete chunk, in order, and says what was lost;
- playback (the Player in this process, into subscribers of this process): QoS kept (a late transient-local
  subscriber gets the latched message, the best-effort topic arrives), --rate 2 halves the duration,
  --topics and --remap, --start-offset with --loop, --clock;
- `dcdrl bag play` as a command plays into subscribers and stops cleanly on Ctrl-C.
"""
from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dcdrl_ros.testing import ChildProcess, TopicRecorder, fresh_domain_id, loopback_env, wait_matched

pytestmark = [pytest.mark.dds, pytest.mark.slow]
TIMEOUT = 60.0
RECORD_SECONDS = 2.0
CHATTER_HZ = 100.0
TOPICS = ['/chatter', '/latched', '/be']
SUBSCRIBED = 'All requested topics are subscribed'


def _ros2_env(ros2: Any, domain: int) -> dict[str, str]:
    return ros2.environment(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')


def _ros2(ros2: Any) -> str:
    return shutil.which('ros2', path=ros2.environment()['PATH']) or 'ros2'


@pytest.fixture(scope='module')
def loopback() -> Any:
    with pytest.MonkeyPatch.context() as patch:  # this process's contexts discover as the children do
        patch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
        yield


@pytest.fixture(scope='module')
def bags(ros2: Any, tmp_path_factory: Any, loopback: None) -> dict[str, Path]:
    """{'split': ..., 'file': ..., 'killed': ...} recorded at the same time by the real ros2 bag record."""
    from dcdrl_ros import runtime
    from dcdrl_ros.runtime.qos import qos_profile_transient_local

    from std_msgs.msg import Int32, String
    root = tmp_path_factory.mktemp('ros2_bags')
    small_chunks = root / 'small_chunks.yaml'
    small_chunks.write_text('chunkSize: 4096\n')
    domain = fresh_domain_id()
    env = _ros2_env(ros2, domain)
    ros2_bin = _ros2(ros2)
    record = [ros2_bin, 'bag', 'record', '-s', 'mcap', *TOPICS, '-o']
    node = TopicRecorder(domain)
    stop = threading.Event()

    def publish() -> None:
        chatter = node.node.create_publisher(String, '/chatter', runtime.QoSProfile(depth=100))
        latched = node.node.create_publisher(Int32, '/latched', qos_profile_transient_local)
        start, count = time.monotonic(), 0
        while not stop.is_set():
            chatter.publish(String(data=f'chatter {count:05d}'))
            if count % 10 == 0:
                latched.publish(Int32(data=count))
            count += 1
            stop.wait(max(0.0, start + count / CHATTER_HZ - time.monotonic()))
    publisher_thread = threading.Thread(target=publish, daemon=True)
    twist = ChildProcess([ros2_bin, 'topic', 'pub', '-r', '30', '--qos-reliability', 'best_effort', '/be',
                          'geometry_msgs/msg/Twist', '{linear: {x: 1.5}}'], env=env)
    recorders = {
        'split': ChildProcess([*record, str(root / 'split'), '--max-bag-duration', '1',
                               '--storage-config-file', str(small_chunks)], env=env),
        'file': ChildProcess([*record, str(root / 'file'), '--compression-mode', 'file',
                              '--compression-format', 'zstd'], env=env),
        'killed': ChildProcess([*record, str(root / 'killed'), '--compression-mode', 'message',
                                '--compression-format', 'zstd', '--storage-config-file', str(small_chunks)], env=env),
    }
    try:
        publisher_thread.start()
        for recorder in recorders.values():
            recorder.wait_for_line(SUBSCRIBED, TIMEOUT)
        time.sleep(RECORD_SECONDS)  # the length of the recording, not a synchronisation
        os.kill(recorders['killed'].pid, signal.SIGKILL)
        for name in ('split', 'file'):
            assert recorders[name].stop(timeout=30) == 0, '\n'.join(recorders[name].lines[-20:])
    finally:
        stop.set()
        publisher_thread.join(10)
        for child in (*recorders.values(), twist):
            child.stop()
        node.close()
    return {name: root / name for name in recorders}


# --- reading and info --------------------------------------------------------------------------------------
def test_reader_reads_split_and_compressed_bags_as_metadata_counts(bags: dict[str, Path]) -> None:
    from dcdrl_ros.bag.metadata import read_metadata
    from dcdrl_ros.bag.reader import BagReader

    from std_msgs.msg import String
    assert len(read_metadata(bags['split']).relative_file_paths) >= 2
    assert read_metadata(bags['file']).relative_file_paths[0].endswith('.mcap.zstd')
    for name in ('split', 'file'):
        reader = BagReader(bags[name])
        assert reader.damage is None
        counts = {topic.name: count for topic, count in read_metadata(bags[name]).topics_with_message_count}
        messages = list(reader.messages())
        assert {t: sum(m.topic == t for m in messages) for t in TOPICS} == counts
        assert all(count > 0 for count in counts.values())
        texts = [String.deserialize(m.data).data for m in messages if m.topic == '/chatter']
        numbers = [int(text.split()[1]) for text in texts]
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # none lost, none twice, in order
        assert {m.type_name for m in messages if m.topic == '/be'} == {'geometry_msgs/msg/Twist'}


def test_info_prints_what_ros2_bag_info_prints(ros2: Any, bags: dict[str, Path], capsys: Any) -> None:
    import subprocess

    from dcdrl_ros.cli import main
    for name in ('split', 'file'):
        theirs = subprocess.run([_ros2(ros2), 'bag', 'info', str(bags[name])], env=ros2.environment(),
                                capture_output=True, text=True, timeout=TIMEOUT)
        assert theirs.returncode == 0, theirs.stderr
        assert main(['bag', 'info', str(bags[name])]) == 0
        assert capsys.readouterr().out.rstrip() == theirs.stdout.rstrip()


def test_sigkilled_bag_reads_its_complete_chunks_and_says_what_was_lost(bags: dict[str, Path]) -> None:
    from dcdrl_ros.bag.player import info_text
    from dcdrl_ros.bag.reader import BagReader

    from std_msgs.msg import String
    assert not (bags['killed'] / 'metadata.yaml').exists()
    reader = BagReader(bags['killed'])
    assert reader.damage is not None
    assert 'metadata.yaml missing: rebuilt from 1 file' in reader.damage
    # cut inside a record, or (killed right after a write) at a record's end
    assert ('truncated at byte' in reader.damage or 'without its summary' in reader.damage) and 'lost' in reader.damage
    messages = list(reader.messages())
    texts = [String.deserialize(m.data).data for m in messages if m.topic == '/chatter']  # message-compressed
    numbers = [int(text.split()[1]) for text in texts]
    assert len(numbers) > CHATTER_HZ * 0.5 and len(set(numbers)) == len(numbers)
    assert numbers == sorted(numbers)  # in receive order, as rosbag2's reader gives them
    assert reader.metadata.message_count == len(messages)
    assert [m.log_time_ns for m in messages] == sorted(m.log_time_ns for m in messages)
    assert f'Damage:            {reader.damage}' in info_text(reader)


def test_rebuilt_metadata_of_the_sigkilled_bag_is_what_ros2_bag_reindex_writes(
        ros2: Any, bags: dict[str, Path], tmp_path: Path, capsys: Any) -> None:
    import subprocess

    from dcdrl_ros.cli import main
    assert main(['bag', 'info', str(bags['killed'])]) == 0
    ours = capsys.readouterr().out.splitlines()
    reindexed = tmp_path / 'killed'
    shutil.copytree(bags['killed'], reindexed)
    done = subprocess.run([_ros2(ros2), 'bag', 'reindex', str(reindexed), '-s', 'mcap'], env=ros2.environment(),
                          capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    theirs = subprocess.run([_ros2(ros2), 'bag', 'info', str(reindexed)], env=ros2.environment(),
                            capture_output=True, text=True, timeout=TIMEOUT).stdout.splitlines()

    def comparable(lines: list[str]) -> tuple[list[str], list[str]]:
        """(the other lines, the topic lines sorted: reindex orders topics its own way); bag size left out, as
        reindex added metadata.yaml's bytes."""
        topics = sorted(line.split('Topic: ', 1)[1] for line in lines if 'Topic: ' in line)
        rest = [line for line in lines if 'Topic: ' not in line and not line.startswith(('Bag size:', 'Damage:'))]
        return rest, topics
    assert comparable(ours) == comparable(theirs)


def test_real_ros2_bag_play_takes_the_rosbag2_record_our_writer_puts_in_each_file(
        ros2: Any, tmp_path: Path) -> None:
    """rosbag2_storage_mcap reads each file's 'rosbag2' record when it plays; the wrapped metadata.yaml form
    there makes ros2 bag play fail ('invalid node; first invalid key: "version"')."""
    import subprocess

    from mcap.reader import make_reader

    from dcdrl_ros.bag.metadata import TopicInfo, parse_metadata, qos_profile_dict
    from dcdrl_ros.bag.writer import BagWriter
    from dcdrl_ros.graph import EndpointQos
    from dcdrl_ros.messages import get_interface
    String = get_interface('std_msgs/msg/String')
    writer = BagWriter(tmp_path / 'ours')
    writer.add_topic(TopicInfo('/ours', 'std_msgs/msg/String', offered_qos_profiles=[qos_profile_dict(EndpointQos())]))
    for index in range(20):
        writer.write('/ours', String(data=f'ours {index}').serialize(), 10**18 + index * 10**6, 10**18 + index * 10**6)
    writer.close()
    with open(tmp_path / 'ours' / 'ours_0.mcap', 'rb') as handle:
        records = [m.metadata['serialized_metadata'] for m in make_reader(handle).iter_metadata()
                   if m.name == 'rosbag2']
    assert records and all(text.startswith('version: 9') for text in records)
    assert parse_metadata(records[0]).relative_file_paths == ['ours_0.mcap']
    played = subprocess.run([_ros2(ros2), 'bag', 'play', str(tmp_path / 'ours')],
                            env=_ros2_env(ros2, fresh_domain_id()), capture_output=True, text=True, timeout=TIMEOUT)
    assert played.returncode == 0 and 'Failed' not in played.stdout + played.stderr, played.stderr


# --- playback ----------------------------------------------------------------------------------------------
class _Playback:
    """A Player in this process, with subscribers (a TopicRecorder) on its context (one DDS domain per process)."""

    def __init__(self, bag: Path, **options: Any) -> None:
        from dcdrl_ros import runtime
        from dcdrl_ros.bag.player import Player, PlayOptions
        from dcdrl_ros.bag.reader import BagReader
        self.subscribers = TopicRecorder(fresh_domain_id())
        self.node = runtime.Node('rosbag2_player', context=self.subscribers.context)
        self.player = Player(self.node, BagReader(bag), PlayOptions(**options), log=lambda _text: None)
        self.thread: threading.Thread | None = None

    def start(self, *matched_topics: str) -> None:
        """Plays in a thread once each named publisher has matched its subscriber here."""
        wait_matched([self.player.publisher(topic) for topic in matched_topics], timeout=TIMEOUT)
        self.thread = threading.Thread(target=self.player.run, daemon=True)
        self.thread.start()

    def wait_done(self) -> None:
        assert self.thread is not None
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive(), 'playback did not end'

    def close(self) -> None:
        self.player.stop()
        if self.thread is not None:
            self.thread.join(TIMEOUT)
        self.player.close()
        self.node.destroy_node()
        self.subscribers.close()


def _chatter_numbers(bag: Path, start_ns: int | None = None) -> list[int]:
    from dcdrl_ros.bag.reader import BagReader

    from std_msgs.msg import String
    return [int(String.deserialize(m.data).data.split()[1])
            for m in BagReader(bag).messages(['/chatter'], start_ns=start_ns)]


def test_play_keeps_qos_latched_for_a_late_subscriber_and_best_effort(bags: dict[str, Path]) -> None:
    from dcdrl_ros.runtime.qos import QoSProfile, ReliabilityPolicy, qos_profile_transient_local

    from std_msgs.msg import Int32
    playback = _Playback(bags['split'], rate=4.0)
    try:
        twist = playback.player.message_class('/be')  # built from the bag's definition: not in our registry
        best_effort = playback.subscribers.record(twist, '/be', QoSProfile(depth=100,
                                                  reliability=ReliabilityPolicy.BEST_EFFORT), lambda m: m.linear.x)
        assert playback.player.offered_qos('/be').reliability == ReliabilityPolicy.BEST_EFFORT
        playback.start('/be')
        playback.wait_done()
        playback.subscribers.wait_for(lambda: len(best_effort) > 10, TIMEOUT, 'best-effort Twists')
        assert set(best_effort) == {1.5}
        late = playback.subscribers.record(Int32, '/latched', qos_profile_transient_local, lambda m: m.data)
        playback.subscribers.wait_for(lambda: len(late) >= 1, TIMEOUT, 'the latched Int32 for a late subscriber')
        recorded = [Int32.deserialize(m.data).data for m in playback.player.reader.messages(['/latched'])]
        assert late[-1] == recorded[-1]
    finally:
        playback.close()


def test_play_at_rate_2_with_topics_and_remap(bags: dict[str, Path]) -> None:
    from dcdrl_ros import runtime

    from std_msgs.msg import String
    bag = bags['split']
    playback = _Playback(bag, rate=2.0, topics=['/chatter'], remap={'/chatter': '/replayed'})
    try:
        arrivals: list[tuple[float, int]] = []
        playback.subscribers.record(String, '/replayed', runtime.QoSProfile(depth=1000),
                                    lambda m: arrivals.append((time.monotonic(), int(m.data.split()[1]))))
        original = playback.subscribers.record(String, '/chatter', runtime.QoSProfile(depth=10))
        assert [t.name for t in playback.player.topics] == ['/chatter']
        playback.start('/chatter')  # the recorded name; it publishes as /replayed
        playback.wait_done()
        expected = _chatter_numbers(bag)
        playback.subscribers.wait_for(lambda: len(arrivals) >= len(expected), TIMEOUT, 'every chatter message')
        assert [number for _t, number in arrivals] == expected and original == []
        recorded_s = (len(expected) - 1) / CHATTER_HZ
        played_s = arrivals[-1][0] - arrivals[0][0]
        assert abs(played_s - recorded_s / 2) < 0.15 * recorded_s, (played_s, recorded_s)
    finally:
        playback.close()


def test_play_from_a_start_offset_in_a_loop(bags: dict[str, Path]) -> None:
    from dcdrl_ros import runtime

    from std_msgs.msg import String
    bag = bags['split']
    playback = _Playback(bag, rate=4.0, topics=['/chatter'], start_offset=1.0, loop=True)
    try:
        numbers = playback.subscribers.record(String, '/chatter', runtime.QoSProfile(depth=1000),
                                              lambda m: int(m.data.split()[1]))
        meta = playback.player.reader.metadata
        expected = _chatter_numbers(bag, start_ns=meta.starting_time + 1_000_000_000)
        assert len(expected) < len(_chatter_numbers(bag))
        playback.start('/chatter')
        playback.subscribers.wait_for(lambda: len(numbers) >= len(expected) + 5, TIMEOUT, 'a second pass')
        assert numbers[:len(expected) + 5] == expected + expected[:5]
    finally:
        playback.close()


def test_play_publishes_the_bag_time_on_clock(bags: dict[str, Path]) -> None:
    from dcdrl_ros import runtime
    from dcdrl_ros.messages import get_interface
    Clock = get_interface('rosgraph_msgs/msg/Clock')
    playback = _Playback(bags['split'], rate=4.0, topics=['/latched'], clock_hz=50.0)
    try:
        stamps = playback.subscribers.record(Clock, '/clock', runtime.QoSProfile(depth=1000),
                                             lambda m: m.clock.sec * 1_000_000_000 + m.clock.nanosec)
        playback.start()
        playback.wait_done()
        playback.subscribers.wait_for(lambda: len(stamps) >= 10, TIMEOUT, '/clock messages')
        meta = playback.player.reader.metadata
        assert stamps == sorted(stamps)
        assert meta.starting_time <= stamps[0] and stamps[-1] <= meta.starting_time + meta.duration + 100_000_000
    finally:
        playback.close()


def test_dcdrl_bag_play_command_plays_and_stops_on_ctrl_c(bags: dict[str, Path]) -> None:
    from dcdrl_ros import runtime

    from std_msgs.msg import String
    domain = fresh_domain_id()
    subscribers = TopicRecorder(domain)
    try:
        texts = subscribers.record(String, '/cli_chatter', runtime.QoSProfile(depth=1000), lambda m: m.data)
        argv = [sys.executable, '-m', 'dcdrl_ros.cli', 'bag', 'play', str(bags['killed']), '--loop', '--delay',
                '1.5', '--topics', '/chatter', '--remap', '/chatter:=/cli_chatter']
        with ChildProcess(argv, env=loopback_env(domain)) as child:
            child.wait_for_line('Damaged bag: metadata.yaml missing', TIMEOUT)
            subscribers.wait_for(lambda: len(texts) >= 20, TIMEOUT, 'played chatter')
            assert child.stop(timeout=20) == 0
            assert any('Playback done' in line for line in child.lines), child.lines
        assert all(text.startswith('chatter ') for text in texts)
    finally:
        subscribers.close()
