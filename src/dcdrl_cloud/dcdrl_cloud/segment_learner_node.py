"""`ros2 run dcdrl_cloud segment_learner`: the cloud learner of the cloud-edge workflow.

Edge controllers stream one TrajectorySegment per control step; this node pairs consecutive
segments into transitions, computes the swing-up reward itself, trains DDPG/TD3 in its own thread,
sends weights (at most every publish_period_s, and on
request through the get_policy service), asks the edge for noise-free evaluation episodes, keeps
the best weights and stops when the convergence rule holds. Thin adapter: the logic is
dcdrl_cloud.segment_learner and dcdrl_cloud.segments (no ROS import).

Topics (relative; in /dcdrl unless started with -r __ns:=/other):
    sub  segments        dcdrl_msgs/TrajectorySegment  reliable, keep-last segment_depth
    pub  policy          dcdrl_msgs/PolicyWeights      reliable, transient-local, depth 1
    pub  edge/command    dcdrl_msgs/EdgeCommand        reliable, keep-last 10
    pub  learner/stats   dcdrl_msgs/TrainingStats      best effort, keep-last 5
    pub  episode_stats   dcdrl_msgs/EpisodeStats       best effort (one per finished edge episode;
                                                        cost = swing-up steps, NaN when the pole never got up)
    srv  get_policy      dcdrl_msgs/srv/GetPolicy      latest weights at least min_version new

Parameters: the fields of dcdrl_cloud.segment_config.SegmentLearnerParameters (their table is in
docs/segment-learner.md; `segment_learner --help` lists them).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dcdrl_cloud.seed_bags import SEGMENT_TYPE, seed_from_bags, segment_intake
from dcdrl_cloud.segment_config import SegmentLearnerParameters
from dcdrl_cloud.segment_learner import SegmentLearner
from dcdrl_cloud.segments import SegmentRejected, read_segment
from dcdrl_cloud.training_thread import TrainingThread
from dcdrl_core.names import DEFAULT_NAMESPACE
from dcdrl_learning.weights_msg import MAX_ARCHITECTURE_ID_LENGTH, fill_weights
from dcdrl_ros import ros
from dcdrl_ros.live_parameters import Live, LiveParameters, config_fields
from dcdrl_ros.parameter_dataclass import declare_parameters

from dcdrl_msgs.msg import EdgeCommand, EpisodeStats, PolicyWeights, Tensor, TrainingStats, TrajectorySegment
from dcdrl_msgs.srv import GetPolicy

_UINT_STATS = ('policy_version', 'updates', 'env_steps', 'replay_size', 'rejected_batches')


class _Outputs:
    """SegmentLearnerOutputs for the node: every call becomes a message."""

    def __init__(self, node: SegmentLearnerNode) -> None:
        self.node = node
        self.command_sequence = 0

    def _stamp(self, message: Any) -> Any:
        message.header.stamp = self.node.get_clock().now().to_msg()
        return message

    def publish_weights(self, payload: Any) -> None:
        message = fill_weights(PolicyWeights(), payload, Tensor, producer=self.node.get_name())
        self.node.policy_pub.publish(self._stamp(message))

    def publish_stats(self, stats: dict) -> None:
        message = TrainingStats()
        for name, value in stats.items():
            if hasattr(message, name):
                setattr(message, name, int(value) if name in _UINT_STATS else float(value))
        self.node.stats_pub.publish(self._stamp(message))

    def publish_episode(self, summary: Any) -> None:
        swing_up = summary.swing_up_steps
        message = EpisodeStats(client_id=summary.device_id, episode=int(summary.episode),
                               policy_version=int(summary.policy_version), length=int(summary.length),
                               episode_return=float(summary.episode_return),
                               cost=float(swing_up) if swing_up is not None else math.nan)
        self.node.episode_pub.publish(self._stamp(message))

    def send_command(self, kind: int) -> None:
        self.command_sequence += 1
        message = EdgeCommand(device_id='', command=int(kind), sequence=self.command_sequence)
        message.header.frame_id = self.node.get_name()  # the controller de-duplicates per sender
        self.node.command_pub.publish(self._stamp(message))

    def log(self, level: str, text: str) -> None:
        logger = self.node.get_logger()
        {'error': logger.error, 'warning': logger.warning}.get(level, logger.info)(text)


class SegmentLearnerNode(ros.Node):
    def __init__(self) -> None:
        super().__init__('segment_learner', namespace=DEFAULT_NAMESPACE)
        # Live: the fields marked live (SegmentLearner.LIVE_FIELDS, taken over by reconfigure) and exit_when_done.
        self.live = LiveParameters({
            **config_fields(SegmentLearner.LIVE_FIELDS, lambda: self.learner.config,
                            lambda **change: self.learner.reconfigure(**change)),
            'exit_when_done': Live(apply=lambda value: setattr(self, 'exit_when_done', value))})
        # A bad value raises ValueError here: ros.run_node prints it and exits with code 2.
        parameters = declare_parameters(self, SegmentLearnerParameters, self.live)
        config = parameters.config()
        depth = parameters.segment_depth
        self.exit_when_done = parameters.exit_when_done

        reliable = ros.ReliabilityPolicy.RELIABLE
        self.policy_pub = self.create_publisher(PolicyWeights, 'policy', ros.QoSProfile(
            depth=1, reliability=reliable, durability=ros.DurabilityPolicy.TRANSIENT_LOCAL))
        self.command_pub = self.create_publisher(EdgeCommand, 'edge/command',
                                                 ros.QoSProfile(depth=10, reliability=reliable))
        self.stats_pub = self.create_publisher(
            TrainingStats, 'learner/stats', ros.QoSProfile(depth=5, reliability=ros.ReliabilityPolicy.BEST_EFFORT))
        self.episode_pub = self.create_publisher(EpisodeStats, 'episode_stats', ros.qos_profile_sensor_data)
        self.learner = SegmentLearner(config, _Outputs(self), name=self.get_name())
        if parameters.seed_bags:
            self._seed(parameters.seed_bags)
        self.create_subscription(TrajectorySegment, 'segments', self.on_segment,
                                 ros.QoSProfile(depth=depth, reliability=reliable))
        self.create_service(GetPolicy, 'get_policy', self.on_get_policy)

        self.learner.start()
        self.training = TrainingThread(self.learner, self.get_logger(), lambda: ros.malformed_samples(self),
                                       lambda: self.exit_when_done, name='segment-learner')
        self.training.start()
        self.get_logger().info(
            f'segment learner started: {config.env_id} {config.algorithm} '
            f'{self.learner.architecture_id}, version {self.learner.version}, output {config.output_dir}')

    def _seed(self, paths: Sequence[str]) -> None:
        """Recorded segments first (before the subscription exists), through the live intake."""
        stored = len(self.learner.buffer) if self.learner.buffer is not None else 0
        if self.learner.resumed_from is not None and stored:   # that replay holds any earlier seeding
            self.get_logger().info(f'seed_bags not read: resumed with {stored} stored transitions')
            return
        summary = seed_from_bags(paths, SEGMENT_TYPE, segment_intake(self.learner))
        for problem in summary.problems:
            self.get_logger().error(problem)
        self.get_logger().info(summary.line())

    # ------------------------------------------------------------------ callbacks (keep short)
    def on_segment(self, message: TrajectorySegment) -> None:
        try:
            segment = read_segment(message, self.learner.obs_dim, self.learner.action_dim)
        except SegmentRejected as error:
            total = self.learner.reject(error.reason)
            self.get_logger().warning(f'segment refused ({error.reason}): {error} ({total} refused so far)',
                                           throttle_duration_sec=2.0)
            return
        self.learner.receive(segment)

    def on_get_policy(self, request: GetPolicy.Request, response: GetPolicy.Response) -> GetPolicy.Response:
        if len(request.architecture_id) > MAX_ARCHITECTURE_ID_LENGTH:   # never echoed: the reply stays small
            response.available = False
            response.message = f'architecture_id longer than {MAX_ARCHITECTURE_ID_LENGTH} characters'
            return response
        if request.architecture_id and request.architecture_id != self.learner.architecture_id:
            response.available = False
            response.message = (f'this learner trains {self.learner.architecture_id!r}, '
                                f'not {request.architecture_id!r}')
            return response
        payload = self.learner.weights_for_request(int(request.min_version))
        if payload is None:
            response.available = False
            response.message = f'no weights at version >= {request.min_version} yet'
            return response
        response.available = True
        response.weights = fill_weights(PolicyWeights(), payload, Tensor, producer=self.get_name())
        return response

    def destroy_node(self) -> None:
        self.training.stop(lambda summary: f"learner stopped: version {summary['version']}, {summary['updates']} "
                           f"updates, {summary['env_steps']} transitions, malformed samples "
                           f"{ros.malformed_samples(self)}")
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    return ros.run_node(SegmentLearnerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
