"""rosbag2's metadata.yaml (version 9, as ROS 2 Jazzy's rosbag2 0.26 writes it) and the topics' offered QoS.

The same YAML text goes into metadata.yaml and into each MCAP file's 'rosbag2' metadata record
(`serialized_metadata`), as rosbag2_storage_mcap does. `offered_qos_profiles` is a list of rosbag2's
QoS dictionaries (history, depth, reliability, durability, deadline/lifespan/liveliness_lease_duration
as {sec, nsec}, liveliness, avoid_ros_namespace_conventions); bags of older versions keep it as a
YAML string, which read_metadata accepts too.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dcdrl_ros.graph import INFINITE_NS, EndpointQos

METADATA_FILE = 'metadata.yaml'
METADATA_VERSION = 9
NO_TIME = 2**63 - 1   # rosbag2's starting time of a bag without messages
DEFAULT_DISTRO = 'jazzy'  # the distro whose bag format we write; ROS_DISTRO wins where set


@dataclass
class TopicInfo:
    name: str
    type: str
    serialization_format: str = 'cdr'
    offered_qos_profiles: list[dict] = field(default_factory=list)
    type_description_hash: str = ''


@dataclass
class FileInfo:
    path: str
    starting_time: int = NO_TIME   # nanoseconds since the epoch
    duration: int = 0              # nanoseconds
    message_count: int = 0


@dataclass
class BagMetadata:
    """metadata.yaml's fields; times in nanoseconds (rosbag2 nests them under nanoseconds:)."""
    version: int = METADATA_VERSION
    storage_identifier: str = 'mcap'
    duration: int = 0
    starting_time: int = NO_TIME
    message_count: int = 0
    topics_with_message_count: list[tuple[TopicInfo, int]] = field(default_factory=list)
    compression_format: str = ''
    compression_mode: str = ''
    relative_file_paths: list[str] = field(default_factory=list)
    files: list[FileInfo] = field(default_factory=list)
    custom_data: dict[str, str] | None = None
    ros_distro: str = field(default_factory=lambda: os.environ.get('ROS_DISTRO') or DEFAULT_DISTRO)

    @property
    def topics(self) -> list[TopicInfo]:
        return [topic for topic, _count in self.topics_with_message_count]


# --- QoS <-> rosbag2's offered_qos_profiles --------------------------------------------------------------
def _duration(ns: int) -> dict[str, int]:
    sec, nsec = divmod(ns, 1_000_000_000)
    return {'sec': sec, 'nsec': nsec}


def _nanoseconds(value: Any) -> int:
    if not isinstance(value, dict):
        return INFINITE_NS
    ns = int(value.get('sec', 0)) * 1_000_000_000 + int(value.get('nsec', 0))
    return min(ns, INFINITE_NS)


def qos_profile_dict(qos: EndpointQos) -> dict[str, Any]:
    """An endpoint's QoS as one entry of rosbag2's offered_qos_profiles."""
    return {
        'history': qos.history.lower(),
        'depth': qos.depth,
        'reliability': qos.reliability.lower(),
        'durability': qos.durability.lower(),
        'deadline': _duration(qos.deadline_ns),
        'lifespan': _duration(qos.lifespan_ns),
        'liveliness': qos.liveliness.lower(),
        'liveliness_lease_duration': _duration(qos.liveliness_lease_ns),
        'avoid_ros_namespace_conventions': False,
    }


def endpoint_qos_of(profile: dict[str, Any]) -> EndpointQos:
    """One offered_qos_profiles entry back as EndpointQos (missing keys: rmw's defaults)."""
    default = EndpointQos()
    return EndpointQos(
        reliability=str(profile.get('reliability', default.reliability)).upper(),
        history=str(profile.get('history', default.history)).upper(),
        depth=int(profile.get('depth', default.depth)),
        durability=str(profile.get('durability', default.durability)).upper(),
        lifespan_ns=_nanoseconds(profile.get('lifespan')),
        deadline_ns=_nanoseconds(profile.get('deadline')),
        liveliness=str(profile.get('liveliness', default.liveliness)).upper(),
        liveliness_lease_ns=_nanoseconds(profile.get('liveliness_lease_duration')))


def qos_profiles_yaml(profiles: list[dict]) -> str:
    """The text of an MCAP channel's 'offered_qos_profiles' metadata (rosbag2_storage_mcap writes it so)."""
    return _dump(profiles).rstrip('\n')


def parse_qos_profiles(value: Any) -> list[dict]:
    """offered_qos_profiles from metadata.yaml or a channel: a list, or a YAML string of one (older bags)."""
    if isinstance(value, str):
        value = yaml.safe_load(value) if value.strip() else []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise ValueError(f'offered_qos_profiles is not a list of QoS dictionaries: {value!r}')
    return value


# --- metadata.yaml -------------------------------------------------------------------------------------
class _Dumper(yaml.SafeDumper):
    """yaml-cpp's layout as rosbag2 uses it: sequences indented under their key, '""' and '~'."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if value == '':
        return dumper.represent_scalar('tag:yaml.org,2002:str', '', style='"')
    return dumper.represent_str(value)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(type(None), lambda dumper, _value: dumper.represent_scalar('tag:yaml.org,2002:null', '~'))


def _dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1 << 20)


def _topic_dict(topic: TopicInfo) -> dict[str, Any]:
    return {'name': topic.name, 'type': topic.type, 'serialization_format': topic.serialization_format,
            'offered_qos_profiles': topic.offered_qos_profiles,
            'type_description_hash': topic.type_description_hash}


def metadata_yaml(metadata: BagMetadata) -> str:
    """The text of metadata.yaml, without a final newline as yaml-cpp writes it."""
    return _dump({'rosbag2_bagfile_information': _fields(metadata)}).rstrip('\n')


def serialized_metadata(metadata: BagMetadata) -> str:
    """The text of each MCAP file's 'rosbag2' metadata record: metadata.yaml's fields without the
    rosbag2_bagfile_information key, as rosbag2_storage_mcap writes it (`ros2 bag play` refuses the wrapped
    form: 'invalid node; first invalid key: "version"')."""
    return _dump(_fields(metadata)).rstrip('\n')


def _fields(metadata: BagMetadata) -> dict[str, Any]:
    return {
        'version': metadata.version,
        'storage_identifier': metadata.storage_identifier,
        'duration': {'nanoseconds': metadata.duration},
        'starting_time': {'nanoseconds_since_epoch': metadata.starting_time},
        'message_count': metadata.message_count,
        'topics_with_message_count': [{'topic_metadata': _topic_dict(topic), 'message_count': count}
                                      for topic, count in metadata.topics_with_message_count],
        'compression_format': metadata.compression_format,
        'compression_mode': metadata.compression_mode,
        'relative_file_paths': list(metadata.relative_file_paths),
        'files': [{'path': f.path, 'starting_time': {'nanoseconds_since_epoch': f.starting_time},
                   'duration': {'nanoseconds': f.duration}, 'message_count': f.message_count}
                  for f in metadata.files],
        'custom_data': metadata.custom_data,
        'ros_distro': metadata.ros_distro,
    }


def write_metadata(directory: str | os.PathLike, metadata: BagMetadata) -> Path:
    """Writes DIR/metadata.yaml whole (a temporary file renamed over it, so a crash leaves the old one)."""
    path = Path(directory) / METADATA_FILE
    temporary = path.with_name(METADATA_FILE + '.tmp')
    try:
        temporary.write_text(metadata_yaml(metadata), encoding='utf-8')
        os.replace(temporary, path)
    except OSError:
        temporary.unlink(missing_ok=True)   # a full disk leaves no half-written copy beside the bag
        raise
    return path


def _nested(section: dict, key: str, inner: str, default: int) -> int:
    value = section.get(key)
    return int(value.get(inner, default)) if isinstance(value, dict) else default


def parse_metadata(text: str) -> BagMetadata:
    """metadata.yaml's text (or an MCAP 'rosbag2' record's, the same fields unwrapped) as BagMetadata;
    ValueError with what is wrong."""
    document = yaml.safe_load(text)
    if isinstance(document, dict) and 'version' in document:
        document = {'rosbag2_bagfile_information': document}
    if not isinstance(document, dict) or not isinstance(document.get('rosbag2_bagfile_information'), dict):
        raise ValueError('not a rosbag2 metadata file (no rosbag2_bagfile_information)')
    info = document['rosbag2_bagfile_information']
    topics = []
    for entry in info.get('topics_with_message_count') or []:
        topic = entry['topic_metadata']
        topics.append((TopicInfo(
            name=topic['name'], type=topic['type'], serialization_format=topic.get('serialization_format', 'cdr'),
            offered_qos_profiles=parse_qos_profiles(topic.get('offered_qos_profiles', [])),
            type_description_hash=topic.get('type_description_hash') or ''), int(entry.get('message_count', 0))))
    files = [FileInfo(path=f['path'], starting_time=_nested(f, 'starting_time', 'nanoseconds_since_epoch', NO_TIME),
                      duration=_nested(f, 'duration', 'nanoseconds', 0), message_count=int(f.get('message_count', 0)))
             for f in info.get('files') or []]
    return BagMetadata(
        version=int(info.get('version', METADATA_VERSION)),
        storage_identifier=info.get('storage_identifier', ''),
        duration=_nested(info, 'duration', 'nanoseconds', 0),
        starting_time=_nested(info, 'starting_time', 'nanoseconds_since_epoch', NO_TIME),
        message_count=int(info.get('message_count', 0)),
        topics_with_message_count=topics,
        compression_format=info.get('compression_format') or '',
        compression_mode=info.get('compression_mode') or '',
        relative_file_paths=list(info.get('relative_file_paths') or []),
        files=files,
        custom_data=info.get('custom_data'),
        ros_distro=info.get('ros_distro') or '')


def read_metadata(directory: str | os.PathLike) -> BagMetadata:
    """DIR/metadata.yaml; FileNotFoundError when absent, ValueError when it is not rosbag2's."""
    return parse_metadata((Path(directory) / METADATA_FILE).read_text(encoding='utf-8'))
