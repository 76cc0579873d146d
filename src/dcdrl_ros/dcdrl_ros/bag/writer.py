"""A rosbag2 directory as `ros2 bag record -s mcap` writes it: DIR/DIR_0.mcap, DIR_1.mcap ... and metadata.yaml.

Each file is MCAP with the 'ros2' profile: ros2msg schemas, 'cdr' channels carrying the publishers'
offered QoS and type hash, and rosbag2's 'rosbag2' metadata record at the start and the end. Messages are
stored as received (never re-encoded) in chunks of rosbag2's size, each chunk flushed to the file as it is
complete: a SIGKILLed recorder leaves every complete chunk readable (and `flush_stale` closes a chunk that slow
topics would keep open for long). Compression as rosbag2 0.26.5 does it:
'file' compresses each closed file whole into NAME_k.mcap.zstd; 'message' compresses each payload into a
zstd frame and leaves the chunks uncompressed.
"""
from __future__ import annotations

import errno
import os
import threading
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import zstandard
from mcap.writer import CompressionType, Writer

from dcdrl_ros.bag.metadata import (
    NO_TIME,
    BagMetadata,
    FileInfo,
    TopicInfo,
    qos_profiles_yaml,
    serialized_metadata,
    write_metadata,
)
from dcdrl_ros.bag.schema import ENCODING, message_definition

CHUNK_SIZE = 768 * 1024  # the C++ mcap library's default chunk size, which rosbag2_storage_mcap keeps
ZSTD_LEVEL = 1           # rosbag2_compression_zstd's level
COMPRESSION_MODES = ('none', 'file', 'message')
LIBRARY = 'dcdrl_ros.bag (mcap-python)'


class BagWriteError(RuntimeError):
    """The bag cannot be written on; str() is one line saying why and what was kept."""


def check_output_folder(directory: str | os.PathLike) -> Path:
    """Creates the bag's folder; BagWriteError if it exists (as ros2 bag refuses) or cannot be made."""
    path = Path(directory)
    if path.exists():
        raise BagWriteError(f"Output folder '{path}' already exists.")
    try:
        path.mkdir(parents=True)
    except OSError as error:
        raise BagWriteError(f"Cannot create output folder '{path}': {error.strerror or error}") from error
    return path


@dataclass
class _Channel:
    id: int
    topic: TopicInfo
    count: int = 0   # messages of the whole bag


@dataclass
class _OpenFile:
    path: Path
    stream: IO[bytes]
    mcap: Writer
    channels: dict[str, int] = field(default_factory=dict)   # topic -> channel id in this file
    info: FileInfo = field(default_factory=lambda: FileInfo(''))
    end_time: int = 0
    pending: Counter = field(default_factory=Counter)   # topic -> messages in the chunk not yet on disk
    pending_since: int = 0    # monotonic ns of the oldest of them
    flushed_at: int = 0       # stream position after the last complete chunk


class BagWriter:
    """Writes one bag; `write` from any one thread at a time (a lock guards it against `close`)."""

    def __init__(self, directory: str | os.PathLike, max_bag_size: int = 0, max_bag_duration: float = 0,
                 compression_mode: str = 'none', compression_format: str = '', chunk_size: int = CHUNK_SIZE,
                 flush_period_s: float = 0.0, open_file: Any = None) -> None:
        mode = (compression_mode or 'none').lower()
        if mode not in COMPRESSION_MODES:
            raise ValueError(f'compression mode must be one of {", ".join(COMPRESSION_MODES)}, '
                             f'not {compression_mode!r}')
        if mode != 'none' and (compression_format or 'zstd') != 'zstd':
            raise ValueError(f'compression format must be zstd, not {compression_format!r}')
        if max_bag_size < 0 or max_bag_duration < 0:
            raise ValueError('--max-bag-size and --max-bag-duration must be >= 0')
        self.directory = check_output_folder(directory)
        self.max_bag_size = int(max_bag_size)
        self.max_bag_duration_ns = int(max_bag_duration * 1e9)
        self.compression_mode = mode
        self.chunk_size = chunk_size
        self.flush_period_ns = int(flush_period_s * 1e9)
        self._open = open_file or (lambda path: open(path, 'wb'))   # tests give a file that fails
        self._lock = threading.Lock()
        self._channels: dict[str, _Channel] = {}
        self._schemas: dict[str, bytes] = {}
        self._files: list[FileInfo] = []
        self._relative_paths: list[str] = []
        self._file: _OpenFile | None = None
        self._compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL) if mode == 'message' else None
        self._file_compression: ThreadPoolExecutor | None = None
        self._compressions: list[Future] = []
        if mode == 'file':
            self._file_compression = ThreadPoolExecutor(max_workers=1, thread_name_prefix='bag-compress')
        self.received = 0      # messages given to write
        self.written = 0       # ... of them in complete chunks on disk
        self.failed: str | None = None
        self.closed = False
        self._open_next_file()

    # -- the bag's state -----------------------------------------------------------------------------------
    def metadata(self) -> BagMetadata:
        files = [*self._files, *([self._file.info] if self._file is not None else [])]
        counted = [f for f in files if f.message_count]
        start = min((f.starting_time for f in counted), default=NO_TIME)
        end = max((f.starting_time + f.duration for f in counted), default=NO_TIME)
        return BagMetadata(
            duration=end - start if counted else 0, starting_time=start,
            message_count=sum(f.message_count for f in files),
            topics_with_message_count=[(c.topic, c.count) for c in self._channels.values()],
            compression_format='zstd' if self.compression_mode != 'none' else '',
            compression_mode=self.compression_mode.upper() if self.compression_mode != 'none' else '',
            relative_file_paths=list(self._relative_paths), files=[FileInfo(**vars(f)) for f in files])

    @property
    def lost(self) -> int:
        return self.received - self.written

    # -- topics and messages -----------------------------------------------------------------------------
    def add_topic(self, topic: TopicInfo) -> None:
        """Registers a topic (its schema from our interfaces); the channel is written with its first message
        in each file, as rosbag2 writes channels when the topic is created."""
        with self._lock:
            if topic.name in self._channels:
                return
            if topic.type not in self._schemas:
                self._schemas[topic.type] = message_definition(topic.type).encode()
            self._channels[topic.name] = _Channel(len(self._channels) + 1, topic)
            if self._file is not None and not self.failed:
                self._guarded(self._register_channel, self._file, topic.name)

    def write(self, topic: str, data: bytes, log_time_ns: int, publish_time_ns: int) -> None:
        """Stores one message as received; BagWriteError once the disk is full (and on every call after)."""
        with self._lock:
            if self.failed or self.closed:
                raise BagWriteError(self.failed or 'the bag is closed')
            channel = self._channels.get(topic)
            if channel is None:
                raise KeyError(f'topic {topic} was not added to the bag')
            self.received += 1
            self._guarded(self._write, channel, data, log_time_ns, publish_time_ns)

    def _write(self, channel: _Channel, data: bytes, log_time_ns: int, publish_time_ns: int) -> None:
        current = self._file
        assert current is not None
        if (self.max_bag_duration_ns and current.info.message_count
                and log_time_ns - current.info.starting_time >= self.max_bag_duration_ns):
            self._split()
            current = self._file
            assert current is not None
        if channel.topic.name not in current.channels:
            self._register_channel(current, channel.topic.name)
        payload = self._compressor.compress(data) if self._compressor is not None else data
        current.mcap.add_message(current.channels[channel.topic.name], log_time_ns, payload, publish_time_ns)
        channel.count += 1
        info = current.info
        info.starting_time = min(info.starting_time, log_time_ns)
        current.end_time = max(current.end_time, log_time_ns)
        info.duration = current.end_time - info.starting_time
        info.message_count += 1
        if not current.pending:
            current.pending_since = time.monotonic_ns()
        current.pending[channel.topic.name] += 1
        self._chunk_done(current)
        if self.max_bag_size and current.flushed_at >= self.max_bag_size:
            self._split()

    def _chunk_done(self, current: _OpenFile) -> None:
        """When the MCAP writer wrote a chunk, puts it on disk: it and all before it survive a SIGKILL."""
        position = current.stream.tell()
        if position != current.flushed_at:
            current.stream.flush()
            current.flushed_at = position
            self.written += current.pending.total()
            current.pending.clear()

    def flush_stale(self) -> None:
        """Writes the open chunk out once its oldest message waited flush_period_s (0: never), so a SIGKILL
        loses at most that much of slow topics; rosbag2 keeps a chunk open until it holds 768 KiB."""
        with self._lock:
            current = self._file
            if (not self.flush_period_ns or current is None or self.failed or self.closed or not current.pending
                    or time.monotonic_ns() - current.pending_since < self.flush_period_ns):
                return
            self._guarded(self._flush_chunk, current)

    def _flush_chunk(self, current: _OpenFile) -> None:
        current.mcap.flush()
        self._chunk_done(current)

    def _guarded(self, step: Any, *args: Any) -> None:
        try:
            step(*args)
        except OSError as error:
            self._fail(error)

    def _fail(self, error: OSError) -> None:
        what = 'the disk is full' if error.errno == errno.ENOSPC else f'cannot write: {error.strerror or error}'
        self.failed = (f'Recording stopped, {what} ({self.directory}): {self.written} messages written, '
                       f'{self.lost} lost')
        self._close_files(after_failure=True)
        raise BagWriteError(self.failed) from error

    # -- files -------------------------------------------------------------------------------------------
    def _open_next_file(self) -> None:
        name = f'{self.directory.name}_{len(self._files)}.mcap'
        path = self.directory / name
        try:
            stream = self._open(path)
        except OSError as error:
            raise BagWriteError(f"Cannot write to output folder '{self.directory}': {error.strerror or error}") \
                from error
        mcap = Writer(stream, chunk_size=self.chunk_size, compression=CompressionType.NONE)
        self._file = _OpenFile(path, stream, mcap, info=FileInfo(name))
        self._relative_paths.append(name + ('.zstd' if self.compression_mode == 'file' else ''))
        try:
            mcap.start(profile='ros2', library=LIBRARY)
            mcap.add_metadata('rosbag2', {'serialized_metadata': serialized_metadata(self.metadata())})
            for topic in self._channels:
                self._register_channel(self._file, topic)
            stream.flush()
            self._file.flushed_at = stream.tell()
        except OSError as error:
            self._fail(error)

    def _register_channel(self, current: _OpenFile, topic: str) -> None:
        info = self._channels[topic].topic
        schema_id = current.mcap.register_schema(info.type, ENCODING, self._schemas[info.type])
        current.channels[topic] = current.mcap.register_channel(
            topic, info.serialization_format, schema_id,
            {'offered_qos_profiles': qos_profiles_yaml(info.offered_qos_profiles),
             'topic_type_hash': info.type_description_hash})

    def _finish_file(self, current: _OpenFile) -> None:
        current.mcap.flush()
        self.written += current.pending.total()
        current.pending.clear()
        current.mcap.add_metadata('rosbag2', {'serialized_metadata': serialized_metadata(self.metadata())})
        current.mcap.finish()
        current.stream.close()
        self._files.append(current.info)
        self._file = None
        if self._file_compression is not None:
            self._compressions.append(self._file_compression.submit(_compress_file, current.path))

    def _split(self) -> None:
        current = self._file
        assert current is not None
        self._finish_file(current)
        self._open_next_file()

    def _close_files(self, after_failure: bool = False) -> None:
        current = self._file
        if current is not None:
            if after_failure:
                self._file = None
                self._files.append(current.info)   # its complete chunks are readable; the rest is lost
                current.info.message_count -= current.pending.total()
                for topic, count in current.pending.items():
                    self._channels[topic].count -= count
                try:
                    current.stream.close()
                except OSError:
                    pass
            else:
                self._finish_file(current)   # still the open file: its closing record counts its messages
        if self._file_compression is not None:
            self._file_compression.shutdown(wait=True)
            for done in self._compressions:
                done.result()
        try:
            write_metadata(self.directory, self.metadata())
        except OSError:
            if not after_failure:
                raise

    def close(self) -> BagMetadata:
        """Finishes the open file, waits for file compression and writes metadata.yaml; idempotent."""
        with self._lock:
            if not self.closed:
                self.closed = True
                if not self.failed:
                    self._guarded(self._close_files)
            return self.metadata()


def _compress_file(path: Path) -> None:
    """NAME.mcap -> NAME.mcap.zstd, the original removed (rosbag2's file compression)."""
    compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
    target = path.with_name(path.name + '.zstd')
    with open(path, 'rb') as source, open(target, 'wb') as sink:
        compressor.copy_stream(source, sink)
    path.unlink()
