"""What is on the DDS graph, in ROS 2 names: topics, services, nodes and their endpoints with QoS.

`Graph` is plain data answering the questions rmw_dds_common's graph cache answers for ros2cli
(names and types, endpoints by node, endpoint info with QoS); `GraphWatcher` fills one from the
DDS built-in topics (every reader and writer with its QoS and USER_DATA) and from
`ros_discovery_info` (which node owns which endpoint), the way rmw_cyclonedds_cpp does.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

INFINITE_NS = 2**63 - 1  # DDS_INFINITY, and rmw's RMW_DURATION_INFINITE in nanoseconds
BARE_DDS_NODE = '_CREATED_BY_BARE_DDS_APP_'  # rmw_dds_common's name for an endpoint no node claims
UNKNOWN_NODE = ('_NODE_NAME_UNKNOWN_', '_NODE_NAMESPACE_UNKNOWN_')  # ... and for an unknown participant
DISCOVERY_TOPIC = 'ros_discovery_info'


# --- names --------------------------------------------------------------------------------------------
def ros_type_name(dds_type_name: str) -> str:
    """'pkg::msg::dds_::Name_' -> 'pkg/msg/Name' (unchanged when it is not a ROS 2 name)."""
    parts = dds_type_name.split('::')
    if len(parts) == 4 and parts[2] == 'dds_' and parts[3].endswith('_'):
        return f'{parts[0]}/{parts[1]}/{parts[3][:-1]}'
    return dds_type_name


def ros_topic_name(dds_topic_name: str) -> str | None:
    """'rt/a/b' -> '/a/b'; None for DDS topics that are not ROS topics."""
    if dds_topic_name.startswith('rt/'):
        return dds_topic_name[2:]
    return None


_SERVICE_SUFFIXES = {'rq': ('Request', '_Request'), 'rr': ('Reply', '_Response')}


def ros_service_name(dds_topic_name: str, dds_type_name: str) -> tuple[str, str, str] | None:
    """('/name', 'pkg/srv/Type', 'rq'|'rr') for the request or reply topic of a service, else None."""
    prefix = dds_topic_name[:2]
    if prefix not in _SERVICE_SUFFIXES or not dds_topic_name[2:].startswith('/'):
        return None
    topic_suffix, type_suffix = _SERVICE_SUFFIXES[prefix]
    type_name = ros_type_name(dds_type_name)
    if not dds_topic_name.endswith(topic_suffix) or not type_name.endswith(type_suffix):
        return None
    return dds_topic_name[2:-len(topic_suffix)], type_name[:-len(type_suffix)], prefix


def is_hidden_name(name: str) -> bool:
    """A topic, service or node name is hidden when one of its tokens starts with '_' (as in rclpy)."""
    return any(token.startswith('_') for token in name.split('/'))


def format_gid(gid: bytes) -> str:
    return '.'.join(f'{b:02x}' for b in gid)


# --- endpoints and nodes -------------------------------------------------------------------------------
@dataclass(frozen=True)
class EndpointQos:
    """An endpoint's QoS as rmw reports it (names of rclpy's QoS policy enums)."""
    reliability: str = 'RELIABLE'
    history: str = 'KEEP_LAST'
    depth: int = 10
    durability: str = 'VOLATILE'
    lifespan_ns: int = INFINITE_NS
    deadline_ns: int = INFINITE_NS
    liveliness: str = 'AUTOMATIC'
    liveliness_lease_ns: int = INFINITE_NS


@dataclass(frozen=True)
class Endpoint:
    gid: bytes              # the DDS GUID, which is rmw's GID
    participant: bytes      # the GUID of its participant
    dds_topic: str
    dds_type: str
    is_reader: bool
    qos: EndpointQos = EndpointQos()
    user_data: str = ''

    def user_data_value(self, key: str) -> str | None:
        for item in self.user_data.split(';'):
            name, _, value = item.partition('=')
            if name == key:
                return value
        return None

    @property
    def type_hash(self) -> str:
        """'RIHS01_<hex>' as rmw_cyclonedds announces it in USER_DATA; 'INVALID' when absent (as rclpy prints)."""
        value = self.user_data_value('typehash')
        return value if value and value.startswith('RIHS') else 'INVALID'


@dataclass(frozen=True)
class GraphNode:
    name: str
    namespace: str
    participant: bytes
    readers: frozenset = field(default_factory=frozenset)
    writers: frozenset = field(default_factory=frozenset)

    @property
    def full_name(self) -> str:
        return self.namespace + ('' if self.namespace.endswith('/') else '/') + self.name


NamesAndTypes = list[tuple[str, list[str]]]


class Graph:
    """The graph as rmw_dds_common's cache holds it: endpoints by GID, nodes by participant."""

    def __init__(self) -> None:
        self.endpoints: dict[bytes, Endpoint] = {}
        self.participant_nodes: dict[bytes, tuple[GraphNode, ...]] = {}

    # -- updates ------------------------------------------------------------------------------------
    def add_endpoint(self, endpoint: Endpoint) -> None:
        self.endpoints[endpoint.gid] = endpoint

    def remove_endpoint(self, gid: bytes) -> None:
        self.endpoints.pop(gid, None)

    def set_participant_nodes(self, participant: bytes, nodes: Iterable[GraphNode]) -> None:
        self.participant_nodes[participant] = tuple(nodes)

    def remove_participant(self, participant: bytes) -> None:
        self.participant_nodes.pop(participant, None)
        for gid in [g for g, e in self.endpoints.items() if e.participant == participant]:
            del self.endpoints[gid]

    # -- nodes --------------------------------------------------------------------------------------
    def nodes(self, include_hidden: bool = False) -> list[GraphNode]:
        found = [node for nodes in self.participant_nodes.values() for node in nodes]
        return [n for n in found if include_hidden or (n.name and not n.name.startswith('_'))]

    def find_nodes(self, full_name: str) -> list[GraphNode]:
        return [n for n in self.nodes(include_hidden=True) if n.full_name == full_name]

    def node_of(self, endpoint: Endpoint) -> tuple[str, str]:
        """(node name, namespace) owning the endpoint, with rmw_dds_common's names for the unknown."""
        nodes = self.participant_nodes.get(endpoint.participant)
        if nodes is None:
            return UNKNOWN_NODE
        for node in nodes:
            if endpoint.gid in (node.readers if endpoint.is_reader else node.writers):
                return node.name, node.namespace
        return BARE_DDS_NODE, BARE_DDS_NODE

    # -- topics and services ------------------------------------------------------------------------
    def topic_names_and_types(self, include_hidden: bool = False) -> NamesAndTypes:
        found: dict[str, set[str]] = {}
        for endpoint in self.endpoints.values():
            name = ros_topic_name(endpoint.dds_topic)
            if name is not None:
                found.setdefault(name, set()).add(ros_type_name(endpoint.dds_type))
        return _sorted_names(found, include_hidden)

    def service_names_and_types(self, include_hidden: bool = False) -> NamesAndTypes:
        """Services with a server or a client (request or reply endpoint), as rmw lists them."""
        found: dict[str, set[str]] = {}
        for endpoint in self.endpoints.values():
            service = ros_service_name(endpoint.dds_topic, endpoint.dds_type)
            if service is not None:
                found.setdefault(service[0], set()).add(service[1])
        return _sorted_names(found, include_hidden)

    def topic_endpoints(self, topic: str, readers: bool) -> list[Endpoint]:
        """The readers or writers of a ROS topic, in GID order (rmw's map order)."""
        dds_topic = 'rt' + topic
        return sorted((e for e in self.endpoints.values() if e.dds_topic == dds_topic and e.is_reader == readers),
                      key=lambda e: e.gid)

    def count(self, topic: str, readers: bool) -> int:
        return len(self.topic_endpoints(topic, readers))

    def has_publisher(self, topic: str) -> bool:
        return self.count(topic, readers=False) > 0

    # -- by node (what `ros2 node info` lists) --------------------------------------------------------
    def _node_endpoints(self, full_name: str, readers: bool) -> list[Endpoint]:
        gids: set[bytes] = set()
        for node in self.find_nodes(full_name):
            gids |= node.readers if readers else node.writers
        return [self.endpoints[g] for g in gids if g in self.endpoints]

    def topics_by_node(self, full_name: str, readers: bool) -> NamesAndTypes:
        found: dict[str, set[str]] = {}
        for endpoint in self._node_endpoints(full_name, readers):
            name = ros_topic_name(endpoint.dds_topic)
            if name is not None:
                found.setdefault(name, set()).add(ros_type_name(endpoint.dds_type))
        return _sorted_names(found, include_hidden=True)

    def services_by_node(self, full_name: str, servers: bool) -> NamesAndTypes:
        """A server reads requests ('rq'), a client reads replies ('rr') (rmw_cyclonedds does the same)."""
        wanted = 'rq' if servers else 'rr'
        found: dict[str, set[str]] = {}
        for endpoint in self._node_endpoints(full_name, readers=True):
            service = ros_service_name(endpoint.dds_topic, endpoint.dds_type)
            if service is not None and service[2] == wanted:
                found.setdefault(service[0], set()).add(service[1])
        return _sorted_names(found, include_hidden=True)

    def actions_by_node(self, full_name: str, servers: bool) -> NamesAndTypes:
        """Actions from their hidden 'NAME/_action/send_goal' services, as rcl_action finds them."""
        actions = []
        for name, types in self.services_by_node(full_name, servers):
            if name.endswith('/_action/send_goal'):
                actions.append((name[:-len('/_action/send_goal')],
                                [t[:-len('_SendGoal')] for t in types if t.endswith('_SendGoal')]))
        return actions


def _sorted_names(found: dict[str, set[str]], include_hidden: bool) -> NamesAndTypes:
    return [(name, sorted(types)) for name, types in sorted(found.items())
            if include_hidden or not is_hidden_name(name)]


def choose_reader_qos(publishers: list[EndpointQos]) -> tuple[str | None, str | None, list[str]]:
    """(reliability, durability, notes) a reader should ask for to hear every publisher, as
    `ros2 topic echo` decides it: reliable only if all publishers are, transient-local only if all
    are; (None, None, []) without publishers (keep the defaults)."""
    if not publishers:
        return None, None, []
    notes = []
    reliable = sum(q.reliability == 'RELIABLE' for q in publishers)
    if reliable == len(publishers):
        reliability = 'RELIABLE'
    else:
        if reliable:
            notes.append('Some, but not all, publishers are offering QoSReliabilityPolicy.RELIABLE. Falling back '
                         'to QoSReliabilityPolicy.BEST_EFFORT as it will connect to all publishers')
        reliability = 'BEST_EFFORT'
    latched = sum(q.durability == 'TRANSIENT_LOCAL' for q in publishers)
    if latched == len(publishers):
        durability = 'TRANSIENT_LOCAL'
    else:
        if latched:
            notes.append('Some, but not all, publishers are offering QoSDurabilityPolicy.TRANSIENT_LOCAL. Falling '
                         'back to QoSDurabilityPolicy.VOLATILE as it will connect to all publishers')
        durability = 'VOLATILE'
    return reliability, durability, notes


# --- reading the graph from DDS --------------------------------------------------------------------------
def _policy_kind(policy: Any) -> str:
    """'Policy.Reliability.BestEffort' -> 'BestEffort' (cyclonedds names its policy variants so)."""
    return repr(policy).split('(')[0].rsplit('.', 1)[-1]


_RELIABILITY = {'Reliable': 'RELIABLE', 'BestEffort': 'BEST_EFFORT'}
_DURABILITY = {'Volatile': 'VOLATILE', 'TransientLocal': 'TRANSIENT_LOCAL'}
_LIVELINESS = {'Automatic': 'AUTOMATIC', 'ManualByTopic': 'MANUAL_BY_TOPIC'}


def endpoint_qos(qos: Any) -> EndpointQos:
    """The rmw view of a cyclonedds Qos read from a built-in topic sample."""
    from cyclonedds.core import Policy

    def get(policy: Any) -> Any:
        try:
            return qos[policy]
        except (KeyError, TypeError):
            return None
    history = get(Policy.History)
    reliability = get(Policy.Reliability)
    durability = get(Policy.Durability)
    liveliness = get(Policy.Liveliness)
    lifespan = get(Policy.Lifespan)
    deadline = get(Policy.Deadline)
    keep_all = history is not None and _policy_kind(history) == 'KeepAll'
    depth = 0 if keep_all else getattr(history, 'depth', 1)  # DDS's default history is keep-last 1
    return EndpointQos(
        reliability=_RELIABILITY.get(_policy_kind(reliability), 'UNKNOWN') if reliability is not None else 'RELIABLE',
        history='KEEP_ALL' if keep_all else 'KEEP_LAST',
        depth=depth,
        durability=_DURABILITY.get(_policy_kind(durability), 'UNKNOWN') if durability is not None else 'VOLATILE',
        lifespan_ns=lifespan.lifespan if lifespan is not None else INFINITE_NS,
        deadline_ns=deadline.deadline if deadline is not None else INFINITE_NS,
        liveliness=_LIVELINESS.get(_policy_kind(liveliness), 'UNKNOWN') if liveliness is not None else 'AUTOMATIC',
        liveliness_lease_ns=getattr(liveliness, 'lease_duration', INFINITE_NS) if liveliness is not None
        else INFINITE_NS)


def _user_data(qos: Any) -> str:
    from cyclonedds.core import Policy
    try:
        data = qos[Policy.Userdata]
    except (KeyError, TypeError):
        return ''
    return data.data.decode(errors='replace') if data is not None else ''


def _is_ros_dds_topic(name: str) -> bool:
    return name[:3] in ('rt/', 'rq/', 'rr/') or name == DISCOVERY_TOPIC


class GraphWatcher:
    """Keeps a Graph up to date from a context's participant; ``wait`` blocks on DDS, not on sleeps."""

    def __init__(self, context: Any) -> None:
        from cyclonedds.builtin import (
            BuiltinDataReader,
            BuiltinTopicDcpsParticipant,
            BuiltinTopicDcpsPublication,
            BuiltinTopicDcpsSubscription,
        )
        from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet
        from cyclonedds.sub import DataReader

        from dcdrl_ros.messages import get_interface
        from dcdrl_ros.runtime.qos import DurabilityPolicy, HistoryPolicy, QoSProfile
        from dcdrl_ros.runtime.user_data import endpoint_qos as with_user_data
        self.graph = Graph()
        participant = context.participant
        self._own_participant = participant.guid.bytes
        self._info_class = get_interface('rmw_dds_common/msg/ParticipantEntitiesInfo')
        self._participants = BuiltinDataReader(participant, BuiltinTopicDcpsParticipant)
        self._writers = BuiltinDataReader(participant, BuiltinTopicDcpsPublication)
        self._readers = BuiltinDataReader(participant, BuiltinTopicDcpsSubscription)
        # Keep-all as rmw_dds_common's reader: the topic has no key, so depth 1 would keep one participant.
        info_qos = QoSProfile(history=HistoryPolicy.KEEP_ALL, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._info_reader = DataReader(participant, context.topic(DISCOVERY_TOPIC, self._info_class),
                                       with_user_data(info_qos.to_dds(), self._info_class))
        self._any_state = SampleState.Any | ViewState.Any | InstanceState.Any
        self._alive = InstanceState.Alive
        self._waitset = WaitSet(participant)
        self._conditions = [ReadCondition(r, self._any_state)
                            for r in (self._participants, self._writers, self._readers, self._info_reader)]
        for condition in self._conditions:
            self._waitset.attach(condition)

    def poll(self) -> bool:
        """Applies every discovery sample that arrived; True when something arrived."""
        from dcdrl_ros.runtime.interrupts import deferred_interrupts, take_serialized
        changed = False
        with deferred_interrupts():  # the built-in takes call Python from C for each sample
            participants = self._participants.take(N=256)
            endpoint_samples = [(sample, False) for sample in self._writers.take(N=1024)]
            endpoint_samples += [(sample, True) for sample in self._readers.take(N=1024)]
            infos = take_serialized(self._info_reader._ref, self._any_state, 256)
        for sample in participants:
            changed = True
            if sample.sample_info.instance_state != self._alive:
                self.graph.remove_participant(sample.key.bytes)
        for sample, is_reader in endpoint_samples:
            changed = True
            gid = sample.key.bytes
            if sample.sample_info.instance_state != self._alive or not sample.sample_info.valid_data:
                self.graph.remove_endpoint(gid)
            elif _is_ros_dds_topic(sample.topic_name or ''):
                self.graph.add_endpoint(Endpoint(
                    gid=gid, participant=sample.participant_key.bytes, dds_topic=sample.topic_name,
                    dds_type=sample.type_name, is_reader=is_reader, qos=endpoint_qos(sample.qos),
                    user_data=_user_data(sample.qos)))
        for data, info in infos if not isinstance(infos, int) else []:
            if not info.valid_data:
                continue
            changed = True
            message = self._info_class.deserialize(data)
            participant = bytes(message.gid.data)[:16]
            self.graph.set_participant_nodes(participant, [
                GraphNode(name=n.node_name, namespace=n.node_namespace, participant=participant,
                          readers=frozenset(bytes(g.data)[:16] for g in n.reader_gid_seq),
                          writers=frozenset(bytes(g.data)[:16] for g in n.writer_gid_seq))
                for n in message.node_entities_info_seq])
        return changed

    def wait(self, seconds: float, until: Callable[[Graph], bool] | None = None) -> Graph:
        """Collects discovery for ``seconds``, or less once ``until(graph)`` holds."""
        deadline = time.monotonic() + seconds
        while True:
            self.poll()
            if until is not None and until(self.graph):
                return self.graph
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return self.graph
            self._waitset.wait(int(min(remaining, 0.5) * 1e9))

    def close(self) -> None:
        from dcdrl_ros.runtime.context import delete_entity
        for condition in self._conditions:
            self._waitset.detach(condition)
        for entity in (*self._conditions, self._waitset, self._info_reader, self._participants,
                       self._writers, self._readers):
            delete_entity(entity)

