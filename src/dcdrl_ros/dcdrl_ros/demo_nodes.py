"""talker and listener: the smallest graph, as in ros2's demo_nodes_py (used by tests and docs)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dcdrl_ros import ros
from dcdrl_ros.live_parameters import Live, LiveParameters, set_timer_period
from dcdrl_ros.parameter_dataclass import declare_parameters, parameter

from std_msgs.msg import String  # noqa: E402  (the interface import hook is installed by dcdrl_ros.ros)


@dataclass(frozen=True)
class TalkerParameters:
    period_s: float = parameter(0.2, 'seconds between two messages', above=0.0, live=True)
    topic: str = parameter('chatter', 'topic to publish on')


@dataclass(frozen=True)
class ListenerParameters:
    topic: str = parameter('chatter', 'topic to listen to')


class Talker(ros.Node):
    def __init__(self) -> None:
        super().__init__('talker')
        self.live = LiveParameters({'period_s': Live(apply=lambda period: set_timer_period(self._timer, period))})
        parameters = declare_parameters(self, TalkerParameters, self.live)
        self._publisher = self.create_publisher(String, parameters.topic, 10)
        self._count = 0
        self._timer = self.create_timer(parameters.period_s, self._tick)
        self.get_logger().info(f'talker started: topic {self._publisher.topic_name}, period {parameters.period_s} s')

    def _tick(self) -> None:
        self._count += 1
        self._publisher.publish(String(data=f'Hello World: {self._count}'))


class Listener(ros.Node):
    def __init__(self) -> None:
        super().__init__('listener')
        parameters = declare_parameters(self, ListenerParameters)
        subscription = self.create_subscription(String, parameters.topic, self._on_message, 10)
        self.get_logger().info(f'listener started: topic {subscription.topic_name}')

    def _on_message(self, message: String) -> None:
        self.get_logger().info(f'I heard: [{message.data}]')


def talker_main(args: Sequence[str] | None = None) -> int:
    return ros.run_node(Talker, args)


def listener_main(args: Sequence[str] | None = None) -> int:
    return ros.run_node(Listener, args)
