"""Reads rosbag2 directories of MCAP files (ours or `ros2 bag record -s mcap`'s), also damaged ones.

A bag whose recorder was SIGKILLed has no metadata.yaml and a last file that ends mid-record (no summary,
no footer). The reader then walks each file record by record, keeps every complete record and chunk,
rebuilds the metadata from what it read and says in ``damage`` what was lost. Split files, file
compression (``.mcap.zstd``) and message compression (each payload a zstd frame) are read as rosbag2 does.
"""
from __future__ import annotations

import heapq
import io
import os
import re
import struct
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard
from mcap.data_stream import ReadDataStream
from mcap.exceptions import McapError
from mcap.opcode import Opcode
from mcap.records import Channel, Chunk, Message, Metadata, Schema
from mcap.stream_reader import get_chunk_data_stream

from dcdrl_ros.bag.metadata import (
    METADATA_FILE,
    NO_TIME,
    BagMetadata,
    FileInfo,
    TopicInfo,
    parse_metadata,
    parse_qos_profiles,
    read_metadata,
)

MCAP_MAGIC = b'\x89MCAP0\r\n'
ZSTD_MAGIC = b'\x28\xb5\x2f\xfd'
_RECORD_HEAD = struct.Struct('<BQ')   # opcode, length of the record's body
REORDER_WINDOW = 256


@dataclass(frozen=True)
class BagMessage:
    topic: str
    type_name: str
    data: bytes            # CDR with its 4-byte encapsulation header, as published
    log_time_ns: int       # when the recorder received it
    publish_time_ns: int   # the writer's source timestamp


@dataclass
class FileScan:
    """What one MCAP file holds, counted record by record."""
    path: Path
    size: int = 0
    complete: bool = False                     # the footer was read
    truncated_at: int | None = None            # byte offset of the first incomplete record
    bad_chunks: int = 0                        # complete chunks that failed their CRC or decompression
    topics: dict[str, TopicInfo] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    start_ns: int = NO_TIME
    end_ns: int = 0
    stored_metadata: BagMetadata | None = None  # the file's own 'rosbag2' metadata record


class _Records:
    """The complete top-level records of one MCAP file, chunks opened; stops at the first incomplete one."""

    def __init__(self, scan: FileScan, data: _ExactReader, size: int | None) -> None:
        self.scan, self._data, self._size = scan, data, size  # size None: a decompressing stream

    def __iter__(self) -> Iterator[object]:
        scan, data = self.scan, self._data
        magic = data.read(len(MCAP_MAGIC))
        scan.size = len(magic)
        if len(magic) < len(MCAP_MAGIC) and MCAP_MAGIC.startswith(magic):  # killed before its first write
            scan.truncated_at = 0
            return
        if magic != MCAP_MAGIC:
            raise ValueError(f'{scan.path} is not an MCAP file (no MCAP magic at its start)')
        position = len(MCAP_MAGIC)
        while True:
            head = data.read(_RECORD_HEAD.size)
            scan.size = position + len(head)
            if len(head) < _RECORD_HEAD.size:
                scan.truncated_at = position
                return
            opcode, length = _RECORD_HEAD.unpack(head)
            if self._size is not None and position + _RECORD_HEAD.size + length > self._size:
                scan.truncated_at, scan.size = position, self._size  # (a cut or corrupt length: not read)
                return
            body = data.read(length)
            scan.size += len(body)
            if len(body) < length:
                scan.truncated_at = position
                return
            position += _RECORD_HEAD.size + length
            if opcode == Opcode.FOOTER:
                scan.complete = True
                return
            record = _parse(opcode, body)
            if isinstance(record, Chunk):
                try:  # decompressed and checked whole, then parsed one record at a time (no stall in playback)
                    stream, length = get_chunk_data_stream(record, validate_crc=True)
                except (McapError, ValueError, zstandard.ZstdError):
                    scan.bad_chunks += 1
                    continue
                yield from _chunk_records(stream, length)
            elif record is not None:
                yield record


_PARSERS = {Opcode.SCHEMA: Schema.read, Opcode.CHANNEL: Channel.read, Opcode.CHUNK: Chunk.read,
            Opcode.METADATA: Metadata.read}


def _parse(opcode: int, body: bytes) -> object | None:
    stream = ReadDataStream(io.BytesIO(body))
    if opcode == Opcode.MESSAGE:
        return Message.read(stream, len(body))
    parser = _PARSERS.get(opcode)  # type: ignore[call-overload]
    return parser(stream) if parser is not None else None  # indexes and statistics: rebuilt from the data


def _chunk_records(stream: ReadDataStream, length: int) -> Iterator[object]:
    while stream.count < length:
        opcode, size = stream.read1(), stream.read8()
        if opcode == Opcode.MESSAGE:
            yield Message.read(stream, size)
        elif opcode in (Opcode.SCHEMA, Opcode.CHANNEL):
            yield _PARSERS[opcode](stream)  # type: ignore[index]
        else:
            stream.read(size)


class _ExactReader:
    """read(n) gives n bytes, fewer only at the end of the data; a cut zstd frame counts as the end."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def read(self, size: int) -> bytes:
        parts, wanted = [], size
        while wanted > 0:
            try:
                part = self._raw.read(min(wanted, 1 << 24))
            except zstandard.ZstdError:
                part = b''
            if not part:
                break
            parts.append(part)
            wanted -= len(part)
        return b''.join(parts)

    def __enter__(self) -> _ExactReader:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._raw.close()


def _open_mcap(path: Path) -> tuple[_ExactReader, int | None]:
    """The file's MCAP bytes and their length; a .zstd file (file compression) decompressed as it is read
    (never whole in memory), its length unknown."""
    handle = open(path, 'rb')  # noqa: SIM115  (closed by _ExactReader's __exit__)
    if path.suffix != '.zstd':
        return _ExactReader(handle), path.stat().st_size
    stream = zstandard.ZstdDecompressor().stream_reader(handle, read_across_frames=True, closefd=True)
    return _ExactReader(stream), None


def _file_order(name: str) -> tuple[int, str]:
    match = re.search(r'_(\d+)\.mcap(\.zstd)?$', name)
    return (int(match.group(1)) if match else -1, name)


def _clock(ns: int) -> str:
    return time.strftime('%H:%M:%S', time.localtime(ns // 1_000_000_000)) + f'.{ns % 1_000_000_000 // 100_000_000}'


class BagReader:
    """A rosbag2 directory (or one .mcap file): its metadata, topics and messages, and what was lost."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f'no bag at {self.path}')
        self.directory = self.path if self.path.is_dir() else self.path.parent
        self._schemas: dict[str, str] = {}
        self._channel_types: dict[str, str] = {}
        self.bad_messages = 0   # message-compressed payloads that did not decompress (counted by messages())
        stored: BagMetadata | None = None
        if self.path.is_dir() and (self.path / METADATA_FILE).is_file():
            stored = read_metadata(self.path)
            self.files = [self.directory / name for name in stored.relative_file_paths]
        elif self.path.is_dir():
            self.files = sorted((p for p in self.path.iterdir() if p.name.endswith(('.mcap', '.mcap.zstd'))),
                                key=lambda p: _file_order(p.name))
            if not self.files:
                raise FileNotFoundError(f'{self.path} holds neither {METADATA_FILE} nor MCAP files')
        else:
            self.files = [self.path]
        missing = [p.name for p in self.files if not p.is_file()]
        if stored is not None and not missing and all(_ends_complete(p) for p in self.files):
            self.metadata, self.damage = stored, None
            return
        scans = [self._scan(p) for p in self.files if p.is_file()]
        self.metadata = _rebuilt(scans, stored)
        self.damage = _damage_text(self.path, stored is not None, scans, missing)

    @property
    def topics(self) -> list[TopicInfo]:
        return self.metadata.topics

    @property
    def bag_size(self) -> int:
        """Bytes of the bag's files, metadata.yaml included, as `ros2 bag info` counts them."""
        if not self.path.is_dir():
            return self.path.stat().st_size
        return sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())

    def message_definition(self, type_name: str) -> str | None:
        """The ros2msg text the bag stores for ``type_name`` (its MCAP schema), None if it has none."""
        if type_name not in self._schemas:
            for record in self._records_of_all_files():
                if isinstance(record, Message) and type_name in self._schemas:
                    break
        return self._schemas.get(type_name)

    def messages(self, topics: Iterable[str] | None = None, start_ns: int | None = None) -> Iterator[BagMessage]:
        """The messages in receive (log time) order, as rosbag2's MCAP reader gives them; complete records only.

        Recorders may write a little out of order (rosbag2 compresses messages on a thread pool): a window of
        REORDER_WINDOW messages puts them back in order without holding the bag in memory."""
        wanted = set(topics) if topics is not None else None
        first = start_ns or 0
        decompressor = zstandard.ZstdDecompressor()
        channels: dict[int, str] = {}
        window: list[tuple[int, int, BagMessage]] = []
        # Every chunk is opened, also those before start_ns: the channels may be defined in any of them.
        for index, record in enumerate(self._records_of_all_files(channels)):
            if not isinstance(record, Message) or record.log_time < first:
                continue
            topic = channels.get(record.channel_id)
            if topic is None or (wanted is not None and topic not in wanted):
                continue
            data = record.data
            if data[:4] == ZSTD_MAGIC:  # message compression (a CDR header never starts with zstd's magic)
                try:
                    data = decompressor.decompressobj().decompress(data)
                except zstandard.ZstdError:
                    self.bad_messages += 1   # one damaged payload: counted and left out, the rest plays
                    continue
            message = BagMessage(topic, self._channel_types.get(topic, ''), data, record.log_time, record.publish_time)
            heapq.heappush(window, (record.log_time, index, message))
            if len(window) > REORDER_WINDOW:
                yield heapq.heappop(window)[2]
        while window:
            yield heapq.heappop(window)[2]

    def _records_of_all_files(self, channels: dict[int, str] | None = None) -> Iterator[object]:
        for path in self.files:
            if not path.is_file():
                continue
            file_channels: dict[int, str] = {} if channels is None else channels
            file_channels.clear()  # channel ids are per file
            schemas: dict[int, str] = {}
            data, size = _open_mcap(path)
            with data:
                for record in _Records(FileScan(path), data, size):
                    if isinstance(record, Schema):
                        schemas[record.id] = record.name
                        self._schemas.setdefault(record.name, record.data.decode('utf-8', 'replace'))
                    elif isinstance(record, Channel):
                        file_channels[record.id] = record.topic
                        self._channel_types[record.topic] = schemas.get(record.schema_id, '')
                    yield record

    def _scan(self, path: Path) -> FileScan:
        scan = FileScan(path)
        schemas: dict[int, str] = {}
        channels: dict[int, str] = {}
        data, size = _open_mcap(path)
        with data:
            for record in _Records(scan, data, size):
                if isinstance(record, Schema):
                    schemas[record.id] = record.name
                elif isinstance(record, Channel):
                    channels[record.id] = record.topic
                    if record.topic not in scan.topics:
                        scan.topics[record.topic] = TopicInfo(
                            name=record.topic, type=schemas.get(record.schema_id, ''),
                            serialization_format=record.message_encoding,
                            offered_qos_profiles=_channel_qos(record),
                            type_description_hash=record.metadata.get('topic_type_hash', ''))
                        scan.counts[record.topic] = 0
                elif isinstance(record, Message):
                    topic = channels.get(record.channel_id)
                    if topic is not None:
                        scan.counts[topic] += 1
                        scan.start_ns = min(scan.start_ns, record.log_time)
                        scan.end_ns = max(scan.end_ns, record.log_time)
                elif isinstance(record, Metadata) and record.name == 'rosbag2' and scan.stored_metadata is None:
                    try:
                        scan.stored_metadata = parse_metadata(record.metadata.get('serialized_metadata', ''))
                    except (ValueError, KeyError, TypeError):
                        pass  # only its distro and compression settings are used; the data says the rest
        return scan


def _channel_qos(channel: Channel) -> list[dict]:
    try:
        return parse_qos_profiles(channel.metadata.get('offered_qos_profiles', ''))
    except ValueError:
        return []


def _ends_complete(path: Path) -> bool:
    """Whether a file ends with MCAP's closing magic (a file-compressed one is trusted to metadata.yaml)."""
    if path.suffix == '.zstd':
        return True
    size = path.stat().st_size
    if size < 2 * len(MCAP_MAGIC):
        return False
    with open(path, 'rb') as handle:
        handle.seek(size - len(MCAP_MAGIC))
        return handle.read() == MCAP_MAGIC


def _rebuilt(scans: list[FileScan], stored: BagMetadata | None) -> BagMetadata:
    """The bag's metadata from what its files hold (message counts and times from the messages read)."""
    own = stored or next((s.stored_metadata for s in scans if s.stored_metadata is not None), None)
    topics: dict[str, TopicInfo] = {}
    counts: dict[str, int] = {}
    for scan in scans:
        for name, topic in scan.topics.items():
            topics.setdefault(name, topic)
            counts[name] = counts.get(name, 0) + scan.counts[name]
    files = [FileInfo(path=s.path.name, starting_time=s.start_ns,
                      duration=max(0, s.end_ns - s.start_ns) if s.start_ns != NO_TIME else 0,
                      message_count=sum(s.counts.values())) for s in scans]
    start = min((s.start_ns for s in scans), default=NO_TIME)
    end = max((s.end_ns for s in scans), default=0)
    metadata = BagMetadata(
        duration=max(0, end - start) if start != NO_TIME else 0, starting_time=start,
        message_count=sum(counts.values()),
        topics_with_message_count=[(topic, counts[name]) for name, topic in topics.items()],
        relative_file_paths=[s.path.name for s in scans], files=files)
    if own is not None:
        metadata.compression_format, metadata.compression_mode = own.compression_format, own.compression_mode
        metadata.ros_distro = own.ros_distro or metadata.ros_distro
    return metadata


def _damage_text(path: Path, had_metadata: bool, scans: list[FileScan], missing: list[str]) -> str | None:
    parts = []
    if not had_metadata and path.is_dir():
        parts.append(f'{METADATA_FILE} missing: rebuilt from {len(scans)} file{"s" if len(scans) != 1 else ""}')
    if missing:
        parts.append(f'files missing: {", ".join(missing)}')
    for scan in scans:
        if scan.truncated_at is not None:
            lost = f'messages after {_clock(scan.end_ns)} lost' if scan.end_ns else 'no complete message'
            cut = (f'ends at byte {scan.size} without its summary (not closed)' if 0 < scan.truncated_at == scan.size
                   else f'truncated at byte {scan.truncated_at} of {scan.size}')   # a clean end, or a record cut
            parts.append(f'{scan.path.name} {cut}, {lost}')
        if scan.bad_chunks:
            parts.append(f'{scan.path.name}: {scan.bad_chunks} unreadable chunk(s) skipped')
    return '; '.join(parts) or None
