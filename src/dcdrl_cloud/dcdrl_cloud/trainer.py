"""One training life cycle for the cloud learners (no ROS import).

``Trainer`` holds what every learner does the same way: build the agent for the env's spaces,
resume from ``learner.ckpt`` (versions continue upward, also past a hard kill), open the run log,
count updates and sum losses per stats period, compute rates, publish stats and versioned weights,
refuse to checkpoint a diverged agent, reschedule periods on a live change, and finish / close
exactly once. A learner subclasses it and fills in the hooks, the way an off-policy algorithm
fills in ``train`` under a shared ``learn`` loop:

    start()  -> _on_start(now)                       publish the first weights, ask for data
    step()   -> _train(timeout)                      gradient updates from this learner's data
             -> _before_stats(now)                   inputs to act on (episodes, due publishes)
             -> publish_stats(now) when due          _stats_scalars(stats) for the run log
             -> _after_stats(now)                    evaluations, submissions, progress
             -> save_checkpoint() when due           _checkpoint_extra(), _save_files()
             -> done(now)                            stop_reason(now)
    finish() -> _unpublished_changes(), _finish_work()
    close()  -> _close_unfinished(), _release()

Also: ``_restore(extra)`` after a checkpoint is loaded, ``_without_resume()`` when none is,
``_on_publish(payload)``, ``_reschedule(changes, now)``, and ``summary()`` (learner.json).
Inputs from other threads take ``_lock``; ``wake()`` ends a wait of the training thread at once.
"""
from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

import dcdrl_sim  # noqa: F401  (registers the environments)
from dcdrl_core.strict_json import json_safe, write_json
from dcdrl_learning.agents import Agent
from dcdrl_learning.checkpoint import PublishedVersion, load_checkpoint, save_checkpoint
from dcdrl_learning.codec import WeightsPayload, WeightsRejected, encode_weights
from dcdrl_learning.runlog import RunLogger

CHECKPOINT_NAME = 'learner.ckpt'
PUBLISHED_VERSION_NAME = 'published_version'
SUMMARY_NAME = 'learner.json'


def env_dims(env: gymnasium.Env) -> tuple[int, int]:
    """(obs_dim, action_dim) of an env with flat Box spaces, or a ValueError naming the space."""
    obs_space, action_space = env.observation_space, env.action_space
    if not isinstance(obs_space, gymnasium.spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(f'the learner needs a flat Box observation space, got {obs_space}')
    if not isinstance(action_space, gymnasium.spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(f'the learner (DDPG/TD3) needs a flat Box action space, got {action_space}')
    return int(obs_space.shape[0]), int(action_space.shape[0])


def next_due(now: float, period_s: float) -> float:
    """When periodic work with this period is next due; a period of 0 turns it off."""
    return now + period_s if period_s > 0 else math.inf


class LagStats:
    """Policy lag (learner version minus the version that produced the data): min/mean/max per period."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count, self.total = 0, 0.0
        self.low, self.high = math.inf, -math.inf

    def add(self, current_version: int, versions: np.ndarray) -> None:
        if versions.size == 0:
            return
        # int64 before subtracting: uint64 would wrap for data newer than the learner (merged generations).
        lag = int(current_version) - versions.astype(np.int64)
        self.count += int(lag.size)
        self.total += float(lag.sum())
        self.low = min(self.low, float(lag.min()))
        self.high = max(self.high, float(lag.max()))

    def add_one(self, lag: float) -> None:
        self.count += 1
        self.total += lag
        self.low = min(self.low, lag)
        self.high = max(self.high, lag)

    def snapshot(self, reset: bool = True) -> tuple[float, float, float]:
        """(min, mean, max) since the last reset; NaNs when no data carried versions."""
        result = ((self.low, self.total / self.count, self.high) if self.count
                  else (math.nan, math.nan, math.nan))
        if reset:
            self.reset()
        return result


@dataclass
class Period:
    """Sums over one stats period."""

    updates: int = 0
    critic_loss: float = 0.0
    q_mean: float = 0.0
    actor_loss: float = 0.0
    actor_updates: int = 0
    lag: LagStats = field(default_factory=LagStats)

    def add_update(self, stats: dict[str, Any]) -> None:
        """One Agent.update's numbers (actor_loss is None when the actor was not updated)."""
        self.updates += 1
        self.critic_loss += stats['critic_loss']
        self.q_mean += stats['q_mean']
        if stats['actor_loss'] is not None:
            self.actor_loss += stats['actor_loss']
            self.actor_updates += 1


class Trainer:
    """The life cycle shared by the learners: ``start()``, then ``step()`` until it returns True (or
    ``run(stop)`` in the training thread), ``finish()`` when done, ``close()`` always.

    Args:
        config: the learner's config (env_id, seed, output_dir, duration_s, stats_period_s,
            checkpoint_period_s, resume, tensorboard, progress_period_s, agent_config()).
        outputs: where weights, stats and log lines go (``publish_weights``, ``publish_stats``, ``log``).
        name: the learner's name.
        clock: monotonic seconds (replaceable in tests).
    """

    LIVE_FIELDS: tuple[str, ...] = ()          # config fields a running trainer takes over
    PROGRESS_TAGS: tuple[str, ...] = ()        # run-log scalars on the progress line
    RUN_LOG_NAME: str | None = None         # the run directory's name part; None: the learner's name
    STEP_TIMEOUT_S = 0.1                       # run(): the longest wait for data in one step

    def __init__(self, config: Any, outputs: Any, name: str, clock: Callable[[], float] = time.monotonic,
                 keep_env: bool = False) -> None:
        self.config, self.out, self.name, self.clock = config, outputs, name, clock
        env = gymnasium.make(config.env_id)
        try:
            self.obs_dim, self.action_dim = env_dims(env)
        except ValueError:
            env.close()
            raise
        self.env: gymnasium.Env | None = env if keep_env else None
        if not keep_env:
            env.close()
        self.agent_config = config.agent_config()
        self.agent = Agent(self.agent_config, self.obs_dim, self.action_dim)
        self.architecture_id = self.agent.architecture_id
        self.output_dir = Path(config.output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = self.output_dir / CHECKPOINT_NAME
        self.version = 0                    # last published version
        self.updates = 0                    # gradient updates, across resumes
        self.resumed_from: int | None = None
        self.rejected: collections.Counter[str] = collections.Counter()
        self.eval_return = math.nan
        self.eval_cost = math.nan
        self.finished_reason: str | None = None
        self.logger: RunLogger | None = None
        self.started_at: float | None = None
        self.finished = False
        self.closed = False
        self._wall_before = 0.0             # wall seconds of earlier runs (resume)
        self._period = Period()
        self._last_stats = {'critic_loss': math.nan, 'actor_loss': math.nan, 'q_mean': math.nan}
        self._lock = threading.Lock()       # state shared with input callbacks
        self._wake = threading.Condition(self._lock)
        self._woken = False
        self._finish_lock = threading.RLock()   # finish/close against each other (close may call finish)

    # ------------------------------------------------------------------ resume and versions
    def _load_saved_state(self) -> None:
        """Resume from learner.ckpt (resume and present), else ``_without_resume()``; then the
        published_version file: versions published after the last checkpoint are never reused."""
        if self.config.resume and self.checkpoint_path.is_file():
            try:
                _, info = load_checkpoint(self.checkpoint_path, self.agent)
            except (ValueError, RuntimeError, KeyError) as error:
                raise ValueError(f'cannot resume from {self.checkpoint_path}: {error}; use another output_dir '
                                 f'or resume:=false') from None
            self.version = self.resumed_from = info.version
            self.updates = int(info.extra.get('updates', 0))
            self._restore(info.extra)
        else:
            self._without_resume()
        self.published = PublishedVersion(self.output_dir / PUBLISHED_VERSION_NAME)
        self.version = max(self.version, self.published.last())

    def _restore(self, extra: dict[str, Any]) -> None:
        """Hook: take this learner's counters from a loaded checkpoint's extra data."""

    def _without_resume(self) -> None:
        """Hook: no checkpoint to resume from."""

    # ------------------------------------------------------------------ the loop
    def start(self) -> None:
        """Open the run log, schedule the periodic work, then ``_on_start``. Idempotent."""
        if self.started_at is not None:
            return
        c = self.config
        now = self.clock()
        self.started_at = now
        self.logger = RunLogger(c.env_id, self.RUN_LOG_NAME or self.name, c.seed, root=self.output_dir,
                                tensorboard=c.tensorboard,
                                print_every_s=c.progress_period_s if c.progress_period_s > 0 else None,
                                progress_tags=self.PROGRESS_TAGS)
        self.logger.write_config({**asdict(c), 'agent': self.agent_config.to_dict(),
                                  'architecture_id': self.architecture_id, 'resumed_from_version': self.resumed_from,
                                  **self._config_record()})
        self._next_stats = now + c.stats_period_s
        self._next_checkpoint = next_due(now, c.checkpoint_period_s)
        self._rate_time, self._rate_updates, self._rate_steps = now, self.updates, self._env_step_count()
        self._on_start(now)

    def _config_record(self) -> dict[str, Any]:
        """Hook: more entries for the run log's config record."""
        return {}

    def _on_start(self, now: float) -> None:
        """Hook: the end of start() (log lines, the first weights, first requests)."""

    def step(self, timeout: float | None = None) -> bool:
        """``_train`` (waits up to ``timeout`` s for data), then the periodic work. Returns True
        when the run is done (``stop_reason``)."""
        if self.started_at is None:
            raise RuntimeError('call start() first')
        self._train(self.STEP_TIMEOUT_S if timeout is None else timeout)
        now = self.clock()
        self._periodic(now)
        return self.done(now)

    def _train(self, timeout: float) -> None:
        """Hook: gradient updates on what arrived (``_count_update`` each)."""
        raise NotImplementedError

    def _count_update(self, stats: dict[str, Any]) -> None:
        self.updates += 1
        self._period.add_update(stats)

    def _periodic(self, now: float) -> None:
        self._before_stats(now)
        if now >= self._next_stats:
            self._next_stats = now + self.config.stats_period_s
            self.publish_stats(now)
        self._after_stats(now)
        if now >= self._next_checkpoint:
            self.save_checkpoint()
            self._next_checkpoint = self.clock() + self.config.checkpoint_period_s

    def _before_stats(self, now: float) -> None:
        """Hook: periodic work before the stats (inputs to act on)."""

    def _after_stats(self, now: float) -> None:
        """Hook: periodic work after the stats, before the checkpoint."""

    def done(self, now: float | None = None) -> bool:
        """True once ``stop_reason`` gives one (kept in finished_reason)."""
        if self.started_at is None:
            return False
        reason = self.stop_reason(self.clock() if now is None else now)
        if reason is None:
            return False
        self.finished_reason = self.finished_reason or reason
        return True

    def stop_reason(self, now: float) -> str | None:
        """Why the run is done now ('duration' once duration_s elapsed), None while it goes on."""
        duration = self.config.duration_s
        return 'duration' if duration > 0 and now - self.started_at >= duration else None

    def run(self, stop: threading.Event, timeout: float | None = None) -> dict[str, Any] | None:
        """The training thread: start, step until done or ``stop``; finish() when done (returns its
        summary), None when stopped first."""
        self.start()
        while not stop.is_set():
            if self.step(timeout):
                return self.finish()
        return None

    def wall_s(self, now: float | None = None) -> float:
        """Wall seconds of training, across resumes."""
        if self.started_at is None:
            return self._wall_before
        return self._wall_before + (self.clock() if now is None else now) - self.started_at

    def wake(self) -> None:
        """End a wait in step() at once (call before joining the training thread)."""
        with self._lock:
            self._woken = True
            self._wake.notify_all()

    def _pause(self, timeout: float, ready: Callable[[], bool] = lambda: False) -> None:
        """Wait up to ``timeout`` s unless ``ready()`` (checked under _lock) or woken; inputs notify."""
        with self._lock:
            if timeout > 0 and not self._woken and not ready():
                self._wake.wait(timeout)
            self._woken = False

    # ------------------------------------------------------------------ live changes
    def reconfigure(self, **changes: Any) -> Any:
        """Take new values of LIVE_FIELDS while training: checked as at start (ValueError), a changed
        period counts from now (0 turns periodic work off). Safe from another thread than run's."""
        fixed = sorted(set(changes) - set(self.LIVE_FIELDS))
        if fixed:
            raise ValueError(f'{", ".join(fixed)} cannot change while the learner runs')
        config = replace(self.config, **changes)
        self.config = config
        if self.started_at is not None:
            now = self.clock()
            if 'stats_period_s' in changes:
                self._next_stats = now + config.stats_period_s
            if 'checkpoint_period_s' in changes:
                self._next_checkpoint = next_due(now, config.checkpoint_period_s)
            self._reschedule(changes, now)
        self.wake()
        return config

    def _reschedule(self, changes: dict[str, Any], now: float) -> None:
        """Hook: reschedule this learner's own periods after a live change."""

    # ------------------------------------------------------------------ stats
    def _env_step_count(self) -> int:
        """Hook: environment steps so far (transitions stored), across resumes."""
        raise NotImplementedError

    def _replay_size(self) -> int:
        """Hook: transitions in the replay now (called under _lock)."""
        raise NotImplementedError

    def stats(self, now: float) -> dict[str, float]:
        """TrainingStats fields (names as in the message) for the period since the last call."""
        with self._lock:
            period, self._period = self._period, Period()
            env_steps, replay_size, rejected = self._env_step_count(), self._replay_size(), sum(self.rejected.values())
        if period.updates:
            self._last_stats['critic_loss'] = period.critic_loss / period.updates
            self._last_stats['q_mean'] = period.q_mean / period.updates
        if period.actor_updates:
            self._last_stats['actor_loss'] = period.actor_loss / period.actor_updates
        lag_min, lag_mean, lag_max = period.lag.snapshot()
        elapsed = max(1e-9, now - self._rate_time)
        updates_per_sec = (self.updates - self._rate_updates) / elapsed
        steps_per_sec = max(0, env_steps - self._rate_steps) / elapsed
        self._rate_time, self._rate_updates, self._rate_steps = now, self.updates, env_steps
        return {
            'policy_version': self.version, 'updates': self.updates, 'env_steps': env_steps,
            'replay_size': replay_size, **self._last_stats,
            'updates_per_sec': updates_per_sec, 'env_steps_per_sec': steps_per_sec,
            'version_lag_min': lag_min, 'version_lag_mean': lag_mean, 'version_lag_max': lag_max,
            'rejected_batches': rejected, 'eval_return': self.eval_return, 'eval_cost': self.eval_cost}

    def publish_stats(self, now: float) -> dict[str, float]:
        """stats(now) to the outputs and, as scalars, to the run log."""
        stats = self.stats(now)
        self.out.publish_stats(stats)
        if self.logger is not None:
            self.logger.log_scalars(self._stats_scalars(stats), step=self._scalar_step())
        return stats

    def _stats_scalars(self, stats: dict[str, float]) -> dict[str, float]:
        """The run-log scalars of one stats period; a learner adds its own."""
        scalars = {'losses/critic_loss': stats['critic_loss'], 'losses/actor_loss': stats['actor_loss'],
                   'losses/q_mean': stats['q_mean'], 'charts/updates_per_sec': stats['updates_per_sec'],
                   'charts/env_steps_per_sec': stats['env_steps_per_sec'],
                   'charts/policy_version': stats['policy_version'], 'charts/replay_size': stats['replay_size']}
        if math.isfinite(stats['version_lag_mean']):
            scalars.update({'charts/version_lag_min': stats['version_lag_min'],
                            'charts/version_lag_mean': stats['version_lag_mean'],
                            'charts/version_lag_max': stats['version_lag_max']})
        return scalars

    def _scalar_step(self) -> int:
        """Hook: the x axis of the run log's stats scalars."""
        return self.updates

    # ------------------------------------------------------------------ weights and files
    def publish_weights(self) -> WeightsPayload | None:
        """Publish the online actor as the next version (not when it holds NaN/Inf: said in a line)."""
        try:
            payload = encode_weights(self.agent.actor, self.architecture_id, self.version + 1)
        except WeightsRejected as error:
            self.out.log('error', f'not publishing: {error}')
            return None
        self.version = payload.version
        self.published.record(self.version)  # before publishing: a kill in between never reuses it
        self._on_publish(payload)
        self.out.publish_weights(payload)
        return payload

    def _on_publish(self, payload: WeightsPayload) -> None:
        """Hook: a version is about to go out."""

    def agent_is_finite(self) -> bool:
        """False once training diverged (NaN/Inf in a network): such an agent is never saved."""
        import torch
        return all(bool(torch.isfinite(p).all()) for net in (self.agent.actor, self.agent.critic)
                   for p in net.parameters())

    def save_checkpoint(self) -> bool:
        """learner.ckpt, this learner's files and learner.json; refuses to overwrite a good
        checkpoint with a diverged agent."""
        if not self.agent_is_finite():
            self.out.log('error', f'networks contain NaN/Inf: not overwriting {self.checkpoint_path}')
            return False
        save_checkpoint(self.checkpoint_path, self.agent, version=self.version,
                        extra=json_safe({'updates': self.updates, **self._checkpoint_extra()}))
        self._save_files()
        self.write_summary()
        return True

    def _checkpoint_extra(self) -> dict[str, Any]:
        """Hook: what ``_restore`` reads back (strict JSON)."""
        return {}

    def _save_files(self) -> None:
        """Hook: files saved with each checkpoint."""

    def write_summary(self) -> Path:
        return write_json(self.output_dir / SUMMARY_NAME, self.summary())

    def summary(self) -> dict[str, Any]:
        """Hook: the run's numbers (learner.json, the TRAINING DONE line)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the end
    def finish(self, publish: bool = True) -> dict[str, Any]:
        """Publish the actor when it changed since the last publish (``publish``), then
        ``_finish_work``. Returns the summary. Idempotent."""
        with self._finish_lock:
            if not self.finished:
                if publish and self.started_at is not None and self._unpublished_changes():
                    self.publish_weights()  # clients get what the checkpoint holds
                self._finish_work()
                self.finished = True
            return self.summary()

    def _unpublished_changes(self) -> bool:
        """Hook: the actor changed since the last published version."""
        return True

    def _finish_work(self) -> None:
        """Hook: the end of a run (checkpoint and final files)."""
        self.save_checkpoint()

    def close(self) -> None:
        """Stop: ``_close_unfinished`` unless finish() ran, close the run log, ``_release``. Call after
        the training thread ended. Idempotent."""
        with self._finish_lock:
            if self.closed:
                return
            self.closed = True
            try:
                if not self.finished and self.started_at is not None:
                    self._close_unfinished()
            finally:
                if self.logger is not None:
                    self.logger.close()
                self._release()

    def _close_unfinished(self) -> None:
        """Hook: stopped before done (checkpoint what was done)."""
        self.save_checkpoint()

    def _release(self) -> None:
        if self.env is not None:
            self.env.close()


__all__ = ['CHECKPOINT_NAME', 'LagStats', 'PUBLISHED_VERSION_NAME', 'Period', 'SUMMARY_NAME', 'Trainer',
           'env_dims', 'next_due']
