"""The ROS-free backend: rclpy's API over Eclipse Cyclone DDS (PyPI ``cyclonedds``)."""
from __future__ import annotations

import signal

from dcdrl_ros.messages import install_interface_import_hook
from dcdrl_ros.runtime.client import Client
from dcdrl_ros.runtime.clock import Clock
from dcdrl_ros.runtime.context import Context, default_context
from dcdrl_ros.runtime.duration import Duration
from dcdrl_ros.runtime.executor import (
    MultiThreadedExecutor,
    SingleThreadedExecutor,
    spin,
    spin_once,
    spin_until_future_complete,
)
from dcdrl_ros.runtime.interrupts import SignalHandlerOptions, install_sigint_handler
from dcdrl_ros.runtime.logging import Logger, LoggingSeverity
from dcdrl_ros.runtime.node import Node
from dcdrl_ros.runtime.parameters import (
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
from dcdrl_ros.runtime.publisher import Publisher
from dcdrl_ros.runtime.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    LivelinessPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
    qos_profile_services_default,
    qos_profile_system_default,
)
from dcdrl_ros.runtime.service import Service
from dcdrl_ros.runtime.subscription import Subscription
from dcdrl_ros.runtime.task import Future
from dcdrl_ros.runtime.time import Time
from dcdrl_ros.runtime.timer import Timer

install_interface_import_hook()


def init(*, args: list[str] | None = None, context: Context | None = None,
         domain_id: int | None = None, signal_handler_options: SignalHandlerOptions | None = None) -> None:
    """rclpy.init: parses --ros-args, creates the participant, and (default context, unless
    ``signal_handler_options`` says otherwise) makes SIGINT and SIGTERM shut down."""
    (context or default_context).init(args, domain_id)
    if signal_handler_options is None:
        signal_handler_options = SignalHandlerOptions.ALL if context is None else SignalHandlerOptions.NO
    _install_signal_handlers(SignalHandlerOptions(signal_handler_options))


def ok(*, context: Context | None = None) -> bool:
    return (context or default_context).ok()


def shutdown(*, context: Context | None = None) -> None:
    (context or default_context).shutdown()


def try_shutdown(*, context: Context | None = None) -> None:
    (context or default_context).try_shutdown()


def _install_signal_handlers(options: SignalHandlerOptions) -> None:
    # Like rclpy: Ctrl-C raises KeyboardInterrupt in the spinning thread (never inside a DDS take:
    # runtime/interrupts.py), and SIGTERM makes spin() return; the clean-up (destroy_node, shutdown)
    # then runs in the main thread, never inside the handler while the executor waits.
    def on_sigterm(_signum: int, _frame: object) -> None:
        default_context.request_shutdown()
    try:
        if options & SignalHandlerOptions.SIGTERM:
            signal.signal(signal.SIGTERM, on_sigterm)
        if options & SignalHandlerOptions.SIGINT:
            install_sigint_handler()
    except ValueError:  # not the main thread
        pass


__all__ = [
    'Client', 'Clock', 'Context', 'DurabilityPolicy', 'Duration', 'Future', 'HistoryPolicy',
    'InvalidParameterTypeException', 'InvalidParameterValueException', 'LivelinessPolicy', 'Logger',
    'LoggingSeverity', 'MultiThreadedExecutor', 'Node', 'Parameter', 'ParameterAlreadyDeclaredException',
    'ParameterDescriptor', 'ParameterException', 'ParameterImmutableException', 'ParameterNotDeclaredException',
    'ParameterType', 'ParameterUninitializedException', 'Publisher', 'QoSProfile', 'ReliabilityPolicy', 'Service',
    'SetParametersResult',
    'SignalHandlerOptions',
    'SingleThreadedExecutor', 'Subscription', 'Time', 'Timer', 'init', 'ok', 'qos_profile_sensor_data',
    'qos_profile_services_default', 'qos_profile_system_default', 'shutdown', 'spin', 'spin_once',
    'spin_until_future_complete', 'try_shutdown']
