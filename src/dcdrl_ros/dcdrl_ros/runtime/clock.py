"""rclpy.clock.Clock: the system clock (no simulated time)."""
from __future__ import annotations

import time

from dcdrl_ros.runtime.time import Time


class Clock:
    def now(self) -> Time:
        return Time(nanoseconds=time.time_ns())
