"""The DDS endpoints of a service or client, as rmw_cyclonedds_cpp lays them out: request and reply
topics, a {guid, sequence} header before each payload, ids in USER_DATA."""
from __future__ import annotations

import os
import struct
from typing import Any

from cyclonedds.core import Policy
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader

from dcdrl_ros.messages import ServiceType
from dcdrl_ros.runtime.context import Context
from dcdrl_ros.runtime.qos import QoSProfile
from dcdrl_ros.runtime.user_data import endpoint_qos

REQUEST_HEADER = struct.Struct('<Qq')


def client_service_id() -> str:
    """16 random bytes in rmw_cyclonedds_cpp's dotted-hex form."""
    raw = os.urandom(16)
    return f'{raw[0]:02x}' + ''.join(f'.{b:x}' for b in raw[1:])


def open_service_endpoints(context: Context, srv_type: type[ServiceType], name: str, qos: QoSProfile,
                           is_service: bool) -> tuple[DataWriter, DataReader]:
    """The (writer, reader) pair of a service (reply writer, request reader) or a client
    (request writer, reply reader), both tagged with one 'serviceid=' or 'clientid=' in USER_DATA,
    each followed by the type hash of its half (Request or Response), as rmw_cyclonedds_cpp does."""
    kind = 'serviceid' if is_service else 'clientid'
    tag = f'{kind}={client_service_id()};'
    request = context.topic(f'rq{name}Request', srv_type.Request, service_header=True)
    reply = context.topic(f'rr{name}Reply', srv_type.Response, service_header=True)
    (writer_topic, writer_type), (reader_topic, reader_type) = (
        ((reply, srv_type.Response), (request, srv_type.Request)) if is_service
        else ((request, srv_type.Request), (reply, srv_type.Response)))
    return (DataWriter(context.participant, writer_topic, endpoint_qos(qos.to_dds(), writer_type, tag)),
            DataReader(context.participant, reader_topic, endpoint_qos(qos.to_dds(), reader_type, tag)))


def user_data_item(endpoint: Any, key: str) -> str | None:
    """The value of ``key=`` in a discovered endpoint's USER_DATA, or None."""
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
