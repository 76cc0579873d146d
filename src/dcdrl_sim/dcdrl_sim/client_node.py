"""`ros2 run dcdrl_sim client`: a simulated client that explores K environment copies and
streams its experience (and episode statistics) to the replay buffer.

Thin adapter: the rollout logic is dcdrl_sim.rollout, the message filling dcdrl_core.experience.
"""
from __future__ import annotations

from typing import Optional, Sequence

from dcdrl_core import ros
from dcdrl_core.experience import fill_experience
from dcdrl_msgs.msg import EpisodeStats, ExperienceBatch
from dcdrl_sim.rollout import RolloutCollector


class SimulatedClient(ros.Node):
    def __init__(self) -> None:
        super().__init__('client')
        self.declare_parameter('client_id', '')
        self.declare_parameter('env_id', 'dcdrl_sim/MecOffload-v0')
        self.declare_parameter('num_envs', 4)
        self.declare_parameter('batch_steps', 16)
        self.declare_parameter('publish_rate_hz', 20.0)
        self.declare_parameter('seed', 0)
        self.declare_parameter('experience_depth', 100)
        param = lambda name: self.get_parameter(name).value  # noqa: E731
        if param('num_envs') < 1 or param('batch_steps') < 1 or param('publish_rate_hz') <= 0:
            raise ValueError('num_envs and batch_steps must be >= 1 and publish_rate_hz > 0')
        self.client_id = param('client_id') or self.get_name()
        self.batch_steps = param('batch_steps')
        self.collector = RolloutCollector(param('env_id'), param('num_envs'), seed=param('seed'))
        self.experience_pub = self.create_publisher(
            ExperienceBatch, 'experience',
            ros.QoSProfile(depth=param('experience_depth'), reliability=ros.ReliabilityPolicy.RELIABLE))
        self.episode_pub = self.create_publisher(EpisodeStats, 'episode_stats', ros.qos_profile_sensor_data)
        self.sequence = 0
        self.episodes = 0
        self.policy_version = 0
        self.create_timer(1.0 / param('publish_rate_hz'), self.step)
        self.get_logger().info(
            f'client {self.client_id} started: {param("env_id")} x{param("num_envs")}, '
            f'{self.batch_steps} steps per batch')

    def step(self) -> None:
        block = self.collector.collect(self.batch_steps)
        if len(block):
            message = fill_experience(
                ExperienceBatch(), client_id=self.client_id, sequence=self.sequence,
                policy_version=self.policy_version, obs=block.obs, actions=block.actions,
                rewards=block.rewards, next_obs=block.next_obs, terminated=block.terminated,
                truncated=block.truncated, extra_names=block.extra_names, extras=block.extras)
            message.header.stamp = self.get_clock().now().to_msg()
            self.experience_pub.publish(message)
            self.sequence += 1
        for episode in block.episodes:
            self.episodes += 1
            stats = EpisodeStats(
                client_id=self.client_id, episode=self.episodes, policy_version=self.policy_version,
                length=episode.length, episode_return=episode.episode_return, cost=episode.cost,
                latency_mean_s=episode.latency_mean_s, energy_mean_j=episode.energy_mean_j,
                deadline_miss_ratio=episode.deadline_miss_ratio, offload_fraction=episode.offload_fraction)
            stats.header.stamp = self.get_clock().now().to_msg()
            self.episode_pub.publish(stats)


def main(args: Optional[Sequence[str]] = None) -> int:
    return ros.run_node(SimulatedClient, args)
