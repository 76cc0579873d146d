"""rclpy's Node API over Cyclone DDS, with ROS 2 names and bytes on the wire.

Only the part of rclpy that DC-DRL's nodes use, with the same names and semantics:
publishers, subscriptions, timers, services, clients with futures, parameters,
logger and clock. DDS callbacks only queue work; every user callback runs in the
thread that spins the executor, as in rclpy.
"""
from __future__ import annotations

import enum
import os
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from cyclonedds._clayer import ddspy_write
from cyclonedds.core import InstanceState, Policy, ReadCondition, SampleState, ViewState
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader

from dcdrl_core.messages import HEADER_SIZE, Message, SerializationError, ServiceType, get_interface
from dcdrl_core.runtime.context import Context, default_context, delete_entity
from dcdrl_core.runtime.interrupts import take_serialized
from dcdrl_core.runtime.node_parameters import NodeParameters
from dcdrl_core.runtime.parameter_service import ParameterService
from dcdrl_core.runtime.parameters import (  # noqa: F401  (rclpy's names, where this module had them)
    InvalidParameterTypeException,
    InvalidParameterValueException,
    Parameter,
    ParameterAlreadyDeclaredException,
    ParameterDescriptor,
    ParameterException,
    ParameterImmutableException,
    ParameterNotDeclaredException,
    ParameterType,
    ParameterUninitializedException,
    SetParametersResult,
)
from dcdrl_core.runtime.qos import (
    QoSLike,
    QoSProfile,
    as_profile,
    qos_profile_parameter_events,
    qos_profile_services_default,
)
from dcdrl_core.runtime.user_data import endpoint_qos

_ANY_STATE = SampleState.Any | ViewState.Any | InstanceState.Any
_TAKE_BATCH = 64
_REQUEST_HEADER = struct.Struct('<Qq')


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
# Time, clock, logging
# ---------------------------------------------------------------------------
class Time:
    """rclpy.time.Time: nanoseconds since the epoch (system clock)."""

    __slots__ = ('nanoseconds',)

    def __init__(self, *, seconds: float = 0, nanoseconds: int = 0) -> None:
        self.nanoseconds = int(seconds * 1_000_000_000) + int(nanoseconds)

    def seconds_nanoseconds(self) -> tuple[int, int]:
        return divmod(self.nanoseconds, 1_000_000_000)

    def to_msg(self) -> Message:
        from dcdrl_core.messages import get_interface
        sec, nanosec = self.seconds_nanoseconds()
        return get_interface('builtin_interfaces/msg/Time')(sec=sec, nanosec=nanosec)

    @classmethod
    def from_msg(cls, msg: Any) -> Time:
        return cls(nanoseconds=msg.sec * 1_000_000_000 + msg.nanosec)

    def __sub__(self, other: Time) -> Duration:
        return Duration(nanoseconds=self.nanoseconds - other.nanoseconds)

    def __repr__(self) -> str:
        return f'Time(nanoseconds={self.nanoseconds})'


class Duration:
    __slots__ = ('nanoseconds',)

    def __init__(self, *, seconds: float = 0, nanoseconds: int = 0) -> None:
        self.nanoseconds = int(seconds * 1_000_000_000) + int(nanoseconds)

    def to_msg(self) -> Message:
        from dcdrl_core.messages import get_interface
        sec, nanosec = divmod(self.nanoseconds, 1_000_000_000)
        return get_interface('builtin_interfaces/msg/Duration')(sec=sec, nanosec=nanosec)


class Clock:
    def now(self) -> Time:
        return Time(nanoseconds=time.time_ns())


class LoggingSeverity(enum.IntEnum):
    UNSET = 0
    DEBUG = 10
    INFO = 20
    WARN = 30
    ERROR = 40
    FATAL = 50


class Logger:
    """rclpy's logger: '[LEVEL] [time] [name]: message' on stderr, with once/throttle/skip_first."""

    def __init__(self, name: str, level: LoggingSeverity = LoggingSeverity.INFO) -> None:
        self.name = name
        self.level = level
        self._once: set[tuple[str, int]] = set()
        self._last: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()

    def get_child(self, suffix: str) -> Logger:
        return Logger(f'{self.name}.{suffix}', self.level)

    def set_level(self, level: LoggingSeverity) -> None:
        self.level = LoggingSeverity(level)

    def get_effective_level(self) -> LoggingSeverity:
        return self.level

    def is_enabled_for(self, severity: LoggingSeverity) -> bool:
        return severity >= self.level

    def log(self, message: Any, severity: LoggingSeverity, *, once: bool = False,
            throttle_duration_sec: float | None = None, skip_first: bool = False,
            throttle_time_source_type: Any = None) -> bool:
        if severity < self.level:
            return False
        caller = sys._getframe(2)
        key = (caller.f_code.co_filename, caller.f_lineno)
        with self._lock:
            if once:
                if key in self._once:
                    return False
                self._once.add(key)
            if skip_first and key not in self._last:
                self._last[key] = time.monotonic()
                return False
            if throttle_duration_sec is not None:
                now = time.monotonic()
                last = self._last.get(key)
                if last is not None and now - last < throttle_duration_sec:
                    return False
                self._last[key] = now
        stamp = time.time()
        sys.stderr.write(f'[{severity.name}] [{stamp:.9f}] [{self.name}]: {message}\n')
        sys.stderr.flush()
        return True

    def debug(self, message: Any, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.DEBUG, **kwargs)

    def info(self, message: Any, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.INFO, **kwargs)

    def warning(self, message: Any, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.WARN, **kwargs)

    warn = warning

    def error(self, message: Any, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.ERROR, **kwargs)

    def fatal(self, message: Any, **kwargs: Any) -> bool:
        return self.log(message, LoggingSeverity.FATAL, **kwargs)


# ---------------------------------------------------------------------------
# Futures
# ---------------------------------------------------------------------------
class Future:
    """rclpy.task.Future: a result that a callback sets later."""

    def __init__(self) -> None:
        self._done = threading.Event()
        self._result: Any = None
        self._exception: BaseException | None = None
        self._cancelled = False
        self._callbacks: list[Callable[[Future], None]] = []
        self._lock = threading.Lock()

    def done(self) -> bool:
        return self._done.is_set()

    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        self._finish(cancelled=True)

    def result(self) -> Any:
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self) -> BaseException | None:
        return self._exception

    def set_result(self, result: Any) -> None:
        self._result = result
        self._finish()

    def set_exception(self, exception: BaseException) -> None:
        self._exception = exception
        self._finish()

    def add_done_callback(self, callback: Callable[[Future], None]) -> None:
        with self._lock:
            if not self._done.is_set():
                self._callbacks.append(callback)
                return
        callback(self)

    def wait(self, timeout_sec: float | None) -> bool:
        return self._done.wait(timeout_sec)

    def _finish(self, cancelled: bool = False) -> None:
        with self._lock:
            if self._done.is_set():
                return
            self._cancelled = cancelled
            self._done.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(self)


# ---------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------
class _Readable:
    """A DDS reader whose samples the executor takes and dispatches when its condition triggers."""

    rejected: int  # Subscription, Service: samples that did not deserialise

    def __init__(self, context: Context) -> None:
        self._context = context
        self.reader: DataReader | None = None
        self.condition: ReadCondition | None = None

    def _register(self) -> None:
        self.condition = ReadCondition(self.reader, _ANY_STATE)
        self._context.register_readable(self)

    def _take(self) -> list[tuple[bytes, Any]]:
        if self.reader is None:
            return []
        samples: list[tuple[bytes, Any]] = []
        while True:
            taken = take_serialized(self.reader._ref, _ANY_STATE, _TAKE_BATCH)
            if isinstance(taken, int):  # a DDS error code: the reader is gone
                return samples
            samples.extend((data, info) for data, info in taken if info.valid_data)
            if len(taken) < _TAKE_BATCH:
                return samples

    def _dispatch(self) -> None:
        raise NotImplementedError

    def _unregister(self) -> None:
        if self.condition is not None:
            self._context.unregister_readable(self)
        delete_entity(self.condition)
        delete_entity(self.reader)
        self.condition = None
        self.reader = None


class Publisher:
    def __init__(self, node: Node, msg_type: type[Message], topic: str, qos: QoSProfile) -> None:
        self.msg_type = msg_type
        self.topic_name = topic
        self.qos_profile = qos
        self._node = node
        dds_topic = node.context.topic('rt' + topic, msg_type)
        self.writer = DataWriter(node.context.participant, dds_topic, endpoint_qos(qos.to_dds(), msg_type))
        self.published = 0

    @property
    def topic(self) -> str:
        return self.topic_name

    def publish(self, msg: Message) -> None:
        if not isinstance(msg, self.msg_type):
            raise TypeError(f'publisher of {self.topic_name} expects {self.msg_type._spec.full_name}, '
                            f'got {type(msg).__name__}')
        ret = ddspy_write(self.writer._ref, self.msg_type._codec.encode_for_dds(msg))
        if ret < 0:
            raise RuntimeError(f'DDS write on {self.topic_name} failed with code {ret}')
        self.published += 1

    def publish_serialized(self, data: bytes) -> None:
        padding = -len(data) % 4
        ret = ddspy_write(self.writer._ref, data + b'\x00' * padding if padding else data)
        if ret < 0:
            raise RuntimeError(f'DDS write on {self.topic_name} failed with code {ret}')
        self.published += 1

    def get_subscription_count(self) -> int:
        return self.writer.get_publication_matched_status().current_count

    def destroy(self) -> None:
        delete_entity(self.writer)
        self.writer = None


class Subscription(_Readable):
    def __init__(self, node: Node, msg_type: type[Message], topic: str,
                 callback: Callable[[Any], None], qos: QoSProfile, raw: bool = False) -> None:
        super().__init__(node.context)
        self.msg_type = msg_type
        self.topic_name = topic
        self.callback = callback
        self.qos_profile = qos
        self.raw = raw
        self._node = node
        self.rejected = 0  # samples that did not deserialise
        dds_topic = node.context.topic('rt' + topic, msg_type)
        self.reader = DataReader(node.context.participant, dds_topic, endpoint_qos(qos.to_dds(), msg_type))
        self._register()

    def _dispatch(self) -> None:
        codec = self.msg_type._codec
        for data, _info in self._take():
            if self.raw:
                self.callback(data)
                continue
            try:
                message = codec.decode(data)
            except SerializationError as error:
                self.rejected += 1
                self._node.get_logger().error(f'dropped a malformed sample on {self.topic_name}: {error}')
                continue
            self.callback(message)

    def get_publisher_count(self) -> int:
        return self.reader.get_subscription_matched_status().current_count

    def destroy(self) -> None:
        self._unregister()


class Timer:
    def __init__(self, context: Context, period_sec: float, callback: Callable[[], None]) -> None:
        if period_sec <= 0:
            raise ValueError(f'timer period must be > 0, got {period_sec}')
        self._context = context
        self.timer_period_ns = int(period_sec * 1e9)
        self.callback = callback
        self.next_call = time.monotonic() + period_sec
        self.is_canceled_flag = False

    def is_canceled(self) -> bool:
        return self.is_canceled_flag

    def cancel(self) -> None:
        self.is_canceled_flag = True

    def reset(self) -> None:
        self.is_canceled_flag = False
        self.next_call = time.monotonic() + self.timer_period_ns / 1e9
        self._context.wake()

    def time_until_next_call(self) -> float | None:
        return None if self.is_canceled_flag else max(0.0, self.next_call - time.monotonic())

    def _fire(self, now: float) -> None:
        period = self.timer_period_ns / 1e9
        self.next_call += period
        if self.next_call < now:  # fell behind: skip missed periods rather than burst
            self.next_call = now + period
        self.callback()

    def destroy(self) -> None:
        self.cancel()


def _client_service_id() -> str:
    """16 random bytes in rmw_cyclonedds_cpp's dotted-hex form."""
    raw = os.urandom(16)
    return f'{raw[0]:02x}' + ''.join(f'.{b:x}' for b in raw[1:])


def _open_service_endpoints(context: Context, srv_type: type[ServiceType], name: str, qos: QoSProfile,
                            is_service: bool) -> tuple[DataWriter, DataReader]:
    """The (writer, reader) pair of a service (reply writer, request reader) or a client
    (request writer, reply reader), both tagged with one 'serviceid=' or 'clientid=' in USER_DATA,
    each followed by the type hash of its half (Request or Response), as rmw_cyclonedds_cpp does."""
    kind = 'serviceid' if is_service else 'clientid'
    tag = f'{kind}={_client_service_id()};'
    request = context.topic(f'rq{name}Request', srv_type.Request, service_header=True)
    reply = context.topic(f'rr{name}Reply', srv_type.Response, service_header=True)
    (writer_topic, writer_type), (reader_topic, reader_type) = (
        ((reply, srv_type.Response), (request, srv_type.Request)) if is_service
        else ((request, srv_type.Request), (reply, srv_type.Response)))
    return (DataWriter(context.participant, writer_topic, endpoint_qos(qos.to_dds(), writer_type, tag)),
            DataReader(context.participant, reader_topic, endpoint_qos(qos.to_dds(), reader_type, tag)))


def _endpoint_user_data(endpoint: Any, key: str) -> str | None:
    if endpoint is None:
        return None
    try:
        data = endpoint.qos[Policy.Userdata].data
    except (KeyError, AttributeError, TypeError):
        return None
    for item in data.decode(errors='replace').split(';'):
        name, _, value = item.partition('=')
        if name == key:
            return value
    return None


class Service(_Readable):
    """Request topic 'rq<name>Request', reply topic 'rr<name>Reply', header {guid, seq} first."""

    REPLY_MATCH_WAIT_SEC = 0.1  # as rmw_cyclonedds_cpp: wait this long for the client's reader

    def __init__(self, node: Node, srv_type: type[ServiceType], name: str,
                 callback: Callable[[Any, Any], Any], qos: QoSProfile) -> None:
        super().__init__(node.context)
        self.srv_type = srv_type
        self.srv_name = name
        self.callback = callback
        self._node = node
        self.rejected = 0
        self.writer, self.reader = _open_service_endpoints(node.context, srv_type, name, qos, is_service=True)
        self._register()

    def _dispatch(self) -> None:
        codec = self.srv_type.Request._codec
        for data, info in self._take():
            try:
                header = data[HEADER_SIZE:HEADER_SIZE + _REQUEST_HEADER.size]
                guid, seq = _REQUEST_HEADER.unpack(header)
                request = codec.decode(data, HEADER_SIZE + _REQUEST_HEADER.size)
            except (SerializationError, struct.error) as error:
                self.rejected += 1
                self._node.get_logger().error(f'dropped a malformed request on {self.srv_name}: {error}')
                continue
            response = self.callback(request, self.srv_type.Response())
            if not isinstance(response, self.srv_type.Response):
                raise TypeError(f'service {self.srv_name} callback must return a '
                                f'{self.srv_type.Response._spec.full_name}, got {type(response).__name__}')
            if self._client_reader_matched(info.publication_handle):
                payload = self.srv_type.Response._codec.encode(response, _REQUEST_HEADER.pack(guid, seq))
                padding = -len(payload) % 4
                ddspy_write(self.writer._ref, payload + b'\x00' * padding)

    def _client_reader_matched(self, request_writer_handle: int) -> bool:
        """True once the requesting client's reply reader is matched (or it names no client id)."""
        try:
            request_writer = self.reader.get_matched_publication_data(request_writer_handle)
        except Exception:  # the client is gone
            return False
        client_id = _endpoint_user_data(request_writer, 'clientid')
        if client_id is None:
            return True
        deadline = time.monotonic() + self.REPLY_MATCH_WAIT_SEC
        while True:
            for handle in self.writer.get_matched_subscriptions():
                try:
                    reader = self.writer.get_matched_subscription_data(handle)
                except Exception:  # unmatched since the list was taken (a reader going away): not ours to answer
                    continue
                if _endpoint_user_data(reader, 'clientid') == client_id:
                    return True
            if time.monotonic() >= deadline:
                self._node.get_logger().warning(f'{self.srv_name}: client reply reader not matched; reply dropped')
                return False
            time.sleep(0.01)  # bounded poll of discovery state, as rmw_cyclonedds_cpp does

    def destroy(self) -> None:
        self._unregister()
        delete_entity(self.writer)
        self.writer = None


class Client(_Readable):
    def __init__(self, node: Node, srv_type: type[ServiceType], name: str, qos: QoSProfile) -> None:
        super().__init__(node.context)
        self.srv_type = srv_type
        self.srv_name = name
        self._node = node
        self.writer, self.reader = _open_service_endpoints(node.context, srv_type, name, qos, is_service=False)
        self._register()
        # As rmw_cyclonedds_cpp: the request writer's instance handle identifies this client.
        self.guid = self.writer.instance_handle & 0xFFFFFFFFFFFFFFFF
        self._sequence = 0
        self._pending: dict[int, Future] = {}
        self._lock = threading.Lock()

    def service_is_ready(self) -> bool:
        if self.writer is None:
            return False
        service_ids = set()
        for handle in self.writer.get_matched_subscriptions():
            service_id = _endpoint_user_data(self.writer.get_matched_subscription_data(handle), 'serviceid')
            if service_id:
                service_ids.add(service_id)
        writers = self.reader.get_matched_publications()
        if not service_ids:
            return bool(self.writer.get_matched_subscriptions()) and bool(writers)
        return any(_endpoint_user_data(self.reader.get_matched_publication_data(h), 'serviceid') in service_ids
                   for h in writers)

    def wait_for_service(self, timeout_sec: float | None = None) -> bool:
        deadline = None if timeout_sec is None else time.monotonic() + timeout_sec
        while self._context.ok():
            if self.service_is_ready():
                return True
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)  # discovery has no event here; bounded poll like rclpy's wait_for_service
        return False

    def call_async(self, request: Message) -> Future:
        if not isinstance(request, self.srv_type.Request):
            raise TypeError(f'client of {self.srv_name} expects {self.srv_type.Request._spec.full_name}, '
                            f'got {type(request).__name__}')
        future = Future()
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
            self._pending[sequence] = future
        future.add_done_callback(lambda _f: self._forget(sequence))
        payload = self.srv_type.Request._codec.encode(request, _REQUEST_HEADER.pack(self.guid, sequence))
        padding = -len(payload) % 4
        ddspy_write(self.writer._ref, payload + b'\x00' * padding)
        return future

    def call(self, request: Message, timeout_sec: float | None = None) -> Any:
        """Blocks until the reply; needs an executor spinning in another thread, as in rclpy."""
        future = self.call_async(request)
        if not future.wait(timeout_sec):
            future.cancel()
            raise TimeoutError(f'no reply from {self.srv_name} within {timeout_sec} s')
        return future.result()

    def remove_pending_request(self, future: Future) -> None:
        future.cancel()

    def _forget(self, sequence: int) -> None:
        with self._lock:
            self._pending.pop(sequence, None)

    def _dispatch(self) -> None:
        codec = self.srv_type.Response._codec
        for data, _info in self._take():
            try:
                guid, seq = _REQUEST_HEADER.unpack(data[HEADER_SIZE:HEADER_SIZE + _REQUEST_HEADER.size])
            except struct.error:
                continue
            if guid != self.guid:
                continue  # another client's reply on the shared reply topic
            with self._lock:
                future = self._pending.get(seq)
            if future is None:
                continue
            try:
                future.set_result(codec.decode(data, HEADER_SIZE + _REQUEST_HEADER.size))
            except SerializationError as error:
                future.set_exception(error)

    def destroy(self) -> None:
        self._unregister()
        delete_entity(self.writer)
        self.writer = None


# ---------------------------------------------------------------------------
# Node
# ---------------------------------------------------------------------------
class Node(NodeParameters):
    def __init__(self, node_name: str, *, context: Context | None = None, cli_args: list[str] | None = None,
                 namespace: str | None = None, use_global_arguments: bool = True,
                 parameter_overrides: list[Parameter] | None = None,
                 allow_undeclared_parameters: bool = False, start_parameter_services: bool = True,
                 automatically_declare_parameters_from_overrides: bool = False, **_ignored: Any) -> None:
        from dcdrl_core.ros_args import split_ros_args
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
            self._logger.set_level(_parse_log_level(log_level))
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

    def create_subscription(self, msg_type: type[Message], topic: str, callback: Callable[[Any], None],
                            qos_profile: QoSLike, *, raw: bool = False, **_ignored: Any) -> Subscription:
        subscription = Subscription(self, _check_message_type(msg_type), self.resolve_topic_name(topic),
                                    callback, as_profile(qos_profile), raw=raw)
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
        from dcdrl_core.runtime.context import gid_bytes
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
                        f'importing dcdrl_core.ros)')
    return msg_type


def _check_node_name(name: str) -> None:
    if not name or not (name[0].isalpha() or name[0] == '_') or not all(c.isalnum() or c == '_' for c in name):
        raise ValueError(f'invalid node name {name!r}: must match [A-Za-z_][A-Za-z0-9_]*')


def _parse_log_level(text: str) -> LoggingSeverity:
    level = text.rsplit(':=', 1)[-1].strip().upper()
    if level == 'WARNING':
        level = 'WARN'
    try:
        return LoggingSeverity[level]
    except KeyError:
        raise ValueError(f'unknown log level {text!r}: use debug, info, warn, error or fatal') from None
