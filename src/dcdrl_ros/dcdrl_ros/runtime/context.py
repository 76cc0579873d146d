"""One DDS participant per process, configured from the ROS 2 environment variables.

Discovery settings follow rmw_cyclonedds_cpp: ROS_DOMAIN_ID picks the domain,
ROS_AUTOMATIC_DISCOVERY_RANGE (LOCALHOST, SUBNET, OFF, SYSTEM_DEFAULT) and
ROS_STATIC_PEERS shape discovery, the deprecated ROS_LOCALHOST_ONLY=1 means LOCALHOST,
and CYCLONEDDS_URI is appended last, so a user's Cyclone configuration wins.

Samples larger than DCDRL_MAX_SAMPLE_SIZE (a Cyclone size such as "64MiB"; default
DEFAULT_MAX_SAMPLE_SIZE) are dropped by Cyclone before they are assembled, in both directions
(Internal/MaxSampleSize; Cyclone's own default is 2 GiB): a peer cannot make a reader allocate
more than that, whatever the message claims (docs/robustness.md, size limits).
"""
from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any
from xml.sax.saxutils import quoteattr

from cyclonedds.core import Entity, GuardCondition, Policy, Qos, WaitSet
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.idl import IdlStruct, make_idl_struct
from cyclonedds.idl import types as idl_types
from cyclonedds.topic import Topic

from dcdrl_ros import idl
from dcdrl_ros.messages import Message
from dcdrl_ros.runtime.interfaces import interfaces_config

MAX_DOMAIN_ID = 232  # DDS port mapping limit used by ROS 2
# The largest legitimate samples are a 2 MB camera image and sampled batches of a few MB.
DEFAULT_MAX_SAMPLE_SIZE = '16MiB'
MAX_SAMPLE_SIZE_ENV = 'DCDRL_MAX_SAMPLE_SIZE'
# Cyclone 0.10 (rmw_cyclonedds) announces itself to every configured peer address at each SPDP interval
# (8 s with the 10 s default lease) for as long as it runs. Cyclone 11 pings a silent peer address only
# every 30 s and forgets it after 30 s, so a participant that starts later (a ROS 2 tool, a machine that
# boots later) was never found unless it knew about us. These two settings restore 0.10's behaviour.
PEER_PINGING = '<SPDPInterval>8s</SPDPInterval><InitialLocatorPruneDelay>inf</InitialLocatorPruneDelay>'
_CYCLONE_SIZE = re.compile(r'[0-9]+ ?(B|kB|KiB|MB|MiB|GB|GiB)')


def domain_id_from_env(environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    text = environ.get('ROS_DOMAIN_ID', '').strip()
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f'ROS_DOMAIN_ID must be an integer, got {text!r}') from None
    if not 0 <= value <= MAX_DOMAIN_ID:
        raise ValueError(f'ROS_DOMAIN_ID must be in 0..{MAX_DOMAIN_ID}, got {value}')
    return value


def max_sample_size(environ: Mapping[str, str] | None = None) -> str:
    """DCDRL_MAX_SAMPLE_SIZE (a Cyclone size: digits and B, kB, KiB, MB, MiB, GB or GiB), default 16MiB."""
    environ = os.environ if environ is None else environ
    text = environ.get(MAX_SAMPLE_SIZE_ENV, '').strip() or DEFAULT_MAX_SAMPLE_SIZE
    if not _CYCLONE_SIZE.fullmatch(text):
        raise ValueError(f'{MAX_SAMPLE_SIZE_ENV} must be a size such as 16MiB or 500kB, got {text!r}')
    return text


def discovery_config(environ: Mapping[str, str] | None = None, interfaces: list | None = None) -> str:
    """The Cyclone XML that rmw_cyclonedds_cpp (Jazzy) builds for these environment variables, plus
    loopback enabled beside the automatic interface (runtime/interfaces.py says why) and our sample size
    limit, then CYCLONEDDS_URI (later settings win, so a user's file can change all of it).

    As in rmw_cyclonedds: SUBNET (the default) and LOCALHOST use fixed participant indices (unicast
    discovery ports a LOCALHOST peer can find), LOCALHOST turns multicast off and adds localhost as a
    peer, ROS_STATIC_PEERS are peers in both, OFF isolates the process, SYSTEM_DEFAULT changes nothing.
    """
    environ = os.environ if environ is None else environ
    discovery_range = environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE', '').strip().upper()
    if not discovery_range:
        discovery_range = 'LOCALHOST' if environ.get('ROS_LOCALHOST_ONLY', '') == '1' else 'SUBNET'
    valid = ('LOCALHOST', 'SUBNET', 'OFF', 'SYSTEM_DEFAULT')
    if discovery_range not in valid:
        raise ValueError(f'ROS_AUTOMATIC_DISCOVERY_RANGE must be one of {valid}, got {discovery_range!r}')
    peers = [p.strip() for p in environ.get('ROS_STATIC_PEERS', '').split(';') if p.strip()]
    add_localhost = discovery_range == 'LOCALHOST'
    add_peers = discovery_range in ('LOCALHOST', 'SUBNET')
    no_multicast = discovery_range in ('LOCALHOST', 'OFF')
    general = ('<AllowMulticast>false</AllowMulticast>' if no_multicast else '')
    if discovery_range in ('LOCALHOST', 'SUBNET'):
        general += interfaces_config(environ, interfaces)
    config = '<CycloneDDS><Domain>'
    if general:
        config += f'<General>{general}</General>'
    if add_localhost or add_peers or no_multicast:
        if discovery_range == 'OFF':
            config += (f'<Discovery><ParticipantIndex>none</ParticipantIndex>'
                       f'<Tag>ros_discovery_off_{os.getpid()}</Tag>')
        else:
            config += ('<Discovery><ParticipantIndex>auto</ParticipantIndex>'
                       '<MaxAutoParticipantIndex>32</MaxAutoParticipantIndex>')
        listed = (['localhost'] if add_localhost else []) + (peers if add_peers else [])
        if listed:
            config += '<Peers>' + ''.join(f'<Peer address={quoteattr(p)}/>' for p in listed) + '</Peers>'
            config += PEER_PINGING
        config += '</Discovery>'
    config += f'<Internal><MaxSampleSize>{max_sample_size(environ)}</MaxSampleSize></Internal></Domain></CycloneDDS>'
    user = environ.get('CYCLONEDDS_URI', '')
    return f'{config},{user}' if user else config


def delete_entity(entity: Entity | None) -> None:
    """Deletes a DDS entity now (cyclonedds would wait for garbage collection), so its
    matches and unacknowledged samples go away with it."""
    if entity is None:
        return
    ref = entity._ref
    if Entity._entities.get(ref) is entity:
        del Entity._entities[ref]
        entity._delete(ref)


def gid_bytes(entity: Entity) -> Any:
    """The 16-byte DDS GUID of an entity as a uint8 array (rmw's gid, Jazzy's Gid.data)."""
    import numpy as np
    return np.frombuffer(entity.guid.bytes, dtype=np.uint8).copy()


# cyclonedds's bounded_str, array and sequence are indexed at run time (through their metaclass), which its
# annotations do not declare.
_IDL_GENERICS: Any = idl_types

_PRIMITIVE_ANNOTATIONS = {
    'bool': bool, 'byte': idl_types.uint8, 'char': idl_types.uint8, 'int8': idl_types.int8,
    'uint8': idl_types.uint8, 'int16': idl_types.int16, 'uint16': idl_types.uint16,
    'int32': idl_types.int32, 'uint32': idl_types.uint32, 'int64': idl_types.int64,
    'uint64': idl_types.uint64, 'float32': idl_types.float32, 'float64': idl_types.float64,
}


class TopicTypes:
    """Cyclone type descriptions (IdlStruct) for our message classes, built once.

    They carry the ROS 2 DDS type names and describe the same layout, so DDS type
    matching and type discovery see what rmw_cyclonedds_cpp would announce; the bytes
    themselves are always written and read by our own codec.
    """

    def __init__(self) -> None:
        self._structs: dict[str, type[IdlStruct]] = {}
        self._lock = threading.Lock()

    def struct_for(self, message_class: type[Message], service_header: bool = False) -> type[IdlStruct]:
        spec = message_class._spec
        key = spec.dds_type_name + ('+header' if service_header else '')
        with self._lock:
            if key not in self._structs:
                self._structs[key] = self._build(message_class, service_header)
            return self._structs[key]

    def _build(self, message_class: type[Message], service_header: bool) -> type[IdlStruct]:
        spec = message_class._spec
        fields: dict[str, Any] = {}
        if service_header:  # the request/reply header rmw_cyclonedds_cpp writes first
            fields['client_guid_'] = idl_types.uint64
            fields['sequence_number_'] = idl_types.int64
        for field in spec.fields:
            fields[field.name] = self._annotation(field.type, message_class)
        if not spec.fields:
            fields['structure_needs_at_least_one_member'] = idl_types.uint8
        return make_idl_struct(spec.name + '_', spec.dds_type_name, fields)

    def _annotation(self, ftype: idl.FieldType, owner: type[Message]) -> Any:
        if ftype.is_primitive:
            element = _PRIMITIVE_ANNOTATIONS[ftype.base]
        elif ftype.is_string:
            element = _IDL_GENERICS.bounded_str[ftype.string_bound] if ftype.string_bound else str
        else:
            nested = owner._codec.resolve(ftype.package, ftype.base)
            element = self._structs.get(nested._spec.dds_type_name) or self._build(nested, False)
            self._structs.setdefault(nested._spec.dds_type_name, element)
        if not ftype.is_array:
            return element
        if ftype.array_size is not None:
            return _IDL_GENERICS.array[element, ftype.array_size]
        if ftype.upper_bound is not None:
            return _IDL_GENERICS.sequence[element, ftype.upper_bound]
        return _IDL_GENERICS.sequence[element]


class Context:
    """What rclpy's Context holds: the participant, shutdown state and the event queue."""

    def __init__(self) -> None:
        self._participant: DomainParticipant | None = None
        self._domain: Domain | None = None
        self.domain_id = 0
        # Executors wait on one DDS WaitSet (the wait releases the GIL, unlike Python
        # listener callbacks, which contend for it with the spinning thread).
        self.waitset: WaitSet | None = None
        self._wake_guard: GuardCondition | None = None
        self.readables: list[Any] = []
        self.topic_types = TopicTypes()
        self._topics: dict[str, Topic] = {}
        self._lock = threading.RLock()
        self._shutdown = threading.Event()
        self._initialized = False
        self.ros_args: Any = None   # a RosArgs once initialized
        self.user_args: list[str] = []
        self._on_shutdown: list[Callable[[], None]] = []
        self.nodes: list[Any] = []
        self._graph_writer: Any | None = None

    def init(self, args: list[str] | None = None, domain_id: int | None = None) -> None:
        from dcdrl_ros.ros_args import split_ros_args
        if self._participant is not None:
            raise RuntimeError('context is already initialized')
        self.user_args, self.ros_args = split_ros_args(list(args) if args is not None else [])
        self.domain_id = domain_id if domain_id is not None else domain_id_from_env()
        config = discovery_config()
        if config:
            self._domain = Domain(self.domain_id, config)
        qos = Qos(Policy.Userdata(data=b'enclave=/;'))
        self._participant = DomainParticipant(self.domain_id, qos=qos)
        self.waitset = WaitSet(self._participant)
        # wake() sets this guard: a waitset with nothing attached returns at once (a node without
        # subscriptions would busy-spin), and WaitSet.set_trigger does not wake a wait in progress.
        self._wake_guard = GuardCondition(self._participant)
        self.waitset.attach(self._wake_guard)
        self.readables = []
        self._shutdown.clear()
        self._initialized = True

    @property
    def participant(self) -> DomainParticipant:
        if self._participant is None:
            raise RuntimeError('not initialized: call init() first')
        return self._participant

    def ok(self) -> bool:
        return self._initialized and not self._shutdown.is_set()

    def topic(self, dds_name: str, message_class: type[Message], service_header: bool = False) -> Topic:
        with self._lock:
            topic = self._topics.get(dds_name)
            if topic is None:
                struct = self.topic_types.struct_for(message_class, service_header)
                topic = Topic(self.participant, dds_name, struct)
                self._topics[dds_name] = topic
            elif topic.data_type.__idl_typename__ != message_class._spec.dds_type_name:
                raise TypeError(f'topic {dds_name} already has type {topic.data_type.__idl_typename__}, '
                                f'not {message_class._spec.dds_type_name}')
            return topic

    # -- ros_discovery_info: what lets `ros2 node list` see our nodes ----------------------
    def add_node(self, node: Any) -> None:
        with self._lock:
            self.nodes.append(node)
        self.publish_graph()

    def remove_node(self, node: Any) -> None:
        with self._lock:
            if node in self.nodes:
                self.nodes.remove(node)
        self.publish_graph()

    def publish_graph(self) -> None:
        """Announces this participant's nodes and their endpoints, as rmw_dds_common does."""
        if not self.ok():
            return
        from dcdrl_ros.messages import get_interface
        info_class = get_interface('rmw_dds_common/msg/ParticipantEntitiesInfo')
        gid_class = get_interface('rmw_dds_common/msg/Gid')
        node_class = get_interface('rmw_dds_common/msg/NodeEntitiesInfo')
        with self._lock:
            if self._graph_writer is None:
                from cyclonedds.pub import DataWriter

                from dcdrl_ros.runtime.qos import qos_profile_transient_local
                from dcdrl_ros.runtime.user_data import endpoint_qos
                topic = self.topic('ros_discovery_info', info_class)  # no 'rt/': not a ROS topic
                self._graph_writer = DataWriter(self.participant, topic,
                                                endpoint_qos(qos_profile_transient_local.to_dds(), info_class))
            nodes = [node_class(node_namespace=node.get_namespace(), node_name=node.get_name(),
                                reader_gid_seq=[gid_class(data=g) for g in node.endpoint_gids(readers=True)],
                                writer_gid_seq=[gid_class(data=g) for g in node.endpoint_gids(readers=False)])
                     for node in self.nodes]
            info = info_class(gid=gid_class(data=gid_bytes(self.participant)), node_entities_info_seq=nodes)
            from cyclonedds._clayer import ddspy_write
            payload = info_class._codec.encode(info)
            ddspy_write(self._graph_writer._ref, payload + b'\x00' * (-len(payload) % 4))

    def register_readable(self, readable: Any) -> None:
        """Adds an entity whose ``condition`` the executors wait on and ``_dispatch`` they call."""
        with self._lock:
            self.waitset.attach(readable.condition)
            self.readables.append(readable)
        self.wake()

    def unregister_readable(self, readable: Any) -> None:
        with self._lock:
            if readable in self.readables:
                self.readables.remove(readable)
                if self.waitset is not None:
                    self.waitset.detach(readable.condition)

    def wake(self) -> None:
        """Wakes a waiting executor (after a timer change or shutdown)."""
        guard = self._wake_guard
        if guard is not None:
            guard.set(True)

    def clear_wake(self) -> None:
        """Called by an executor once its wait returned: the next wait blocks again."""
        guard = self._wake_guard
        if guard is not None:
            guard.set(False)

    def on_shutdown(self, callback: Callable[[], None]) -> None:
        self._on_shutdown.append(callback)

    def request_shutdown(self) -> None:
        """Makes ok() false and wakes the executor; safe from a signal handler, deletes nothing."""
        self._shutdown.set()
        self.wake()

    def shutdown(self) -> None:
        if not self._initialized or self._participant is None:
            return
        self.request_shutdown()
        for callback in reversed(self._on_shutdown):
            callback()
        self._on_shutdown.clear()
        with self._lock:
            self._topics.clear()
            self.readables = []
        # Deleting the participant deletes its entities and tells peers at once, so a
        # reliable writer elsewhere does not wait for our readers until their lease ends.
        delete_entity(self.waitset)
        delete_entity(self._wake_guard)
        delete_entity(self._participant)
        delete_entity(self._domain)
        self.waitset = None
        self._wake_guard = None
        self._graph_writer = None
        self.nodes = []
        self._participant = None
        self._domain = None

    def try_shutdown(self) -> None:
        self.shutdown()


default_context = Context()
