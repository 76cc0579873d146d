"""`ros2 run dcdrl_cloud replay_buffer`: stores the experience of every client.

Thin adapter over dcdrl_cloud.ingest. Bad batches are logged, counted and dropped; the
node keeps running. On shutdown it prints one line 'REPORT {json}' with the totals.
"""
from __future__ import annotations

import json
from typing import Optional, Sequence

from dcdrl_core import ros
from dcdrl_core.experience import ExperienceRejected
from dcdrl_msgs.msg import ExperienceBatch
from dcdrl_cloud.ingest import ExperienceIngest


class ReplayBufferNode(ros.Node):
    def __init__(self) -> None:
        super().__init__('replay_buffer')
        self.declare_parameter('capacity', 1_000_000)
        self.declare_parameter('gamma', 0.99)
        self.declare_parameter('report_period_s', 2.0)
        self.declare_parameter('experience_depth', 100)
        param = lambda name: self.get_parameter(name).value  # noqa: E731
        self.ingest = ExperienceIngest(param('capacity'), param('gamma'))
        self.create_subscription(
            ExperienceBatch, 'experience', self.on_experience,
            ros.QoSProfile(depth=param('experience_depth'), reliability=ros.ReliabilityPolicy.RELIABLE))
        self.create_timer(param('report_period_s'), self.report)
        self.get_logger().info(f'replay_buffer started: capacity {param("capacity")}')

    def on_experience(self, message: ExperienceBatch) -> None:
        try:
            experience = self.ingest.ingest(message)
        except ExperienceRejected as error:
            self.get_logger().warning(f'rejected experience: {error}', throttle_duration_sec=1.0)
            return
        self.get_logger().debug(f'{len(experience)} transitions from {experience.client_id}')

    def report(self) -> None:
        s = self.ingest.summary()
        self.get_logger().info(
            f"{s['transitions']} transitions from {len(s['clients'])} clients, "
            f"{s['transitions_per_s']:.0f}/s, {s['megabytes_per_s']:.2f} MB/s, "
            f"replay {s['replay_size']}, rejected {s['rejected']}")

    def destroy_node(self) -> None:
        print('REPORT ' + json.dumps(self.ingest.summary()), flush=True)
        super().destroy_node()


def main(args: Optional[Sequence[str]] = None) -> int:
    return ros.run_node(ReplayBufferNode, args)
