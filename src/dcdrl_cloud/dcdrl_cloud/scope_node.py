"""`ros2 run dcdrl_cloud scope`: the live view of a cloud-edge run.

Plots the edge's action, cart position and pole angle (from the trajectory segments) and the
return of every finished episode (from the learner's episode_stats) in a matplotlib window when a
display is there; otherwise (a headless PC, the cloud) it rewrites a PNG every refresh_period_s.
With ROS 2, rqt_plot works on the same data: /dcdrl/edge/stats/last_action,
/dcdrl/edge/stats/observation[0], /dcdrl/learner/stats/eval_return, /dcdrl/episode_stats/episode_return.
Thin adapter over dcdrl_cloud.scope.

Topics (relative; in /dcdrl unless started with -r __ns:=/other):
    sub  segments       dcdrl_msgs/TrajectorySegment  best effort, keep-last 100 (lossy is fine for a view)
    sub  episode_stats  dcdrl_msgs/EpisodeStats       best effort

Parameters: the fields of dcdrl_cloud.scope.ScopeParameters (`scope --help` lists them).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dcdrl_cloud.scope import ScopeData, ScopeParameters, draw_scope, open_window, save_scope_png
from dcdrl_core.names import DEFAULT_NAMESPACE
from dcdrl_ros import ros
from dcdrl_ros.live_parameters import Live, LiveParameters
from dcdrl_ros.msg_arrays import get_array
from dcdrl_ros.parameter_dataclass import declare_parameters

from dcdrl_msgs.msg import EpisodeStats, TrajectorySegment

EVALUATION_FLAG = TrajectorySegment.FLAG_EVALUATION


class ScopeNode(ros.Node):
    def __init__(self) -> None:
        super().__init__('scope', namespace=DEFAULT_NAMESPACE)
        # Live: the window's length; the rest is read at start.
        self.live = LiveParameters({'window_s': Live(apply=lambda seconds: self.data.set_window(seconds))})
        parameters = declare_parameters(self, ScopeParameters, self.live)
        self.device_id = parameters.device_id
        self.output = parameters.output
        self.data = ScopeData(window_s=parameters.window_s)
        self.figure = open_window() if parameters.window else None
        self.frames = 0
        self._announced = False
        self.create_subscription(TrajectorySegment, 'segments', self.on_segment,
                                 ros.QoSProfile(depth=100, reliability=ros.ReliabilityPolicy.BEST_EFFORT))
        self.create_subscription(EpisodeStats, 'episode_stats', self.on_episode, ros.qos_profile_sensor_data)
        self.create_timer(parameters.refresh_period_s, self.refresh)
        where = 'a window' if self.figure is not None else (self.output or 'nowhere (output is empty)')
        self.get_logger().info(f'scope started: drawing to {where}')

    def on_segment(self, message: TrajectorySegment) -> None:
        if self.device_id and message.device_id != self.device_id:
            return
        stamp = message.header.stamp.sec + 1e-9 * message.header.stamp.nanosec
        self.data.add_step(stamp, get_array(message, 'observation', np.float32),
                           get_array(message, 'action', np.float32), bool(message.flags & EVALUATION_FLAG))

    def on_episode(self, message: EpisodeStats) -> None:
        if self.device_id and message.client_id != self.device_id:
            return
        self.data.add_episode(message.episode, message.episode_return)

    def refresh(self) -> None:
        title = f'DC-DRL scope: {self.device_id or "all controllers"}'
        if self.figure is not None:
            import matplotlib.pyplot as plt
            draw_scope(self.data, self.figure, title)
            plt.pause(0.001)
        elif self.output:
            save_scope_png(self.data, self.output, title)
        self.frames += 1
        if not self._announced and self.data.steps:
            self._announced = True
            self.get_logger().info(f'first frame with data drawn ({len(self.data.steps)} steps)')


def main(args: Sequence[str] | None = None) -> int:
    return ros.run_node(ScopeNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
