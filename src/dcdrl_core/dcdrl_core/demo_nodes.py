"""talker and listener: the smallest graph, as in ros2's demo_nodes_py (used by tests and docs)."""
from __future__ import annotations

from typing import Optional, Sequence

from dcdrl_core import ros
from dcdrl_core.live_parameters import Live, LiveParameters, positive, set_timer_period
from std_msgs.msg import String  # noqa: E402  (the interface import hook is installed by dcdrl_core.ros)


class Talker(ros.Node):
    def __init__(self) -> None:
        super().__init__('talker')
        self.live = LiveParameters({'period_s': Live(
            check=positive, apply=lambda period: set_timer_period(self._timer, period),
            description='seconds between two messages')})
        self.declare_parameter('period_s', 0.2, self.live.descriptor('period_s'))
        self.declare_parameter('topic', 'chatter', self.live.descriptor('topic', 'topic to publish on'))
        self._publisher = self.create_publisher(String, self.get_parameter('topic').value, 10)
        self._count = 0
        period = self.get_parameter('period_s').value
        if positive(period):
            raise ValueError(f'period_s {positive(period)}')
        self._timer = self.create_timer(period, self._tick)
        self.live.attach(self)
        self.get_logger().info(f'talker started: topic {self._publisher.topic_name}, period {period} s')

    def _tick(self) -> None:
        self._count += 1
        self._publisher.publish(String(data=f'Hello World: {self._count}'))


class Listener(ros.Node):
    def __init__(self) -> None:
        super().__init__('listener')
        self.declare_parameter('topic', 'chatter')
        subscription = self.create_subscription(String, self.get_parameter('topic').value, self._on_message, 10)
        self.get_logger().info(f'listener started: topic {subscription.topic_name}')

    def _on_message(self, message: String) -> None:
        self.get_logger().info(f'I heard: [{message.data}]')


def talker_main(args: Optional[Sequence[str]] = None) -> int:
    return ros.run_node(Talker, args)


def listener_main(args: Optional[Sequence[str]] = None) -> int:
    return ros.run_node(Listener, args)
