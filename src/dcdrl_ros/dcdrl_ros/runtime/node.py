"""rclpy's Node API over Cyclone DDS, with ROS 2 names and bytes on the wire.

Only the part of rclpy that DC-DRL's nodes use, with the same names and semantics:
publishers, subscriptions, timers, services, clients with futures, parameters,
logger and clock. DDS callbacks only queue work; every user callback runs in the
thread that spins the executor, as in rclpy. The entities live in the modules rclpy
has them in (publisher, subscription, timer, service, client, task, time, clock, logging).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dcdrl_ros.messages import Message, ServiceType, get_interface
from dcdrl_ros.runtime.client import Client
from dcdrl_ros.runtime.clock import Clock
from dcdrl_ros.runtime.context import Context, default_context
from dcdrl_ros.runtime.logging import Logger, parse_log_level
from dcdrl_ros.runtime.node_parameters import NodeParameters
from dcdrl_ros.runtime.parameter_service import ParameterService
from dcdrl_ros.runtime.parameters import Parameter, ParameterDescriptor
from dcdrl_ros.runtime.publisher import Publisher
from dcdrl_ros.runtime.qos import (
    QoSLike,
    QoSProfile,
    as_profile,
    qos_profile_parameter_events,
    qos_profile_services_default,
)
from dcdrl_ros.runtime.service import Service
from dcdrl_ros.runtime.subscription import Subscription
from dcdrl_ros.runtime.timer import Timer


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------
def expand_topic_name(name: str, node_name: str, namespace: str) -> str:
    """rcl's expansion: '~' is the node's private namespace, relative names join the namespace."""
    if not name:
        raise ValueError('topic or service name must not be empty')
    if name.startswith('~'):
        base = namespace.rstrip('/') + '/' + node_name
        name = base + name[1:]
    elif not name.startswith('/'):
        name = namespace.rstrip('/') + '/' + name
    if '//' in name or name.endswith('/') and name != '/':
        raise ValueError(f'invalid topic or service name {name!r}')
    for part in name.strip('/').split('/'):
        if not part or not (part[0].isalpha() or part[0] == '_') or not all(
                c.isalnum() or c == '_' for c in part):
            raise ValueError(f'invalid topic or service name {name!r}: tokens must be [A-Za-z_][A-Za-z0-9_]*')
    return name


# ---------------------------------------------------------------------------
# Node
# ---------------------------------------------------------------------------
class Node(NodeParameters):
    def __init__(self, node_name: str, *, context: Context | None = None, cli_args: list[str] | None = None,
                 namespace: str | None = None, use_global_arguments: bool = True,
                 parameter_overrides: list[Parameter] | None = None,
                 allow_undeclared_parameters: bool = False, start_parameter_services: bool = True,
                 automatically_declare_parameters_from_overrides: bool = False, **_ignored: Any) -> None:
        from dcdrl_ros.ros_args import split_ros_args
        self.context = context or default_context
        if not self.context.ok():
            raise RuntimeError('init() must be called before creating a node')
        # Global --ros-args first, then the node's own cli_args (later rules win, as in rcl).
        global_argv: list[str] = (self.context.ros_args.to_argv()
                                  if use_global_arguments and self.context.ros_args else [])
        rules = split_ros_args(global_argv + list(cli_args or []))[1]
        _check_node_name(node_name)
        resolved = rules.resolve(node_name, namespace or '/')
        self._node_name = resolved.node_name
        ns = resolved.namespace.strip('/')
        self._namespace = '/' + ns if ns else '/'
        _check_node_name(self._node_name)
        self._remaps: dict[str, str] = dict(resolved.remaps)
        overrides = {name: override.value for name, override in resolved.param_overrides.items()}
        sources = {name: override.source for name, override in resolved.param_overrides.items()}
        for parameter in parameter_overrides or []:
            overrides[parameter.name] = parameter
            sources[parameter.name] = 'parameter_overrides'
        self._init_parameters(overrides, sources, allow_undeclared_parameters)
        log_level = rules.logger_levels.get(self._node_name) or rules.log_level
        self._logger = Logger(self.get_fully_qualified_name().lstrip('/').replace('/', '.'))
        if log_level:
            self._logger.set_level(parse_log_level(log_level))
        self._clock = Clock()
        self.publishers: list[Publisher] = []
        self.subscriptions: list[Subscription] = []
        self.timers: list[Timer] = []
        self.services: list[Service] = []
        self.clients: list[Client] = []
        # As rclpy's Node: /parameter_events, declarations from overrides, use_sim_time, the services.
        self._parameter_event_publisher = self.create_publisher(
            get_interface('rcl_interfaces/msg/ParameterEvent'), '/parameter_events', qos_profile_parameter_events)
        if automatically_declare_parameters_from_overrides:
            self.declare_parameters('', [(name, parameter.value, ParameterDescriptor())
                                         for name, parameter in self._parameter_overrides.items()],
                                    ignore_override=True)
        self._declare_standard_parameters()
        self._parameter_service = ParameterService(self) if start_parameter_services else None
        self.context.add_node(self)

    # -- identity ---------------------------------------------------------------
    def get_name(self) -> str:
        return self._node_name

    def get_namespace(self) -> str:
        return self._namespace

    def get_fully_qualified_name(self) -> str:
        return self._namespace.rstrip('/') + '/' + self._node_name

    def get_logger(self) -> Logger:
        return self._logger

    def get_clock(self) -> Clock:
        return self._clock

    def resolve_topic_name(self, name: str, only_expand: bool = False) -> str:
        expanded = expand_topic_name(name, self._node_name, self._namespace)
        if only_expand:
            return expanded
        for source, target in self._remaps.items():
            if source.startswith('__'):
                continue
            if expand_topic_name(source, self._node_name, self._namespace) == expanded:
                return expand_topic_name(target, self._node_name, self._namespace)
        return expanded

    resolve_service_name = resolve_topic_name

    # -- entities -----------------------------------------------------------------
    def create_publisher(self, msg_type: type[Message], topic: str, qos_profile: QoSLike,
                         **_ignored: Any) -> Publisher:
        publisher = Publisher(self, _check_message_type(msg_type), self.resolve_topic_name(topic),
                              as_profile(qos_profile))
        self.publishers.append(publisher)
        self.context.publish_graph()
        return publisher

    def create_subscription(self, msg_type: type[Message], topic: str, callback: Callable[..., None],
                            qos_profile: QoSLike, *, raw: bool = False, sample_info: bool = False,
                            **_ignored: Any) -> Subscription:
        subscription = Subscription(self, _check_message_type(msg_type), self.resolve_topic_name(topic),
                                    callback, as_profile(qos_profile), raw=raw, sample_info=sample_info)
        self.subscriptions.append(subscription)
        self.context.publish_graph()
        return subscription

    def create_timer(self, timer_period_sec: float, callback: Callable[[], None], **_ignored: Any) -> Timer:
        timer = Timer(self.context, timer_period_sec, callback)
        self.timers.append(timer)
        self.context.wake()
        return timer

    def create_service(self, srv_type: type[ServiceType], srv_name: str, callback: Callable[[Any, Any], Any],
                       *, qos_profile: QoSProfile = qos_profile_services_default, **_ignored: Any) -> Service:
        service = Service(self, srv_type, self.resolve_service_name(srv_name), callback, qos_profile)
        self.services.append(service)
        self.context.publish_graph()
        return service

    def create_client(self, srv_type: type[ServiceType], srv_name: str, *,
                      qos_profile: QoSProfile = qos_profile_services_default, **_ignored: Any) -> Client:
        client = Client(self, srv_type, self.resolve_service_name(srv_name), qos_profile)
        self.clients.append(client)
        self.context.publish_graph()
        return client

    def destroy_publisher(self, publisher: Publisher) -> bool:
        return self._destroy(self.publishers, publisher)

    def destroy_subscription(self, subscription: Subscription) -> bool:
        return self._destroy(self.subscriptions, subscription)

    def destroy_timer(self, timer: Timer) -> bool:
        return self._destroy(self.timers, timer)

    def destroy_service(self, service: Service) -> bool:
        return self._destroy(self.services, service)

    def destroy_client(self, client: Client) -> bool:
        return self._destroy(self.clients, client)

    def _destroy(self, entities: list, entity: Any) -> bool:
        if entity not in entities:
            return False
        entities.remove(entity)
        entity.destroy()
        self.context.publish_graph()
        return True

    def destroy_node(self) -> None:
        groups: tuple[list[Any], ...] = (self.publishers, self.subscriptions, self.timers, self.services,
                                         self.clients)
        for group in groups:
            for entity in list(group):
                entity.destroy()
            group.clear()
        self.context.remove_node(self)

    def endpoint_gids(self, readers: bool) -> list[Any]:
        """GUIDs of this node's DDS readers (or writers), services and clients included."""
        from dcdrl_ros.runtime.context import gid_bytes
        if readers:
            entities = [e.reader for e in (*self.subscriptions, *self.services, *self.clients)]
        else:
            writing: list[Any] = [*self.publishers, *self.services, *self.clients]
            entities = [e.writer for e in writing]
        return [gid_bytes(entity) for entity in entities if entity is not None]

    def malformed_samples(self) -> int:
        """Samples and service requests this node dropped because they did not deserialise (each is
        also logged); the nodes add it to their final report, next to their own refusal counters."""
        return sum(entity.rejected for entity in (*self.subscriptions, *self.services))

    def count_subscribers(self, topic: str) -> int:
        name = self.resolve_topic_name(topic)
        return sum(p.get_subscription_count() for p in self.publishers if p.topic_name == name)

    def count_publishers(self, topic: str) -> int:
        name = self.resolve_topic_name(topic)
        return sum(s.get_publisher_count() for s in self.subscriptions if s.topic_name == name)


def _check_message_type(msg_type: Any) -> type[Message]:
    if not (isinstance(msg_type, type) and issubclass(msg_type, Message)):
        raise TypeError(f'{msg_type!r} is not a message class (import it from <pkg>.msg after '
                        f'importing dcdrl_ros.ros)')
    return msg_type


def _check_node_name(name: str) -> None:
    if not name or not (name[0].isalpha() or name[0] == '_') or not all(c.isalnum() or c == '_' for c in name):
        raise ValueError(f'invalid node name {name!r}: must match [A-Za-z_][A-Za-z0-9_]*')
