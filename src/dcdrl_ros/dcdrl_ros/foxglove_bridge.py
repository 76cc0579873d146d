"""A Foxglove WebSocket server that forwards ROS 2 topics as they arrive (no ROS import).

Each topic becomes one channel with the ros2msg schema (the complete definition, nested types
appended, as rosbag2 writes it into MCAP) and the CDR payload exactly as received, encapsulation
header included: Foxglove decodes ros2msg/CDR itself, so nothing is decoded or re-encoded here.
The server is foxglove-sdk's (the protocol Foxglove desktop and web speak, subprotocol
foxglove.sdk.v1, formerly foxglove.websocket.v1).
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import foxglove

SERVER_NAME = 'dcdrl'
ROS2_MESSAGE_SCHEMA_ENCODING = 'ros2msg'
CDR_MESSAGE_ENCODING = 'cdr'


class BridgeStartError(RuntimeError):
    """The server could not listen (port in use, address not on this machine): one line for the user."""


@dataclass
class BridgeCounts:
    """What the bridge did, for its closing line and for tests."""
    forwarded: dict[str, int] = field(default_factory=dict)   # messages per advertised topic
    refused_topics: dict[str, str] = field(default_factory=dict)   # topic -> why it has no channel
    unadvertised_messages: int = 0   # messages on a topic without a channel (refused or not yet added)


class FoxgloveBridge:
    """Channels by topic on one foxglove-sdk server of its own context (other servers in the process
    see none of them). ``definition_of(type_name)`` gives the ros2msg text of 'pkg/msg/Name'.

    ``add_topic`` and ``forward`` may be called from any thread (the SDK's log is thread-safe; the
    channel table is guarded)."""

    def __init__(self, host: str, port: int, definition_of: Callable[[str], str],
                 message_backlog: int | None = None) -> None:
        self._definition_of = definition_of
        self._context = foxglove.Context()
        self._channels: dict[str, foxglove.Channel] = {}
        self._lock = threading.Lock()
        self.counts = BridgeCounts()
        try:
            self._server = foxglove.start_server(name=SERVER_NAME, host=host, port=port, context=self._context,
                                                 message_backlog_size=message_backlog)
        except RuntimeError as error:   # the SDK raises RuntimeError('FoxgloveError: Failed to bind port: ...')
            reason = str(error).removeprefix('FoxgloveError: ')
            raise BridgeStartError(f'cannot serve Foxglove on {host}:{port}: {reason}') from None
        self.host = host

    @property
    def port(self) -> int:
        """The port listened on (the one the system chose when asked for port 0)."""
        return int(self._server.port)

    @property
    def url(self) -> str:
        """What to open in Foxglove: Open connection -> Foxglove WebSocket -> this URL."""
        host = f'[{self.host}]' if ':' in self.host else self.host
        return f'ws://{host}:{self.port}'

    def app_url(self) -> str | None:
        """The Foxglove web app's link that opens this server as its data source (None once stopped)."""
        return self._server.app_url()

    def add_topic(self, topic: str, type_name: str) -> bool:
        """Advertises ``topic`` to connected and later clients; False when it already has a channel or
        its type's definition is unknown (the reason is kept in ``counts.refused_topics``)."""
        with self._lock:
            if topic in self._channels or topic in self.counts.refused_topics:
                return False
            try:
                definition = self._definition_of(type_name)
            except (LookupError, ValueError, OSError) as error:
                self.counts.refused_topics[topic] = f'no message definition for {type_name}: {error}'
                return False
            schema = foxglove.Schema(name=type_name, encoding=ROS2_MESSAGE_SCHEMA_ENCODING,
                                     data=definition.encode())
            self._channels[topic] = foxglove.Channel(topic, message_encoding=CDR_MESSAGE_ENCODING, schema=schema,
                                                     context=self._context)
            self.counts.forwarded[topic] = 0
            return True

    def forward(self, topic: str, data: bytes, receive_ns: int) -> None:
        """Sends one CDR message (encapsulation header included) to the clients subscribed to ``topic``,
        stamped with its receive time."""
        channel = self._channels.get(topic)
        if channel is None:
            with self._lock:
                self.counts.unadvertised_messages += 1
            return
        channel.log(bytes(data), log_time=receive_ns)
        with self._lock:
            self.counts.forwarded[topic] += 1

    def close(self) -> None:
        """Unadvertises every channel and stops the server (clients see the connection close)."""
        with self._lock:
            channels = list(self._channels.values())
            self._channels.clear()
        for channel in channels:
            channel.close()
        self._server.stop()
