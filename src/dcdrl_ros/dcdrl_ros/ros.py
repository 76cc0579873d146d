"""The one import node code needs: rclpy when it is importable, else our Cyclone DDS runtime.

Node files use this module exactly as they would use rclpy::

    from dcdrl_ros import ros
    from dcdrl_msgs.msg import ExperienceBatch   # after importing dcdrl_ros.ros

    class Receiver(ros.Node): ...

    def main(args=None):
        ros.run_node(Receiver, args)

Set DCDRL_BACKEND=rclpy or DCDRL_BACKEND=cyclone to force a backend (default: auto).
"""
from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from dcdrl_ros.node_usage import answer_command_line
from dcdrl_ros.stop_signals import STOP_CHECK_PERIOD_S, StopSignals

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
        DurabilityPolicy,
        HistoryPolicy,
        QoSProfile,
        ReliabilityPolicy,
        qos_profile_sensor_data,
        qos_profile_services_default,
        qos_profile_system_default,
    )
    from rclpy.signals import SignalHandlerOptions
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
    from dcdrl_ros.messages import get_interface, install_interface_import_hook
    from dcdrl_ros.runtime import (
        Duration,
        Future,
        InvalidParameterTypeException,
        MultiThreadedExecutor,
        Node,
        Parameter,
        ParameterException,
        ParameterUninitializedException,
        SingleThreadedExecutor,
        Time,
        init,
        ok,
        shutdown,
        spin,
        spin_once,
        spin_until_future_complete,
        try_shutdown,
    )
    from dcdrl_ros.runtime.interrupts import SignalHandlerOptions
    from dcdrl_ros.runtime.qos import (
        DurabilityPolicy,
        HistoryPolicy,
        QoSProfile,
        ReliabilityPolicy,
        qos_profile_sensor_data,
        qos_profile_services_default,
        qos_profile_system_default,
    )

    BACKEND = 'cyclone'

    class ExternalShutdownException(Exception):  # type: ignore[no-redef]  # the rclpy branch imports it
        """Raised by rclpy when the context is shut down from outside; kept for parity."""

    install_interface_import_hook()


EXIT_BAD_PARAMETER = 2


def malformed_samples(node: Any) -> int | None:
    """Samples and requests the transport dropped as malformed for this node (our runtime counts
    them: Node.malformed_samples); None under rclpy, whose rmw logs such samples without a count."""
    count = getattr(node, 'malformed_samples', None)
    return int(count()) if callable(count) else None


def run_node(node_factory: Callable[[], Any], args: Sequence[str] | None = None,
             executor_factory: Callable[[Any], Any] | None = None) -> int:
    """Init, build the node, spin until SIGINT, SIGTERM or shutdown, clean up; the usual rclpy main.

    Both backends stop the same way (docs/runtime.md, "Stopping"): the first SIGINT or SIGTERM ends
    the spin loop; destroy_node then stops the node's threads and writes its final state while the
    context is still valid, and only then is the context shut down; further signals are ignored
    (stop_signals.py), so the process exits 0 with its files complete. ``executor_factory(node)``
    gives another executor than the single-threaded one (e.g. a MultiThreadedExecutor).

    The node's own command line (outside --ros-args) is answered first, before init
    (node_usage.py): ``--help`` prints its parameters and returns 0; any other argument, or a bad
    --ros-args rule, is one [FATAL] line and 2.

    A parameter refused at start (wrong type, out of range, refused by the node: rclpy's
    ParameterException and its kin) ends the process with a one-line error and exit code 2.
    """
    argv = list(args) if args is not None else list(sys.argv)
    answered = answer_command_line(node_factory, argv)  # --help, or arguments the node does not take
    if answered is not None:
        return answered
    stop = StopSignals()
    stop.install()   # before init: a signal during start-up also waits for the clean-up
    init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    node = executor = None
    try:
        node = node_factory()
        executor = executor_factory(node) if executor_factory is not None else SingleThreadedExecutor()
        executor.add_node(node)
        while not stop.requested.is_set() and ok():
            executor.spin_once(timeout_sec=STOP_CHECK_PERIOD_S)
    except ExternalShutdownException:   # the context was shut down by other code than ours
        pass
    except (ParameterException, ValueError, TypeError) as error:
        if node is not None:  # errors after start-up are bugs: show the traceback
            raise
        sys.stderr.write(f'[FATAL] {getattr(node_factory, "__name__", "node")}: {error}\n')
        try_shutdown()
        raise SystemExit(EXIT_BAD_PARAMETER) from None
    finally:
        if node is not None:
            logger = node.get_logger()
            if stop.first is not None:
                logger.info(f'{stop.first.name}: stopping')
            node.destroy_node()
            if stop.absorbed:
                logger.info(f'stopped; {stop.absorbed} more SIGINT/SIGTERM ignored meanwhile')
        if executor is not None:
            executor.shutdown()
        try_shutdown()
        # A launcher's SIGINT or SIGTERM that arrives while the interpreter exits must not turn this
        # clean stop into exit -2 or -15 (a caller that goes on afterwards puts back its own handlers).
        stop.ignore_from_now()
    return 0


__all__ = [
    'BACKEND', 'Duration', 'ExternalShutdownException', 'Future', 'DurabilityPolicy', 'HistoryPolicy',
    'InvalidParameterTypeException', 'MultiThreadedExecutor', 'Node', 'Parameter', 'ParameterException',
    'ParameterUninitializedException', 'QoSProfile', 'ReliabilityPolicy', 'SignalHandlerOptions',
    'SingleThreadedExecutor', 'Time', 'get_interface', 'init', 'malformed_samples', 'ok', 'qos_profile_sensor_data',
    'qos_profile_services_default', 'qos_profile_system_default', 'run_node', 'shutdown', 'spin', 'spin_once',
    'spin_until_future_complete', 'try_shutdown']
