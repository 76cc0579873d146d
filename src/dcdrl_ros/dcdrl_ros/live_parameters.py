"""Which parameters a node lets change while it runs; the others are declared read-only.

ROS 2 accepts `ros2 param set` for any declared parameter unless its descriptor says read_only. A
DC-DRL node reads most parameters once, at start (sizes, files, topics, QoS depths, seeds): those
are declared read-only, so a set is refused with rclpy's reason ("Trying to set a read-only
parameter: X.") and `ros2 param describe` says why ("read at start: restart the node to change
it"). The few a node can change while it runs (periods, rates, exploration noise, ...) are listed
with a check and an apply::

    self.live = LiveParameters({
        'period_s': Live(check=positive, apply=lambda value: set_timer_period(self.timer, value),
                         description='seconds between messages'),
    })
    self.declare_parameter('period_s', 0.2, self.live.descriptor('period_s'))
    ...
    self.live.attach(self)   # after the declarations

A check returns '' or why the value is refused (`ros2 param set` prints it); apply runs only once
every on-set callback of the node has accepted the whole set (rclpy's post-set callback), in the
executor's thread, and calls into the node's logic, which stays ROS-free. The same code runs on
rclpy and on our runtime (both have Jazzy's callbacks; the descriptor is rcl_interfaces').
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

READ_AT_START = 'read at start: restart the node to change it'
LIVE_NOTE = 'changes while the node runs (ros2 param set)'

Check = Callable[[Any], str]


@dataclass(frozen=True)
class Live:
    """One parameter that may change while the node runs."""

    apply: Callable[[Any], None]
    check: Check = lambda _value: ''
    description: str = ''


# --- checks (pure) ---------------------------------------------------------------------------------------
def positive(value: Any) -> str:
    return '' if math.isfinite(value) and value > 0 else f'must be a finite number > 0, got {value!r}'


def non_negative(value: Any) -> str:
    return '' if math.isfinite(value) and value >= 0 else f'must be a finite number >= 0, got {value!r}'


def within(low: float, high: float) -> Check:
    def check(value: Any) -> str:
        return '' if low <= value <= high else f'must be in [{low:g}, {high:g}], got {value!r}'
    return check


def from_validator(validate: Callable[[Any], Any]) -> Check:
    """A check from a function that raises ValueError or TypeError for a bad value (its result is
    ignored; the error's text becomes the reason)."""
    def check(value: Any) -> str:
        validate(value)
        return ''
    return check


def config_check(current: Callable[[], Any], name: str) -> Check:
    """A check by the node's own config dataclass: ``replace(config, name=value)`` must pass its
    __post_init__ (the rules the node applied at start), with the other fields as they are now."""
    def check(value: Any) -> str:
        try:
            replace(current(), **{name: value})
        except (ValueError, TypeError) as error:
            return str(error)
        return ''
    return check


def config_fields(names: tuple[str, ...], current: Callable[[], Any],
                  reconfigure: Callable[..., Any]) -> dict[str, Live]:
    """Live entries for fields of a config dataclass that the logic takes over with
    ``reconfigure(name=value)``, checked by ``config_check``."""
    return {name: Live(check=config_check(current, name), apply=_reconfigure_field(reconfigure, name))
            for name in names}


def _reconfigure_field(reconfigure: Callable[..., Any], name: str) -> Callable[[Any], Any]:
    return lambda value: reconfigure(**{name: value})


class LiveParameters:
    """The live parameters of one node: descriptors for all its parameters, and the two callbacks."""

    def __init__(self, live: Mapping[str, Live]) -> None:
        self.live = dict(live)
        self.changes = 0   # values applied while running (reported by nodes that report counters)

    def is_live(self, name: str) -> bool:
        return name in self.live

    def refusal(self, name: str, value: Any) -> str:
        """'' or why ``value`` may not replace ``name`` now (checks that raise count as refusals)."""
        try:
            reason = self.live[name].check(value)
        except (ValueError, TypeError, ArithmeticError) as error:
            reason = str(error) or type(error).__name__
        if not reason or reason.startswith(name):
            return reason
        return f'{name} {reason}' if reason.startswith('must') else f'{name}: {reason}'

    def descriptor(self, name: str, description: str = '') -> Any:
        """rcl_interfaces/msg/ParameterDescriptor: read-only unless ``name`` is live."""
        from dcdrl_ros import ros  # noqa: F401  (our runtime's interface import hook, when it is the backend)

        from rcl_interfaces.msg import ParameterDescriptor
        live = self.live.get(name)
        return ParameterDescriptor(
            description=(live.description if live and live.description else description),
            read_only=live is None, additional_constraints=LIVE_NOTE if live else READ_AT_START)

    def attach(self, node: Any) -> None:
        """Register the check (on-set) and the apply (post-set) callbacks on ``node``; call it after
        the declarations (rclpy runs on-set callbacks for declarations too)."""
        from rcl_interfaces.msg import SetParametersResult

        def on_set(parameters: list) -> Any:
            for parameter in parameters:
                if parameter.name in self.live:
                    reason = self.refusal(parameter.name, parameter.value)
                    if reason:
                        return SetParametersResult(successful=False, reason=reason)
            return SetParametersResult(successful=True)

        def after_set(parameters: list) -> None:
            for parameter in parameters:
                live = self.live.get(parameter.name)
                if live is not None:
                    live.apply(parameter.value)
                    self.changes += 1
                    node.get_logger().info(f'parameter {parameter.name} is now {parameter.value!r}')
        node.add_on_set_parameters_callback(on_set)
        node.add_post_set_parameters_callback(after_set)


def read_only(description: str = '') -> Any:
    """The descriptor of a parameter read at start (for nodes or modes without live parameters)."""
    return LiveParameters({}).descriptor('', description)


def set_timer_period(timer: Any, period_s: float) -> None:
    """A running timer (rclpy's or ours) fires every ``period_s`` from now on."""
    timer.timer_period_ns = int(period_s * 1e9)
    timer.reset()


def periodic(node: Any, timer: Any, period_s: float, callback: Callable[[], None]) -> Any:
    """The timer to keep for a period where 0 means off: ``timer`` re-timed or stopped, or a new
    one (``timer`` None); returns it (None while off and never started)."""
    if period_s <= 0:
        if timer is not None:
            timer.cancel()
        return timer
    if timer is None:
        return node.create_timer(period_s, callback)
    set_timer_period(timer, period_s)
    return timer


__all__ = ['LIVE_NOTE', 'Live', 'LiveParameters', 'READ_AT_START', 'config_check', 'config_fields', 'from_validator',
           'non_negative', 'periodic', 'positive', 'read_only', 'set_timer_period', 'within']
