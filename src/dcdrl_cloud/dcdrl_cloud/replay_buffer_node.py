"""`ros2 run dcdrl_cloud replay_buffer`: the experience replay of the DC-DRL graph.

Receives experience from every client, keeps it in a bounded (uniform or prioritised) replay,
serves sampled batches to learners by credits (prefetching: a learner keeps several batches
requested, so it never waits on a round trip), applies priority updates, publishes statistics,
snapshots to ``output_dir/replay.npz`` and restores from it on start.  Thin adapter over
dcdrl_cloud.replay_service (the logic, no ROS); docs/replay-node.md has the protocol.

Topics (relative; in /dcdrl unless started with -r __ns:=/other):
  in   experience            dcdrl_msgs/ExperienceBatch   reliable, keep-last experience_depth
  in   replay/sample_requests dcdrl_msgs/SampleRequest     reliable, keep-last 100
  in   replay/priorities     dcdrl_msgs/PriorityUpdate    reliable, keep-last 100
  in   policy                dcdrl_msgs/PolicyWeights     reliable, transient-local, depth 1 (version only)
  out  replay/batches        dcdrl_msgs/SampledBatch      reliable, keep-last 64
  out  replay/stats          dcdrl_msgs/ReplayStats       best effort, keep-last 5

Parameters: the fields of dcdrl_cloud.replay_parameters.ReplayBufferParameters (their table is in
docs/replay-node.md; `replay_buffer --help` lists them).

On shutdown it drains the queued experience, writes a final snapshot and prints one line
'REPORT {json}' with the totals (keys: elapsed_s, batches, transitions, transitions_per_s,
megabytes_per_s, rejected, replay_size, clients, ... see docs/replay-node.md).
"""
from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dcdrl_cloud.replay_messages import fill_sampled_batch, read_priority_update
from dcdrl_cloud.replay_parameters import ReplayBufferParameters
from dcdrl_cloud.replay_service import PriorityRejected, ReplayService, RequestRejected
from dcdrl_cloud.replay_snapshot import JOURNAL_NAME, SNAPSHOT_NAME, SnapshotRefused
from dcdrl_cloud.seed_bags import EXPERIENCE_TYPE, experience_intake, seed_from_bags
from dcdrl_core.names import DEFAULT_NAMESPACE
from dcdrl_learning.experience import ExperienceRejected
from dcdrl_ros import ros
from dcdrl_ros.live_parameters import Live, LiveParameters, periodic, set_timer_period
from dcdrl_ros.parameter_dataclass import declare_parameters

from dcdrl_msgs.msg import ExperienceBatch, PolicyWeights, PriorityUpdate, ReplayStats, SampledBatch, SampleRequest

_SNAPSHOT = object()  # inbox token: write a snapshot (in the intake thread, between two batches)
_STOP = object()      # inbox token: the intake thread ends after what was queued before it
_SERVE_WAIT_S = 0.25  # the serving thread's longest wait before it re-checks for shutdown


class ReplayBufferNode(ros.Node):
    def __init__(self) -> None:
        super().__init__('replay_buffer', namespace=DEFAULT_NAMESPACE)
        # Live: the two periods (their limits are the fields'); the rest is read at start.
        self.live = LiveParameters({
            'report_period_s': Live(apply=lambda period: set_timer_period(self.report_timer, period)),
            'snapshot_period_s': Live(apply=self._set_snapshot_period)})
        # A bad value raises ValueError here: ros.run_node prints it and exits with code 2.
        self.parameters = declare_parameters(self, ReplayBufferParameters, self.live)
        config = self.parameters.service_config()
        self.service = ReplayService(config)
        self.snapshot_path = Path(self.parameters.output_dir) / SNAPSHOT_NAME
        self.restored = 0
        self.dropped_overload = 0
        self.snapshot_errors = 0
        if self.parameters.restore:
            self._restore()
        if self.parameters.journal:
            replayed = self.service.attach_journal(self.snapshot_path.with_name(JOURNAL_NAME))
            if replayed.batches or replayed.torn:
                self.restored += replayed.transitions
                self.get_logger().info(
                    f'stored {replayed.transitions} transitions ({len(replayed.batches)} batches) from the journal '
                    f'{replayed.path}' + (f'; {replayed.torn} torn record skipped' if replayed.torn else ''))
        self.seeded = 0
        if self.parameters.seed_bags:
            self._seed(self.parameters.seed_bags)

        reliable = lambda depth: ros.QoSProfile(depth=depth, reliability=ros.ReliabilityPolicy.RELIABLE)  # noqa: E731
        latched = ros.QoSProfile(depth=1, reliability=ros.ReliabilityPolicy.RELIABLE,
                                 durability=ros.DurabilityPolicy.TRANSIENT_LOCAL)
        self.batch_pub = self.create_publisher(SampledBatch, 'replay/batches', reliable(64))
        self.stats_pub = self.create_publisher(ReplayStats, 'replay/stats', ros.qos_profile_sensor_data)

        # Intake and snapshots run in one thread (a snapshot pauses only ingestion), serving in another:
        # callbacks stay short and a snapshot being written never delays requests or batches.
        self._inbox: queue.Queue[Any] = queue.Queue(maxsize=self.parameters.inbox_size)
        self._stopping = threading.Event()
        self._intake_thread = threading.Thread(target=self._intake_loop, name='replay-intake', daemon=True)
        self._serve_thread = threading.Thread(target=self._serve_loop, name='replay-serve', daemon=True)
        self._intake_thread.start()
        self._serve_thread.start()
        self._finished = False

        self.create_subscription(ExperienceBatch, 'experience', self.on_experience,
                                 reliable(self.parameters.experience_depth))
        self.create_subscription(SampleRequest, 'replay/sample_requests', self.on_request, reliable(100))
        self.create_subscription(PriorityUpdate, 'replay/priorities', self.on_priorities, reliable(100))
        self.create_subscription(PolicyWeights, 'policy', self.on_policy, latched)
        self.report_timer = self.create_timer(self.parameters.report_period_s, self.report)
        self.snapshot_timer = None
        self._set_snapshot_period(self.parameters.snapshot_period_s)
        self.get_logger().info(
            f'replay_buffer started: capacity {config.capacity}, '
            f'{"prioritised" if config.prioritized else "uniform"}, gamma {config.gamma}, '
            f'min_size_to_sample {config.min_size_to_sample}, samples_per_insert '
            f'{config.samples_per_insert or "off"}, size {len(self.service)}, snapshot {self.snapshot_path}')

    # ---- start ----

    def _restore(self) -> None:
        try:
            result = self.service.restore(self.snapshot_path)
        except SnapshotRefused as error:
            aside = self.snapshot_path.with_name(self.snapshot_path.name + '.refused')
            try:
                os.replace(self.snapshot_path, aside)  # keep it: the next snapshot would overwrite it
                kept = f'moved to {aside}'
            except OSError as move_error:
                kept = f'could not move it aside ({move_error}): the next snapshot replaces it'
            self.get_logger().warning(f'snapshot not restored: {error}; {kept}; starting empty')
            return
        if result.restored:
            self.restored = result.size
            note = ' (migrated: buffer settings or gamma changed)' if result.migrated else ''
            self.get_logger().info(f'restored {result.size} transitions from {self.snapshot_path}{note}')
        else:
            self.get_logger().info(f'starting empty: {result.reason}')

    def _seed(self, paths: Sequence[str]) -> None:
        """Recorded experience first (before the subscriptions exist), through the live intake."""
        if self.restored:   # the snapshot or journal already holds what an earlier start seeded
            self.get_logger().info(f'seed_bags not read: {self.restored} transitions restored from '
                                   f'{self.snapshot_path.parent} (they include any earlier seeding)')
            return
        summary = seed_from_bags(paths, EXPERIENCE_TYPE, experience_intake(self.service))
        for problem in summary.problems:
            self.get_logger().error(problem)
        self.seeded = summary.transitions
        self.get_logger().info(summary.line())

    # ---- callbacks (spinning thread: short) ----

    def on_experience(self, message: ExperienceBatch) -> None:
        try:
            self._inbox.put_nowait(message)
        except queue.Full:
            self.dropped_overload += 1
            self.get_logger().warning(f'intake queue full ({self._inbox.maxsize} batches): dropped a batch from '
                                      f'{message.client_id} ({self.dropped_overload} so far)',
                                      throttle_duration_sec=1.0)

    def on_request(self, message: SampleRequest) -> None:
        try:
            self.service.request(message.requester, int(message.batches), int(message.batch_size))
        except RequestRejected as error:
            self.get_logger().warning(f'refused sample request: {error}', throttle_duration_sec=1.0)

    def on_priorities(self, message: PriorityUpdate) -> None:
        try:
            self.service.update_priorities(*read_priority_update(message))
        except PriorityRejected as error:
            self.get_logger().warning(f'refused priority update: {error}', throttle_duration_sec=1.0)

    def on_policy(self, message: PolicyWeights) -> None:
        self.service.observe_policy(message.version)

    def _set_snapshot_period(self, period_s: float) -> None:
        """0: snapshots only at exit (the timer stops); > 0: every period_s from now."""
        self.snapshot_timer = periodic(self, self.snapshot_timer, period_s, self.request_snapshot)

    def request_snapshot(self) -> None:
        if self.service.dirty:
            try:
                self._inbox.put_nowait(_SNAPSHOT)
            except queue.Full:
                self.get_logger().warning('intake queue full: snapshot postponed to the next period')

    def report(self) -> None:
        stats = self.service.stats()
        message = ReplayStats(**stats)
        message.header.stamp = self.get_clock().now().to_msg()
        self.stats_pub.publish(message)
        self.get_logger().info(
            f"replay {stats['size']}/{stats['capacity']}, received {stats['transitions_received']} "
            f"({stats['transitions_per_sec']:.0f}/s), served {stats['batches_served']} batches, "
            f"rejected {stats['rejected_batches']}, lost {stats['lost_batches']}, "
            f"policy v{self.service.latest_policy_version}, version lag min/mean/max "
            f"{stats['version_lag_min']:.0f}/{stats['version_lag_mean']:.1f}/{stats['version_lag_max']:.0f}")

    # ---- threads ----

    def _intake_loop(self) -> None:
        while True:
            item = self._inbox.get()
            if item is _STOP:
                return
            if item is _SNAPSHOT:
                self._snapshot('periodic')
                continue
            try:
                self.service.ingest(item)
            except ExperienceRejected as error:
                self.get_logger().warning(f'rejected experience: {error}', throttle_duration_sec=1.0)
            except Exception as error:  # a bug must not silently stop the intake
                self.get_logger().error(f'intake failed: {error!r}', throttle_duration_sec=1.0)

    def _serve_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                served = self.service.next_batch(_SERVE_WAIT_S)
                if served is None:
                    continue
                message = fill_sampled_batch(SampledBatch(), served)
                message.header.stamp = self.get_clock().now().to_msg()
                self.batch_pub.publish(message)
            except Exception as error:  # keep serving; the log says what went wrong
                if self._stopping.is_set():
                    return
                self.get_logger().error(f'serving failed: {error!r}', throttle_duration_sec=1.0)

    def _snapshot(self, why: str) -> None:
        started = time.monotonic()
        try:
            written = self.service.save(self.snapshot_path)
        except Exception as error:  # disk full, permissions: log, count, keep running
            self.snapshot_errors += 1
            self.get_logger().error(f'{why} snapshot to {self.snapshot_path} failed: {error!r}')
            return
        if written:
            self.get_logger().info(f'{why} snapshot: {len(self.service)} transitions -> {self.snapshot_path} '
                                   f'in {time.monotonic() - started:.2f} s')

    # ---- stop ----

    def destroy_node(self) -> None:
        if not self._finished:
            self._finished = True
            self._stopping.set()
            self.service.close()
            self._serve_thread.join(timeout=10.0)
            self._inbox.put(_STOP)  # after everything already queued: nothing received is lost
            self._intake_thread.join(timeout=60.0)
            if self.service.dirty:
                self._snapshot('final')
            summary = self.service.summary()
            summary.update({'restored': self.restored, 'seeded': self.seeded, 'dropped_overload': self.dropped_overload,
                            'snapshot_errors': self.snapshot_errors, 'snapshot': str(self.snapshot_path),
                            'malformed_samples': ros.malformed_samples(self)})
            print('REPORT ' + json.dumps(summary), flush=True)
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    return ros.run_node(ReplayBufferNode, args)
