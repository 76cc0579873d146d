"""The master learner's logic (no ROS import): trains from sampled replay batches, publishes versions.

Read top to bottom:

1. ``LearnerConfig``: every number the learner node exposes as a parameter, validated.
2. ``actor_policy``: the deterministic actor as a policy for evaluation episodes.
3. ``Learner``: the transition learner on the shared life cycle (dcdrl_cloud.trainer.Trainer).
   ``step()`` consumes one batch (agent.update, priorities, publish every
   ``publish_every_updates``) and does the periodic work (stats, checkpoint, evaluation,
   collective submissions); ``finish()`` checkpoints and writes the final table
   (dcdrl_sim.comparison: the learned policy against its env's baselines).

What feeds it (batches, credits) is dcdrl_cloud.batches. The learner talks to the outside world
only through a ``LearnerOutputs`` object (the node publishes; tests record), and is fed by
``receive_batch`` / ``record_episode`` / ``observe_replay`` / ``observe_generation``, which are
safe to call from another thread (the node's DDS callbacks). Everything else runs in one training
thread: the Agent is not thread-safe.
"""
from __future__ import annotations

import collections
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol, cast

import gymnasium
import numpy as np

from dcdrl_cloud.batches import (  # noqa: F401  (BatchRejected, read_sampled_batch: the node imports them here)
    BatchQueue,
    BatchRejected,
    CreditTracker,
    EnvStepCounter,
    SampledArrays,
    read_sampled_batch,
    waiting_for_replay,
)
from dcdrl_cloud.trainer import (  # noqa: F401  (the file names and env_dims: imported from here too)
    CHECKPOINT_NAME,
    PUBLISHED_VERSION_NAME,
    SUMMARY_NAME,
    Trainer,
    env_dims,
    next_due,
)
from dcdrl_core import training_defaults
from dcdrl_core.strict_json import json_safe
from dcdrl_learning.agents import AGENT_PRESETS, ALGORITHMS, AgentConfig
from dcdrl_learning.codec import WeightsPayload, encode_weights
from dcdrl_learning.experience import MAX_ID_LENGTH
from dcdrl_learning.inference import NumpyActor
from dcdrl_ros.parameter_dataclass import check_limits, live_names, parameter
from dcdrl_sim.comparison import EVALUATION_JSON, final_evaluation, has_oracle, write_evaluation
from dcdrl_sim.evaluation import EvaluationResult, evaluate_policy

MODES = ('central', 'collective')


# ---------------------------------------------------------------------------------- config
@dataclass
class LearnerConfig:
    """The learner's parameters (dcdrl_ros.parameter_dataclass); the node adds exit_when_done (LearnerParameters)."""

    env_id: str = parameter(training_defaults.ENV_ID, 'env whose spaces size the networks; also the evaluation env')
    network_preset: str = parameter(training_defaults.NETWORK_PRESET, 'agent and network preset; every party uses '
                                    'the same', choices=tuple(AGENT_PRESETS))
    algorithm: str = parameter('ddpg', 'learning algorithm', choices=ALGORITHMS)
    device: str = parameter('auto', "torch device: 'cpu', 'cuda', 'cuda:N' or 'auto' (cuda when present)")
    seed: int = parameter(training_defaults.SEED, 'network init and noise seeds', low=0)
    gamma: float = parameter(-1.0, "the discount the replay uses (checked against batch discounts); < 0 = the "
                                   "preset's (0.9 dcdrl)", high=1.0)
    mode: str = parameter(training_defaults.MODE, "'collective': also submit the model with its fitness on "
                                                  "client_model", choices=MODES)
    output_dir: str = parameter(training_defaults.OUTPUT_DIR, 'learner.ckpt, learner.json, evaluation.json/.md, '
                                                              'run logs')
    duration_s: float = parameter(training_defaults.DURATION_S, 'training time of this process; 0 = until stopped',
                                  low=0.0, live=True)
    max_updates: int = parameter(0, 'gradient updates of this process, then done as after duration_s (offline '
                                    'training from seed_bags); 0 = no limit', low=0, live=True)
    batch_size: int = parameter(64, 'transitions per requested batch', low=1)
    prefetch_batches: int = parameter(32, 'batches requested but not yet consumed', low=1)
    credit_batch: int = parameter(8, 'new credits are sent once this many are missing (<= prefetch_batches)', low=1)
    credit_timeout_s: float = parameter(10.0, 'no batch this long while credits are out: they are written off and '
                                              're-sent', low=0.0)
    max_queued_batches: int = parameter(64, 'received batches kept for training (>= prefetch_batches); the oldest '
                                            'is dropped beyond this', low=1)
    publish_every_updates: int = parameter(50, 'publish the policy (version + 1) every this many updates', low=1,
                                           live=True)
    stats_period_s: float = parameter(1.0, 'learner/stats and run-log scalars period', above=0.0, live=True)
    checkpoint_period_s: float = parameter(30.0, 'checkpoint period; 0 = only at the end', low=0.0, live=True)
    resume: bool = parameter(True, 'continue from output_dir/learner.ckpt when it exists (versions continue upward)')
    eval_period_s: float = parameter(training_defaults.EVAL_PERIOD_S, 'noise-free evaluation period; 0 = off',
                                     low=0.0, live=True)
    eval_episodes: int = parameter(3, 'episodes per periodic evaluation', low=1, live=True)
    eval_seed: int = parameter(10_000, 'evaluation episode k uses seed eval_seed + k (same tasks every time)', low=0)
    final_eval_episodes: int = parameter(5, 'episodes per policy in the final table', low=1, live=True)
    oracle_episodes: int = parameter(2, 'episodes of the MEC oracle (iterated best response) in the final table; '
                                        '0 = none', low=0, live=True)
    evaluate_on_stop: bool = parameter(True, 'also write the final table when stopped before duration_s', live=True)
    updates_per_sec_limit: float = parameter(0.0, 'cap on gradient updates per second; 0 = as fast as batches '
                                                  'arrive', low=0.0, live=True)
    torch_threads: int = parameter(1, 'torch.set_num_threads (clients share the cores)', low=1)
    prioritized: bool = parameter(False, "send PriorityUpdate(|TD errors|) after each update; set like the "
                                         "replay_buffer's")
    actor_start: int = parameter(-1, "replay size before actor updates start; < 0 = the preset's (1000 dcdrl)")
    generation_period_s: float = parameter(30.0, 'collective mode: model submission period', low=0.0, live=True)
    tensorboard: bool = parameter(True, 'TensorBoard event files besides scalars.csv')
    progress_period_s: float = parameter(10.0, "progress line on stdout (before the first batch: 'waiting for the "
                                               "replay buffer'); 0 = off", low=0.0)
    actor_lr: float = parameter(0.0, "Adam learning rate of the actor; 0 = the network preset's (1e-4 dcdrl)",
                                low=0.0)
    critic_lr: float = parameter(0.0, "Adam learning rate of the critic; 0 = the network preset's (1e-3 dcdrl)",
                                 low=0.0)
    report: bool = parameter(True, 'report.md and PNG plots (learning curve against the baselines, version lag, '
                                   'throughput) in output_dir at the end')
    alpha: float = parameter(0.2, 'SAC: entropy temperature at the start (all along without autotune_alpha)',
                             above=0.0)
    autotune_alpha: bool = parameter(True, 'SAC: learn the temperature so that the entropy tracks the target')
    target_entropy_per_action: float = parameter(-1.0, 'SAC: target entropy per action dimension')
    alpha_lr: float = parameter(3e-4, 'SAC: Adam learning rate of log(alpha)', above=0.0)

    def __post_init__(self) -> None:
        check_limits(self)
        for name in ('env_id', 'device', 'output_dir'):
            if not getattr(self, name):
                raise ValueError(f'{name} must be a non-empty string')
        if self.credit_batch > self.prefetch_batches:
            raise ValueError(f'credit_batch ({self.credit_batch}) must be <= prefetch_batches '
                             f'({self.prefetch_batches})')
        if self.max_queued_batches < self.prefetch_batches:
            raise ValueError(f'max_queued_batches ({self.max_queued_batches}) must be >= prefetch_batches '
                             f'({self.prefetch_batches})')

    def agent_config(self) -> AgentConfig:
        """The AgentConfig: the preset named by network_preset with this learner's overrides."""
        overrides: dict[str, Any] = {
            'algorithm': self.algorithm, 'device': self.device, 'seed': self.seed,
            'batch_size': self.batch_size, 'torch_threads': self.torch_threads, 'alpha': self.alpha,
            'autotune_alpha': self.autotune_alpha, 'target_entropy_per_action': self.target_entropy_per_action,
            'alpha_lr': self.alpha_lr}
        if self.gamma >= 0:
            overrides['gamma'] = float(self.gamma)
        if self.actor_start >= 0:
            overrides['actor_start'] = self.actor_start
        for name in ('actor_lr', 'critic_lr'):
            if getattr(self, name) > 0:
                overrides[name] = float(getattr(self, name))
        return AgentConfig.preset(self.network_preset, **overrides)


@dataclass
class LearnerParameters(LearnerConfig):
    """The learner node's parameters: the config's and the node's own."""

    exit_when_done: bool = parameter(False, 'exit after TRAINING DONE (and the report) instead of idling', live=True)

    def config(self) -> LearnerConfig:
        return LearnerConfig(**{item.name: getattr(self, item.name) for item in fields(LearnerConfig)})


def actor_policy(actor: NumpyActor, action_space: gymnasium.spaces.Box) -> Callable[[np.ndarray], np.ndarray]:
    """obs -> action of the deterministic actor (no exploration noise), clipped to the env's bounds."""
    low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)

    def policy(obs: np.ndarray) -> np.ndarray:
        return np.clip(actor(np.asarray(obs, dtype=np.float32)), low, high)  # clip copies the buffer
    return policy


class LearnerOutputs(Protocol):
    """What the learner sends out; the node publishes, tests record."""

    def request_batches(self, count: int, batch_size: int) -> None: ...
    def publish_weights(self, payload: WeightsPayload) -> None: ...
    def send_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None: ...
    def publish_stats(self, stats: dict[str, float]) -> None: ...
    def submit_model(self, payload: WeightsPayload, fitness: float, generation: int) -> None: ...
    def log(self, level: str, text: str) -> None: ...


@dataclass
class _EpisodeRecord:
    client_id: str
    episode_return: float
    cost: float
    length: int


class Learner(Trainer):
    """The master learner. Call ``start()``, then ``step()`` in a loop until it returns True
    (duration_s elapsed) or you stop, then ``finish()``; ``close()`` always.

    Args:
        config: a LearnerConfig.
        outputs: where requests, weights, priorities, stats, submissions and log lines go.
        name: the requester id (the node's name); batches for another requester are refused.
        clock: monotonic seconds (replaceable in tests).
    """

    # Fields a running learner takes over (ros2 param set on the node); the others are read at start.
    LIVE_FIELDS = tuple(sorted(live_names(LearnerConfig)))   # the fields marked live
    PROGRESS_TAGS = ('losses/critic_loss', 'losses/actor_loss', 'eval/return', 'eval/cost',
                     'charts/version_lag_mean', 'charts/updates_per_sec')
    RUN_LOG_NAME = 'learner'
    STEP_TIMEOUT_S = 0.1

    def __init__(self, config: LearnerConfig, outputs: LearnerOutputs, name: str = 'learner',
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(config, LearnerConfig):
            raise TypeError(f'config must be a LearnerConfig, got {type(config).__name__}')
        super().__init__(config, outputs, name, clock, keep_env=True)
        self.env_steps = EnvStepCounter()
        self._load_saved_state()
        self.credits = CreditTracker(config.prefetch_batches, config.credit_batch, config.credit_timeout_s)
        self.queue = BatchQueue(config.max_queued_batches)
        self.lost_batches = 0
        self.episodes_refused = 0   # episode statistics ignored (NaN/Inf, an overlong client_id)
        self.replay_size = 0
        self.final_results: list[EvaluationResult] | None = None
        self.report_path: Path | None = None
        self.generation_seen = 0
        self.submissions = 0
        self._last_sequence: int | None = None
        self._episodes: collections.deque[_EpisodeRecord] = collections.deque(maxlen=10_000)
        self._gamma_warned = False
        self._replay_seen = False         # a ReplayStats arrived (the waiting line says so)
        self._updates_at_start = self.updates
        self._next_waiting_line = 0.0
        self._evaluate_at_close = config.evaluate_on_stop
        self._eval_actor = NumpyActor(self.agent_config.network, self.obs_dim, self.action_dim,
                                      self.agent.actor_state())
        self._eval_policy = actor_policy(self._eval_actor, cast(gymnasium.spaces.Box, self.env.action_space))

    # ------------------------------------------------------------------ resume and files
    def _restore(self, extra: dict[str, Any]) -> None:
        # The optimizers' state carries the learning rates it was saved with: this run's win.
        for optimizer, lr in ((self.agent.actor_optim, self.agent_config.actor_lr),
                              (self.agent.critic_optim, self.agent_config.critic_lr)):
            for group in optimizer.param_groups:
                group['lr'] = lr
        self.env_steps = EnvStepCounter(int(extra.get('env_steps', 0)))

    def _checkpoint_extra(self) -> dict[str, Any]:
        return {'env_steps': self.env_steps.total, 'eval_return': self.eval_return, 'eval_cost': self.eval_cost,
                'env_id': self.config.env_id}

    def summary(self) -> dict[str, Any]:
        """The run's numbers (learner.json, the TRAINING DONE line)."""
        data: dict[str, Any] = {
            'version': self.version, 'updates': self.updates, 'env_steps': self.env_steps.total,
            'eval_return': self.eval_return, 'eval_cost': self.eval_cost,
            'output_dir': str(self.output_dir), 'wall_s': round(self.wall_s(), 3),
            'architecture_id': self.architecture_id, 'env_id': self.config.env_id,
            'algorithm': self.config.algorithm, 'resumed_from_version': self.resumed_from,
            'checkpoint': str(self.checkpoint_path),
            'run_dir': str(self.logger.run_dir) if self.logger is not None else None,
            'rejected_batches': sum(self.rejected.values()), 'rejected_by_reason': dict(self.rejected),
            'lost_batches': self.lost_batches, 'episodes_refused': self.episodes_refused,
            'dropped_batches': self.queue.dropped,
            'credits_written_off': self.credits.written_off, 'submissions': self.submissions,
            'finished_reason': self.finished_reason}
        if self.final_results is not None:
            data['evaluation'] = str(self.output_dir / EVALUATION_JSON)
            data['table'] = {r.name: {k: r.summary.get(k) for k in ('return', 'cost')} for r in self.final_results}
        if self.report_path is not None:
            data['report'] = str(self.report_path)
        return data

    # ------------------------------------------------------------------ inputs (any thread)
    def receive_batch(self, batch: SampledArrays) -> None:
        """A validated batch arrived (DDS callback thread): queue it for the training thread."""
        now = self.clock()
        count = 1
        if self._last_sequence is not None:
            if batch.sequence > self._last_sequence + 1:
                lost = batch.sequence - self._last_sequence - 1
                self.lost_batches += lost
                count += lost
            elif batch.sequence <= self._last_sequence:
                self.out.log('info', f'batch sequence went back from {self._last_sequence} to '
                                     f'{batch.sequence}: the replay buffer restarted')
        self._last_sequence = batch.sequence
        self.credits.received(now, count)
        if not self.queue.put(batch):
            self.credits.consumed()  # the dropped one will never be trained on

    def reject(self, reason: str) -> int:
        """Count a refused batch; returns the total refused."""
        self.rejected[reason] += 1
        return sum(self.rejected.values())

    def record_episode(self, client_id: str, episode_return: float, cost: float, length: int) -> str:
        """Keep a finished episode for the run log; returns '' or why it was ignored (counted in
        episodes_refused). The client_id becomes a scalar tag, so its length is bounded."""
        if len(client_id) > MAX_ID_LENGTH:
            why = f'a client_id of {len(client_id)} characters (at most {MAX_ID_LENGTH})'
        elif not (math.isfinite(episode_return) and math.isfinite(cost)):
            why = 'NaN/Inf'
        else:
            self._episodes.append(_EpisodeRecord(str(client_id), float(episode_return), float(cost), int(length)))
            return ''
        self.episodes_refused += 1
        return why

    def observe_replay(self, transitions_received: int, size: int) -> None:
        """The replay's own counters (ReplayStats): environment steps and its current size."""
        self.env_steps.observe(transitions_received)
        self.replay_size = int(size)
        self._replay_seen = True

    def observe_generation(self, generation: int) -> None:
        """The parameter server's latest merged generation (collective mode)."""
        self.generation_seen = max(self.generation_seen, int(generation))

    def replay_joined(self) -> None:
        """A (new) subscriber on sample_requests: request our credits again."""
        self.credits.peer_joined()

    def _reschedule(self, changes: dict[str, Any], now: float) -> None:
        config = self.config
        if 'eval_period_s' in changes:
            self._next_eval = next_due(now, config.eval_period_s)
        if 'generation_period_s' in changes and config.mode == 'collective':
            self._next_generation = next_due(now, config.generation_period_s)
        if 'updates_per_sec_limit' in changes:
            self._next_update = now   # and reconfigure's wake() ends a pause under the old limit

    # ------------------------------------------------------------------ the loop
    def _on_start(self, now: float) -> None:
        """Publish the current weights (version 1, or the checkpoint's + 1) and request batches."""
        c = self.config
        if c.eval_period_s > 0:
            # The learning curve starts from the initial policy: scored here, before any update can change it
            # (a DDPG actor starts with near-zero outputs, which one Adam step can move across the env's thresholds).
            self.evaluate()
        self._next_eval = next_due(self.clock(), c.eval_period_s)
        self._next_generation = next_due(now, c.generation_period_s) if c.mode == 'collective' else math.inf
        self._next_update = now
        self._updates_at_start, self._next_waiting_line = self.updates, now
        if self.resumed_from is not None:
            self.out.log('info', f'resumed from {self.checkpoint_path}: version {self.version}, '
                                 f'{self.updates} updates')
        self.publish_weights()
        self._request(now)

    def _train(self, timeout: float) -> None:
        """Train on one batch if one arrives within ``timeout`` s (rate pacing first)."""
        now = self.clock()
        if self.config.updates_per_sec_limit > 0 and now < self._next_update:
            self._pause(min(timeout, self._next_update - now))   # updates_per_sec_limit; wake() ends it
            return
        batch = self.queue.get(timeout)
        if batch is not None:
            self.train_on(batch)

    def train_on(self, batch: SampledArrays) -> dict[str, Any]:
        """One gradient update on a batch, priorities, lag, and a publish when one is due."""
        c = self.config
        self.credits.consumed()
        if not self._gamma_warned and self.agent_config.gamma > 0 \
                and float(batch.discounts.max()) > self.agent_config.gamma + 1e-6:
            self._gamma_warned = True
            self.out.log('warning', f'batch discounts reach {float(batch.discounts.max()):.4g} > gamma '
                                    f'{self.agent_config.gamma}: the replay_buffer uses another gamma')
        self.replay_size = batch.replay_size
        self.env_steps.total = max(self.env_steps.total, batch.replay_size)  # at least what is stored
        stats = self.agent.update(batch, stored_transitions=batch.replay_size)
        self._count_update(stats)
        self._period.lag.add(self.version, batch.policy_versions)
        if c.prioritized:
            self.out.send_priorities(batch.indices, np.abs(stats['td_errors']).astype(np.float32))
        if self.updates % c.publish_every_updates == 0:
            self.publish_weights()
        if c.updates_per_sec_limit > 0:
            self._next_update = max(self._next_update, self.clock()) + 1.0 / c.updates_per_sec_limit
        self._request(self.clock())
        return stats

    def _request(self, now: float) -> None:
        count = self.credits.take_request(now)
        if count:
            self.out.request_batches(count, self.config.batch_size)

    def _before_stats(self, now: float) -> None:
        self._request(now)
        self._log_episodes()

    def _after_stats(self, now: float) -> None:
        if now >= self._next_eval:
            self.evaluate()
            self._next_eval = self.clock() + self.config.eval_period_s
        if now >= self._next_generation:
            self.submit_generation()
            self._next_generation = self.clock() + self.config.generation_period_s

    # ------------------------------------------------------------------ periodic work
    def _env_step_count(self) -> int:
        return self.env_steps.total

    def _replay_size(self) -> int:
        return self.replay_size

    def stop_reason(self, now: float) -> str | None:
        """'updates' once max_updates were made in this process, else the duration's."""
        limit = self.config.max_updates
        if limit > 0 and self.updates - self._updates_at_start >= limit:
            return 'updates'
        return super().stop_reason(now)

    def _stats_scalars(self, stats: dict[str, float]) -> dict[str, float]:
        return {**super()._stats_scalars(stats), 'charts/rejected_batches': stats['rejected_batches']}

    def publish_stats(self, now: float) -> dict[str, float]:
        stats = super().publish_stats(now)
        if self.logger is not None:
            if self.updates > self._updates_at_start:
                self.logger.progress(self.updates)
            elif self.config.progress_period_s > 0 and now >= self._next_waiting_line:
                # No batch yet: say what is missing instead of printing NaN losses.
                self._next_waiting_line = now + self.config.progress_period_s
                self.out.log('info', waiting_for_replay(self.replay_size if self._replay_seen else None,
                                                        self.agent_config.critic_start))
        return stats

    def _log_episodes(self) -> None:
        if self.logger is None:
            return
        while self._episodes:
            record = self._episodes.popleft()
            client = record.client_id or 'unknown'
            self.logger.log_scalars({f'episodes/{client}/return': record.episode_return,
                                     f'episodes/{client}/cost': record.cost,
                                     'charts/episodic_return': record.episode_return,
                                     'charts/episodic_length': record.length}, step=self.env_steps.total)

    def _sync_eval_actor(self) -> None:
        self._eval_actor.load_weights(self.agent.actor_state(), self.version)

    def _log_eval(self) -> None:
        self.logger.log_scalars({'eval/return': self.eval_return,
                                 **({'eval/cost': self.eval_cost} if math.isfinite(self.eval_cost) else {})},
                                step=self.updates)

    def evaluate(self, episodes: int | None = None) -> EvaluationResult:
        """Noise-free episodes of the current actor on the learner's own env (same seeds every time)."""
        self._sync_eval_actor()
        result = evaluate_policy(self.env, self._eval_policy, episodes=episodes or self.config.eval_episodes,
                                 seed=self.config.eval_seed, name='learned')
        summary = result.summary
        self.eval_return = float(summary['return'])
        self.eval_cost = float(summary.get('cost', math.nan))
        if self.logger is not None:
            self._log_eval()
        return result

    def submit_generation(self) -> None:
        """Collective mode: the current actor with its fitness (a fresh evaluation's mean return)."""
        fitness = float(self.evaluate().summary['return'])
        generation = self.generation_seen + 1
        payload = encode_weights(self.agent.actor, self.architecture_id, self.version)
        self.out.submit_model(payload, fitness, generation)
        self.submissions += 1

    # ------------------------------------------------------------------ the end
    def _unpublished_changes(self) -> bool:
        return self.updates % self.config.publish_every_updates != 0

    def _finish_work(self) -> None:
        """Checkpoint, evaluate against the baselines, write the files (the TRAINING DONE line's)."""
        self.save_checkpoint()
        self.final_evaluation()
        self.save_checkpoint()  # learner.json with the table's numbers
        self.write_report()

    def write_report(self) -> Path | None:
        """report.md and its plots in output_dir (report.py: the one report of a training run, the
        launched graph's and make run's alike); None when off or when it failed (said in one line)."""
        if not self.config.report:
            return None
        if self.logger is not None:
            self.logger.flush()  # the plots read scalars.csv
        try:
            from dcdrl_cloud.report import build_report
            self.report_path = build_report(self.output_dir, done=json_safe(self.summary()),
                                            title=f'DC-DRL {self.config.mode} training on {self.config.env_id}')
        except Exception as error:  # noqa: BLE001  (a failed plot must not cost the checkpoint or the table)
            self.out.log('error', f'report not written: {type(error).__name__}: {error}')
        return self.report_path

    def final_evaluation(self) -> list[EvaluationResult]:
        c = self.config
        self._sync_eval_actor()
        results = final_evaluation(c.env_id, self._eval_policy, c.final_eval_episodes, c.oracle_episodes,
                                   c.eval_seed)
        learned = results[0].summary
        self.eval_return = float(learned['return'])
        self.eval_cost = float(learned.get('cost', math.nan))
        self.final_results = results
        write_evaluation(self.output_dir, results, {
            'env_id': c.env_id, 'version': self.version, 'updates': self.updates,
            'env_steps': self.env_steps.total, 'episodes': c.final_eval_episodes,
            'oracle_episodes': c.oracle_episodes if has_oracle(c.env_id) else 0, 'seed': c.eval_seed,
            'architecture_id': self.architecture_id})
        if self.logger is not None:
            self.logger.log_scalars({f'final/{r.name}/{key}': r.summary[key] for r in results
                                     for key in ('return', 'cost') if key in r.summary}, self.updates)
            self._log_eval()   # the learning curve (eval/*, TensorBoard and the report) ends at the table's number
        return results

    def close(self, evaluate: bool | None = None) -> None:
        """Stop: checkpoint (and the final table when ``evaluate``, default evaluate_on_stop, and
        it was not written yet), close the run log and the env. Call after the training thread ended."""
        self._evaluate_at_close = self.config.evaluate_on_stop if evaluate is None else evaluate
        super().close()

    def _close_unfinished(self) -> None:
        if self._evaluate_at_close:
            self.finish(publish=False)  # at shutdown the publishers may be gone
        else:
            self.save_checkpoint()
            self.write_report()


__all__ = ['BatchRejected', 'CHECKPOINT_NAME', 'Learner', 'LearnerConfig', 'LearnerOutputs', 'LearnerParameters',
           'MODES', 'PUBLISHED_VERSION_NAME', 'SUMMARY_NAME', 'actor_policy', 'env_dims', 'json_safe',
           'read_sampled_batch']
