"""`ros2 run dcdrl_cloud learner`: the master learner.

Trains DDPG/TD3 from batches the replay_buffer samples for it (credit-based prefetch), publishes
versioned policy weights (transient-local) every ``publish_every_updates`` updates, training
statistics, checkpoints, evaluation episodes, and at the end the table of the learned policy
against the baselines. Thin adapter: the logic is dcdrl_cloud.learner (no ROS import); this file
declares the parameters, turns messages into calls and calls into messages. Training runs in
the node's own thread; callbacks only validate and queue.

When ``duration_s`` has elapsed the learner stops training, publishes its last weights,
checkpoints, writes evaluation.json / evaluation.md, the run report (report.md + PNGs) and prints
one line ``TRAINING DONE {json}`` (version, updates, env_steps, eval_cost, eval_return, output_dir,
wall_s, report, ...). The node then stays up, idle, or exits when ``exit_when_done`` is true (a
launch file with on_exit shutdown then ends the graph). Ctrl-C or SIGTERM (destroy_node) stops the
thread, checkpoints and writes the table (``evaluate_on_stop``) and the report of what was done.

Topics (relative; in /dcdrl unless started with -r __ns:=/other):
    sub  replay/batches          dcdrl_msgs/SampledBatch   reliable, keep-last 64
    sub  episode_stats           dcdrl_msgs/EpisodeStats   best effort (sensor data)
    sub  replay/stats            dcdrl_msgs/ReplayStats    best effort, keep-last 5 (environment steps)
    sub  merged_policy           dcdrl_msgs/PolicyWeights  transient-local (collective: generation number)
    pub  replay/sample_requests  dcdrl_msgs/SampleRequest  reliable, keep-last 100
    pub  replay/priorities       dcdrl_msgs/PriorityUpdate reliable, keep-last 100 (prioritized only)
    pub  policy                  dcdrl_msgs/PolicyWeights  reliable, transient-local, depth 1
    pub  learner/stats           dcdrl_msgs/TrainingStats  best effort, keep-last 5
    pub  client_model            dcdrl_msgs/PolicyWeights  reliable, keep-last 10 (collective only)

Parameters: the fields of dcdrl_cloud.learner.LearnerParameters (their table is in docs/learner.md;
`learner --help` lists them).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dcdrl_cloud.learner import BatchRejected, Learner, LearnerParameters, read_sampled_batch
from dcdrl_cloud.training_thread import TrainingThread
from dcdrl_core.names import DEFAULT_NAMESPACE
from dcdrl_learning.experience import MAX_ID_LENGTH
from dcdrl_learning.weights_msg import fill_weights
from dcdrl_ros import ros
from dcdrl_ros.live_parameters import Live, LiveParameters, config_fields
from dcdrl_ros.msg_arrays import set_array
from dcdrl_ros.parameter_dataclass import declare_parameters

from dcdrl_msgs.msg import (
    EpisodeStats,
    PolicyWeights,
    PriorityUpdate,
    ReplayStats,
    SampledBatch,
    SampleRequest,
    Tensor,
    TrainingStats,
)

_UINT_STATS = ('policy_version', 'updates', 'env_steps', 'replay_size', 'rejected_batches')


def _reliable(depth: int) -> Any:
    return ros.QoSProfile(depth=depth, reliability=ros.ReliabilityPolicy.RELIABLE)


def _latched() -> Any:
    return ros.QoSProfile(depth=1, reliability=ros.ReliabilityPolicy.RELIABLE,
                          durability=ros.DurabilityPolicy.TRANSIENT_LOCAL)


class _Outputs:
    """LearnerOutputs for the node: every call becomes a message (published from the training thread)."""

    def __init__(self, node: LearnerNode) -> None:
        self.node = node

    def _stamp(self, message: Any) -> Any:
        message.header.stamp = self.node.get_clock().now().to_msg()
        return message

    def request_batches(self, count: int, batch_size: int) -> None:
        self.node.request_pub.publish(self._stamp(SampleRequest(
            requester=self.node.get_name(), batches=int(count), batch_size=int(batch_size))))

    def publish_weights(self, payload: Any) -> None:
        message = fill_weights(PolicyWeights(), payload, Tensor, producer=self.node.get_name())
        self.node.policy_pub.publish(self._stamp(message))

    def send_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        message = PriorityUpdate()
        set_array(message, 'indices', indices, np.uint64)
        set_array(message, 'priorities', priorities, np.float32)
        self.node.priority_pub.publish(self._stamp(message))

    def publish_stats(self, stats: dict[str, float]) -> None:
        message = TrainingStats()
        for name, value in stats.items():
            setattr(message, name, int(value) if name in _UINT_STATS else float(value))
        self.node.stats_pub.publish(self._stamp(message))

    def submit_model(self, payload: Any, fitness: float, generation: int) -> None:
        if self.node.model_pub is None:
            return
        message = fill_weights(PolicyWeights(), payload, Tensor, producer=self.node.get_name(),
                               generation=generation, fitness=fitness)
        self.node.model_pub.publish(self._stamp(message))

    def log(self, level: str, text: str) -> None:
        logger = self.node.get_logger()
        {'error': logger.error, 'warning': logger.warning}.get(level, logger.info)(text)


class LearnerNode(ros.Node):
    def __init__(self) -> None:
        super().__init__('learner', namespace=DEFAULT_NAMESPACE)
        # Live: the fields marked live (Learner.LIVE_FIELDS, taken over by reconfigure) and exit_when_done.
        self.live = LiveParameters({
            **config_fields(Learner.LIVE_FIELDS, lambda: self.learner.config,
                            lambda **change: self.learner.reconfigure(**change)),
            'exit_when_done': Live(apply=lambda value: setattr(self, 'exit_when_done', value))})
        # A bad value raises ValueError here: ros.run_node prints it and exits with code 2.
        try:
            parameters = declare_parameters(self, LearnerParameters, self.live)
        except ValueError:
            if self.has_parameter('mode') and self.get_parameter('mode').value == 'segments':
                raise ValueError("mode 'segments' is its own executable now: ros2 run dcdrl_cloud segment_learner "
                                 "(the same parameters, without mode)") from None
            raise
        config = parameters.config()
        self.exit_when_done = parameters.exit_when_done
        self.learner = Learner(config, _Outputs(self), name=self.get_name())

        self.request_pub = self.create_publisher(SampleRequest, 'replay/sample_requests', _reliable(100))
        self.priority_pub = self.create_publisher(PriorityUpdate, 'replay/priorities', _reliable(100))
        self.policy_pub = self.create_publisher(PolicyWeights, 'policy', _latched())
        self.stats_pub = self.create_publisher(
            TrainingStats, 'learner/stats',
            ros.QoSProfile(depth=5, reliability=ros.ReliabilityPolicy.BEST_EFFORT))
        self.model_pub = None
        if config.mode == 'collective':
            self.model_pub = self.create_publisher(PolicyWeights, 'client_model', _reliable(10))
            self.create_subscription(PolicyWeights, 'merged_policy', self.on_merged_policy, _latched())
        self.create_subscription(SampledBatch, 'replay/batches', self.on_batch, _reliable(64))
        self.create_subscription(EpisodeStats, 'episode_stats', self.on_episode, ros.qos_profile_sensor_data)
        self.create_subscription(ReplayStats, 'replay/stats', self.on_replay_stats,
                                 ros.QoSProfile(depth=5, reliability=ros.ReliabilityPolicy.BEST_EFFORT))
        # A replay buffer that (re)appears holds none of our credits: watch the request topic's readers.
        self._replay_readers = self.request_pub.get_subscription_count()
        self.create_timer(0.5, self.watch_replay)

        self.training = TrainingThread(self.learner, self.get_logger(), lambda: ros.malformed_samples(self),
                                       lambda: self.exit_when_done, name='learner-training')
        self.training.start()
        self.get_logger().info(
            f'learner started: {config.env_id} {config.algorithm} {self.learner.architecture_id}, '
            f'version {self.learner.version + 1} next, output {config.output_dir}')

    # ------------------------------------------------------------------ callbacks (keep short)
    def on_batch(self, message: SampledBatch) -> None:
        try:
            batch = read_sampled_batch(message, self.get_name(), self.learner.obs_dim, self.learner.action_dim)
        except BatchRejected as error:
            total = self.learner.reject(error.reason)
            self.get_logger().warning(f'{error} ({total} refused so far)', throttle_duration_sec=2.0)
            return
        self.learner.receive_batch(batch)

    def on_episode(self, message: EpisodeStats) -> None:
        why = self.learner.record_episode(message.client_id, message.episode_return, message.cost, message.length)
        if why:
            self.get_logger().warning(f'episode stats from {message.client_id[:MAX_ID_LENGTH]!r} with {why} ignored '
                                      f'[{self.learner.episodes_refused} ignored]', throttle_duration_sec=5.0)

    def on_replay_stats(self, message: ReplayStats) -> None:
        self.learner.observe_replay(message.transitions_received, message.size)

    def on_merged_policy(self, message: PolicyWeights) -> None:
        self.learner.observe_generation(message.generation)

    def watch_replay(self) -> None:
        readers = self.request_pub.get_subscription_count()
        if readers > self._replay_readers:
            self.learner.replay_joined()
        self._replay_readers = readers

    def destroy_node(self) -> None:
        self.training.stop(self._stopped_line)
        super().destroy_node()

    def _stopped_line(self, summary: dict) -> str:
        malformed = ros.malformed_samples(self)  # None under rclpy (its rmw does not count them)
        return (f"learner stopped: version {summary['version']}, {summary['updates']} updates, "
                f"checkpoint {summary['checkpoint']}"
                + ('' if malformed is None else f', malformed samples {malformed}'))


def main(args: Sequence[str] | None = None) -> int:
    return ros.run_node(LearnerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
