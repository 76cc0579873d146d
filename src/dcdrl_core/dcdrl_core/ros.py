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

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
from typing import Any, Callable, Optional, Sequence

_requested = os.environ.get('DCDRL_BACKEND', 'auto').strip().lower() or 'auto'
if _requested not in ('auto', 'rclpy', 'cyclone'):
    raise ImportError(f'DCDRL_BACKEND must be auto, rclpy or cyclone, got {_requested!r}')

if _requested in ('auto', 'rclpy') and importlib.util.find_spec('rclpy') is not None:
    import rclpy as _rclpy
    from rclpy.exceptions import InvalidParameterTypeException, ParameterUninitializedException
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
    from dcdrl_core.messages import InterfaceNotFoundError, default_registry, get_interface
    from dcdrl_core.runtime import (
        Duration, Future, InvalidParameterTypeException, MultiThreadedExecutor, Node, Parameter,
        SingleThreadedExecutor, Time, init, ok, shutdown, spin, spin_once, spin_until_future_complete,
        try_shutdown)
    from dcdrl_core.runtime.node import ParameterNotDeclaredException as ParameterUninitializedException
    from dcdrl_core.runtime.qos import (
        DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data,
        qos_profile_services_default, qos_profile_system_default)

    BACKEND = 'cyclone'

    class ExternalShutdownException(Exception):
        """Raised by rclpy when the context is shut down from outside; kept for parity."""

    class _InterfaceModule(types.ModuleType):
        """'<pkg>.msg' or '<pkg>.srv': classes are built on first attribute access."""

        def __init__(self, name: str, package: str, kind: str) -> None:
            super().__init__(name)
            self.__package__ = name
            self._interface_package = package
            self._interface_kind = kind

        def __getattr__(self, attribute: str) -> Any:
            if attribute.startswith('__'):
                raise AttributeError(attribute)
            try:
                value = get_interface(f'{self._interface_package}/{self._interface_kind}/{attribute}')
            except InterfaceNotFoundError as error:
                raise AttributeError(str(error)) from None
            setattr(self, attribute, value)
            return value

        def __dir__(self) -> list[str]:
            prefix = f'{self._interface_package}/{self._interface_kind}/'
            return [t[len(prefix):] for t in default_registry().list_types(self._interface_kind)
                    if t.startswith(prefix)]

    class _InterfaceFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        """Makes 'from dcdrl_msgs.msg import X' work without ROS, for any interface package
        on the search path. It sits last on sys.meta_path, so real packages always win."""

        def find_spec(self, fullname: str, path: Any, target: Any = None) -> Optional[importlib.machinery.ModuleSpec]:
            parts = fullname.split('.')
            if len(parts) > 2 or (len(parts) == 2 and parts[1] not in ('msg', 'srv')):
                return None
            if not self._has_interfaces(parts[0]):
                return None
            return importlib.machinery.ModuleSpec(fullname, self, is_package=len(parts) == 1)

        @staticmethod
        def _has_interfaces(package: str) -> bool:
            return any(os.path.isdir(os.path.join(root, package, kind))
                       for root in default_registry().search_path for kind in ('msg', 'srv'))

        def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
            parts = spec.name.split('.')
            if len(parts) == 1:
                module = types.ModuleType(spec.name)
                module.__path__ = []
                return module
            return _InterfaceModule(spec.name, parts[0], parts[1])

        def exec_module(self, module: types.ModuleType) -> None:
            return None

    if not any(isinstance(f, _InterfaceFinder) for f in sys.meta_path):
        sys.meta_path.append(_InterfaceFinder())


EXIT_BAD_PARAMETER = 2


def run_node(node_factory: Callable[[], Any], args: Optional[Sequence[str]] = None) -> int:
    """Init, build the node, spin until Ctrl-C or shutdown, clean up; the usual rclpy main.

    A parameter of the wrong type ends the process with a one-line error and exit code 2.
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
    except (InvalidParameterTypeException, ValueError, TypeError) as error:
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
    'InvalidParameterTypeException', 'MultiThreadedExecutor', 'Node', 'Parameter',
    'ParameterUninitializedException', 'QoSProfile', 'ReliabilityPolicy', 'SingleThreadedExecutor', 'Time',
    'get_interface', 'init', 'ok', 'qos_profile_sensor_data', 'qos_profile_services_default',
    'qos_profile_system_default', 'run_node', 'shutdown', 'spin', 'spin_once', 'spin_until_future_complete',
    'try_shutdown']
