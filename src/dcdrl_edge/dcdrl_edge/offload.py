"""The device's offloading logic (no ROS): observe, decide, account, assemble experience.

One camera frame = one task. For each task the controller (``dcdrl_edge.offload_node``) calls
``OffloadController.begin_task``, which

1. skips the frame when the device is saturated (worker queue full *and* ``max_in_flight``
   offloads outstanding): counted as ``refused_frames``, no decision, no experience;
2. builds the observation of ``dcdrl_sim.face.model.FaceOffloadModel`` (8 features, same scales)
   from measured state (``TaskObserver``);
3. decides with the configured policy (``DecisionMaker``): the learned actor (``a > 0`` =
   offload, Gaussian exploration noise when training), or a baseline: 'local', 'offload',
   'random', 'greedy' (the env's ``estimate_costs`` rule on the observation). An offload
   decided while ``max_in_flight`` offloads are outstanding runs locally at once (fell back,
   'in_flight_full'): the returned task says so (``task.fell_back``);

and then reports what happened: ``local_refused`` / ``offload_refused`` (queue full: the task is
dropped, a miss with latency = deadline, as in the env), ``offload_sent``, ``offload_answered``,
``offload_failed`` (server gone, time-out, refusal: the node then runs the task locally,
``fell_back``), ``expired`` (offloads past ``offload_timeout_s``), ``local_finished``. Each
finished task gives an ``Outcome`` (the ``OffloadRecord`` fields; reward = -cost with the env's
cost), a transition (obs_k, a_k, r_k, obs_k+1) once task k+1 has been decided, and every
``episode_tasks`` finished tasks an ``OffloadEpisodeSummary``.

Cost (the env's): ``latency_weight * latency + energy_weight * energy + miss_penalty * missed``;
energy = ``device_cpu_power_w * recognition CPU time on the device + radio_power_w * transfer
time`` (transfer time = offload round trip minus the server's compute time).

The configuration is ``dcdrl_edge.offload_config``, observation and decision
``dcdrl_edge.offload_decision``, tasks, outcomes and experience ``dcdrl_edge.offload_records``; the
node's link emulation ``dcdrl_edge.link_emulator``.

All methods of ``OffloadController`` may be called from any thread (one lock, held briefly).
"""
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from dcdrl_sim.face.model import OFFLOAD

from .offload_config import OffloadConfig
from .offload_decision import DecisionMaker, TaskObserver
from .offload_records import ExperienceChunk, LatencyStats, OffloadEpisodeSummary, Outcome, Task, TransitionAssembler

FALLBACK_REASONS = ('no_server', 'timeout', 'refused', 'error', 'in_flight_full')
MODES = ('local', 'offloaded', 'fell_back')            # where a finished task ran



# ------------------------------------------------------------------------------ the controller
class OffloadController:
    """Observation, decision, accounting and experience for a stream of tasks (thread-safe)."""

    def __init__(self, config: OffloadConfig) -> None:
        self.config = config
        self.model = config.model_env()
        self.observer = TaskObserver(config, self.model)
        self.decider = DecisionMaker(config, self.model)
        self.assembler = TransitionAssembler(config.experience_batch_size, config.episode_tasks)
        self._lock = threading.Lock()
        self._tasks: dict[int, Task] = {}
        self._in_flight: dict[int, Task] = {}     # offloads decided and not finished (or fallen back)
        self._abandoned: dict[int, float] = {}    # sent, timed out, no reply yet: task id -> when given up
        self._next_task = 0
        self._decided = 0
        self._episode: list[Outcome] = []
        self._episodes: list[OffloadEpisodeSummary] = []
        self.episodes = 0
        self.latency = {mode: LatencyStats(config.stats_window) for mode in MODES}
        self.counts: Counter = Counter()
        self.fell_back_by_reason: Counter = Counter()
        self.dropped_by_reason: Counter = Counter()
        self.decided_by: Counter = Counter()
        self.energy_total_j = 0.0
        self.cost_total = 0.0
        self.experience_transitions = 0
        self.experience_batches = 0
        self.policy_version = 0

    # ---- deciding
    def begin_task(self, now: float, width: int, height: int, image_bytes: int, local_pending: int,
                   actor: Callable[[np.ndarray], np.ndarray] | None = None, policy_version: int = 0
                   ) -> Task | None:
        """Observe and decide one frame; None when the device is saturated (the frame is skipped)."""
        if width <= 0 or height <= 0 or image_bytes < 0:
            raise ValueError(f'frame size must be > 0 and bytes >= 0, got {width}x{height}, {image_bytes} bytes')
        c = self.config
        with self._lock:
            occupied = self._occupied(now)
            if local_pending >= c.worker_queue_size and occupied >= c.max_in_flight:
                self.counts['refused_frames'] += 1
                return None
            megapixels = width * height / 1e6
            obs = self.observer.observe(now, megapixels)
            usable = actor if policy_version >= c.min_policy_version else None
            decision, action, decided_by = self.decider.decide(obs, usable)
            version = int(policy_version) if decided_by == 'learned' else 0
            task = Task(task_id=self._next_task, index=self._decided, decided_at=now, observation=obs,
                        decision=decision, action=action, decided_by=decided_by, policy_version=version,
                        megapixels=megapixels, image_bytes=int(image_bytes), deadline_s=c.deadline_s)
            self._next_task += 1
            self._decided += 1
            self._tasks[task.task_id] = task
            self.counts['tasks'] += 1
            self.counts['decided_offload' if decision == OFFLOAD else 'decided_local'] += 1
            self.decided_by[decided_by] += 1
            self.policy_version = max(self.policy_version, version)
            if c.publish_experience:
                self.assembler.decided(task.index, obs, action, version)
            if decision == OFFLOAD:
                if occupied >= c.max_in_flight:   # link or server booked up: run it here
                    self._fall_back(task, 'in_flight_full')
                else:
                    self._in_flight[task.task_id] = task
                    self.observer.offload_queued(task.task_id, now, megapixels, task.image_bytes)
            return task

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._in_flight)

    def _occupied(self, now: float) -> int:
        """Offloads in flight plus timed-out requests that may still hold the server (forgotten
        offload_timeout_s after they were given up: the server is then presumed gone or done)."""
        limit = self.config.offload_timeout_s
        for task_id in [t for t, at in self._abandoned.items() if now - at > limit]:
            del self._abandoned[task_id]
        return len(self._in_flight) + len(self._abandoned)

    # ---- local path
    def local_started(self, task_id: int, now: float) -> None:
        """The task (decided local, or fallen back) goes to the local worker: call it *before* submitting,
        so that a result can never arrive before it."""
        with self._lock:
            task = self._tasks.get(task_id)
            if task is not None:
                self.observer.local_queued(task_id, now, task.megapixels)

    def local_refused(self, task_id: int, now: float) -> Outcome:
        """The worker queue was full: the task is dropped (a miss with latency = deadline)."""
        with self._lock:
            task = self._tasks[task_id]
            self.observer.local_dropped(task_id, now)
            reason = 'worker_queue_full'
            self.counts['worker_queue_full'] += 1
            return self._finish(task, now, 'dropped', ok=False, faces=0, compute=0.0, dropped=True, detail=reason)

    def local_finished(self, task_id: int, now: float, ok: bool, faces: int = 0, compute_time_s: float = 0.0,
                       error: str = '') -> Outcome | None:
        with self._lock:
            task = self._tasks.get(task_id)
            if task is None:
                return None
            self.observer.local_done(task_id, now, task.megapixels, faces, compute_time_s, ok)
            if not ok:
                self.counts['local_failed'] += 1
            mode = 'fell_back' if task.fell_back else 'local'
            return self._finish(task, now, mode, ok=ok, faces=faces, compute=compute_time_s,
                                detail=error or task.fallback_reason)

    # ---- offload path
    def offload_sent(self, task_id: int, now: float) -> bool:
        """The request's transmission starts at ``now`` (the round trip counts from here, so the
        bandwidth estimate sees the upload); False when the task is no longer in flight."""
        with self._lock:
            task = self._in_flight.get(task_id)
            if task is None:
                return False
            task.sent_at = now
            task.sent_clean = not self._abandoned and not any(
                t.sent_at is not None and t is not task for t in self._in_flight.values())
            return True

    def offload_answered(self, task_id: int, now: float, ok: bool, faces: int = 0, server_compute_s: float = 0.0,
                         error: str = '') -> tuple[Outcome | None, bool]:
        """A reply arrived. (outcome, False) when ok; (None, True) when refused: run it locally now;
        (None, False) for a reply that comes too late (the task timed out, counted)."""
        with self._lock:
            task = self._in_flight.pop(task_id, None)
            if task is None:
                self._abandoned.pop(task_id, None)   # the server is done with it after all
                self.counts['late_replies'] += 1
                return None, False
            sent = task.sent_at if task.sent_at is not None else task.decided_at
            round_trip = max(now - sent, 0.0)
            task.transfer_time_s = max(round_trip - server_compute_s, 0.0) if ok else round_trip
            self.observer.offload_done(task_id, now, task.megapixels, ok=ok, faces=faces,
                                       server_compute_s=server_compute_s, round_trip_s=round_trip,
                                       image_bytes=task.image_bytes, clean=task.sent_clean)
            if not ok:
                self._fall_back(task, 'refused')
                return None, True
            self.counts['offload_answered'] += 1
            return self._finish(task, now, 'offloaded', ok=True, faces=faces, compute=0.0,
                                server_compute=server_compute_s), False

    def offload_failed(self, task_id: int, now: float, reason: str) -> bool:
        """The offload cannot complete (no server, time-out, error). True: run it locally now."""
        if reason not in FALLBACK_REASONS:
            raise ValueError(f'reason must be one of {FALLBACK_REASONS}, got {reason!r}')
        with self._lock:
            task = self._in_flight.pop(task_id, None)
            if task is None:
                return False
            if task.sent_at is not None:   # the radio was on for the upload (as far as we know)
                task.transfer_time_s = self.observer.upload_time(task.image_bytes)
                if reason == 'timeout':
                    self._abandoned[task_id] = now
            self.observer.offload_done(task_id, now, task.megapixels, ok=False)
            self._fall_back(task, reason)
            return True

    def _fall_back(self, task: Task, reason: str) -> None:
        task.fell_back = True
        task.fallback_reason = reason
        self.counts['fell_back'] += 1
        self.fell_back_by_reason[reason] += 1

    def expired(self, now: float) -> list[int]:
        """Offloads in flight for longer than offload_timeout_s (the caller fails them: 'timeout')."""
        limit = self.config.offload_timeout_s
        with self._lock:
            return [t.task_id for t in self._in_flight.values() if now - t.decided_at > limit]

    def is_in_flight(self, task_id: int) -> bool:
        with self._lock:
            return task_id in self._in_flight

    # ---- finishing
    def _finish(self, task: Task, now: float, mode: str, *, ok: bool, faces: int, compute: float,
                server_compute: float = 0.0, dropped: bool = False, detail: str = '') -> Outcome:
        c = self.config
        del self._tasks[task.task_id]
        self._in_flight.pop(task.task_id, None)
        if dropped:
            latency, energy = task.deadline_s, 0.0
            self.counts['dropped'] += 1
            self.dropped_by_reason[detail] += 1
        else:
            latency = max(now - task.decided_at, 0.0)
            energy = c.device_cpu_power_w * compute + c.radio_power_w * task.transfer_time_s
        missed = dropped or not ok or latency > task.deadline_s
        cost = c.latency_weight * latency + c.energy_weight * energy + c.miss_penalty * float(missed)
        outcome = Outcome(task_id=task.task_id, policy_version=task.policy_version, observation=task.observation,
                          decision=task.decision, fell_back=task.fell_back, mode=mode,
                          image_bytes=task.image_bytes, faces_found=int(faces), latency_s=latency,
                          compute_time_s=compute if mode != 'offloaded' else server_compute,
                          transfer_time_s=task.transfer_time_s, energy_j=energy, deadline_s=task.deadline_s,
                          deadline_missed=missed, cost=cost, reward=-cost, ok=ok, detail=detail)
        self.counts['finished'] += 1
        self.counts['deadline_misses'] += int(missed)
        if mode in self.latency:
            self.latency[mode].add(latency)
        self.energy_total_j += energy
        self.cost_total += cost
        if c.publish_experience:
            extras = (cost, latency, energy, float(missed), float(task.decision), float(task.fell_back))
            self.assembler.finished(task.index, -cost, extras)
        self._episode.append(outcome)
        if len(self._episode) >= c.episode_tasks:
            self._close_episode()
        return outcome

    def _close_episode(self) -> None:
        outcomes, self._episode = self._episode, []
        self.episodes += 1
        n = len(outcomes)
        self._episodes.append(OffloadEpisodeSummary(
            episode=self.episodes, length=n, policy_version=max(o.policy_version for o in outcomes),
            episode_return=float(sum(o.reward for o in outcomes)), cost=float(sum(o.cost for o in outcomes)),
            latency_mean_s=float(np.mean([o.latency_s for o in outcomes])),
            energy_mean_j=float(np.mean([o.energy_j for o in outcomes])),
            deadline_miss_ratio=float(np.mean([o.deadline_missed for o in outcomes])),
            offload_fraction=float(np.mean([o.decision == OFFLOAD for o in outcomes]))))

    # ---- outputs
    def take_experience(self, flush: bool = False) -> list[ExperienceChunk]:
        with self._lock:
            chunks = self.assembler.take(flush)
            self.experience_batches += len(chunks)
            self.experience_transitions += sum(len(c) for c in chunks)
            return chunks

    def take_episodes(self) -> list[OffloadEpisodeSummary]:
        with self._lock:
            episodes, self._episodes = self._episodes, []
            return episodes

    def report(self) -> dict[str, Any]:
        """Counts and latency per mode (mean / p50 / p95 over the last stats_window tasks of each)."""
        with self._lock:
            finished = self.counts['finished']
            return {
                'device_id': self.config.device_id, 'policy': self.config.policy,
                'tasks': self.counts['tasks'], 'finished': finished,
                'decided': {'local': self.counts['decided_local'], 'offload': self.counts['decided_offload']},
                'decided_by': dict(sorted(self.decided_by.items())),
                'ran': {mode: self.latency[mode].count for mode in MODES},
                'offload_answered': self.counts['offload_answered'],
                'fell_back': self.counts['fell_back'],
                'fell_back_by_reason': dict(sorted(self.fell_back_by_reason.items())),
                'dropped': self.counts['dropped'], 'dropped_by_reason': dict(sorted(self.dropped_by_reason.items())),
                'refused_frames': self.counts['refused_frames'], 'worker_queue_full': self.counts['worker_queue_full'],
                'local_failed': self.counts['local_failed'], 'late_replies': self.counts['late_replies'],
                'deadline_misses': self.counts['deadline_misses'],
                'in_flight': len(self._in_flight), 'abandoned': len(self._abandoned), 'unfinished': len(self._tasks),
                'latency': {mode: self.latency[mode].summary() for mode in MODES},
                'energy_mean_j': round(self.energy_total_j / finished, 6) if finished else None,
                'cost_mean': round(self.cost_total / finished, 6) if finished else None,
                'episodes': self.episodes, 'policy_version': self.policy_version,
                'experience': {'transitions': self.experience_transitions, 'batches': self.experience_batches},
                'estimates': {'bandwidth_mbps': round(self.observer.bandwidth_mbps, 4),
                              'bandwidth_samples': self.observer.bandwidth_samples,
                              'server_slowdown': round(self.observer.server_slowdown, 4),
                              'local_slowdown': round(self.observer.local_slowdown, 4)},
            }
