"""USER_DATA of our readers and writers, as rmw_cyclonedds_cpp (Jazzy) writes it.

Every endpoint rmw creates (topics, service requests and replies, ros_discovery_info) carries
``typehash=RIHS01_<hex>;`` after any other item (``serviceid=...;`` / ``clientid=...;``). A ROS 2
process warns once per endpoint whose USER_DATA it cannot read ("Failed to parse type hash ... from
USER_DATA '(null)'"), and `ros2 topic info -v` shows the hash: so ours carry it too.
"""
from __future__ import annotations

from typing import Any

from cyclonedds.core import Policy, Qos

from dcdrl_ros.type_hash import user_data_entry


def endpoint_user_data(message_class: Any, prefix: str = '') -> bytes:
    """``prefix`` (e.g. 'serviceid=<id>;') then the type hash item of ``message_class``."""
    return (prefix + user_data_entry(message_class.get_type_hash())).encode('ascii')


def endpoint_qos(qos: Qos, message_class: Any, prefix: str = '') -> Qos:
    """``qos`` (a profile's DDS policies) with the USER_DATA of an endpoint of ``message_class``."""
    return Qos(*qos, Policy.Userdata(data=endpoint_user_data(message_class, prefix)))
