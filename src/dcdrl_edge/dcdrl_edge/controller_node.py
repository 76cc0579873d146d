"""`ros2 run dcdrl_edge controller`: the edge's real-time control loop (cloud-edge workflow).

A fixed-rate loop (its own thread, monotonic clock, absolute deadlines) reads the plant, runs the
active actor (numpy, double-buffered), adds exploration noise when training, writes the actuator
and hands one TrajectorySegment per step to a sender thread through a drop-oldest queue. Nothing
on the loop's path waits on the network, the learner or a lock they hold: weights are validated
and copied in by a loader thread and swapped in between two steps; cloud commands are taken
between steps. Thin adapter: the logic is dcdrl_edge.controller / actor_buffer / plant / timing /
segment_queue (no ROS import); this file declares parameters and turns calls into messages.

Topics (relative; in /dcdrl unless started with -r __ns:=/other):
    pub  segments              dcdrl_msgs/TrajectorySegment  reliable, keep-last segment_depth
    pub  edge/stats            dcdrl_msgs/LoopStats          best effort, keep-last 5 (rqt_plot)
    pub  /diagnostics          diagnostic_msgs/DiagnosticArray  reliable, keep-last 10
    pub  episode_stats         dcdrl_msgs/EpisodeStats       best effort (eval mode only: one per episode)
    sub  policy                dcdrl_msgs/PolicyWeights      reliable, transient-local, depth 1
    sub  edge/command          dcdrl_msgs/EdgeCommand        reliable, keep-last 10
    topic plant only:
    sub  plant/state           std_msgs/Float64MultiArray    [x, x_dot, theta, theta_dot], sensor-data QoS
    pub  plant/command         std_msgs/Float64MultiArray    [action in -1..1], best effort, keep-last 1

Parameters: the fields of dcdrl_edge.controller_parameters.ControllerParameters (their table is in
docs/edge-controller.md; `controller --help` lists them). The face-recognition testbed's device
controller is its own executable: offload_controller.
"""
from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from dcdrl_core.names import DEFAULT_NAMESPACE
from dcdrl_core.protocol import LoopMode
from dcdrl_edge.actor_buffer import DoubleBufferedActor
from dcdrl_edge.controller import EdgeController
from dcdrl_edge.controller_parameters import ControllerParameters
from dcdrl_edge.eval_mode import EvaluationReport, read_weights_file
from dcdrl_edge.loop_process import LoopProcess, SimPlantSpec
from dcdrl_edge.plant import SimulatedCartPolePlant, TopicPlant
from dcdrl_edge.segment_queue import Segment
from dcdrl_edge.timing import set_realtime_priority, switch_interval_for
from dcdrl_ros import ros
from dcdrl_ros.live_parameters import Live, LiveParameters, set_timer_period
from dcdrl_ros.msg_arrays import set_array
from dcdrl_ros.parameter_dataclass import declare_parameters

from dcdrl_msgs.msg import EdgeCommand, EpisodeStats, LoopStats, PolicyWeights, TrajectorySegment
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from std_msgs.msg import Float64MultiArray

_UINT_STATS = ('steps', 'episode', 'policy_version', 'misses', 'segments_queued', 'segments_dropped',
               'weights_swapped', 'weights_rejected')
MAX_COMMAND_SENDERS = 16   # distinct EdgeCommand senders remembered (header.frame_id)
MAX_SENDER_LENGTH = 64


def _reliable(depth: int, latched: bool = False) -> Any:
    durability = ros.DurabilityPolicy.TRANSIENT_LOCAL if latched else ros.DurabilityPolicy.VOLATILE
    return ros.QoSProfile(depth=depth, reliability=ros.ReliabilityPolicy.RELIABLE, durability=durability)


def episodes_text(count: int, noun: str = 'episode') -> str:
    """'1 episode', '3 episodes': the log lines a user reads."""
    return f'{count} {noun}' + ('' if count == 1 else 's')


class ControllerNode(ros.Node):
    def __init__(self) -> None:
        super().__init__('controller', namespace=DEFAULT_NAMESPACE)
        # Live: the two report periods and the two warning thresholds (their limits are the fields'); the
        # control loop's settings are read at start (the loop may run in its own process).
        self.live = LiveParameters({
            'stats_period_s': Live(apply=lambda period: set_timer_period(self.stats_timer, period)),
            'diagnostics_period_s': Live(apply=lambda period: set_timer_period(self.diagnostics_timer, period)),
            'warn_period_error_us': Live(apply=lambda value: setattr(self, 'warn_period_error_us', value)),
            'cloud_timeout_s': Live(apply=lambda value: setattr(self, 'cloud_timeout_s', value))})
        # A bad value raises ValueError here: ros.run_node prints it and exits with code 2.
        try:
            parameters = declare_parameters(self, ControllerParameters, self.live)
        except ValueError:
            if self.has_parameter('mode') and self.get_parameter('mode').value == 'offload':
                raise ValueError("mode 'offload' is its own executable now: ros2 run dcdrl_edge offload_controller "
                                 "(the same parameters, without mode)") from None
            raise
        p = lambda name: getattr(parameters, name)  # noqa: E731
        self.config = parameters.config(self.get_name())
        self.device_id = self.config.device_id
        self.warn_period_error_us = parameters.warn_period_error_us
        self.cloud_timeout_s = parameters.cloud_timeout_s
        sys.setswitchinterval(parameters.switch_interval_s or switch_interval_for(self.config.rate_hz))
        self.realtime_priority = parameters.realtime_priority
        self.eval_episodes = parameters.eval_episodes
        # The weights file first: a wrong path ends the node before a loop process or plant exists.
        weights_file = p('weights_file')
        if self.config.mode == 'eval' and not weights_file:
            raise ValueError("mode 'eval' needs weights_file (e.g. runs/finetune/best_actor.safetensors, or "
                             "actor.safetensors: the latest policy)")
        weights = read_weights_file(weights_file) if weights_file else None

        self.loop: LoopProcess | None = None
        self.actor: DoubleBufferedActor   # the loop process's shared slots, or one in this process
        if p('loop_process'):
            if p('plant') != 'sim':
                raise ValueError(f"loop_process:=true runs the simulated plant inside the loop process; plant "
                                 f"{p('plant')!r} needs loop_process:=false")
            spec = SimPlantSpec(self._sim_options(p), self.config.seed)
            probe = spec.build()   # the plant's sizes (and its option errors, here at start)
            obs_dim, action_dim = probe.observation_dim, probe.action_dim
            probe.close()
            self.plant = None
            self.loop = LoopProcess(self.config, spec, p('network_preset'), obs_dim, action_dim,
                                    realtime_priority=self.realtime_priority, on_rejected=self._on_rejected)
            self.actor = self.loop.actor
        else:
            self.plant = self._make_plant(p)
            self.actor = DoubleBufferedActor(p('network_preset'), self.plant.observation_dim, self.plant.action_dim,
                                             on_rejected=self._on_rejected)
        if weights is not None:
            self.actor.load_payload_now(weights)
            self.get_logger().info(f'loaded actor version {self.actor.version} from {weights_file}')
        self.controller = self.loop if self.loop is not None else EdgeController(self.config, self.plant, self.actor)
        # Evaluation episodes are reported from the controller's episode summaries (the loop thread's;
        # the loop process keeps its own).
        self.evaluation = EvaluationReport(self.config.rate_hz) if self.loop is None else None
        self._eval_done = False
        self._misses_reported = 0        # missed deadlines already in a diagnostics message
        self._loop_end_logged = False    # the loop process's exit is logged once

        self.segment_pub = self.create_publisher(TrajectorySegment, 'segments', _reliable(p('segment_depth')))
        self.stats_pub = self.create_publisher(
            LoopStats, 'edge/stats', ros.QoSProfile(depth=5, reliability=ros.ReliabilityPolicy.BEST_EFFORT))
        self.diagnostics_pub = self.create_publisher(DiagnosticArray, '/diagnostics', _reliable(10))
        self.episode_pub = (self.create_publisher(EpisodeStats, 'episode_stats', ros.qos_profile_sensor_data)
                            if self.config.mode == 'eval' else None)   # in train mode the learner publishes it
        self.create_subscription(PolicyWeights, 'policy', self.on_policy, _reliable(1, latched=True))
        self.create_subscription(EdgeCommand, 'edge/command', self.on_command, _reliable(10))
        self._last_command_sequence: dict[str, int] = {}
        self.commands_ignored = 0   # for another device, repeated, or from a sender over the limit
        self.sender = self.controller.make_sender(self._send_segments, on_error=self._on_send_error)
        self.stats_timer = self.create_timer(float(p('stats_period_s')), self.publish_stats)
        self.diagnostics_timer = self.create_timer(float(p('diagnostics_period_s')), self.publish_diagnostics)

        self._stop = threading.Event()
        self._stopping = False
        self.actor.start()
        self.sender.start()
        self._loop_thread = None
        if self.loop is not None:
            self.loop.start()
            status = self.loop.realtime_status
            if status < 0:
                self._warn_realtime(-status)
        else:
            self._loop_thread = threading.Thread(target=self._run_loop_thread, name='control-loop', daemon=True)
            self._loop_thread.start()
        self.get_logger().info(
            f'controller {self.device_id} started: {self.config.mode} at {self.config.rate_hz:g} Hz'
            + (f' in process {self.loop.pid}' if self.loop is not None else '')
            + (f', SCHED_FIFO {self.realtime_priority}' if self.realtime_priority else '') + ', '
            f"plant {p('plant')}, architecture {self.actor.architecture_id}, "
            + ('acting with the loaded weights' if self.actor.active is not None
               else 'safe action until the first weights arrive')
            + (f', stopping after {episodes_text(self.eval_episodes)}'
               if self.config.mode == 'eval' and self.eval_episodes else ''))
        if self.config.mode == 'eval' and self.evaluation is None:
            self.get_logger().warning('loop_process:=true: episode returns are not reported (the loop process '
                                      'keeps its episode summaries); run eval with loop_process:=false for them')

    def _run_loop_thread(self) -> None:
        if self.realtime_priority:
            ok, error_number = set_realtime_priority(self.realtime_priority)
            if not ok:
                self._warn_realtime(error_number)
        assert isinstance(self.controller, EdgeController)  # the loop thread exists without loop_process only
        self.controller.run(self._stop)

    def _warn_realtime(self, error_number: int) -> None:
        self.get_logger().warning(
            f'realtime_priority {self.realtime_priority} refused ({os.strerror(error_number)}): the loop runs '
            'with normal scheduling; allow it with root, CAP_SYS_NICE or an rtprio limit (docs/edge-controller.md)')

    def _sim_options(self, p: Any) -> dict:
        stop_after = int(p('sim_target_steps_to_stop'))
        sim_rate = float(p('sim_rate_hz')) or float(self.config.rate_hz)
        return dict(
            frequency_hz=sim_rate, cart_friction=float(p('sim_cart_friction')),
            pole_friction=float(p('sim_pole_friction')), integrator=p('sim_integrator'),
            max_steps=int(p('sim_max_steps')), action_history=int(p('action_history')),
            init_theta_mean=float(p('sim_init_theta_mean')), init_theta_std=float(p('sim_init_theta_std')),
            target_steps_to_stop=stop_after if stop_after >= 0 else None)

    def _make_plant(self, p: Any) -> Any:
        kind = p('plant')
        if kind == 'sim':
            return SimulatedCartPolePlant(self._sim_options(p), seed=self.config.seed)
        if kind == 'topic':
            # Best effort, depth 1: publishing from the loop thread must never wait for a reader.
            self.command_pub = self.create_publisher(
                Float64MultiArray, 'plant/command',
                ros.QoSProfile(depth=1, reliability=ros.ReliabilityPolicy.BEST_EFFORT))
            plant = TopicPlant(self._send_command, obs_history=int(p('action_history')),
                               x_limit=float(p('x_limit')), theta_dot_limit=float(p('theta_dot_limit')),
                               max_steps=int(p('max_episode_steps')), stale_after_s=float(p('stale_after_s')),
                               reset_theta_dot_max=float(p('settle_theta_dot')))
            self.create_subscription(Float64MultiArray, 'plant/state', self.on_plant_state,
                                     ros.qos_profile_sensor_data)
            return plant
        raise ValueError(f"plant must be 'sim' or 'topic', got {kind!r}")

    # ------------------------------------------------------------------ callbacks (hand over only)
    def on_policy(self, message: PolicyWeights) -> None:
        from dcdrl_learning.weights_msg import read_weights
        self.controller.note_cloud_message()
        try:
            payload = read_weights(message)
        except ValueError as error:  # malformed message: counted like any refused weights
            self.actor.record_rejection('malformed', str(error))
            return
        self.actor.offer(payload)

    def on_command(self, message: EdgeCommand) -> None:
        if message.device_id and message.device_id != self.device_id:
            self.commands_ignored += 1
            return
        self.controller.note_cloud_message()
        sender = message.header.frame_id[:MAX_SENDER_LENGTH]
        last = self._last_command_sequence.get(sender)
        if last is not None and message.sequence <= last:
            self.commands_ignored += 1
            return  # a repeat (or an old one): commands are taken once
        if last is None and len(self._last_command_sequence) >= MAX_COMMAND_SENDERS:
            self.commands_ignored += 1  # bounded memory: a flood of made-up senders is not remembered
            self.get_logger().warning(f'edge command from a {MAX_COMMAND_SENDERS + 1}th sender ignored',
                                      throttle_duration_sec=5.0)
            return
        self._last_command_sequence[sender] = int(message.sequence)
        try:
            self.controller.command(int(message.command))
        except ValueError as error:
            self.get_logger().warning(f'edge command refused: {error}', throttle_duration_sec=1.0)

    def on_plant_state(self, message: Float64MultiArray) -> None:
        try:
            self.plant.update_state(message.data)
        except ValueError as error:
            self.get_logger().warning(f'plant state refused: {error}', throttle_duration_sec=1.0)

    def _on_rejected(self, reason: str, text: str) -> None:
        self.get_logger().warning(f'weights refused ({reason}): {text}; keeping actor version '
                                  f'{max(self.actor.version, 0)}', throttle_duration_sec=1.0)

    def _on_send_error(self, error: BaseException) -> None:
        self.get_logger().error(f'sending segments failed: {error!r}', throttle_duration_sec=2.0)

    # ------------------------------------------------------------------ outputs (not the loop thread)
    def _send_command(self, action: np.ndarray) -> None:
        message = Float64MultiArray()
        set_array(message, 'data', action, np.float64)
        self.command_pub.publish(message)

    def _send_segments(self, segments: list[Segment]) -> None:
        for segment in segments:
            message = TrajectorySegment(device_id=self.device_id, sequence=segment.sequence,
                                        episode=segment.episode, policy_version=max(segment.policy_version, 0),
                                        flags=segment.flags)
            message.header.stamp.sec, message.header.stamp.nanosec = divmod(segment.stamp_ns, 1_000_000_000)
            set_array(message, 'observation', segment.observation, np.float32)
            set_array(message, 'action', segment.action, np.float32)
            self.segment_pub.publish(message)

    def report_episodes(self) -> None:
        """Log (and in eval mode publish) the evaluation episodes finished since the last call; in eval
        mode with eval_episodes, stop the node (Ctrl-C path: final report, exit 0) once enough ran."""
        if self.evaluation is None:
            return
        assert isinstance(self.controller, EdgeController)  # evaluation is reported without loop_process only
        for summary in self.controller.pop_finished_episodes():
            if not summary.evaluation:
                continue   # training episodes: the learner reports them
            self.get_logger().info(self.evaluation.add(summary))
            if self.episode_pub is not None:
                self._publish_episode(summary)
        if self.config.mode == 'eval' and self.eval_episodes and not self._eval_done \
                and len(self.evaluation.episodes) >= self.eval_episodes:
            self._eval_done = True
            self.get_logger().info(f'{episodes_text(self.eval_episodes, "evaluation episode")} done: stopping')
            os.kill(os.getpid(), signal.SIGINT)

    def _publish_episode(self, summary: Any) -> None:
        swing_up = summary.swing_up_steps
        message = EpisodeStats(client_id=self.device_id, episode=int(summary.episode),
                               policy_version=int(summary.policy_version), length=int(summary.length),
                               episode_return=(float(summary.episode_return) if summary.episode_return is not None
                                               else math.nan),
                               cost=float(swing_up) if swing_up is not None else math.nan)
        message.header.stamp = self.get_clock().now().to_msg()
        self.episode_pub.publish(message)

    def publish_stats(self) -> None:
        self.report_episodes()
        stats = self.controller.stats()
        message = LoopStats(device_id=self.device_id)
        for name, value in stats.items():
            if name == 'observation':
                set_array(message, 'observation', np.asarray(value, np.float64), np.float64)
            elif hasattr(message, name):
                setattr(message, name, int(value) if name in _UINT_STATS or name == 'mode' else float(value))
        message.header.stamp = self.get_clock().now().to_msg()
        self.stats_pub.publish(message)

    def publish_diagnostics(self) -> None:
        s = self.controller.stats()
        level, problems = DiagnosticStatus.OK, []
        if s['period_error_p99_us'] > self.warn_period_error_us:
            problems.append(f"period error p99 {s['period_error_p99_us']:.0f} us")
        if s['misses'] > self._misses_reported:
            problems.append(f"{s['misses'] - self._misses_reported} missed deadlines")
        self._misses_reported = s['misses']
        silent = s['cloud_silent_s']
        if s['mode'] == LoopMode.TRAIN and (silent < 0 or silent > self.cloud_timeout_s):
            problems.append('cloud silent' + (f' for {silent:.1f} s' if silent >= 0 else ' (nothing received yet)'))
        loop_ended = self.loop is not None and self.loop.exitcode is not None and not self._stopping
        if loop_ended:
            problems.insert(0, f'control loop process exited (code {self.loop.exitcode})')
            if not self._loop_end_logged:
                self._loop_end_logged = True
                self.get_logger().error(f'the control loop process exited with code {self.loop.exitcode}; '
                                        'the plant is left at the safe action where the loop could write it')
        if problems:
            level = DiagnosticStatus.ERROR if loop_ended else DiagnosticStatus.WARN
        status = DiagnosticStatus(level=level, name=f'{self.get_name()}: control loop', hardware_id=self.device_id,
                                  message='; '.join(problems) or 'ok')
        status.values = [KeyValue(key=key, value=f'{s[key]:.6g}' if isinstance(s[key], float) else str(s[key]))
                         for key in ('mode', 'rate_hz', 'steps', 'episode', 'policy_version', 'misses',
                                     'period_error_p99_us', 'inference_p50_us', 'segments_dropped',
                                     'weights_rejected', 'cloud_silent_s')]
        message = DiagnosticArray(status=[status])
        message.header.stamp = self.get_clock().now().to_msg()
        self.diagnostics_pub.publish(message)

    def report(self) -> dict:
        s = self.controller.stats()
        s.pop('observation', None)
        loop = {} if self.loop is None else {'loop_process_exitcode': self.loop.exitcode,
                                              'realtime_priority_status': self.loop.realtime_status}
        evaluation = {} if self.evaluation is None else {'evaluation': self.evaluation.summary()}
        return {'device_id': self.device_id, **s, **loop, 'segments_sent': self.sender.sent,
                'weights_rejected_by_reason': dict(self.actor.rejected),
                'commands_refused': self.controller.commands_refused, 'commands_ignored': self.commands_ignored,
                'malformed_samples': ros.malformed_samples(self), **evaluation}

    def destroy_node(self) -> None:
        self._stopping = True
        self._stop.set()
        if self.loop is not None:
            self.loop.stop(timeout=5.0)
        else:
            self._loop_thread.join(timeout=5.0)
        self.sender.stop(timeout=5.0)
        self.actor.stop()
        if self.loop is not None:
            self.loop.close()
        else:
            self.plant.close()
        if self.evaluation is not None:
            self._eval_done = True   # stopping already: no second stop request
            self.report_episodes()   # the episodes that ended since the last stats period
            if self.config.mode == 'eval' or self.evaluation.episodes:
                print(self.evaluation.final_line(), flush=True)
        print('CONTROLLER REPORT ' + json.dumps(self.report(), default=float), flush=True)
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    return ros.run_node(ControllerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
