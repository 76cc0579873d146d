"""The master learner's logic (no ROS import): trains from sampled replay batches, publishes versions.

Read top to bottom:

1. ``LearnerConfig``: every number the learner node exposes as a parameter, validated.
2. ``read_sampled_batch``: a SampledBatch message -> ``SampledArrays`` (validated; ``BatchRejected``).
3. ``CreditTracker``: credit-based prefetching (how many batches to request now).
4. ``BatchQueue``, ``LagStats``, ``EnvStepCounter``: small helpers.
5. ``final_evaluation`` / ``write_evaluation``: the table of the learned policy vs the baselines.
6. ``Learner``: the training loop. ``step()`` consumes one batch (agent.update, priorities,
   publish every ``publish_every_updates``) and does the periodic work (stats, checkpoint,
   evaluation, collective submissions); ``finish()`` checkpoints and evaluates at the end.

The learner talks to the outside world only through a ``LearnerOutputs`` object (the node
publishes; tests record), and is fed by ``receive_batch`` / ``record_episode`` /
``observe_replay`` / ``observe_generation``, which are safe to call from another thread
(the node's DDS callbacks). Everything else runs in one training thread: the Agent is not
thread-safe.
"""
from __future__ import annotations

import collections
from dataclasses import asdict, dataclass, replace
import json
import math
from pathlib import Path
import threading
import time
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence

import gymnasium
import numpy as np

import dcdrl_sim  # noqa: F401  (registers the environments)
from dcdrl_core.experience import MAX_ID_LENGTH
from dcdrl_core.files import atomic_write_bytes
from dcdrl_core.learning.agents import ALGORITHMS, Agent, AgentConfig
from dcdrl_core.learning.checkpoint import PublishedVersion, load_checkpoint, save_checkpoint
from dcdrl_core.learning.codec import WeightsPayload, encode_weights
from dcdrl_core.learning.inference import NumpyActor
from dcdrl_core.learning.runlog import RunLogger
from dcdrl_core.msg_arrays import get_array
from dcdrl_core import training_defaults
from dcdrl_sim.evaluation import EvaluationResult, evaluate_policy, summary_markdown

MODES = ('central', 'collective')
CHECKPOINT_NAME = 'learner.ckpt'
PUBLISHED_VERSION_NAME = 'published_version'
SUMMARY_NAME = 'learner.json'
EVALUATION_JSON = 'evaluation.json'
EVALUATION_MD = 'evaluation.md'
MEC_ENV_IDS = (training_defaults.PAPER_ENV_ID, 'dcdrl_sim/MecOffloadScores-v0')  # baselines and oracle apply to both


# ---------------------------------------------------------------------------------- config
@dataclass
class LearnerConfig:
    """The learner's parameters (the node declares one ROS parameter per field, same name and default)."""

    env_id: str = training_defaults.ENV_ID    # env whose spaces size the networks (and the evaluation env)
    network_preset: str = training_defaults.NETWORK_PRESET    # AgentConfig / network preset: 'dcdrl' or 'cloud_edge'
    algorithm: str = 'ddpg'               # 'ddpg' or 'td3'
    device: str = 'auto'                  # 'cpu', 'cuda', 'cuda:N' or 'auto' (cuda when present)
    seed: int = training_defaults.SEED                        # network init and noise seeds
    gamma: float = -1.0                   # recorded and checked against batch discounts; < 0: the preset's
    mode: str = training_defaults.MODE                        # 'central' or 'collective' (also submit to client_model)
    output_dir: str = training_defaults.OUTPUT_DIR            # checkpoint, evaluation files, run logs
    duration_s: float = training_defaults.DURATION_S          # training time of this process; 0 = until stopped
    batch_size: int = 64                  # transitions per requested batch
    prefetch_batches: int = 8             # batches requested but not yet consumed
    credit_batch: int = 2                 # send new credits once this many are missing
    credit_timeout_s: float = 10.0        # nothing received this long with credits out: assume them lost
    max_queued_batches: int = 32          # received batches kept; the oldest is dropped beyond this
    publish_every_updates: int = 50       # publish the policy (version + 1) every this many updates
    stats_period_s: float = 1.0           # TrainingStats and run-log scalars
    checkpoint_period_s: float = 30.0     # 0 = only at the end
    resume: bool = True                   # continue from output_dir/learner.ckpt when present
    eval_period_s: float = training_defaults.EVAL_PERIOD_S    # noise-free evaluation episodes in the learner; 0 = off
    eval_episodes: int = 3                # episodes per periodic evaluation
    eval_seed: int = 10_000               # evaluation episode k uses seed eval_seed + k
    final_eval_episodes: int = 5          # episodes per policy in the final table
    oracle_episodes: int = 2              # episodes of the (slow) MEC oracle in the final table
    evaluate_on_stop: bool = True         # write the final table also when stopped before duration_s
    updates_per_sec_limit: float = 0.0    # 0 = as fast as batches arrive
    torch_threads: int = 1                # torch.set_num_threads (clients share the cores)
    prioritized: bool = False             # send PriorityUpdate after each update (match the replay's)
    actor_start: int = -1                 # replay size before actor updates; < 0: the preset's
    generation_period_s: float = 30.0     # collective mode: submit the model with fitness this often
    tensorboard: bool = True              # TensorBoard event files besides scalars.csv
    progress_period_s: float = 10.0       # progress line on stdout; 0 = off
    actor_lr: Optional[float] = None      # Adam learning rate of the actor; None: the preset's (the node
    critic_lr: Optional[float] = None     # declares the preset's value, so `param get` shows the real one)
    report: bool = True                   # report.md and PNG plots in output_dir at the end (report.py)

    def __post_init__(self) -> None:
        for name in ('env_id', 'network_preset', 'algorithm', 'device', 'mode', 'output_dir'):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f'{name} must be a non-empty string, got {getattr(self, name)!r}')
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f'algorithm must be one of {ALGORITHMS}, got {self.algorithm!r}')
        if self.mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {self.mode!r}')
        for name in ('batch_size', 'prefetch_batches', 'credit_batch', 'max_queued_batches',
                     'publish_every_updates', 'eval_episodes', 'final_eval_episodes', 'torch_threads'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be an integer >= 1, got {value!r}')
        for name in ('seed', 'eval_seed', 'oracle_episodes'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f'{name} must be an integer >= 0, got {value!r}')
        if isinstance(self.actor_start, bool) or not isinstance(self.actor_start, int):
            raise ValueError(f'actor_start must be an integer (< 0 = the preset), got {self.actor_start!r}')
        if self.credit_batch > self.prefetch_batches:
            raise ValueError(f'credit_batch ({self.credit_batch}) must be <= prefetch_batches '
                             f'({self.prefetch_batches})')
        if self.max_queued_batches < self.prefetch_batches:
            raise ValueError(f'max_queued_batches ({self.max_queued_batches}) must be >= prefetch_batches '
                             f'({self.prefetch_batches})')
        for name in ('duration_s', 'credit_timeout_s', 'checkpoint_period_s', 'eval_period_s',
                     'updates_per_sec_limit', 'generation_period_s', 'progress_period_s'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 \
                    or not math.isfinite(value):
                raise ValueError(f'{name} must be a finite number >= 0 seconds (or rate), got {value!r}')
        if isinstance(self.stats_period_s, bool) or not isinstance(self.stats_period_s, (int, float)) \
                or not (0 < self.stats_period_s < math.inf):
            raise ValueError(f'stats_period_s must be > 0, got {self.stats_period_s!r}')
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, float)) or self.gamma > 1 \
                or math.isnan(self.gamma):
            raise ValueError(f'gamma must be in [0, 1] (or < 0 for the preset value), got {self.gamma!r}')
        for name in ('actor_lr', 'critic_lr'):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not 0 < value < math.inf):
                raise ValueError(f'{name} must be a finite number > 0, got {value!r}')

    def agent_config(self) -> AgentConfig:
        """The AgentConfig: the preset named by network_preset with this learner's overrides."""
        overrides: dict[str, Any] = {
            'algorithm': self.algorithm, 'device': self.device, 'seed': self.seed,
            'batch_size': self.batch_size, 'torch_threads': self.torch_threads}
        if self.gamma >= 0:
            overrides['gamma'] = float(self.gamma)
        if self.actor_start >= 0:
            overrides['actor_start'] = self.actor_start
        for name in ('actor_lr', 'critic_lr'):
            if getattr(self, name) is not None:
                overrides[name] = float(getattr(self, name))
        return AgentConfig.preset(self.network_preset, **overrides)


def env_dims(env: gymnasium.Env) -> tuple[int, int]:
    """(obs_dim, action_dim) of an env with flat Box spaces, or a ValueError naming the space."""
    obs_space, action_space = env.observation_space, env.action_space
    if not isinstance(obs_space, gymnasium.spaces.Box) or len(obs_space.shape) != 1:
        raise ValueError(f'the learner needs a flat Box observation space, got {obs_space}')
    if not isinstance(action_space, gymnasium.spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(f'the learner (DDPG/TD3) needs a flat Box action space, got {action_space}')
    return int(obs_space.shape[0]), int(action_space.shape[0])


# ---------------------------------------------------------------------------------- batches
class BatchRejected(ValueError):
    """A SampledBatch that must not be trained on; ``reason`` is a short code for counting."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f'batch rejected ({reason}): {message}')
        self.reason = reason


@dataclass
class SampledArrays:
    """One validated sampled batch (what Agent.update reads, plus replay bookkeeping)."""

    sequence: int
    obs: np.ndarray               # [B, obs_dim] float32
    actions: np.ndarray           # [B, action_dim]
    rewards: np.ndarray           # [B]
    next_obs: np.ndarray          # [B, obs_dim]
    discounts: np.ndarray         # [B] in [0, 1]
    weights: np.ndarray           # [B] importance weights, finite and >= 0
    indices: np.ndarray           # [B] uint64 replay slots
    policy_versions: np.ndarray   # [B] uint64 (or empty: unknown)
    replay_size: int

    def __len__(self) -> int:
        return int(self.rewards.shape[0])


def read_sampled_batch(message: Any, requester: str, obs_dim: int, action_dim: int) -> SampledArrays:
    """Validates a SampledBatch message (either backend) and returns its arrays.

    Refused (BatchRejected with reason): another requester ('wrong_requester'), other dimensions
    ('wrong_dims'), an empty batch or array lengths that do not match batch_size ('bad_length'),
    NaN/Inf anywhere ('non_finite'), discounts outside [0, 1] or negative weights ('bad_values').
    """
    if message.requester != requester:
        raise BatchRejected('wrong_requester', f'requester {message.requester!r}, this learner is {requester!r}')
    if int(message.obs_dim) != obs_dim or int(message.action_dim) != action_dim:
        raise BatchRejected('wrong_dims', f'obs_dim {message.obs_dim} action_dim {message.action_dim}, '
                                          f'expected {obs_dim} and {action_dim}')
    b = int(message.batch_size)
    if b < 1:
        raise BatchRejected('bad_length', 'batch_size is 0')
    expected = {'obs': b * obs_dim, 'actions': b * action_dim, 'rewards': b, 'next_obs': b * obs_dim,
                'discounts': b, 'weights': b}
    arrays = {}
    for name, length in expected.items():
        array = get_array(message, name, np.float32)
        if array.size != length:
            raise BatchRejected('bad_length', f'{name} has {array.size} values, batch_size {b} needs {length}')
        if not np.isfinite(array).all():
            raise BatchRejected('non_finite', f'{name} contains NaN or Inf')
        arrays[name] = array
    indices = get_array(message, 'indices', np.uint64)
    versions = get_array(message, 'policy_versions', np.uint64)
    if indices.size != b:
        raise BatchRejected('bad_length', f'indices has {indices.size} values, expected {b}')
    if versions.size not in (0, b):
        raise BatchRejected('bad_length', f'policy_versions has {versions.size} values, expected {b} (or 0)')
    discounts, weights = arrays['discounts'], arrays['weights']
    if discounts.min() < 0 or discounts.max() > 1:
        raise BatchRejected('bad_values', f'discounts must lie in [0, 1], got [{discounts.min()}, {discounts.max()}]')
    if weights.min() < 0:
        raise BatchRejected('bad_values', f'importance weights must be >= 0, got {weights.min()}')
    return SampledArrays(
        sequence=int(message.sequence), obs=arrays['obs'].reshape(b, obs_dim),
        actions=arrays['actions'].reshape(b, action_dim), rewards=arrays['rewards'],
        next_obs=arrays['next_obs'].reshape(b, obs_dim), discounts=discounts, weights=weights,
        indices=indices, policy_versions=versions, replay_size=int(message.replay_size))


# ---------------------------------------------------------------------------------- credits
class CreditTracker:
    """Credit-based prefetching: keep ``prefetch`` batches requested but not yet consumed.

    in flight = credits outstanding at the replay (requested, not yet received) + batches queued
    here (received, not yet consumed). ``take_request(now)`` returns how many batches to ask for
    now: the shortfall to ``prefetch``, once it is at least ``chunk`` (fewer, larger requests).
    Credits are lost when the replay restarts (it forgets them) or messages are lost: after
    ``timeout_s`` without a batch while credits are out, or when ``peer_joined()`` says a new
    replay appeared, the outstanding credits are written off and requested again. Thread-safe.
    """

    def __init__(self, prefetch: int, chunk: int = 1, timeout_s: float = 10.0) -> None:
        if prefetch < 1 or not 1 <= chunk <= prefetch:
            raise ValueError(f'need prefetch >= 1 and 1 <= chunk <= prefetch, got {prefetch} and {chunk}')
        self.prefetch, self.chunk, self.timeout_s = int(prefetch), int(chunk), float(timeout_s)
        self.outstanding = 0          # requested from the replay, not yet received
        self.queued = 0               # received, not yet consumed
        self.requested_total = 0
        self.received_total = 0
        self.written_off = 0          # credits given up as lost
        self._last_activity: Optional[float] = None
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self.outstanding + self.queued

    def take_request(self, now: float) -> int:
        with self._lock:
            if (self.outstanding > 0 and self.timeout_s > 0 and self._last_activity is not None
                    and now - self._last_activity >= self.timeout_s):
                self.written_off += self.outstanding
                self.outstanding = 0
            shortfall = self.prefetch - self.outstanding - self.queued
            if shortfall <= 0 or (shortfall < self.chunk and self.outstanding + self.queued > 0):
                return 0
            if self.outstanding == 0:
                self._last_activity = now  # the time-out counts from the first credit out
            self.outstanding += shortfall
            self.requested_total += shortfall
            return shortfall

    def received(self, now: float, count: int = 1) -> None:
        """A batch arrived; ``count`` > 1 when the sequence shows that count - 1 were lost on the way."""
        with self._lock:
            self.outstanding = max(0, self.outstanding - count)
            self.queued += 1
            self.received_total += 1
            self._last_activity = now

    def consumed(self) -> None:
        """A queued batch was trained on (or dropped)."""
        with self._lock:
            self.queued = max(0, self.queued - 1)

    def peer_joined(self) -> None:
        """A (new) replay buffer subscribed: it holds none of our credits."""
        with self._lock:
            self.written_off += self.outstanding
            self.outstanding = 0


class BatchQueue:
    """Received batches waiting for the training thread; bounded (drops the oldest). Thread-safe."""

    def __init__(self, maxlen: int) -> None:
        self._items: collections.deque[SampledArrays] = collections.deque()
        self.maxlen = int(maxlen)
        self.dropped = 0
        self._cond = threading.Condition()

    def put(self, item: SampledArrays) -> bool:
        """Queue ``item``; returns False when the oldest batch had to be dropped for it."""
        with self._cond:
            dropped = len(self._items) >= self.maxlen
            if dropped:
                self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            self._cond.notify()
            return not dropped

    def get(self, timeout: float) -> Optional[SampledArrays]:
        with self._cond:
            if not self._items and timeout > 0:
                self._cond.wait_for(lambda: bool(self._items), timeout)
            return self._items.popleft() if self._items else None

    def __len__(self) -> int:
        return len(self._items)


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

    def snapshot(self, reset: bool = True) -> tuple[float, float, float]:
        """(min, mean, max) since the last reset; NaNs when no batch carried versions."""
        result = ((self.low, self.total / self.count, self.high) if self.count
                  else (math.nan, math.nan, math.nan))
        if reset:
            self.reset()
        return result


class EnvStepCounter:
    """Environment steps so far, from the replay's cumulative transition count.

    A count that drops means the replay restarted without its counters: what it had counted is
    kept as an offset. After a learner resume the checkpoint's total is a floor.
    """

    def __init__(self, start: int = 0) -> None:
        self.total = int(start)
        self._offset = 0
        self._last = 0

    def observe(self, reported: int) -> int:
        reported = int(reported)
        if reported < self._last:
            self._offset += self._last
        self._last = reported
        self.total = max(self.total, self._offset + reported)
        return self.total


def waiting_for_replay(stored: Optional[int], needed: int) -> str:
    """The line a learner without batches prints instead of NaN losses. ``stored``: the replay's
    size from replay/stats (None: nothing heard yet); ``needed``: transitions before the first update."""
    if stored is None:
        return 'waiting for the replay buffer (nothing on replay/stats yet: is it running, in this namespace?)'
    if stored < needed:
        return f'waiting for the replay buffer ({stored:,} / {needed:,} transitions)'
    return f'waiting for the replay buffer ({stored:,} transitions stored, no batch yet)'


# ---------------------------------------------------------------------------------- evaluation
def actor_policy(actor: NumpyActor, action_space: gymnasium.spaces.Box) -> Callable[[np.ndarray], np.ndarray]:
    """obs -> action of the deterministic actor (no exploration noise), clipped to the env's bounds."""
    low, high = action_space.low.astype(np.float32), action_space.high.astype(np.float32)

    def policy(obs: np.ndarray) -> np.ndarray:
        return np.clip(actor(np.asarray(obs, dtype=np.float32)), low, high)  # clip copies the buffer
    return policy


def baseline_factories(env_id: str, seed: int = 0) -> dict[str, Callable[[gymnasium.Env], Any]]:
    """The comparison policies for env_id: the four MEC baselines, or a seeded random policy."""
    if env_id in MEC_ENV_IDS:
        from dcdrl_sim.mec.baselines import BASELINES, make_baseline
        return {name: (lambda env, name=name: make_baseline(name, env, seed=seed) if name == 'random'
                       else make_baseline(name, env)) for name in BASELINES}

    def random_factory(env: gymnasium.Env) -> Callable[[Any], Any]:
        space = env.action_space
        space.seed(seed)
        return lambda obs: space.sample()
    return {'random': random_factory}


def final_evaluation(env_id: str, learned: Callable[[np.ndarray], np.ndarray], episodes: int,
                     oracle_episodes: int, seed: int) -> list[EvaluationResult]:
    """The learned policy, the baselines and (MEC) the oracle, on the same episode seeds.

    The MEC oracle runs as iterated best response (exact search is 600 000 candidates per step at
    N = 10), on ``oracle_episodes`` episodes (0 leaves it out).
    """
    results = [evaluate_policy(env_id, learned, episodes=episodes, seed=seed, name='learned')]
    for name, factory in baseline_factories(env_id, seed).items():
        results.append(evaluate_policy(env_id, policy_factory=factory, episodes=episodes, seed=seed, name=name))
    if env_id in MEC_ENV_IDS and oracle_episodes > 0:
        from dcdrl_sim.mec.oracle import MecOracle
        results.append(evaluate_policy(
            env_id, policy_factory=lambda env: MecOracle(env, max_exact_candidates=0),
            episodes=oracle_episodes, seed=seed, name='oracle'))
    return results


def json_safe(value: Any) -> Any:
    """NaN/Inf -> None, numpy scalars -> Python, recursively (strict JSON)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


def write_evaluation(output_dir: str | Path, results: Sequence[EvaluationResult],
                     meta: Mapping[str, Any]) -> tuple[Path, Path]:
    """evaluation.json (summary rows, per-episode rows, ``meta``) and evaluation.md (the table)."""
    output_dir = Path(output_dir)
    data = {**dict(meta), 'rows': [r.summary for r in results],
            'episodes': {r.name: r.episodes for r in results}}
    json_path, md_path = output_dir / EVALUATION_JSON, output_dir / EVALUATION_MD
    atomic_write_bytes(json_path, json.dumps(json_safe(data), indent=2, allow_nan=False).encode())
    lines = [f"# Evaluation: {meta.get('env_id', '')}", '',
             f"Learned policy version {meta.get('version')} after {meta.get('updates')} updates and "
             f"{meta.get('env_steps')} environment steps; {meta.get('episodes')} episodes per policy "
             f"(oracle: {meta.get('oracle_episodes')}), episode k seeded {meta.get('seed')} + k, no "
             'exploration noise. Per-step means (cost = sum of the users\' costs per step; '
             'return = episode return).', '', summary_markdown(results), '']
    atomic_write_bytes(md_path, '\n'.join(lines).encode())
    return json_path, md_path


# ---------------------------------------------------------------------------------- the learner
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


@dataclass
class _Period:
    """Sums over one stats period."""

    updates: int = 0
    critic_loss: float = 0.0
    q_mean: float = 0.0
    actor_loss: float = 0.0
    actor_updates: int = 0


class Learner:
    """The master learner. Call ``start()``, then ``step()`` in a loop until it returns True
    (duration_s elapsed) or you stop, then ``finish()``; ``close()`` always.

    Args:
        config: a LearnerConfig.
        outputs: where requests, weights, priorities, stats, submissions and log lines go.
        name: the requester id (the node's name); batches for another requester are refused.
        clock: monotonic seconds (replaceable in tests).
    """

    def __init__(self, config: LearnerConfig, outputs: LearnerOutputs, name: str = 'learner',
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not isinstance(config, LearnerConfig):
            raise TypeError(f'config must be a LearnerConfig, got {type(config).__name__}')
        self.config, self.out, self.name, self.clock = config, outputs, name, clock
        self.env = gymnasium.make(config.env_id)
        self.obs_dim, self.action_dim = env_dims(self.env)
        self.agent_config = config.agent_config()
        self.agent = Agent(self.agent_config, self.obs_dim, self.action_dim)
        self.architecture_id = self.agent.architecture_id
        self.output_dir = Path(config.output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = self.output_dir / CHECKPOINT_NAME

        self.version = 0                  # last published version
        self.updates = 0                  # gradient updates, across resumes
        self.resumed_from: Optional[int] = None
        self.env_steps = EnvStepCounter()
        if config.resume and self.checkpoint_path.is_file():
            self._resume()
        # Versions published after the last checkpoint (a hard kill) are not reused.
        self.published = PublishedVersion(self.output_dir / PUBLISHED_VERSION_NAME)
        self.version = max(self.version, self.published.last())

        self.credits = CreditTracker(config.prefetch_batches, config.credit_batch, config.credit_timeout_s)
        self.queue = BatchQueue(config.max_queued_batches)
        self.lag = LagStats()
        self.rejected: collections.Counter[str] = collections.Counter()
        self.lost_batches = 0
        self.episodes_refused = 0   # episode statistics ignored (NaN/Inf, an overlong client_id)
        self.replay_size = 0
        self.eval_return = math.nan
        self.eval_cost = math.nan
        self.final_results: Optional[list[EvaluationResult]] = None
        self.report_path: Optional[Path] = None
        self.generation_seen = 0
        self.submissions = 0
        self._last_sequence: Optional[int] = None
        self._episodes: collections.deque[_EpisodeRecord] = collections.deque(maxlen=10_000)
        self._period = _Period()
        self._last_stats = {'critic_loss': math.nan, 'actor_loss': math.nan, 'q_mean': math.nan}
        self._gamma_warned = False
        self._replay_seen = False         # a ReplayStats arrived (the waiting line says so)
        self._updates_at_start = self.updates
        self._next_waiting_line = 0.0
        self._eval_actor = NumpyActor(self.agent_config.network, self.obs_dim, self.action_dim,
                                      self.agent.actor_state())
        self._eval_policy = actor_policy(self._eval_actor, self.env.action_space)
        self.logger: Optional[RunLogger] = None
        self.started_at: Optional[float] = None
        self.finished = False
        self.closed = False
        self._lock = threading.Lock()   # finish/close against each other
        self._pause = threading.Event()  # set by wake(): ends a rate-limit pause at once

    # ------------------------------------------------------------------ resume and files
    def _resume(self) -> None:
        try:
            _, info = load_checkpoint(self.checkpoint_path, self.agent)
        except ValueError as error:
            raise ValueError(f'cannot resume from {self.checkpoint_path}: {error}; use another output_dir '
                             f'or resume:=false') from None
        # The optimizers' state carries the learning rates it was saved with: this run's win.
        for optimizer, lr in ((self.agent.actor_optim, self.agent_config.actor_lr),
                              (self.agent.critic_optim, self.agent_config.critic_lr)):
            for group in optimizer.param_groups:
                group['lr'] = lr
        self.version = info.version
        self.resumed_from = info.version
        self.updates = int(info.extra.get('updates', 0))
        self.env_steps = EnvStepCounter(int(info.extra.get('env_steps', 0)))

    def agent_is_finite(self) -> bool:
        """False once training diverged (NaN/Inf in a network): such an agent is never saved."""
        import torch
        return all(bool(torch.isfinite(p).all()) for net in (self.agent.actor, self.agent.critic)
                   for p in net.parameters())

    def save_checkpoint(self) -> bool:
        """learner.ckpt (+ learner.json); refuses to overwrite a good checkpoint with a diverged agent."""
        if not self.agent_is_finite():
            self.out.log('error', f'networks contain NaN/Inf: not overwriting {self.checkpoint_path}')
            return False
        extra = {'updates': self.updates, 'env_steps': self.env_steps.total, 'eval_return': self.eval_return,
                 'eval_cost': self.eval_cost, 'env_id': self.config.env_id}
        save_checkpoint(self.checkpoint_path, self.agent, version=self.version, extra=json_safe(extra))
        atomic_write_bytes(self.output_dir / SUMMARY_NAME,
                           json.dumps(json_safe(self.summary()), indent=2, allow_nan=False).encode())
        return True

    def summary(self) -> dict[str, Any]:
        """The run's numbers (learner.json, the TRAINING DONE line)."""
        wall = 0.0 if self.started_at is None else self.clock() - self.started_at
        data: dict[str, Any] = {
            'version': self.version, 'updates': self.updates, 'env_steps': self.env_steps.total,
            'eval_return': self.eval_return, 'eval_cost': self.eval_cost,
            'output_dir': str(self.output_dir), 'wall_s': round(wall, 3),
            'architecture_id': self.architecture_id, 'env_id': self.config.env_id,
            'algorithm': self.config.algorithm, 'resumed_from_version': self.resumed_from,
            'checkpoint': str(self.checkpoint_path),
            'run_dir': str(self.logger.run_dir) if self.logger is not None else None,
            'rejected_batches': sum(self.rejected.values()), 'rejected_by_reason': dict(self.rejected),
            'lost_batches': self.lost_batches, 'episodes_refused': self.episodes_refused,
            'dropped_batches': self.queue.dropped,
            'credits_written_off': self.credits.written_off, 'submissions': self.submissions}
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

    # Fields a running learner takes over (ros2 param set on the node); the others are read at start.
    LIVE_FIELDS = ('duration_s', 'publish_every_updates', 'stats_period_s', 'checkpoint_period_s', 'eval_period_s',
                   'eval_episodes', 'updates_per_sec_limit', 'generation_period_s', 'final_eval_episodes',
                   'oracle_episodes', 'evaluate_on_stop')

    def reconfigure(self, **changes: Any) -> LearnerConfig:
        """Take new values of LIVE_FIELDS while training: checked as at start (ValueError), a changed
        period counts from now (0 turns the periodic work off). Safe from another thread than run's."""
        fixed = sorted(set(changes) - set(self.LIVE_FIELDS))
        if fixed:
            raise ValueError(f'{", ".join(fixed)} cannot change while the learner runs')
        config = replace(self.config, **changes)
        self.config = config
        if self.started_at is not None:
            now = self.clock()
            if 'stats_period_s' in changes:
                self._next_stats = now + config.stats_period_s
            if 'eval_period_s' in changes:
                self._next_eval = now + config.eval_period_s if config.eval_period_s > 0 else math.inf
            if 'checkpoint_period_s' in changes:
                self._next_checkpoint = now + config.checkpoint_period_s if config.checkpoint_period_s > 0 else math.inf
            if 'generation_period_s' in changes and config.mode == 'collective':
                self._next_generation = now + config.generation_period_s if config.generation_period_s > 0 else math.inf
            if 'updates_per_sec_limit' in changes:
                self._next_update = now
                self._pause.set()   # a pause under the old limit ends now
        return config

    def replay_joined(self) -> None:
        """A (new) subscriber on sample_requests: request our credits again."""
        self.credits.peer_joined()

    # ------------------------------------------------------------------ the loop
    def start(self) -> None:
        """Open the run log, publish the current weights (version 1, or the checkpoint's + 1)."""
        c = self.config
        now = self.clock()
        self.started_at = now
        self.logger = RunLogger(c.env_id, 'learner', c.seed, root=self.output_dir, tensorboard=c.tensorboard,
                                print_every_s=c.progress_period_s if c.progress_period_s > 0 else None,
                                progress_tags=('losses/critic_loss', 'losses/actor_loss', 'eval/return',
                                               'eval/cost', 'charts/version_lag_mean', 'charts/updates_per_sec'))
        self.logger.write_config({**asdict(c), 'agent': self.agent_config.to_dict(),
                                  'architecture_id': self.architecture_id, 'resumed_from_version': self.resumed_from})
        self._next_stats = now + c.stats_period_s
        self._next_checkpoint = now + c.checkpoint_period_s if c.checkpoint_period_s > 0 else math.inf
        # The first evaluation scores the initial policy, so the learning curve starts from it.
        self._next_eval = now if c.eval_period_s > 0 else math.inf
        self._next_generation = (now + c.generation_period_s if c.mode == 'collective' and c.generation_period_s > 0
                                 else math.inf)
        self._next_update = now
        self._rate_time, self._rate_updates, self._rate_steps = now, self.updates, self.env_steps.total
        self._updates_at_start, self._next_waiting_line = self.updates, now
        if self.resumed_from is not None:
            self.out.log('info', f'resumed from {self.checkpoint_path}: version {self.version}, '
                                 f'{self.updates} updates')
        self.publish_weights()
        self._request(now)

    def done(self, now: Optional[float] = None) -> bool:
        if self.started_at is None or self.config.duration_s <= 0:
            return False
        return (self.clock() if now is None else now) - self.started_at >= self.config.duration_s

    def step(self, timeout: float = 0.1) -> bool:
        """Train on one batch if one arrives within ``timeout`` s, then the periodic work.
        Returns True once duration_s has elapsed."""
        if self.started_at is None:
            raise RuntimeError('call start() first')
        now = self.clock()
        batch = None
        if self.config.updates_per_sec_limit > 0 and now < self._next_update:
            # Rate pacing (updates_per_sec_limit), interruptible by wake().
            self._pause.wait(min(timeout, self._next_update - now))
        else:
            batch = self.queue.get(timeout)
        if batch is not None:
            self.train_on(batch)
        now = self.clock()
        self._periodic(now)
        return self.done(now)

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
        self.updates += 1
        period = self._period
        period.updates += 1
        period.critic_loss += stats['critic_loss']
        period.q_mean += stats['q_mean']
        if stats['actor_loss'] is not None:
            period.actor_loss += stats['actor_loss']
            period.actor_updates += 1
        self.lag.add(self.version, batch.policy_versions)
        if c.prioritized:
            self.out.send_priorities(batch.indices, np.abs(stats['td_errors']).astype(np.float32))
        if self.updates % c.publish_every_updates == 0:
            self.publish_weights()
        if c.updates_per_sec_limit > 0:
            self._next_update = max(self._next_update, self.clock()) + 1.0 / c.updates_per_sec_limit
        self._request(self.clock())
        return stats

    def publish_weights(self) -> WeightsPayload:
        """Publish the online actor as the next version."""
        payload = encode_weights(self.agent.actor, self.architecture_id, self.version + 1)
        self.version += 1
        self.published.record(self.version)  # before publishing: a kill in between never reuses it
        self.out.publish_weights(payload)
        return payload

    def _request(self, now: float) -> None:
        count = self.credits.take_request(now)
        if count:
            self.out.request_batches(count, self.config.batch_size)

    def _periodic(self, now: float) -> None:
        self._request(now)
        self._log_episodes()
        if now >= self._next_stats:
            self._next_stats = now + self.config.stats_period_s
            self.publish_stats(now)
        if now >= self._next_eval:
            self.evaluate()
            self._next_eval = self.clock() + self.config.eval_period_s
        if now >= self._next_generation:
            self.submit_generation()
            self._next_generation = self.clock() + self.config.generation_period_s
        if now >= self._next_checkpoint:
            self.save_checkpoint()
            self._next_checkpoint = self.clock() + self.config.checkpoint_period_s

    # ------------------------------------------------------------------ periodic work
    def stats(self, now: float) -> dict[str, float]:
        """TrainingStats fields (names as in the message) for the period since the last call."""
        p = self._period
        if p.updates:
            self._last_stats['critic_loss'] = p.critic_loss / p.updates
            self._last_stats['q_mean'] = p.q_mean / p.updates
        if p.actor_updates:
            self._last_stats['actor_loss'] = p.actor_loss / p.actor_updates
        self._period = _Period()
        elapsed = max(1e-9, now - self._rate_time)
        updates_per_sec = (self.updates - self._rate_updates) / elapsed
        steps_per_sec = max(0, self.env_steps.total - self._rate_steps) / elapsed
        self._rate_time, self._rate_updates, self._rate_steps = now, self.updates, self.env_steps.total
        lag_min, lag_mean, lag_max = self.lag.snapshot()
        return {
            'policy_version': self.version, 'updates': self.updates, 'env_steps': self.env_steps.total,
            'replay_size': self.replay_size, **self._last_stats,
            'updates_per_sec': updates_per_sec, 'env_steps_per_sec': steps_per_sec,
            'version_lag_min': lag_min, 'version_lag_mean': lag_mean, 'version_lag_max': lag_max,
            'rejected_batches': sum(self.rejected.values()),
            'eval_return': self.eval_return, 'eval_cost': self.eval_cost}

    def publish_stats(self, now: float) -> dict[str, float]:
        stats = self.stats(now)
        self.out.publish_stats(stats)
        if self.logger is not None:
            self.logger.log_scalars({
                'losses/critic_loss': stats['critic_loss'], 'losses/actor_loss': stats['actor_loss'],
                'losses/q_mean': stats['q_mean'], 'charts/updates_per_sec': stats['updates_per_sec'],
                'charts/env_steps_per_sec': stats['env_steps_per_sec'],
                'charts/policy_version': stats['policy_version'],
                'charts/replay_size': stats['replay_size'], 'charts/rejected_batches': stats['rejected_batches'],
                **({'charts/version_lag_min': stats['version_lag_min'],
                    'charts/version_lag_mean': stats['version_lag_mean'],
                    'charts/version_lag_max': stats['version_lag_max']}
                   if math.isfinite(stats['version_lag_mean']) else {})}, step=self.updates)
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

    def evaluate(self, episodes: Optional[int] = None) -> EvaluationResult:
        """Noise-free episodes of the current actor on the learner's own env (same seeds every time)."""
        self._sync_eval_actor()
        result = evaluate_policy(self.env, self._eval_policy, episodes=episodes or self.config.eval_episodes,
                                 seed=self.config.eval_seed, name='learned')
        summary = result.summary
        self.eval_return = float(summary['return'])
        self.eval_cost = float(summary.get('cost', math.nan))
        if self.logger is not None:
            self.logger.log_scalars({'eval/return': self.eval_return,
                                     **({'eval/cost': self.eval_cost} if math.isfinite(self.eval_cost) else {})},
                                    step=self.updates)
        return result

    def submit_generation(self) -> None:
        """Collective mode: the current actor with its fitness (a fresh evaluation's mean return)."""
        fitness = float(self.evaluate().summary['return'])
        generation = self.generation_seen + 1
        payload = encode_weights(self.agent.actor, self.architecture_id, self.version)
        self.out.submit_model(payload, fitness, generation)
        self.submissions += 1

    # ------------------------------------------------------------------ the end
    def finish(self, publish: bool = True) -> dict[str, Any]:
        """Publish the last weights (``publish``), checkpoint, evaluate against the baselines, write
        the files. Returns the summary (the TRAINING DONE line). Idempotent."""
        with self._lock:
            if not self.finished:
                if publish and self.started_at is not None \
                        and self.updates % self.config.publish_every_updates != 0:
                    self.publish_weights()  # clients get what the checkpoint holds
                self.save_checkpoint()
                self.final_evaluation()
                self.save_checkpoint()  # learner.json with the table's numbers
                self.write_report()
                self.finished = True
            return self.summary()

    def write_report(self) -> Optional[Path]:
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
            'oracle_episodes': c.oracle_episodes if c.env_id in MEC_ENV_IDS else 0, 'seed': c.eval_seed,
            'architecture_id': self.architecture_id})
        if self.logger is not None:
            self.logger.log_scalars({f'final/{r.name}/{key}': r.summary[key] for r in results
                                     for key in ('return', 'cost') if key in r.summary}, self.updates)
            # The learning curve (eval/*, in TensorBoard and the report) ends at the table's number.
            self.logger.log_scalars({'eval/return': self.eval_return,
                                     **({'eval/cost': self.eval_cost} if math.isfinite(self.eval_cost) else {})},
                                    step=self.updates)
        return results

    def close(self, evaluate: Optional[bool] = None) -> None:
        """Stop: checkpoint (and the final table when ``evaluate``, default evaluate_on_stop, and
        it was not written yet), close the run log and the env. Call after the training thread ended."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        evaluate = self.config.evaluate_on_stop if evaluate is None else evaluate
        try:
            if not self.finished and self.started_at is not None:
                if evaluate:
                    self.finish(publish=False)  # at shutdown the publishers may be gone
                else:
                    self.save_checkpoint()
                    self.write_report()
        finally:
            if self.logger is not None:
                self.logger.close()
            self.env.close()

    def wake(self) -> None:
        """End a wait in step() at once (the node calls it before joining the training thread)."""
        self._pause.set()

    def run(self, stop: threading.Event, timeout: float = 0.1) -> Optional[dict[str, Any]]:
        """The training thread: start, step until duration_s or ``stop``; finish() when the
        duration elapsed (returns its summary), None when stopped first."""
        self.start()
        while not stop.is_set():
            if self.step(timeout):
                return self.finish()
        return None


__all__ = ['BatchQueue', 'BatchRejected', 'CHECKPOINT_NAME', 'CreditTracker', 'EVALUATION_JSON', 'EVALUATION_MD',
           'EnvStepCounter', 'LagStats', 'Learner', 'LearnerConfig', 'LearnerOutputs', 'PUBLISHED_VERSION_NAME', 'SUMMARY_NAME',
           'SampledArrays', 'actor_policy', 'baseline_factories', 'env_dims', 'final_evaluation',
           'json_safe', 'read_sampled_batch', 'waiting_for_replay', 'write_evaluation']
