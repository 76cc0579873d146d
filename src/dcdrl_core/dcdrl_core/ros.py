"""The one import node code needs: rclpy when it is importable, else our Cyclone DDS runtime.

Node files use this module exactly as they would use rclpy::

    from dcdrl_core import ros
    from dcdrl_msgs.msg import ExperienceBatch   # after importing dcdrl_core.ros

    class Receiver(ros.Node): ...

    def main(args=None):
        ros.run_node(Receiver, args)

Set DCDRL_BACKEND=rclpy or DCDRL_BACKEND=cyclone to force a backend (default: auto).
"""
from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any, Callable, Optional, Sequence

_requested = os.environ.get('DCDRL_BACKEND', 'auto').strip().lower() or 'auto'
if _requested not in ('auto', 'rclpy', 'cyclone'):
    raise ImportError(f'DCDRL_BACKEND must be auto, rclpy or cyclone, got {_requested!r}')

if _requested in ('auto', 'rclpy') and importlib.util.find_spec('rclpy') is not None:
    import rclpy as _rclpy
    from rclpy.exceptions import InvalidParameterTypeException, ParameterException, ParameterUninitializedException
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.qos import (
        DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data,
        qos_profile_services_default, qos_profile_system_default)
    from rclpy.task import Future
    from rclpy.time import Duration, Time

    BACKEND = 'rclpy'
    init, shutdown, ok, try_shutdown = _rclpy.init, _rclpy.shutdown, _rclpy.ok, _rclpy.try_shutdown
    spin, spin_once, spin_until_future_complete = (
        _rclpy.spin, _rclpy.spin_once, _rclpy.spin_until_future_complete)

    def get_interface(type_name: str) -> Any:
        """The rosidl-generated class for 'pkg/msg/Name' or 'pkg/srv/Name'."""
        from rosidl_runtime_py.utilities import get_interface as _get
        return _get(type_name)
else:
    if _requested == 'rclpy':
        raise ImportError('DCDRL_BACKEND=rclpy but rclpy is not importable (source your ROS 2 setup)')
    from dcdrl_core.messages import get_interface, install_interface_import_hook
    from dcdrl_core.runtime import (
        Duration, Future, InvalidParameterTypeException, MultiThreadedExecutor, Node, Parameter, ParameterException,
        ParameterUninitializedException, SingleThreadedExecutor, Time, init, ok, shutdown, spin, spin_once,
        spin_until_future_complete, try_shutdown)
    from dcdrl_core.runtime.qos import (
        DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data,
        qos_profile_services_default, qos_profile_system_default)

    BACKEND = 'cyclone'

    class ExternalShutdownException(Exception):
        """Raised by rclpy when the context is shut down from outside; kept for parity."""

    install_interface_import_hook()


EXIT_BAD_PARAMETER = 2


def malformed_samples(node: Any) -> Optional[int]:
    """Samples and requests the transport dropped as malformed for this node (our runtime counts
    them: Node.malformed_samples); None under rclpy, whose rmw logs such samples without a count."""
    count = getattr(node, 'malformed_samples', None)
    return int(count()) if callable(count) else None


def run_node(node_factory: Callable[[], Any], args: Optional[Sequence[str]] = None) -> int:
    """Init, build the node, spin until Ctrl-C or shutdown, clean up; the usual rclpy main.

    A parameter refused at start (wrong type, out of range, refused by the node: rclpy's
    ParameterException and its kin) ends the process with a one-line error and exit code 2.
    """
    init(args=list(args) if args is not None else sys.argv)
    node = None
    try:
        node = node_factory()
        spin(node)
    except KeyboardInterrupt:
        pass
    except ExternalShutdownException:
        pass
    except (ParameterException, ValueError, TypeError) as error:
        if node is not None:  # errors after start-up are bugs: show the traceback
            raise
        sys.stderr.write(f'[FATAL] {getattr(node_factory, "__name__", "node")}: {error}\n')
        try_shutdown()
        raise SystemExit(EXIT_BAD_PARAMETER) from None
    finally:
        if node is not None:
            node.destroy_node()
        try_shutdown()
    return 0


__all__ = [
    'BACKEND', 'Duration', 'ExternalShutdownException', 'Future', 'DurabilityPolicy', 'HistoryPolicy',
    'InvalidParameterTypeException', 'MultiThreadedExecutor', 'Node', 'Parameter', 'ParameterException',
    'ParameterUninitializedException', 'QoSProfile', 'ReliabilityPolicy', 'SingleThreadedExecutor', 'Time',
    'get_interface', 'init', 'malformed_samples', 'ok', 'qos_profile_sensor_data', 'qos_profile_services_default',
    'qos_profile_system_default', 'run_node', 'shutdown', 'spin', 'spin_once', 'spin_until_future_complete',
    'try_shutdown']
