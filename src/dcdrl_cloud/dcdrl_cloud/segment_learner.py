"""The cloud learner's "segments" mode (cloud-edge workflow), no ROS import.

Edge controllers stream one TrajectorySegment per control step; this learner turns them into
transitions (dcdrl_cloud.segments), stores them in its own replay buffer, trains DDPG/TD3 in its
own thread at a fixed ratio of gradient steps per stored transition, publishes actor weights,
asks the edges for noise-free evaluation episodes, keeps the best weights and stops at
convergence. Read top to bottom:

1. ``SegmentLearnerOutputs``: what the learner sends out (the node publishes; tests record).
2. ``SegmentLearner``, on the shared life cycle (dcdrl_cloud.trainer.Trainer); its parameters are
   ``SegmentLearnerConfig`` (dcdrl_cloud.segment_config):
   - inputs, safe from any thread (the node's DDS callbacks): ``receive(seg)`` /
     ``receive_message(msg)`` pair and store under a short lock and never train;
     ``reject(reason)`` counts refused messages; ``weights_for_request(min_version)`` answers
     the GetPolicy service from the latest published payload.
   - the training thread: ``start()`` publishes the initial actor at once; ``step()`` does the
     gradient steps the ratio allows, then the periodic work (finished episodes, EVALUATE /
     HOLD commands, weights, stats, checkpoints); ``run(stop)`` loops ``step`` and ends with
     ``finish()`` at convergence (stop_when_converged) or after duration_s; ``close()`` always.

The Agent is not thread-safe: only the training thread touches it.
"""
from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dcdrl_cloud.best_policy import BestPolicy
from dcdrl_cloud.segment_config import SegmentLearnerConfig
from dcdrl_cloud.segments import (
    SegmentEpisodeSummary,
    SegmentPairer,
    SegmentRejected,
    SegmentView,
    SwingUpReward,
    Transition,
    read_segment,
)
from dcdrl_cloud.trainer import Trainer
from dcdrl_core.files import atomic_write
from dcdrl_core.protocol import EdgeCommandKind
from dcdrl_learning.checkpoint import load_checkpoint
from dcdrl_learning.codec import WeightsPayload, payload_to_bytes
from dcdrl_learning.replay import ReplayBuffer
from dcdrl_ros.parameter_dataclass import live_names
from dcdrl_sim.cartpole.evaluation import ConvergenceTracker

REPLAY_NAME = 'replay.npz'
ACTOR_NAME = 'actor.safetensors'
BEST_ACTOR_NAME = 'best_actor.safetensors'
# Gradient steps per step() call at most, so that publishing, stats and stop stay responsive
# while the trainer catches up on a backlog.
MAX_UPDATES_PER_STEP = 32


# ---------------------------------------------------------------------------------- outputs
class SegmentLearnerOutputs(Protocol):
    """What the learner sends out; the node publishes, tests record."""

    def publish_weights(self, payload: WeightsPayload) -> None: ...
    def publish_stats(self, stats: dict[str, float]) -> None: ...       # TrainingStats field names
    def publish_episode(self, summary: SegmentEpisodeSummary) -> None: ...
    def send_command(self, kind: EdgeCommandKind) -> None: ...           # to every device
    def log(self, level: str, text: str) -> None: ...                    # 'info', 'warning', 'error'


# ---------------------------------------------------------------------------------- the learner
class SegmentLearner(Trainer):
    """Trains from edge segments on the shared life cycle (dcdrl_cloud.trainer.Trainer).
    ``start()``, then ``step()`` in a loop (or ``run(stop)`` in the training thread), ``close()``
    always. Inputs (``receive``, ``reject``, ``weights_for_request``) may come from any thread.

    Args:
        config: a SegmentLearnerConfig.
        outputs: where weights, stats, episode summaries, commands and log lines go.
        name: the learner's name (logs, run directory).
        clock: monotonic seconds (replaceable in tests).
    """

    # Fields a running learner takes over (ros2 param set on the node); the others are read at start.
    LIVE_FIELDS = tuple(sorted(live_names(SegmentLearnerConfig)))   # the fields marked live
    PROGRESS_TAGS = ('charts/episodic_return', 'eval/return', 'eval/swing_up_steps', 'losses/critic_loss',
                     'charts/updates_per_sec')
    STEP_TIMEOUT_S = 0.05

    def __init__(self, config: SegmentLearnerConfig, outputs: SegmentLearnerOutputs, name: str = 'learner',
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(config, SegmentLearnerConfig):
            raise TypeError(f'config must be a SegmentLearnerConfig, got {type(config).__name__}')
        super().__init__(config, outputs, name, clock)
        self.replay_path = self.output_dir / REPLAY_NAME
        self.actor_path = self.output_dir / ACTOR_NAME
        self.best_actor_path = self.output_dir / BEST_ACTOR_NAME

        self.reward = SwingUpReward(config.pole_length, config.task())
        self.pairer = SegmentPairer(self.reward, config.max_devices)
        self.tracker = ConvergenceTracker(k=config.convergence_evals, max_swing_up_steps=config.max_swing_up_steps)
        self.gamma = float(self.agent_config.gamma)
        self.env_steps = 0                  # transitions stored, across resumes
        self.episodes = 0                   # training episodes closed
        self.evaluations_incomplete = 0     # evaluation episodes with a gap: not scored
        self.best = BestPolicy(self.best_actor_path, self._write_payload)   # best_actor.safetensors
        self.converged = False
        self.steps_to_converge: int | None = None
        self.updates_to_converge: int | None = None
        self.wall_s_to_converge: float | None = None
        self.converged_version: int | None = None
        self.init_version: int | None = None
        self._episodes_since_eval = 0
        self.buffer: ReplayBuffer | None = None
        self._early_warnings: list[str] = []   # logged by start(), when the outputs are wired
        self._load_saved_state()
        if self.buffer is None:
            self.buffer = ReplayBuffer(self.agent_config.buffer_size, self.obs_dim, self.action_dim,
                                       seed=self.config.seed)
        # Not resumed: a best_actor file in output_dir is an earlier run's, replaced at this run's first best.
        self.best.earlier_file = self.resumed_from is None and self.best_actor_path.is_file()

        self.updates_behind = 0             # gradient steps the ratio allows that are not done yet
        self.max_updates_behind = 0
        self._run_lag_total, self._run_lag_count = 0.0, 0  # whole-run version lag (learner.json)
        self._eligible = 0                  # transitions stored at or above critic_start (this run)
        self._session_updates = 0           # gradient steps of this run
        self._initial_evals_left = config.initial_evaluations
        self._payloads: collections.OrderedDict[int, WeightsPayload] = collections.OrderedDict()
        self._latest: WeightsPayload | None = None
        self._published_actor_updates = -1
        self._publish_requested = False

    @property
    def best_version(self) -> int | None:
        """Version in best_actor.safetensors (None: no trained policy evaluated yet)."""
        return self.best.version

    @property
    def best_eval_return(self) -> float:
        return self.best.eval_return

    # ------------------------------------------------------------------ set-up
    def _restore(self, extra: dict[str, Any]) -> None:
        self.env_steps = int(extra.get('env_steps', 0))
        self.episodes = int(extra.get('episodes', 0))
        self.evaluations_incomplete = int(extra.get('evaluations_incomplete', 0))
        self.eval_return = _float(extra.get('eval_return'), math.nan)
        self.best.load_state(extra)
        self.converged = bool(extra.get('converged', False))
        for name in ('steps_to_converge', 'updates_to_converge', 'wall_s_to_converge', 'converged_version'):
            setattr(self, name, extra.get(name))
        self._episodes_since_eval = int(extra.get('episodes_since_eval', 0))
        self._wall_before = float(extra.get('wall_s', 0.0))
        self.init_version = extra.get('init_version')
        tracker = extra.get('tracker') or {}
        self.tracker.streak = int(tracker.get('streak', 0))
        self.tracker.evaluations = int(tracker.get('evaluations', 0))
        self.tracker.converged = bool(tracker.get('converged', False))
        self.tracker.converged_at = tracker.get('converged_at')
        self.tracker.history = list(tracker.get('history', []))
        if self.config.checkpoint_replay and self.replay_path.is_file():
            self.buffer = self._load_replay()

    def _without_resume(self) -> None:
        if self.config.init_checkpoint:
            self._load_init(self.config.init_checkpoint)

    def _load_replay(self) -> ReplayBuffer | None:
        try:
            buffer = ReplayBuffer.load(self.replay_path)
        except (ValueError, OSError) as error:
            self._early_warnings.append(f'replay file {self.replay_path} unreadable ({error}): starting with an '
                                        'empty replay buffer')
            return None
        if (buffer.obs_dim, buffer.action_dim, buffer.capacity) != \
                (self.obs_dim, self.action_dim, self.agent_config.buffer_size):
            self._early_warnings.append(
                f'replay file {self.replay_path} holds obs_dim {buffer.obs_dim}, action_dim {buffer.action_dim}, '
                f'capacity {buffer.capacity}; this learner needs {self.obs_dim}, {self.action_dim}, '
                f'{self.agent_config.buffer_size}: starting with an empty replay buffer')
            return None
        return buffer

    def _load_init(self, path_text: str) -> None:
        path = Path(path_text)
        if not path.is_file():
            raise ValueError(f'init_checkpoint {path} does not exist (a checkpoint written by a learner or by '
                             'experiments/cartpole_swingup.py)')
        try:
            _, info = load_checkpoint(path, self.agent)
        except (ValueError, RuntimeError, KeyError) as error:
            raise ValueError(f'cannot fine-tune from init_checkpoint {path}: {error}') from None
        # Networks, targets, optimizers and counters come from the checkpoint; the replay buffer
        # starts empty (the new plant's data only) and versions continue above the loaded one.
        self.version = self.init_version = info.version

    # ------------------------------------------------------------------ inputs (any thread)
    def receive(self, seg: SegmentView) -> Transition | None:
        """A validated segment arrived (DDS callback thread): pair it and store the transition it
        completes, if any. Never trains. Returns that transition (or None)."""
        if seg.observation.shape != (self.obs_dim,) or seg.action.shape != (self.action_dim,):
            self.reject('wrong_size')
            return None
        with self._lock:
            transition = self.pairer.add(seg)
            if transition is None:
                return None
            discount = 0.0 if transition.terminated else self.gamma   # truncated: bootstrap
            try:
                self.buffer.add(transition.obs[None], transition.action[None],
                                np.array([transition.reward], np.float32), transition.next_obs[None],
                                np.array([discount], np.float32))
            except (ValueError, TypeError):
                self.rejected['store_failed'] += 1
                return None
            self.env_steps += 1
            if len(self.buffer) >= max(1, self.agent_config.critic_start):
                self._eligible += 1
            version = transition.policy_version
            if version > 0:  # version 0 = the safe action, no policy
                lag = float(self.version - version)
                self._period.lag.add_one(lag)
                self._run_lag_total += lag
                self._run_lag_count += 1
            self._wake.notify()
        return transition

    def receive_message(self, message: Any) -> Transition | None:
        """read_segment + receive; a refused message is counted by its reason."""
        try:
            seg = read_segment(message, self.obs_dim, self.action_dim)
        except SegmentRejected as error:
            self.reject(error.reason)
            return None
        return self.receive(seg)

    def reject(self, reason: str) -> int:
        """Count a refused message; returns the total refused."""
        with self._lock:
            self.rejected[str(reason)] += 1
            return sum(self.rejected.values())

    def weights_for_request(self, min_version: int = 0) -> WeightsPayload | None:
        """The latest published payload when its version is >= min_version (GetPolicy); otherwise
        None, and the training thread publishes as soon as the actor has changed."""
        with self._lock:
            latest = self._latest
            if latest is not None and latest.version >= min_version:
                return latest
            self._publish_requested = True
            return None

    def payload_for_version(self, version: int) -> WeightsPayload | None:
        """A recently published payload by version (the last kept_versions are kept)."""
        with self._lock:
            return self._payloads.get(int(version))


    # ------------------------------------------------------------------ the loop
    def _config_record(self) -> dict[str, Any]:
        return {'init_version': self.init_version}

    def _on_start(self, now: float) -> None:
        """Say what was loaded and publish the current actor at once (version 1, or the loaded + 1)."""
        c = self.config
        for text in self._early_warnings:
            self.out.log('warning', text)
        if self.best.earlier_file:
            self.out.log('warning', f'{self.best_actor_path} is from an earlier run (not resumed): this run '
                                    'replaces it at its first best evaluation')
        if self.resumed_from is not None:
            self.out.log('info', f'resumed from {self.checkpoint_path}: version {self.version}, {self.updates} '
                                 f'updates, {self.env_steps} env steps, replay {len(self.buffer)}')
            if c.init_checkpoint:
                self.out.log('info', f'init_checkpoint {c.init_checkpoint} ignored: resuming this run instead')
            if self.converged and c.stop_when_converged:
                self.out.log('info', f'this run converged already (version {self.converged_version}): it finishes '
                                     'at once; another output_dir (or resume:=false) starts a new run')
        elif self.init_version is not None:
            self.out.log('info', f'fine-tuning from {c.init_checkpoint} (version {self.init_version}) with an '
                                 'empty replay buffer')
        self._next_publish = now + c.publish_period_s
        self.publish_weights()
        if self._initial_evals_left > 0 and not self.converged:
            self.out.send_command(EdgeCommandKind.EVALUATE)

    def _reschedule(self, changes: dict[str, Any], now: float) -> None:
        if 'publish_period_s' in changes:
            self._next_publish = now + self.config.publish_period_s

    def _owed_locked(self) -> int:
        """Gradient steps the ratio allows now and that are not done yet."""
        allowed = math.floor(self._eligible * self.config.updates_per_transition + 1e-9)
        return allowed - self._session_updates

    def _train(self, timeout: float) -> None:
        """The gradient steps the ratio allows (at most MAX_UPDATES_PER_STEP; with nothing to do,
        wait up to ``timeout`` s for data)."""
        self._pause(timeout, ready=lambda: self._owed_locked() > 0)
        with self._lock:
            owed = self._owed_locked()
        for _ in range(min(owed, MAX_UPDATES_PER_STEP)):
            self._train_once()
        with self._lock:
            self.updates_behind = max(0, self._owed_locked())
        self.max_updates_behind = max(self.max_updates_behind, self.updates_behind)

    def _train_once(self) -> dict[str, Any]:
        stored = len(self.buffer)
        stats = self.agent.update(self.buffer.sample(self.agent_config.batch_size), stored_transitions=stored)
        self._count_update(stats)
        self._session_updates += 1
        return stats

    def stop_reason(self, now: float) -> str | None:
        """'converged' (with stop_when_converged), 'duration' once duration_s elapsed."""
        if self.converged and self.config.stop_when_converged:
            return 'converged'
        return super().stop_reason(now)

    def _before_stats(self, now: float) -> None:
        self._handle_episodes(now)
        if self.agent.actor_updates != self._published_actor_updates \
                and (now >= self._next_publish or self._publish_requested):
            self.publish_weights()
            self._next_publish = now + self.config.publish_period_s

    def _after_stats(self, now: float) -> None:
        if self.logger is not None:
            self.logger.progress(self.env_steps)

    # ------------------------------------------------------------------ weights
    def _on_publish(self, payload: WeightsPayload) -> None:
        self.best.note_published(payload.version, trained=self.agent.actor_updates > 0)
        with self._lock:
            self._latest = payload
            self._payloads[payload.version] = payload
            while len(self._payloads) > self.config.kept_versions:
                self._payloads.popitem(last=False)
            self._publish_requested = False
        self._published_actor_updates = self.agent.actor_updates

    def _write_payload(self, path: Path, payload: WeightsPayload) -> None:
        data = payload_to_bytes(payload)
        atomic_write(path, lambda handle: handle.write(data))

    # ------------------------------------------------------------------ episodes
    def _handle_episodes(self, now: float) -> None:
        with self._lock:
            finished = self.pairer.pop_finished()
        for summary in finished:
            self.out.publish_episode(summary)
            if summary.evaluation:
                self._on_evaluation(summary, now)
            else:
                self._on_training_episode(summary)

    def _on_training_episode(self, summary: SegmentEpisodeSummary) -> None:
        self.episodes += 1
        self._episodes_since_eval += 1
        if self.logger is not None:
            self.logger.log_scalars({'charts/episodic_return': summary.episode_return,
                                     'charts/episodic_length': summary.length}, step=self.env_steps)
        if self.converged and self.config.stop_when_converged:
            return
        c = self.config
        if self._initial_evals_left > 0:
            # Asked for at start; the edge may have missed it or was in the middle of an episode.
            self.out.send_command(EdgeCommandKind.EVALUATE)
            self._episodes_since_eval = 0
        elif c.eval_every_episodes > 0 and self._episodes_since_eval >= c.eval_every_episodes:
            self.out.send_command(EdgeCommandKind.EVALUATE)
            self._episodes_since_eval = 0

    def _on_evaluation(self, summary: SegmentEpisodeSummary, now: float) -> None:
        c = self.config
        if not summary.complete:
            # A gap: the return is partial and the swing-up step may have been lost. Not scored.
            self.evaluations_incomplete += 1
            self.out.log('warning', f'evaluation episode {summary.episode} of {summary.device_id} arrived with '
                                    'gaps: not scored')
            return
        self.eval_return = float(summary.episode_return)
        was_converged = self.converged
        self.tracker.update(summary.swing_up_steps)
        success = self.tracker.is_success(summary.swing_up_steps)
        if self.logger is not None:
            shown = summary.swing_up_steps if summary.swing_up_steps is not None else c.max_swing_up_steps + 1
            self.logger.log_scalars({'eval/return': summary.episode_return, 'eval/swing_up_steps': shown,
                                     'eval/success': float(success), 'eval/streak': self.tracker.streak},
                                    step=self.env_steps)
        best_text, level = self.best.consider(summary, self.tracker.evaluations, self.payload_for_version)
        swing_up = (f'swing-up at step {summary.swing_up_steps}' if summary.swing_up_steps is not None
                    else 'no swing-up')
        self.out.log(level, f'evaluation {self.tracker.evaluations} ({summary.device_id} episode {summary.episode}, '
                            f'version {summary.policy_version}): return {summary.episode_return:.2f}, {swing_up}, '
                            f'{self.tracker.streak} of {c.convergence_evals} in a row within '
                            f'{c.max_swing_up_steps} steps; {best_text}')
        if self._initial_evals_left > 0:
            self._initial_evals_left -= 1
            if self._initial_evals_left > 0 and not self.tracker.converged:
                self.out.send_command(EdgeCommandKind.EVALUATE)
        if self.tracker.converged and not was_converged:
            self.converged = True
            self.steps_to_converge = self.env_steps
            self.updates_to_converge = self.updates
            self.wall_s_to_converge = round(self.wall_s(now), 3)
            self.converged_version = summary.policy_version
            self.out.log('info', f'converged: {c.convergence_evals} evaluations in a row swung up within '
                                 f'{c.max_swing_up_steps} steps, after {self.env_steps} env steps, {self.updates} '
                                 f'updates, {self.wall_s_to_converge:.1f} s (version {summary.policy_version})')
            self.write_summary()
            if c.stop_when_converged:
                self.out.send_command(EdgeCommandKind.HOLD)


    # ------------------------------------------------------------------ stats, files, the end
    def _env_step_count(self) -> int:
        return self.env_steps

    def _replay_size(self) -> int:
        return len(self.buffer)

    def _scalar_step(self) -> int:
        return self.env_steps

    def _stats_scalars(self, stats: dict[str, float]) -> dict[str, float]:
        with self._lock:
            counters = self.pairer.counters()
        scalars = {**super()._stats_scalars(stats), 'charts/updates_behind': self.updates_behind,
                   'segments/rejected': stats['rejected_batches'], 'segments/gaps': counters['gaps'],
                   'segments/stale': counters['stale'], 'segments/episode_mismatch': counters['episode_mismatch']}
        return {k: v for k, v in scalars.items() if not (isinstance(v, float) and math.isnan(v))}

    def _checkpoint_extra(self) -> dict[str, Any]:
        t = self.tracker
        return {
            'env_steps': self.env_steps, 'episodes': self.episodes,
            'evaluations_incomplete': self.evaluations_incomplete, 'eval_return': self.eval_return,
            **self.best.state(),
            'converged': self.converged, 'steps_to_converge': self.steps_to_converge,
            'updates_to_converge': self.updates_to_converge, 'wall_s_to_converge': self.wall_s_to_converge,
            'converged_version': self.converged_version, 'episodes_since_eval': self._episodes_since_eval,
            'wall_s': self.wall_s(), 'init_version': self.init_version, 'env_id': self.config.env_id,
            'tracker': {'streak': t.streak, 'evaluations': t.evaluations, 'converged': t.converged,
                        'converged_at': t.converged_at, 'history': list(t.history)}}

    def _save_files(self) -> None:
        """replay.npz (checkpoint_replay) and actor.safetensors (the latest published)."""
        if self.config.checkpoint_replay:
            self.buffer.save(self.replay_path)
        if self._latest is not None:
            self._write_payload(self.actor_path, self._latest)

    def summary(self) -> dict[str, Any]:
        """The run's numbers (learner.json, the TRAINING DONE line)."""
        with self._lock:
            counters = self.pairer.counters()
            devices = self.pairer.device_counters()
            rejected = dict(self.rejected)
            replay_size = len(self.buffer)
        return {
            'version': self.version, 'updates': self.updates, 'env_steps': self.env_steps,
            'episodes': self.episodes, 'evaluations': self.tracker.evaluations,
            'evaluations_incomplete': self.evaluations_incomplete, 'eval_history': list(self.tracker.history),
            'eval_return': self.eval_return, 'converged': self.converged,
            'steps_to_converge': self.steps_to_converge, 'updates_to_converge': self.updates_to_converge,
            'wall_s_to_converge': self.wall_s_to_converge, 'converged_version': self.converged_version,
            'best_eval_return': self.best_eval_return if self.best_version is not None else None,
            'best_version': self.best_version, 'best_evaluation': self.best.evaluation,
            'best_actor': str(self.best_actor_path) if self.best_version is not None else None,
            'best_missing': self.best.missing, 'pairer': counters, 'devices': devices,
            'rejected': sum(rejected.values()), 'rejected_by_reason': rejected,
            'replay_size': replay_size, 'updates_behind': self.updates_behind,
            'max_updates_behind': self.max_updates_behind, 'wall_s': round(self.wall_s(), 3),
            'version_lag_mean': (round(self._run_lag_total / self._run_lag_count, 3)
                                 if self._run_lag_count else None),
            'finished_reason': self.finished_reason, 'output_dir': str(self.output_dir),
            'checkpoint': str(self.checkpoint_path), 'actor': str(self.actor_path),
            'run_dir': str(self.logger.run_dir) if self.logger is not None else None,
            'architecture_id': self.architecture_id, 'env_id': self.config.env_id,
            'algorithm': self.config.algorithm, 'resumed_from_version': self.resumed_from,
            'init_checkpoint': self.config.init_checkpoint or None, 'init_version': self.init_version}


    def _unpublished_changes(self) -> bool:
        return self.agent.actor_updates != self._published_actor_updates

    def _finish_work(self) -> None:
        self.save_checkpoint()
        self.out.log('info', self.best.stop_note(self.actor_path, self.version))
        if self.logger is not None:
            self.logger.flush()

    def _close_unfinished(self) -> None:
        self.finished_reason = self.finished_reason or 'stopped'
        self.save_checkpoint()
        self.finished = True
        self.out.log('info', self.best.stop_note(self.actor_path, self.version))


def _float(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


__all__ = ['ACTOR_NAME', 'BEST_ACTOR_NAME', 'MAX_UPDATES_PER_STEP', 'REPLAY_NAME', 'SegmentLearner',
           'SegmentLearnerConfig', 'SegmentLearnerOutputs']
