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

Parameters (name, default: meaning):
    env_id 'dcdrl_sim/MecOffloadScores-v0': env whose spaces size the networks; also the evaluation env
    network_preset 'dcdrl': agent/network preset ('dcdrl' or 'cloud_edge'); every party uses the same
    algorithm 'ddpg': 'ddpg' or 'td3'
    device 'auto': 'cpu', 'cuda', 'cuda:N', 'auto' (cuda when present)
    seed 0: network init and noise seeds
    gamma -1.0: the discount the replay uses (checked against batch discounts); < 0 = the preset's (0.9 dcdrl)
    mode 'central': 'central' or 'collective' (then also submit the model with fitness on client_model);
        the cloud-edge workflow's learner is its own executable: segment_learner
    output_dir 'runs/train': learner.ckpt, learner.json, evaluation.json/.md, run logs
    duration_s 240.0: training time of this process; 0 = until stopped
    batch_size 64: transitions per requested batch
    prefetch_batches 8: batches requested but not yet consumed
    credit_batch 2: new credits are sent once this many are missing
    credit_timeout_s 10.0: no batch this long while credits are out -> they are written off and re-sent
    max_queued_batches 32: received batches kept for training; the oldest is dropped beyond this
    publish_every_updates 50: publish the policy (version + 1) every this many updates
    stats_period_s 1.0: learner/stats and run-log scalars period
    checkpoint_period_s 30.0: checkpoint period; 0 = only at the end
    resume true: continue from output_dir/learner.ckpt when it exists (versions continue upward)
    eval_period_s 20.0: noise-free evaluation period; 0 = off
    eval_episodes 3: episodes per periodic evaluation
    eval_seed 10000: evaluation episode k uses seed eval_seed + k (same tasks every time)
    final_eval_episodes 5: episodes per policy in the final table
    oracle_episodes 2: episodes of the MEC oracle (iterated best response) in the final table; 0 = none
    evaluate_on_stop true: also write the final table when stopped before duration_s
    updates_per_sec_limit 0.0: cap on gradient updates per second; 0 = as fast as batches arrive
    torch_threads 1: torch.set_num_threads (clients share the cores)
    prioritized false: send PriorityUpdate(|TD errors|) after each update; set like the replay_buffer's
    actor_start -1: replay size before actor updates start; < 0 = the preset's (1000 dcdrl)
    generation_period_s 30.0: collective mode: model submission period
    tensorboard true: TensorBoard event files besides scalars.csv
    progress_period_s 10.0: progress line on stdout (before the first batch: 'waiting for the replay
        buffer (N / 1,000 transitions)'); 0 = off
    actor_lr, critic_lr: Adam learning rates; default: the network preset's (`param get` shows it)
    report true: report.md and PNG plots (learning curve vs baselines, version lag, throughput) in
        output_dir when training ends or is stopped (dcdrl_cloud/report.py)
    exit_when_done false: exit after TRAINING DONE (and the report) instead of idling
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Optional, Sequence

import numpy as np

from dcdrl_core import ros
from dcdrl_core.experience import MAX_ID_LENGTH
from dcdrl_core.learning.agents import AgentConfig
from dcdrl_core.live_parameters import Live, LiveParameters, config_fields, read_only
from dcdrl_core.msg_arrays import set_array
from dcdrl_core.names import DEFAULT_NAMESPACE
from dcdrl_core.param_check import check_no_unknown_parameters
from dcdrl_core.weights_msg import fill_weights
from dcdrl_msgs.msg import (
    EpisodeStats, PolicyWeights, PriorityUpdate, ReplayStats, SampledBatch, SampleRequest, Tensor,
    TrainingStats)
from dcdrl_cloud.learner import BatchRejected, Learner, LearnerConfig, read_sampled_batch
from dcdrl_cloud.training_thread import TrainingThread

_UINT_STATS = ('policy_version', 'updates', 'env_steps', 'replay_size', 'rejected_batches')
# Parameters whose default is the network preset's value (one place: AGENT_PRESETS), with their description.
PRESET_DEFAULTS = {'actor_lr': "Adam learning rate of the actor (default: the network preset's)",
                   'critic_lr': "Adam learning rate of the critic (default: the network preset's)"}


def _reliable(depth: int) -> Any:
    return ros.QoSProfile(depth=depth, reliability=ros.ReliabilityPolicy.RELIABLE)


def _latched() -> Any:
    return ros.QoSProfile(depth=1, reliability=ros.ReliabilityPolicy.RELIABLE,
                          durability=ros.DurabilityPolicy.TRANSIENT_LOCAL)


class _Outputs:
    """LearnerOutputs for the node: every call becomes a message (published from the training thread)."""

    def __init__(self, node: 'LearnerNode') -> None:
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
        self.declare_parameter('mode', LearnerConfig.mode, read_only("'central' or 'collective'"))
        if self.get_parameter('mode').value == 'segments':  # was a mode of this executable: say where it went
            raise ValueError("mode 'segments' is its own executable now: ros2 run dcdrl_cloud segment_learner "
                             "(the same parameters, without mode)")
        # Live: Learner.LIVE_FIELDS (periods, duration, evaluation sizes) and exit_when_done; the rest is read at start.
        self.live = LiveParameters({
            **config_fields(Learner.LIVE_FIELDS, lambda: self.learner.config,
                            lambda **change: self.learner.reconfigure(**change)),
            'exit_when_done': Live(apply=lambda value: setattr(self, 'exit_when_done', value))})
        for spec in fields(LearnerConfig):
            if spec.name in PRESET_DEFAULTS:  # declared with the network preset's value (AGENT_PRESETS)
                preset = AgentConfig.preset(self.get_parameter('network_preset').value)
                self.declare_parameter(spec.name, float(getattr(preset, spec.name)),
                                       self.live.descriptor(spec.name, PRESET_DEFAULTS[spec.name]))
            elif spec.name != 'mode':
                self.declare_parameter(spec.name, spec.default, self.live.descriptor(spec.name))
        self.declare_parameter('exit_when_done', False, self.live.descriptor('exit_when_done'))
        check_no_unknown_parameters(self)
        config = LearnerConfig(**{spec.name: self.get_parameter(spec.name).value for spec in fields(LearnerConfig)})
        self.exit_when_done = bool(self.get_parameter('exit_when_done').value)
        self.learner = Learner(config, _Outputs(self), name=self.get_name())
        self.live.attach(self)

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


def main(args: Optional[Sequence[str]] = None) -> int:
    return ros.run_node(LearnerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
