"""live_parameters: live parameters are checked then applied, the others are read-only (our runtime node)."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from dcdrl_ros import runtime
from dcdrl_ros.live_parameters import (
    LIVE_NOTE,
    READ_AT_START,
    Live,
    LiveParameters,
    config_check,
    from_validator,
    non_negative,
    periodic,
    positive,
    read_only,
    set_timer_period,
    within,
)
from dcdrl_ros.runtime.parameters import Parameter
from dcdrl_ros.testing import fresh_domain_id


@dataclass(frozen=True)
class Settings:
    rate: float = 1.0
    burst: int = 2

    def __post_init__(self) -> None:
        if self.burst > 10 * self.rate:
            raise ValueError(f'burst ({self.burst}) must be <= 10 * rate ({self.rate})')


@pytest.fixture
def node(monkeypatch):
    from dcdrl_ros.runtime.context import Context
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    context = Context()
    context.init(['prog', '--ros-args', '-p', 'size:=7'], domain_id=fresh_domain_id())
    yield runtime.Node('live', context=context)
    context.shutdown()


def test_checks():
    assert positive(0.5) == '' and 'must be a finite number > 0' in positive(0.0)
    assert 'finite' in positive(float('inf')) and non_negative(0) == ''
    assert within(1, 100)(100) == '' and within(1, 100)(0) == 'must be in [1, 100], got 0'
    settings = Settings()
    assert config_check(lambda: settings, 'burst')(10) == ''
    assert config_check(lambda: settings, 'burst')(11) == 'burst (11) must be <= 10 * rate (1.0)'

    def odd(value):
        if value % 2 == 0:
            raise ValueError(f'{value} is even')
    assert from_validator(odd)(3) == ''
    with pytest.raises(ValueError):
        from_validator(odd)(4)


def test_descriptors_mark_what_is_read_at_start():
    live = LiveParameters({'rate': Live(apply=print, description='messages per second')})
    rate, size = live.descriptor('rate', 'ignored'), live.descriptor('size', 'elements')
    assert (rate.read_only, rate.description, rate.additional_constraints) == (False, 'messages per second', LIVE_NOTE)
    assert (size.read_only, size.description, size.additional_constraints) == (True, 'elements', READ_AT_START)
    assert read_only('x').read_only


def test_a_live_value_is_checked_then_applied_and_the_rest_is_refused(node):
    applied = []
    settings = [Settings()]

    def apply_rate(value):
        applied.append(value)
        settings[0] = Settings(rate=value, burst=settings[0].burst)
    live = LiveParameters({'rate': Live(check=config_check(lambda: settings[0], 'rate'), apply=apply_rate)})
    node.declare_parameter('rate', 1.0, live.descriptor('rate'))
    node.declare_parameter('size', 3, live.descriptor('size'))
    live.attach(node)
    assert node.get_parameter('size').value == 7   # read-only parameters still take their overrides

    assert [r.successful for r in node.set_parameters([Parameter('rate', value=2.0)])] == [True]
    assert applied == [2.0] and live.changes == 1
    refused = node.set_parameters([Parameter('rate', value=0.1)])[0]   # burst 2 > 10 * 0.1
    assert (refused.successful, refused.reason) == (False, 'rate: burst (2) must be <= 10 * rate (0.1)')
    refused = node.set_parameters([Parameter('size', value=8)])[0]
    assert refused.reason == 'Trying to set a read-only parameter: size.'
    # Applied only once every callback accepted the whole set: use_sim_time true is refused by another one.
    atomic = node.set_parameters_atomically([Parameter('rate', value=3.0), Parameter('use_sim_time', value=True)])
    assert not atomic.successful and applied == [2.0] and node.get_parameter('rate').value == 2.0


def test_a_check_that_raises_is_a_refusal_not_a_crash(node):
    def broken(value):
        raise ArithmeticError('no')
    live = LiveParameters({'gain': Live(check=broken, apply=print)})
    node.declare_parameter('gain', 1.0, live.descriptor('gain'))
    live.attach(node)
    result = node.set_parameters([Parameter('gain', value=2.0)])[0]
    assert (result.successful, result.reason) == (False, 'gain: no')


def test_timers_change_period_stop_and_start_again(node):
    fired = []
    timer = node.create_timer(10.0, lambda: fired.append(1))
    set_timer_period(timer, 0.5)
    assert timer.timer_period_ns == 500_000_000 and 0.4 < timer.time_until_next_call() <= 0.5
    assert periodic(node, timer, 0.0, print) is timer and timer.is_canceled()
    assert periodic(node, timer, 2.0, print) is timer and not timer.is_canceled()
    assert periodic(node, None, 0.0, print) is None
    started = periodic(node, None, 1.0, print)
    assert started in node.timers and started.timer_period_ns == 1_000_000_000
