"""rclpy.duration.Duration: a span of time in nanoseconds."""
from __future__ import annotations

from dcdrl_ros.messages import Message


class Duration:
    __slots__ = ('nanoseconds',)

    def __init__(self, *, seconds: float = 0, nanoseconds: int = 0) -> None:
        self.nanoseconds = int(seconds * 1_000_000_000) + int(nanoseconds)

    def to_msg(self) -> Message:
        from dcdrl_ros.messages import get_interface
        sec, nanosec = divmod(self.nanoseconds, 1_000_000_000)
        return get_interface('builtin_interfaces/msg/Duration')(sec=sec, nanosec=nanosec)
