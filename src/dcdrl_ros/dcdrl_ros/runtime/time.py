"""rclpy.time.Time: a point in time, nanoseconds since the epoch."""
from __future__ import annotations

from typing import Any

from dcdrl_ros.messages import Message
from dcdrl_ros.runtime.duration import Duration


class Time:
    """rclpy.time.Time: nanoseconds since the epoch (system clock)."""

    __slots__ = ('nanoseconds',)

    def __init__(self, *, seconds: float = 0, nanoseconds: int = 0) -> None:
        self.nanoseconds = int(seconds * 1_000_000_000) + int(nanoseconds)

    def seconds_nanoseconds(self) -> tuple[int, int]:
        return divmod(self.nanoseconds, 1_000_000_000)

    def to_msg(self) -> Message:
        from dcdrl_ros.messages import get_interface
        sec, nanosec = self.seconds_nanoseconds()
        return get_interface('builtin_interfaces/msg/Time')(sec=sec, nanosec=nanosec)

    @classmethod
    def from_msg(cls, msg: Any) -> Time:
        return cls(nanoseconds=msg.sec * 1_000_000_000 + msg.nanosec)

    def __sub__(self, other: Time) -> Duration:
        return Duration(nanoseconds=self.nanoseconds - other.nanoseconds)

    def __repr__(self) -> str:
        return f'Time(nanoseconds={self.nanoseconds})'
