"""rclpy.timer.Timer: fired by the executor on the monotonic clock."""
from __future__ import annotations

import time
from collections.abc import Callable

from dcdrl_ros.runtime.context import Context


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
