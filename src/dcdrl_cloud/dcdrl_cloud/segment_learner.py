"""The cloud learner's "segments" mode (cloud-edge workflow), no ROS import.

Edge controllers stream one TrajectorySegment per control step; this learner turns them into
transitions (dcdrl_cloud.segments), stores them in its own replay buffer, trains DDPG/TD3 in its
own thread at a fixed ratio of gradient steps per stored transition, publishes actor weights,
asks the edges for noise-free evaluation episodes, keeps the best weights and stops at
convergence. Read top to bottom:

1. ``SegmentLearnerConfig``: one future ROS parameter per field, validated.
2. ``SegmentLearnerOutputs``: what the learner sends out (the node publishes; tests record).
3. ``SegmentLearner``:
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
from dataclasses import asdict, dataclass, replace
import json
import math
from pathlib import Path
import threading
import time
from typing import Any, Callable, Optional, Protocol

import gymnasium
import numpy as np

import dcdrl_sim  # noqa: F401  (registers the environments)
from dcdrl_cloud.best_policy import BestPolicy
from dcdrl_cloud.learner import CHECKPOINT_NAME, PUBLISHED_VERSION_NAME, SUMMARY_NAME, env_dims, json_safe
from dcdrl_cloud.segments import (
    EpisodeSummary, SegmentPairer, SegmentRejected, SegmentView, SwingUpReward, Transition, read_segment)
from dcdrl_core.files import atomic_write
from dcdrl_core.learning.agents import ALGORITHMS, AGENT_PRESETS, Agent, AgentConfig
from dcdrl_core.learning.checkpoint import PublishedVersion, load_checkpoint, save_checkpoint
from dcdrl_core.learning.codec import WeightsPayload, WeightsRejected, encode_weights, payload_to_bytes
from dcdrl_core.learning.replay import ReplayBuffer
from dcdrl_core.learning.runlog import RunLogger
from dcdrl_sim.cartpole.evaluation import ConvergenceTracker
from dcdrl_sim.cartpole.task import SwingUpTask

# Same values as EdgeCommand.msg; the node test checks that they agree.
RESET = 1
EVALUATE = 2
TRAIN = 3
HOLD = 4
RESUME = 5

REPLAY_NAME = 'replay.npz'
ACTOR_NAME = 'actor.safetensors'
BEST_ACTOR_NAME = 'best_actor.safetensors'
CARTPOLE_ENV_ID = 'dcdrl_sim/CartPoleSwingUp-v0'
# Gradient steps per step() call at most, so that publishing, stats and stop stay responsive
# while the trainer catches up on a backlog.
MAX_UPDATES_PER_STEP = 32


# ---------------------------------------------------------------------------------- config
@dataclass
class SegmentLearnerConfig:
    """The segments-mode learner's parameters (one ROS parameter per field, same name and default)."""

    env_id: str = CARTPOLE_ENV_ID        # env whose spaces size the networks (obs_dim, action_dim)
    network_preset: str = 'cloud_edge'   # AgentConfig preset: 'cloud_edge' or 'dcdrl'
    algorithm: str = 'ddpg'              # 'ddpg' or 'td3'
    device: str = 'auto'                 # 'cpu', 'cuda', 'cuda:N' or 'auto'
    seed: int = 0                        # network init and replay sampling seeds
    gamma: float = -1.0                  # discount; < 0: the preset's (0.99)
    output_dir: str = 'runs/edge'        # checkpoint, replay, weights files, learner.json, run logs
    duration_s: float = 0.0              # training time of this process; 0 = until converged or stopped
    batch_size: int = -1                 # transitions per gradient step; < 0: the preset's (128)
    buffer_size: int = -1                # replay capacity; < 0: the preset's (1 000 000)
    critic_start: int = -1               # stored transitions before the first update; < 0: the preset's (3500)
    actor_start: int = -1                # stored transitions before actor updates; < 0: the preset's (5000)
    updates_per_transition: float = 1.0  # gradient steps per stored transition (an upper bound: see docs)
    publish_period_s: float = 0.5        # publish the actor at most this often, only when it changed
    eval_every_episodes: int = 5         # send EVALUATE after this many training episodes; 0 = never
    initial_evaluations: int = 0         # evaluation episodes asked for before training episodes count
    convergence_evals: int = 3           # successful evaluations in a row = converged
    max_swing_up_steps: int = 250        # an evaluation succeeds when the tip is on target by this step
    stop_when_converged: bool = True     # at convergence: send HOLD and finish
    pole_length: float = 0.64            # m; reward geometry (must match the plant)
    target_x: float = 0.0                # m; the target point is (target_x, pole_length)
    target_distance: float = 0.05        # m; tip within this distance = on target
    tip_reward_scale: float = 0.5        # r = scale * exp(-decay * d_tip) - cost * a^2 - penalty * failed
    tip_reward_decay: float = 5.0        # 1/m
    action_cost: float = 0.05
    failure_penalty: float = 10.0
    max_devices: int = 16                # edge devices paired at once; more are refused and counted
    kept_versions: int = 128             # published payloads kept by version (best weights, requests)
    checkpoint_period_s: float = 30.0    # learner.ckpt (+ replay, actor file, learner.json); 0 = only at the end
    checkpoint_replay: bool = True       # save the replay buffer with each checkpoint (resume keeps it)
    resume: bool = True                  # continue from output_dir/learner.ckpt when present
    init_checkpoint: str = ''            # fine-tuning: start from this checkpoint's networks and optimizers
    stats_period_s: float = 1.0          # TrainingStats and run-log scalars
    tensorboard: bool = True             # TensorBoard event files besides scalars.csv
    torch_threads: int = 1               # torch.set_num_threads
    progress_period_s: float = 10.0      # progress line on stdout; 0 = off

    def __post_init__(self) -> None:
        for name in ('env_id', 'network_preset', 'algorithm', 'device', 'output_dir'):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ValueError(f'{name} must be a non-empty string, got {value!r}')
        if not isinstance(self.init_checkpoint, str):
            raise ValueError(f"init_checkpoint must be a path string ('' = none), got {self.init_checkpoint!r}")
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f'algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}')
        if self.network_preset not in AGENT_PRESETS:
            raise ValueError(f'network_preset must be one of {sorted(AGENT_PRESETS)}, got {self.network_preset!r}')
        for name in ('convergence_evals', 'max_swing_up_steps', 'max_devices', 'kept_versions', 'torch_threads'):
            _int(name, getattr(self, name), 1)
        for name in ('seed', 'eval_every_episodes', 'initial_evaluations'):
            _int(name, getattr(self, name), 0)
        for name in ('batch_size', 'buffer_size', 'critic_start', 'actor_start'):
            _int(name, getattr(self, name), None)  # any int: < 0 selects the preset
        if self.batch_size == 0 or self.buffer_size == 0:
            raise ValueError('batch_size and buffer_size must be > 0 (or < 0 for the preset value)')
        for name in ('duration_s', 'publish_period_s', 'checkpoint_period_s', 'progress_period_s'):
            _number(name, getattr(self, name), strict=False)
        for name in ('updates_per_transition', 'stats_period_s', 'pole_length'):
            _number(name, getattr(self, name), strict=True)
        for name in ('stop_when_converged', 'checkpoint_replay', 'resume', 'tensorboard'):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f'{name} must be a bool, got {getattr(self, name)!r}')
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, float)) or math.isnan(self.gamma) \
                or self.gamma > 1:
            raise ValueError(f'gamma must be in [0, 1] (or < 0 for the preset value), got {self.gamma!r}')
        self.task()  # SwingUpTask checks the reward constants
        agent = self.agent_config()
        if agent.critic_start > agent.buffer_size:
            raise ValueError(f'critic_start ({agent.critic_start}) must be <= buffer_size ({agent.buffer_size}): '
                             'training would never start')

    def task(self) -> SwingUpTask:
        """The reward constants as a SwingUpTask (raises on bad values)."""
        return SwingUpTask(target_x=self.target_x, target_distance=self.target_distance,
                           tip_reward_scale=self.tip_reward_scale, tip_reward_decay=self.tip_reward_decay,
                           action_cost=self.action_cost, failure_penalty=self.failure_penalty)

    def agent_config(self) -> AgentConfig:
        """The preset named by network_preset with this learner's overrides (< 0 keeps the preset's)."""
        overrides: dict[str, Any] = {'algorithm': self.algorithm, 'device': self.device, 'seed': self.seed,
                                     'torch_threads': self.torch_threads,
                                     'updates_per_step': float(self.updates_per_transition)}
        if self.gamma >= 0:
            overrides['gamma'] = float(self.gamma)
        for name in ('batch_size', 'buffer_size', 'critic_start', 'actor_start'):
            if getattr(self, name) >= 0:
                overrides[name] = getattr(self, name)
        return AgentConfig.preset(self.network_preset, **overrides)


def _int(name: str, value: Any, minimum: Optional[int]) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        bound = f' >= {minimum}' if minimum is not None else ''
        raise ValueError(f'{name} must be an integer{bound}, got {value!r}')


def _number(name: str, value: Any, strict: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < 0 or (strict and value == 0):
        raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} 0, got {value!r}")


# ---------------------------------------------------------------------------------- outputs
class SegmentLearnerOutputs(Protocol):
    """What the learner sends out; the node publishes, tests record."""

    def publish_weights(self, payload: WeightsPayload) -> None: ...
    def publish_stats(self, stats: dict[str, float]) -> None: ...       # TrainingStats field names
    def publish_episode(self, summary: EpisodeSummary) -> None: ...
    def send_command(self, kind: int) -> None: ...                       # EdgeCommand kinds, to every device
    def log(self, level: str, text: str) -> None: ...                    # 'info', 'warning', 'error'


@dataclass
class _Period:
    """Sums over one stats period."""

    updates: int = 0
    critic_loss: float = 0.0
    q_mean: float = 0.0
    actor_loss: float = 0.0
    actor_updates: int = 0
    lag_count: int = 0
    lag_total: float = 0.0
    lag_min: float = math.inf
    lag_max: float = -math.inf


# ---------------------------------------------------------------------------------- the learner
class SegmentLearner:
    """Trains from edge segments. ``start()``, then ``step()`` in a loop (or ``run(stop)`` in the
    training thread), ``close()`` always. Inputs (``receive``, ``reject``, ``weights_for_request``)
    may come from any thread.

    Args:
        config: a SegmentLearnerConfig.
        outputs: where weights, stats, episode summaries, commands and log lines go.
        name: the learner's name (logs, run directory).
        clock: monotonic seconds (replaceable in tests).
    """

    def __init__(self, config: SegmentLearnerConfig, outputs: SegmentLearnerOutputs, name: str = 'learner',
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(config, SegmentLearnerConfig):
            raise TypeError(f'config must be a SegmentLearnerConfig, got {type(config).__name__}')
        self.config, self.out, self.name, self.clock = config, outputs, name, clock
        env = gymnasium.make(config.env_id)
        try:
            self.obs_dim, self.action_dim = env_dims(env)
        finally:
            env.close()
        self.agent_config = config.agent_config()
        self.agent = Agent(self.agent_config, self.obs_dim, self.action_dim)
        self.architecture_id = self.agent.architecture_id
        self.output_dir = Path(config.output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = self.output_dir / CHECKPOINT_NAME
        self.replay_path = self.output_dir / REPLAY_NAME
        self.actor_path = self.output_dir / ACTOR_NAME
        self.best_actor_path = self.output_dir / BEST_ACTOR_NAME

        self.reward = SwingUpReward(config.pole_length, config.task())
        self.pairer = SegmentPairer(self.reward, config.max_devices)
        self.tracker = ConvergenceTracker(k=config.convergence_evals, max_swing_up_steps=config.max_swing_up_steps)
        self.gamma = float(self.agent_config.gamma)
        self.version = 0                    # last published version
        self.updates = 0                    # gradient steps, across resumes
        self.env_steps = 0                  # transitions stored, across resumes
        self.episodes = 0                   # training episodes closed
        self.evaluations_incomplete = 0     # evaluation episodes with a gap: not scored
        self.eval_return = math.nan         # return of the latest scored evaluation episode
        self.best = BestPolicy(self.best_actor_path, self._write_payload)   # best_actor.safetensors
        self.converged = False
        self.steps_to_converge: Optional[int] = None
        self.updates_to_converge: Optional[int] = None
        self.wall_s_to_converge: Optional[float] = None
        self.converged_version: Optional[int] = None
        self.resumed_from: Optional[int] = None
        self.init_version: Optional[int] = None
        self.finished_reason: Optional[str] = None
        self._episodes_since_eval = 0
        self._wall_before = 0.0             # wall seconds of earlier runs (resume)
        self.buffer: Optional[ReplayBuffer] = None
        self._early_warnings: list[str] = []   # logged by start(), when the outputs are wired

        if config.resume and self.checkpoint_path.is_file():
            self._resume()
        elif config.init_checkpoint:
            self._load_init(config.init_checkpoint)
        if self.buffer is None:
            self.buffer = self._new_buffer()
        # Not resumed: a best_actor file in output_dir is an earlier run's, replaced at this run's first best.
        self.best.earlier_file = self.resumed_from is None and self.best_actor_path.is_file()
        # Versions published after the last checkpoint (a hard kill) are not reused.
        self.published = PublishedVersion(self.output_dir / PUBLISHED_VERSION_NAME)
        self.version = max(self.version, self.published.last())

        self.rejected: collections.Counter[str] = collections.Counter()
        self.updates_behind = 0             # gradient steps the ratio allows that are not done yet
        self.max_updates_behind = 0
        self._run_lag_total, self._run_lag_count = 0.0, 0  # whole-run version lag (learner.json)
        self._eligible = 0                  # transitions stored at or above critic_start (this run)
        self._session_updates = 0           # gradient steps of this run
        self._initial_evals_left = config.initial_evaluations
        self._payloads: collections.OrderedDict[int, WeightsPayload] = collections.OrderedDict()
        self._latest: Optional[WeightsPayload] = None
        self._published_actor_updates = -1
        self._publish_requested = False
        self._period = _Period()
        self._last_stats = {'critic_loss': math.nan, 'actor_loss': math.nan, 'q_mean': math.nan}
        self._lock = threading.Lock()       # pairer, buffer writes, counters shared with the callbacks
        self._wake = threading.Condition(self._lock)
        self._woken = False
        self._finish_lock = threading.Lock()
        self.logger: Optional[RunLogger] = None
        self.started_at: Optional[float] = None
        self.finished = False
        self.closed = False

    @property
    def best_version(self) -> Optional[int]:
        """Version in best_actor.safetensors (None: no trained policy evaluated yet)."""
        return self.best.version

    @property
    def best_eval_return(self) -> float:
        return self.best.eval_return

    # ------------------------------------------------------------------ set-up
    def _new_buffer(self) -> ReplayBuffer:
        return ReplayBuffer(self.agent_config.buffer_size, self.obs_dim, self.action_dim, seed=self.config.seed)

    def _resume(self) -> None:
        try:
            _, info = load_checkpoint(self.checkpoint_path, self.agent)
        except (ValueError, RuntimeError, KeyError) as error:
            raise ValueError(f'cannot resume from {self.checkpoint_path}: {error}; use another output_dir '
                             f'or resume:=false') from None
        extra = info.extra
        self.version = self.resumed_from = info.version
        self.updates = int(extra.get('updates', 0))
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

    def _load_replay(self) -> Optional[ReplayBuffer]:
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
    def receive(self, seg: SegmentView) -> Optional[Transition]:
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
                p = self._period
                p.lag_count += 1
                p.lag_total += lag
                p.lag_min = min(p.lag_min, lag)
                p.lag_max = max(p.lag_max, lag)
                self._run_lag_total += lag
                self._run_lag_count += 1
            self._wake.notify()
        return transition

    def receive_message(self, message: Any) -> Optional[Transition]:
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

    def weights_for_request(self, min_version: int = 0) -> Optional[WeightsPayload]:
        """The latest published payload when its version is >= min_version (GetPolicy); otherwise
        None, and the training thread publishes as soon as the actor has changed."""
        with self._lock:
            latest = self._latest
            if latest is not None and latest.version >= min_version:
                return latest
            self._publish_requested = True
            return None

    def payload_for_version(self, version: int) -> Optional[WeightsPayload]:
        """A recently published payload by version (the last kept_versions are kept)."""
        with self._lock:
            return self._payloads.get(int(version))

    def wake(self) -> None:
        """End a wait in step() at once (call before joining the training thread)."""
        with self._lock:
            self._woken = True
            self._wake.notify_all()

    # ------------------------------------------------------------------ the loop
    def start(self) -> None:
        """Open the run log and publish the current actor at once (version 1, or the loaded + 1).
        Idempotent."""
        if self.started_at is not None:
            return
        c = self.config
        now = self.clock()
        self.started_at = now
        self.logger = RunLogger(c.env_id, self.name, c.seed, root=self.output_dir, tensorboard=c.tensorboard,
                                print_every_s=c.progress_period_s if c.progress_period_s > 0 else None,
                                progress_tags=('charts/episodic_return', 'eval/return', 'eval/swing_up_steps',
                                               'losses/critic_loss', 'charts/updates_per_sec'))
        self.logger.write_config({**asdict(c), 'agent': self.agent_config.to_dict(),
                                  'architecture_id': self.architecture_id, 'resumed_from_version': self.resumed_from,
                                  'init_version': self.init_version})
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
        self._next_stats = now + c.stats_period_s
        self._next_checkpoint = now + c.checkpoint_period_s if c.checkpoint_period_s > 0 else math.inf
        self._next_publish = now + c.publish_period_s
        self._rate_time, self._rate_updates, self._rate_steps = now, self.updates, self.env_steps
        self.publish_weights()
        if self._initial_evals_left > 0 and not self.converged:
            self.out.send_command(EVALUATE)

    # Fields a running learner takes over (ros2 param set on the node); the others are read at start.
    LIVE_FIELDS = ('duration_s', 'updates_per_transition', 'publish_period_s', 'stats_period_s',
                   'checkpoint_period_s', 'stop_when_converged')

    def reconfigure(self, **changes: Any) -> SegmentLearnerConfig:
        """Take new values of LIVE_FIELDS while training: checked as at start (ValueError), a changed
        period counts from now (checkpoint_period_s 0: only at the end). Safe from another thread."""
        fixed = sorted(set(changes) - set(self.LIVE_FIELDS))
        if fixed:
            raise ValueError(f'{", ".join(fixed)} cannot change while the learner runs')
        config = replace(self.config, **changes)
        self.config = config
        if self.started_at is not None:
            now = self.clock()
            if 'stats_period_s' in changes:
                self._next_stats = now + config.stats_period_s
            if 'publish_period_s' in changes:
                self._next_publish = now + config.publish_period_s
            if 'checkpoint_period_s' in changes:
                self._next_checkpoint = now + config.checkpoint_period_s if config.checkpoint_period_s > 0 else math.inf
        self.wake()
        return config

    def wall_s(self, now: Optional[float] = None) -> float:
        """Wall seconds of training, across resumes."""
        if self.started_at is None:
            return self._wall_before
        return self._wall_before + (self.clock() if now is None else now) - self.started_at

    def _owed_locked(self) -> int:
        """Gradient steps the ratio allows now and that are not done yet."""
        allowed = math.floor(self._eligible * self.config.updates_per_transition + 1e-9)
        return allowed - self._session_updates

    def step(self, timeout: float = 0.05) -> bool:
        """Train as the ratio allows (at most MAX_UPDATES_PER_STEP steps; with nothing to do, wait up
        to ``timeout`` s for data), then the periodic work. Returns True when the run is done
        (converged with stop_when_converged, or duration_s elapsed)."""
        if self.started_at is None:
            raise RuntimeError('call start() first')
        with self._lock:
            owed = self._owed_locked()
            if owed <= 0 and timeout > 0 and not self._woken:
                self._wake.wait(timeout)
                owed = self._owed_locked()
            self._woken = False
        for _ in range(min(owed, MAX_UPDATES_PER_STEP)):
            self._train_once()
        with self._lock:
            self.updates_behind = max(0, self._owed_locked())
        self.max_updates_behind = max(self.max_updates_behind, self.updates_behind)
        now = self.clock()
        self._periodic(now)
        return self.done(now)

    def _train_once(self) -> dict[str, Any]:
        stored = len(self.buffer)
        stats = self.agent.update(self.buffer.sample(self.agent_config.batch_size), stored_transitions=stored)
        self.updates += 1
        self._session_updates += 1
        p = self._period
        p.updates += 1
        p.critic_loss += stats['critic_loss']
        p.q_mean += stats['q_mean']
        if stats['actor_loss'] is not None:
            p.actor_loss += stats['actor_loss']
            p.actor_updates += 1
        return stats

    def done(self, now: Optional[float] = None) -> bool:
        if self.started_at is None:
            return False
        if self.converged and self.config.stop_when_converged:
            self.finished_reason = self.finished_reason or 'converged'
            return True
        now = self.clock() if now is None else now
        if self.config.duration_s > 0 and now - self.started_at >= self.config.duration_s:
            self.finished_reason = self.finished_reason or 'duration'
            return True
        return False

    def _periodic(self, now: float) -> None:
        c = self.config
        self._handle_episodes(now)
        if self.agent.actor_updates != self._published_actor_updates \
                and (now >= self._next_publish or self._publish_requested):
            self.publish_weights()
            self._next_publish = now + c.publish_period_s
        if now >= self._next_stats:
            self._next_stats = now + c.stats_period_s
            self.publish_stats(now)
        if now >= self._next_checkpoint:
            self.save_checkpoint()
            self._next_checkpoint = self.clock() + c.checkpoint_period_s
        if self.logger is not None:
            self.logger.progress(self.env_steps)

    # ------------------------------------------------------------------ weights
    def publish_weights(self) -> Optional[WeightsPayload]:
        """Publish the online actor as the next version (not when it holds NaN/Inf)."""
        try:
            payload = encode_weights(self.agent.actor, self.architecture_id, self.version + 1)
        except WeightsRejected as error:
            self.out.log('error', f'not publishing: {error}')
            return None
        self.version = payload.version
        self.published.record(self.version)  # before publishing: a kill in between never reuses it
        self.best.note_published(self.version, trained=self.agent.actor_updates > 0)
        with self._lock:
            self._latest = payload
            self._payloads[payload.version] = payload
            while len(self._payloads) > self.config.kept_versions:
                self._payloads.popitem(last=False)
            self._publish_requested = False
        self._published_actor_updates = self.agent.actor_updates
        self.out.publish_weights(payload)
        return payload

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

    def _on_training_episode(self, summary: EpisodeSummary) -> None:
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
            self.out.send_command(EVALUATE)
            self._episodes_since_eval = 0
        elif c.eval_every_episodes > 0 and self._episodes_since_eval >= c.eval_every_episodes:
            self.out.send_command(EVALUATE)
            self._episodes_since_eval = 0

    def _on_evaluation(self, summary: EpisodeSummary, now: float) -> None:
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
                self.out.send_command(EVALUATE)
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
                self.out.send_command(HOLD)

    # ------------------------------------------------------------------ stats, files, the end
    def stats(self, now: float) -> dict[str, float]:
        """TrainingStats fields (names as in the message) for the period since the last call."""
        p = self._period
        if p.updates:
            self._last_stats['critic_loss'] = p.critic_loss / p.updates
            self._last_stats['q_mean'] = p.q_mean / p.updates
        if p.actor_updates:
            self._last_stats['actor_loss'] = p.actor_loss / p.actor_updates
        with self._lock:
            lag = ((p.lag_min, p.lag_total / p.lag_count, p.lag_max) if p.lag_count
                   else (math.nan, math.nan, math.nan))
            self._period = _Period()
            env_steps, replay_size, rejected = self.env_steps, len(self.buffer), sum(self.rejected.values())
        elapsed = max(1e-9, now - self._rate_time)
        updates_per_sec = (self.updates - self._rate_updates) / elapsed
        steps_per_sec = (env_steps - self._rate_steps) / elapsed
        self._rate_time, self._rate_updates, self._rate_steps = now, self.updates, env_steps
        return {
            'policy_version': self.version, 'updates': self.updates, 'env_steps': env_steps,
            'replay_size': replay_size, **self._last_stats,
            'updates_per_sec': updates_per_sec, 'env_steps_per_sec': steps_per_sec,
            'version_lag_min': lag[0], 'version_lag_mean': lag[1], 'version_lag_max': lag[2],
            'rejected_batches': rejected, 'eval_return': self.eval_return, 'eval_cost': math.nan}

    def publish_stats(self, now: float) -> dict[str, float]:
        stats = self.stats(now)
        self.out.publish_stats(stats)
        if self.logger is not None:
            with self._lock:
                counters = self.pairer.counters()
            scalars = {'losses/critic_loss': stats['critic_loss'], 'losses/actor_loss': stats['actor_loss'],
                       'losses/q_mean': stats['q_mean'], 'charts/updates_per_sec': stats['updates_per_sec'],
                       'charts/env_steps_per_sec': stats['env_steps_per_sec'],
                       'charts/policy_version': stats['policy_version'], 'charts/replay_size': stats['replay_size'],
                       'charts/updates_behind': self.updates_behind,
                       'segments/rejected': stats['rejected_batches'], 'segments/gaps': counters['gaps'],
                       'segments/stale': counters['stale'], 'segments/episode_mismatch': counters['episode_mismatch']}
            if math.isfinite(stats['version_lag_mean']):
                scalars.update({'charts/version_lag_min': stats['version_lag_min'],
                                'charts/version_lag_mean': stats['version_lag_mean'],
                                'charts/version_lag_max': stats['version_lag_max']})
            self.logger.log_scalars({k: v for k, v in scalars.items() if not (isinstance(v, float) and math.isnan(v))},
                                    step=self.env_steps)
        return stats

    def agent_is_finite(self) -> bool:
        """False once training diverged (NaN/Inf in a network): such an agent is never saved."""
        import torch
        return all(bool(torch.isfinite(p).all()) for net in (self.agent.actor, self.agent.critic)
                   for p in net.parameters())

    def save_checkpoint(self) -> bool:
        """learner.ckpt, replay.npz (checkpoint_replay), actor.safetensors (the latest published) and
        learner.json. Refuses to overwrite a good checkpoint with a diverged agent."""
        if not self.agent_is_finite():
            self.out.log('error', f'networks contain NaN/Inf: not overwriting {self.checkpoint_path}')
            return False
        t = self.tracker
        extra = {
            'updates': self.updates, 'env_steps': self.env_steps, 'episodes': self.episodes,
            'evaluations_incomplete': self.evaluations_incomplete, 'eval_return': self.eval_return,
            **self.best.state(),
            'converged': self.converged, 'steps_to_converge': self.steps_to_converge,
            'updates_to_converge': self.updates_to_converge, 'wall_s_to_converge': self.wall_s_to_converge,
            'converged_version': self.converged_version, 'episodes_since_eval': self._episodes_since_eval,
            'wall_s': self.wall_s(), 'init_version': self.init_version, 'env_id': self.config.env_id,
            'tracker': {'streak': t.streak, 'evaluations': t.evaluations, 'converged': t.converged,
                        'converged_at': t.converged_at, 'history': list(t.history)}}
        save_checkpoint(self.checkpoint_path, self.agent, version=self.version, extra=json_safe(extra))
        if self.config.checkpoint_replay:
            self.buffer.save(self.replay_path)
        if self._latest is not None:
            self._write_payload(self.actor_path, self._latest)
        self.write_summary()
        return True

    def write_summary(self) -> Path:
        path = self.output_dir / SUMMARY_NAME
        data = json.dumps(json_safe(self.summary()), indent=2, allow_nan=False).encode()
        atomic_write(path, lambda handle: handle.write(data))
        return path

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

    def finish(self) -> dict[str, Any]:
        """Publish the actor if it changed since the last publish, checkpoint, write learner.json.
        Returns the summary. Idempotent."""
        with self._finish_lock:
            if not self.finished:
                if self.started_at is not None and self.agent.actor_updates != self._published_actor_updates:
                    self.publish_weights()
                self.save_checkpoint()
                self.finished = True
                self.out.log('info', self.best.stop_note(self.actor_path, self.version))
                if self.logger is not None:
                    self.logger.flush()
            return self.summary()

    def close(self) -> None:
        """Final checkpoint and summary (unless finish() wrote them), close the run log. Call after the
        training thread ended."""
        with self._finish_lock:
            if self.closed:
                return
            self.closed = True
            try:
                if not self.finished and self.started_at is not None:
                    self.finished_reason = self.finished_reason or 'stopped'
                    self.save_checkpoint()
                    self.finished = True
                    self.out.log('info', self.best.stop_note(self.actor_path, self.version))
            finally:
                if self.logger is not None:
                    self.logger.close()

    def run(self, stop: threading.Event, timeout: float = 0.05) -> Optional[dict[str, Any]]:
        """The training thread: start, step until done or ``stop``; finish() when done (returns its
        summary), None when stopped first."""
        self.start()
        while not stop.is_set():
            if self.step(timeout):
                return self.finish()
        return None


def _float(value: Any, default: float) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


__all__ = ['ACTOR_NAME', 'BEST_ACTOR_NAME', 'EVALUATE', 'HOLD', 'MAX_UPDATES_PER_STEP', 'REPLAY_NAME', 'RESET',
           'RESUME', 'SegmentLearner', 'SegmentLearnerConfig', 'SegmentLearnerOutputs', 'TRAIN']
