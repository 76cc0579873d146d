"""`ros2 run dcdrl_edge offload_controller`: the device's offload decision (face-recognition testbed).

The device half of the face-recognition testbed: every camera frame is a task; the policy decides
to recognise it locally (a FaceWorker child process) or to offload it to the edge host's
``recognize_faces`` service; the measured latency and the modelled energy give the reward; the
experience goes to the cloud's replay buffer and new weights come back on ``policy``. Thin
adapter: the logic (observation, decision, accounting, experience) is dcdrl_edge.offload (no ROS
import); this file declares the parameters and moves frames, requests and results.

Nothing here blocks the executor: a frame callback decodes (local) or queues (offload) and
returns; the offload thread waits for the emulated link (``link_*``) and sends the request
asynchronously; a worker thread collects local results; a timer fails offloads older than
``offload_timeout_s``. A task whose offload fails (no server, time-out, refused, error) runs
locally and is counted as fallen back. Frames that arrive while the worker queue is full and
``max_in_flight`` offloads are outstanding are counted and skipped.

Topics and service (relative; the launch files put the node in /dcdrl):
    sub  camera/image/compressed  sensor_msgs/CompressedImage  reliable, keep-last 5 (one frame = one task)
    sub  policy                   dcdrl_msgs/PolicyWeights     reliable, transient-local, depth 1
    pub  offload_records          dcdrl_msgs/OffloadRecord     reliable, keep-last record_depth
    pub  experience               dcdrl_msgs/ExperienceBatch   reliable, keep-last experience_depth
    pub  episode_stats            dcdrl_msgs/EpisodeStats      best effort (every episode_tasks tasks)
    cli  recognize_faces          dcdrl_msgs/srv/RecognizeFaces

Parameters: the fields of dcdrl_edge.offload_parameters.OffloadParameters (their table is in
docs/face-testbed.md; `offload_controller --help` lists them).

On shutdown it prints 'OFFLOAD REPORT {json}': OffloadController.report() (latency per mode with
mean/p50/p95, counts) plus worker, link, weights and frame counters.
"""
from __future__ import annotations

import json
import queue
import threading
import time
import traceback
from collections.abc import Sequence
from typing import Any

import numpy as np

from dcdrl_core.names import DEFAULT_NAMESPACE
from dcdrl_edge.face_worker import FaceWorker
from dcdrl_edge.images import (
    ImageLimits,
    ImageRejected,
    compressed_bytes,
    compressed_size,
    decode_compressed,
    fill_compressed_bytes,
)
from dcdrl_edge.link_emulator import LinkEmulator, parse_schedule
from dcdrl_edge.offload import OffloadController
from dcdrl_edge.offload_config import actor_dims
from dcdrl_edge.offload_parameters import OffloadParameters
from dcdrl_edge.offload_records import Outcome, Task
from dcdrl_learning.experience import fill_experience
from dcdrl_ros import ros
from dcdrl_ros.live_parameters import Live, LiveParameters, periodic
from dcdrl_ros.msg_arrays import set_array
from dcdrl_ros.parameter_dataclass import declare_parameters
from dcdrl_sim.face.model import LOCAL

from dcdrl_msgs.msg import EpisodeStats, ExperienceBatch, OffloadRecord, PolicyWeights
from dcdrl_msgs.srv import RecognizeFaces
from sensor_msgs.msg import CompressedImage

MAX_REPLY_FACES = 1000   # a reply naming more faces than this is malformed (the task runs locally)


def _reliable(depth: int, latched: bool = False) -> Any:
    durability = ros.DurabilityPolicy.TRANSIENT_LOCAL if latched else ros.DurabilityPolicy.VOLATILE
    return ros.QoSProfile(depth=depth, reliability=ros.ReliabilityPolicy.RELIABLE, durability=durability)


class OffloadControllerNode(ros.Node):
    def __init__(self) -> None:
        super().__init__('offload_controller', namespace=DEFAULT_NAMESPACE)
        # Live: the tolerance sent with each task and the progress period (their limits are the fields');
        # the rest is read at start.
        self.progress_timer = None
        self.live = LiveParameters({
            'tolerance': Live(apply=lambda value: setattr(self, 'tolerance', value)),
            'progress_period_s': Live(apply=self._set_progress_period)})
        # A bad value raises ValueError here: ros.run_node prints it and exits with code 2.
        parameters = declare_parameters(self, OffloadParameters, self.live)
        p = lambda name: getattr(parameters, name)  # noqa: E731
        self.config = parameters.config(self.get_name())
        self.device_id = self.config.device_id
        self.limits = ImageLimits(int(p('max_image_bytes')), int(p('max_pixels')))
        self.tolerance = float(p('tolerance'))
        schedule = parse_schedule(p('link_schedule'))
        self.link = LinkEmulator(float(p('link_bandwidth_mbps')), schedule)
        self.controller = OffloadController(self.config)

        # The actor (numpy): sized by the env the cloud trains on.
        from dcdrl_edge.actor_buffer import DoubleBufferedActor
        from dcdrl_edge.eval_mode import read_weights_file
        obs_dim, action_dim = actor_dims(p('env_id'))
        self.actor = DoubleBufferedActor(p('network_preset'), obs_dim, action_dim, on_rejected=self._on_rejected)
        if p('weights_file'):
            self.actor.load_payload_now(read_weights_file(p('weights_file')))   # missing: one [FATAL] line
            self.get_logger().info(f"loaded actor version {self.actor.version} from {p('weights_file')}")

        self.worker = FaceWorker(model=p('face_model'), upsample=int(p('upsample')), tolerance=self.tolerance,
                                 known_faces_dir=p('known_faces_dir'), queue_size=self.config.worker_queue_size)
        started = time.monotonic()
        self.worker.start(timeout=float(p('worker_start_timeout_s')))
        try:
            self._build(p)
        except BaseException:
            self.worker.stop()
            raise
        self.get_logger().info(
            f'offload controller {self.device_id} started: policy {self.config.policy}'
            + (f' (until the first weights: {self.config.initial_policy})'
               if self.config.policy == 'learned' and self.actor.active is None else '')
            + f", {'training' if self.config.training else 'evaluating'}, deadline {self.config.deadline_s:g} s, "
            f'offload time-out {self.config.offload_timeout_s:g} s, at most {self.config.max_in_flight} in flight, '
            f'worker queue {self.config.worker_queue_size} (ready in {time.monotonic() - started:.1f} s), '
            f'link ' + (f'emulated {p("link_schedule") or p("link_bandwidth_mbps")} Mbit/s' if self.link.active
                        else 'not emulated') + f', actor {self.actor.architecture_id}')

    def _build(self, p: Any) -> None:
        self.record_pub = self.create_publisher(OffloadRecord, 'offload_records', _reliable(int(p('record_depth'))))
        self.experience_pub = self.create_publisher(ExperienceBatch, 'experience',
                                                    _reliable(int(p('experience_depth'))))
        self.episode_pub = self.create_publisher(EpisodeStats, 'episode_stats', ros.qos_profile_sensor_data)
        self.client = self.create_client(RecognizeFaces, 'recognize_faces')
        self._lock = threading.Lock()            # payloads and futures
        self._experience_lock = threading.Lock()
        self._payloads: dict[int, tuple[bytes, str]] = {}
        self._futures: dict[int, tuple[Any, float]] = {}   # task id -> (future, sent at)
        self._experience_sequence = 0
        self.bad_frames = 0
        self.callback_errors = 0
        self._stop = threading.Event()
        self._offload_queue: queue.Queue[Task | None] = queue.Queue()
        self.link.start()
        self.actor.start()
        self._offloader = threading.Thread(target=self._offload_loop, name='offload-sender', daemon=True)
        self._collector = threading.Thread(target=self._collect_loop, name='worker-results', daemon=True)
        self._offloader.start()
        self._collector.start()
        self.create_timer(float(p('timeout_check_period_s')), self._check_timeouts)
        self._set_progress_period(float(p('progress_period_s')))
        self.create_subscription(PolicyWeights, 'policy', self.on_policy, _reliable(1, latched=True))
        self.create_subscription(CompressedImage, 'camera/image/compressed', self.on_frame, _reliable(5))

    # ------------------------------------------------------------------ callbacks (quick)
    def on_frame(self, message: CompressedImage) -> None:
        now = time.monotonic()
        data = compressed_bytes(message)
        try:
            if len(data) > self.limits.max_bytes:
                raise ImageRejected('too_many_bytes', f'{len(data)} bytes, over the limit of {self.limits.max_bytes}')
            _, width, height = compressed_size(data)
            if width * height > self.limits.max_pixels or width < 1 or height < 1:
                raise ImageRejected('too_many_pixels',
                                    f'{width}x{height} is outside 1..{self.limits.max_pixels} pixels')
        except ImageRejected as error:
            self.bad_frames += 1
            self.get_logger().warning(f'frame refused ({error.reason}): {error} [{self.bad_frames} refused]',
                                           throttle_duration_sec=2.0)
            return
        self.actor.swap_if_ready()   # only this callback uses the actor: the double buffer's loop side
        active = self.actor.active
        task = self.controller.begin_task(now, width, height, len(data), self.worker.pending, actor=active,
                                          policy_version=max(self.actor.version, 0))
        if task is None:
            self.get_logger().info('device saturated (worker queue and offloads full): frame skipped',
                                        throttle_duration_sec=5.0)
            return
        if task.task_id == 0:
            self.get_logger().info(f'first task: {width}x{height}, {len(data)} bytes, decided '
                                        f"{'local' if task.decision == LOCAL else 'offload'} by {task.decided_by}")
        if task.decision == LOCAL or task.fell_back:   # fell back: max_in_flight offloads outstanding
            self._run_locally(task.task_id, data, message.format)
        else:
            with self._lock:
                self._payloads[task.task_id] = (data, message.format)
            self._offload_queue.put(task)

    def on_policy(self, message: PolicyWeights) -> None:
        from dcdrl_learning.weights_msg import read_weights
        try:
            payload = read_weights(message)
        except ValueError as error:
            self.actor.record_rejection('malformed', str(error))
            return
        self.actor.offer(payload)

    def _on_rejected(self, reason: str, text: str) -> None:
        self.get_logger().warning(f'weights refused ({reason}): {text}; keeping actor version '
                                       f'{max(self.actor.version, 0)}', throttle_duration_sec=1.0)

    # ------------------------------------------------------------------ local path
    def _run_locally(self, task_id: int, data: bytes, format: str) -> None:
        """Decode and queue in the worker (a task decided local, or one that fell back)."""
        now = time.monotonic()
        try:
            image = decode_compressed(data, 'rgb8', self.limits, format)
        except ImageRejected as error:
            self._publish(self.controller.local_finished(task_id, now, ok=False, error=f'undecodable frame: {error}'))
            return
        self.controller.local_started(task_id, now)
        if not self.worker.submit(task_id, image, self.tolerance):
            self._publish(self.controller.local_refused(task_id, now))

    def _collect_loop(self) -> None:
        while not self._stop.is_set():
            try:
                results = self.worker.poll(timeout=0.2)
                for result in results:
                    outcome = self.controller.local_finished(
                        result.task_id, time.monotonic(), ok=result.ok, faces=len(result.names),
                        compute_time_s=result.compute_time_s, error=result.error)
                    self._publish(outcome)
            except Exception:
                self.callback_errors += 1
                self.get_logger().error(f'collecting local results failed:\n{traceback.format_exc()}',
                                             throttle_duration_sec=5.0)

    # ------------------------------------------------------------------ offload path
    def _offload_loop(self) -> None:
        while not self._stop.is_set():
            try:
                task = self._offload_queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if task is None:
                return
            try:
                self._send(task)
            except Exception:
                self.callback_errors += 1
                self.get_logger().error(f'offloading task {task.task_id} failed:\n{traceback.format_exc()}',
                                             throttle_duration_sec=5.0)
                self._fall_back(task.task_id, 'error')

    def _send(self, task: Task) -> None:
        if not self.controller.is_in_flight(task.task_id):
            return   # timed out while queued: already running locally
        if not self.client.service_is_ready():
            self._fall_back(task.task_id, 'no_server')
            return
        with self._lock:
            payload = self._payloads.get(task.task_id)
        if payload is None:
            return
        # The emulated radio: FIFO, bytes * 8 / bandwidth. The round trip counts from the start of
        # this task's own transmission, so the bandwidth estimate sees the upload time.
        now = time.monotonic()
        start, end = self.link.reserve(task.image_bytes, now)
        if end > now and self._stop.wait(end - now):
            return
        if not self.controller.offload_sent(task.task_id, start):
            return   # timed out during the transmission: already running locally
        request = RecognizeFaces.Request()
        fill_compressed_bytes(request.image, payload[0], payload[1] or 'jpeg')
        request.tolerance = self.tolerance
        future = self.client.call_async(request)
        with self._lock:
            self._futures[task.task_id] = (future, time.monotonic())
        future.add_done_callback(lambda f, task_id=task.task_id: self._on_reply(task_id, f))

    def _on_reply(self, task_id: int, future: Any) -> None:
        now = time.monotonic()
        with self._lock:
            self._futures.pop(task_id, None)
        if future.cancelled():
            return
        try:
            reply = future.result()
        except Exception as error:
            self.get_logger().warning(f'offload of task {task_id} failed: {error!r}', throttle_duration_sec=2.0)
            self._fall_back(task_id, 'error')
            return
        reason = str(reply.error)[:200]  # the server's text, bounded before it is logged or kept
        ok = bool(reply.ok) and len(reply.names) <= MAX_REPLY_FACES and len(reply.boxes) == 4 * len(reply.names)
        if reply.ok and not ok:
            reason = f'malformed reply: {len(reply.names)} names, {len(reply.boxes)} box values'
        outcome, fall_back = self.controller.offload_answered(
            task_id, now, ok, faces=len(reply.names), server_compute_s=float(reply.compute_time_s), error=reason)
        if fall_back:
            self.get_logger().warning(f'server refused task {task_id}: {reason}; running it locally',
                                           throttle_duration_sec=2.0)
            self._run_payload_locally(task_id)
        elif outcome is not None:
            self._publish(outcome)

    def _fall_back(self, task_id: int, reason: str) -> None:
        if self.controller.offload_failed(task_id, time.monotonic(), reason):
            self.get_logger().warning(f'offload failed ({reason}): running task {task_id} locally '
                                           f"[{self.controller.report()['fell_back']} fell back]",
                                           throttle_duration_sec=5.0)
            self._run_payload_locally(task_id)

    def _run_payload_locally(self, task_id: int) -> None:
        with self._lock:
            payload = self._payloads.get(task_id)
        if payload is not None:
            self._run_locally(task_id, *payload)

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for task_id in self.controller.expired(now):
            self._fall_back(task_id, 'timeout')   # a late reply is still taken: counted, frees its slot
        # Requests unanswered for twice the time-out are given up for good (the server is gone).
        limit = 2.0 * self.config.offload_timeout_s
        with self._lock:
            stale = [task_id for task_id, (_, sent) in self._futures.items() if now - sent > limit]
            futures = [self._futures.pop(task_id)[0] for task_id in stale]
        for future in futures:
            self.client.remove_pending_request(future)

    # ------------------------------------------------------------------ outputs (any thread)
    def _publish(self, outcome: Outcome | None) -> None:
        if outcome is None:
            return
        with self._lock:
            self._payloads.pop(outcome.task_id, None)
        record = OffloadRecord(device_id=self.device_id, task_id=outcome.task_id,
                               policy_version=outcome.policy_version, decision=int(outcome.decision),
                               fell_back=bool(outcome.fell_back), image_bytes=int(outcome.image_bytes),
                               faces_found=int(outcome.faces_found), latency_s=float(outcome.latency_s),
                               compute_time_s=float(outcome.compute_time_s),
                               transfer_time_s=float(outcome.transfer_time_s), energy_j=float(outcome.energy_j),
                               deadline_s=float(outcome.deadline_s), deadline_missed=bool(outcome.deadline_missed),
                               reward=float(outcome.reward))
        set_array(record, 'observation', outcome.observation, np.float32)
        record.header.stamp = self.get_clock().now().to_msg()
        record.header.frame_id = outcome.mode
        self.record_pub.publish(record)
        self._publish_experience(flush=False)
        for episode in self.controller.take_episodes():
            stats = EpisodeStats(client_id=self.device_id, episode=episode.episode,
                                 policy_version=episode.policy_version, length=episode.length,
                                 episode_return=episode.episode_return, cost=episode.cost,
                                 latency_mean_s=episode.latency_mean_s, energy_mean_j=episode.energy_mean_j,
                                 deadline_miss_ratio=episode.deadline_miss_ratio,
                                 offload_fraction=episode.offload_fraction)
            stats.header.stamp = self.get_clock().now().to_msg()
            self.episode_pub.publish(stats)

    def _publish_experience(self, flush: bool) -> None:
        with self._experience_lock:   # batches leave in sequence order, whichever thread finished a task
            for chunk in self.controller.take_experience(flush):
                self._send_chunk(chunk)

    def _send_chunk(self, chunk: Any) -> None:
        sequence = self._experience_sequence
        self._experience_sequence += 1
        message = fill_experience(
            ExperienceBatch(), client_id=self.device_id, sequence=sequence, policy_version=chunk.policy_version,
            obs=chunk.obs, actions=chunk.actions, rewards=chunk.rewards, next_obs=chunk.next_obs,
            terminated=chunk.terminated, truncated=chunk.truncated, extra_names=chunk.extra_names,
            extras=chunk.extras)
        message.header.stamp = self.get_clock().now().to_msg()
        self.experience_pub.publish(message)

    def _set_progress_period(self, period_s: float) -> None:
        self.progress_timer = periodic(self, self.progress_timer, period_s, self._log_progress)

    def _log_progress(self) -> None:
        r = self.controller.report()
        latency = r['latency']
        parts = [f"{mode} {latency[mode]['count']} (p50 {latency[mode]['p50_s']:.3f} s)"
                 for mode in ('local', 'offloaded', 'fell_back') if latency[mode]['count']]
        self.get_logger().info(
            f"{r['tasks']} tasks: {', '.join(parts) or 'none finished'}; dropped {r['dropped']}, skipped frames "
            f"{r['refused_frames']}, deadline misses {r['deadline_misses']}; "
            f"policy version {max(self.actor.version, 0)}, "
            f"{r['experience']['transitions']} transitions sent")

    def report(self) -> dict[str, Any]:
        report = self.controller.report()
        report.update(worker=self.worker.stats(), bad_frames=self.bad_frames, callback_errors=self.callback_errors,
                      actor_version=max(self.actor.version, 0), weights_rejected=dict(self.actor.rejected),
                      link={'active': self.link.active, 'transmissions': self.link.transmissions,
                            'delayed_s': round(self.link.delayed_s, 4)},
                      experience_batches_published=self._experience_sequence,
                      malformed_samples=ros.malformed_samples(self))
        return report

    def destroy_node(self) -> None:
        self._stop.set()
        self._offload_queue.put(None)
        self._offloader.join(timeout=5.0)
        self._collector.join(timeout=5.0)
        with self._lock:
            futures, self._futures = [entry[0] for entry in self._futures.values()], {}
        for future in futures:
            self.client.remove_pending_request(future)
        self.worker.stop()
        self.actor.stop()
        try:
            self._publish_experience(flush=True)   # the last, partial batch
        except Exception:  # shutting down: the report matters more
            self.callback_errors += 1
        print('OFFLOAD REPORT ' + json.dumps(self.report(), default=float), flush=True)
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    return ros.run_node(OffloadControllerNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
