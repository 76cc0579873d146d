"""dcdrl_ros.bag.writer: rosbag2 directories of MCAP files, split, compressed, killed and out of disk."""
from __future__ import annotations

import errno
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import zstandard
from mcap.exceptions import McapError
from mcap.stream_reader import StreamReader

from dcdrl_ros.bag.metadata import TopicInfo, parse_metadata, qos_profile_dict, read_metadata
from dcdrl_ros.bag.writer import BagWriteError, BagWriter
from dcdrl_ros.graph import EndpointQos
from dcdrl_ros.messages import get_interface

String = get_interface('std_msgs/msg/String')
START_NS = 1_700_000_000_000_000_000
CHATTER = TopicInfo('/chatter', 'std_msgs/msg/String', offered_qos_profiles=[qos_profile_dict(EndpointQos())],
                    type_description_hash=String.get_type_hash())


def _payload(index: int) -> bytes:
    return String(data=f'message {index:04d} ' + 'x' * 100).serialize()


def _write(directory: Path, count: int, step_ns: int = 1_000_000, **options) -> BagWriter:
    writer = BagWriter(directory, **options)
    writer.add_topic(CHATTER)
    for index in range(count):
        writer.write('/chatter', _payload(index), START_NS + index * step_ns, START_NS + index * step_ns - 7)
    return writer


def _messages(data: bytes) -> list:
    """Every message an MCAP stream holds up to its first damage (a truncated file stops there)."""
    found = []
    try:
        for record in StreamReader(io.BytesIO(data), skip_magic=False).records:
            if type(record).__name__ == 'Message':
                found.append(record)
    except (McapError, EOFError, ValueError, AssertionError):
        pass
    return found


def test_a_bag_holds_schema_channel_qos_and_the_bytes_as_given(tmp_path):
    metadata = _write(tmp_path / 'bag', 50).close()
    assert sorted(os.listdir(tmp_path / 'bag')) == ['bag_0.mcap', 'metadata.yaml']
    assert read_metadata(tmp_path / 'bag') == metadata and metadata.message_count == 50
    assert metadata.starting_time == START_NS and metadata.duration == 49 * 1_000_000
    records = list(StreamReader(open(tmp_path / 'bag' / 'bag_0.mcap', 'rb')).records)
    kinds = [type(r).__name__ for r in records]
    assert records[0].profile == 'ros2' and kinds.count('Metadata') == 2
    channel = next(r for r in records if kinds[records.index(r)] == 'Channel')
    assert channel.message_encoding == 'cdr' and channel.metadata['topic_type_hash'] == CHATTER.type_description_hash
    assert channel.metadata['offered_qos_profiles'].startswith('- history: keep_last\n  depth: 10\n')
    messages = [r for r in records if type(r).__name__ == 'Message']
    assert [m.data for m in messages] == [_payload(i) for i in range(50)]
    assert messages[3].log_time == START_NS + 3_000_000 and messages[3].publish_time == START_NS + 3_000_000 - 7


def test_each_files_closing_rosbag2_record_counts_the_bag_so_far_as_rosbag2_does(tmp_path):
    metadata = _write(tmp_path / 'bag', 30, step_ns=100_000_000, max_bag_duration=1.0).close()
    for index, name in enumerate(metadata.relative_file_paths):
        records = [r for r in StreamReader(open(tmp_path / 'bag' / name, 'rb')).records
                   if type(r).__name__ == 'Metadata']
        closing = parse_metadata(records[-1].metadata['serialized_metadata'])
        assert [f.message_count for f in closing.files] == [10] * (index + 1)
        assert closing.message_count == 10 * (index + 1) and closing.starting_time == START_NS


def test_size_and_duration_split_into_numbered_files(tmp_path):
    by_size = _write(tmp_path / 'size', 400, max_bag_size=8_000, chunk_size=2_000).close()
    assert len(by_size.relative_file_paths) > 3 and by_size.relative_file_paths[1] == 'size_1.mcap'
    assert sum(f.message_count for f in by_size.files) == 400
    by_time = _write(tmp_path / 'time', 30, step_ns=100_000_000, max_bag_duration=1.0).close()
    assert by_time.relative_file_paths == ['time_0.mcap', 'time_1.mcap', 'time_2.mcap']
    assert [f.message_count for f in by_time.files] == [10, 10, 10]
    assert by_time.files[1].starting_time == START_NS + 1_000_000_000


def test_file_compression_compresses_each_closed_file_whole(tmp_path):
    metadata = _write(tmp_path / 'f', 300, max_bag_size=8_000, chunk_size=2_000, compression_mode='file',
                      compression_format='zstd').close()
    assert (metadata.compression_mode, metadata.compression_format) == ('FILE', 'zstd')
    assert all(path.endswith('.mcap.zstd') for path in metadata.relative_file_paths)
    assert metadata.files[0].path == 'f_0.mcap'   # rosbag2 names the uncompressed file there
    assert sorted(os.listdir(tmp_path / 'f')) == sorted([*metadata.relative_file_paths, 'metadata.yaml'])
    payloads = []
    for name in metadata.relative_file_paths:
        payloads += [m.data for m in _messages(zstandard.ZstdDecompressor().decompressobj().decompress(
            (tmp_path / 'f' / name).read_bytes()))]
    assert payloads == [_payload(i) for i in range(300)]


def test_message_compression_is_a_zstd_frame_per_payload_in_plain_chunks(tmp_path):
    metadata = _write(tmp_path / 'm', 20, compression_mode='message', compression_format='zstd').close()
    assert (metadata.compression_mode, metadata.compression_format) == ('MESSAGE', 'zstd')
    chunks = [r for r in StreamReader(open(tmp_path / 'm' / 'm_0.mcap', 'rb'), emit_chunks=True).records
              if type(r).__name__ == 'Chunk']
    assert chunks and {c.compression for c in chunks} == {''}
    stored = _messages((tmp_path / 'm' / 'm_0.mcap').read_bytes())
    assert [zstandard.ZstdDecompressor().decompress(m.data) for m in stored] == [_payload(i) for i in range(20)]


def test_options_are_checked_and_an_existing_or_unwritable_folder_is_one_line(tmp_path):
    with pytest.raises(ValueError, match='compression mode'):
        BagWriter(tmp_path / 'a', compression_mode='chunk')
    with pytest.raises(ValueError, match='zstd'):
        BagWriter(tmp_path / 'a', compression_mode='file', compression_format='lz4')
    (tmp_path / 'exists').mkdir()
    with pytest.raises(BagWriteError, match="Output folder '.*exists' already exists.") as existing:
        BagWriter(tmp_path / 'exists')
    (tmp_path / 'a_file').write_text('')
    with pytest.raises(BagWriteError, match="Cannot create output folder '.*': Not a directory") as denied:
        BagWriter(tmp_path / 'a_file' / 'bag')   # unwritable for root too
    assert '\n' not in str(existing.value) + str(denied.value)


class _FillingFile(io.BytesIO):
    """A file on a disk that is full after ``room`` bytes."""

    def __init__(self, room: int) -> None:
        super().__init__()
        self.room = room

    def write(self, data) -> int:
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)

    def close(self) -> None:
        self.kept = self.getvalue()
        super().close()


def test_a_full_disk_stops_with_one_line_counting_what_was_written_and_lost(tmp_path):
    streams: list[_FillingFile] = []

    def open_file(_path):
        streams.append(_FillingFile(room=20_000))
        return streams[-1]
    writer = BagWriter(tmp_path / 'full', chunk_size=3_000, open_file=open_file)
    writer.add_topic(CHATTER)
    with pytest.raises(BagWriteError) as stopped:
        for index in range(1_000):
            writer.write('/chatter', _payload(index), START_NS + index, START_NS + index)
    line = str(stopped.value)
    assert 'the disk is full' in line and '\n' not in line
    assert f'{writer.written} messages written, {writer.lost} lost' in line
    assert 0 < writer.written < writer.received and writer.received == index + 1
    kept = _messages(streams[0].kept)
    assert [m.data for m in kept] == [_payload(i) for i in range(writer.written)]   # every complete chunk
    with pytest.raises(BagWriteError, match='disk is full'):
        writer.write('/chatter', _payload(0), START_NS, START_NS)
    metadata = writer.close()
    assert read_metadata(tmp_path / 'full').message_count == metadata.message_count == writer.written


def test_a_sigkilled_writer_leaves_every_complete_chunk_readable(tmp_path):
    script = textwrap.dedent(f'''
        import sys, time
        from dcdrl_ros.bag.writer import BagWriter
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_bag_writer import CHATTER, START_NS, _payload
        writer = BagWriter({str(tmp_path / 'killed')!r}, chunk_size=2_000)
        writer.add_topic(CHATTER)
        for index in range(505):   # not a whole number of chunks: the last one is still open
            writer.write('/chatter', _payload(index), START_NS + index, START_NS + index)
        print(writer.written, flush=True)
        time.sleep(60)
    ''')
    child = subprocess.Popen([sys.executable, '-c', script], stdout=subprocess.PIPE, text=True)
    try:
        written = int(child.stdout.readline())   # the child waits, its bag open, once this line is out
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    assert 0 < written < 505 and not (tmp_path / 'killed' / 'metadata.yaml').exists()
    from dcdrl_ros.bag.reader import BagReader
    reader = BagReader(tmp_path / 'killed')   # reads every complete chunk and says what was lost
    assert reader.damage and [m.data for m in reader.messages()] == [_payload(i) for i in range(written)]
    assert reader.metadata.message_count == written and [t.name for t in reader.topics] == ['/chatter']


def test_a_chunk_of_slow_topics_goes_to_disk_after_the_flush_period(tmp_path):
    writer = _write(tmp_path / 'slow', 3, flush_period_s=0.05)   # far less than a chunk
    path = tmp_path / 'slow' / 'slow_0.mcap'
    deadline = time.monotonic() + 10
    while writer.written < 3 and time.monotonic() < deadline:
        time.sleep(0.01)   # the period is measured on the monotonic clock: nothing to await
        writer.flush_stale()
    assert writer.written == 3 and [m.data for m in _messages(path.read_bytes())] == [_payload(i) for i in range(3)]
    never = _write(tmp_path / 'never', 3)   # flush_period_s=0: only full chunks, as rosbag2
    never.flush_stale()
    assert never.written == 0 and never.close().message_count == 3
