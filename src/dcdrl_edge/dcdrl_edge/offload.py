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

``LinkEmulator`` emulates a link of a given bandwidth (constant or a schedule) by delaying each
offload's send by bytes * 8 / bandwidth, first in first out, in the node's offload thread.

All methods of ``OffloadController`` may be called from any thread (one lock, held briefly).
"""
from __future__ import annotations

import math
import numbers
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from dcdrl_core.parameter_dataclass import check_limits, parameter
from dcdrl_sim.face.model import LOCAL, OBS_SIZE, OFFLOAD, FaceOffloadModel

POLICIES = ('learned', 'local', 'offload', 'random', 'greedy')
BASELINE_POLICIES = POLICIES[1:]
FALLBACK_REASONS = ('no_server', 'timeout', 'refused', 'error', 'in_flight_full')
MODES = ('local', 'offloaded', 'fell_back')            # where a finished task ran
EXTRA_NAMES = ('cost', 'latency_s', 'energy_j', 'deadline_miss_ratio', 'offload_fraction', 'fell_back')

# The envs the cloud can train the offload policy on -> the actor's (observation, action) sizes: the
# learned decision is action > 0 on FaceOffloadModel's observation. A table, not gymnasium.make, so a
# device needs no gymnasium (test_offload checks it against the registered env's spaces).
ACTOR_ENV_DIMS = {'dcdrl_sim/FaceOffloadContinuous-v0': (OBS_SIZE, 1)}


def actor_dims(env_id: str) -> tuple[int, int]:
    """(obs_dim, action_dim) of the offload actor for the env id the cloud trains it on."""
    if env_id not in ACTOR_ENV_DIMS:
        raise ValueError(f'env_id {env_id!r} is not an offload policy env; known: {sorted(ACTOR_ENV_DIMS)}')
    return ACTOR_ENV_DIMS[env_id]


# OffloadConfig fields that are FaceOffloadModel constructor arguments of the same meaning: the
# device builds the env with them, so its observation scales and the greedy rule are the env's.
MODEL_FIELDS = ('deadline_s', 'latency_weight', 'energy_weight', 'miss_penalty', 'device_cpu_power_w',
                'radio_power_w', 'device_seconds_per_megapixel', 'device_seconds_per_face',
                'device_encode_seconds_per_megapixel', 'server_seconds_per_megapixel', 'server_seconds_per_face',
                'bytes_per_megapixel', 'round_trip_s', 'bandwidth_min_mbps', 'bandwidth_max_mbps', 'frames_max',
                'megapixels_per_frame', 'max_faces_per_frame', 'server_estimate_smoothing')


@dataclass
class OffloadConfig:
    """Every tunable number of the offloading controller (dcdrl_core.parameter_dataclass); the node adds
    its own (dcdrl_edge.offload_parameters.OffloadParameters). The task model's defaults are
    FaceOffloadModel's (MODEL_FIELDS): keep them equal to the env the cloud trains on."""

    device_id: str = parameter('device', 'name in experience, records and stats')
    policy: str = parameter('learned', 'how each task is decided', choices=POLICIES)
    initial_policy: str = parameter('greedy', "what 'learned' does until weights of min_policy_version arrive",
                                    choices=BASELINE_POLICIES)
    min_policy_version: int = parameter(2, "usable weights' least version (the learner's version 1 is its "
                                           "untrained initial actor)", low=0)
    training: bool = parameter(True, "'learned' adds exploration noise to the actor's output")
    exploration_noise: float = parameter(0.3, "Gaussian sigma on the actor's output (before clipping to [-1, 1])",
                                         low=0.0)
    random_offload_probability: float = parameter(0.5, "offload probability of policy 'random'", low=0.0, high=1.0)
    seed: int = parameter(0, "noise, 'random' decisions, baseline action draws", low=0)
    deadline_s: float = parameter(2.0, 'per frame (a task is one frame)', above=0.0)
    latency_weight: float = parameter(1.0, 'cost weight of the latency (s)', low=0.0)
    energy_weight: float = parameter(0.1, 'cost weight of the energy (J)', low=0.0)
    miss_penalty: float = parameter(2.0, 'cost of a missed deadline', low=0.0)
    device_cpu_power_w: float = parameter(2.5, 'energy model: device CPU power while recognising', low=0.0)
    radio_power_w: float = parameter(1.3, 'energy model: radio power while transferring', low=0.0)
    device_seconds_per_megapixel: float = parameter(2.0, 'task model: local recognition time per megapixel',
                                                    above=0.0)
    device_seconds_per_face: float = parameter(0.4, 'task model: local recognition time per face', low=0.0)
    device_encode_seconds_per_megapixel: float = parameter(0.1, 'task model: JPEG encoding time per megapixel',
                                                           low=0.0)
    server_seconds_per_megapixel: float = parameter(0.5, 'task model: server recognition time per megapixel',
                                                    above=0.0)
    server_seconds_per_face: float = parameter(0.1, 'task model: server recognition time per face', low=0.0)
    bytes_per_megapixel: float = parameter(150_000.0, 'task model: JPEG bytes per megapixel', above=0.0)
    round_trip_s: float = parameter(0.02, 'task model: network round trip', low=0.0)
    bandwidth_min_mbps: float = parameter(0.5, "task model: the observation's lowest bandwidth", above=0.0)
    bandwidth_max_mbps: float = parameter(25.0, "task model: the observation's highest bandwidth", above=0.0)
    frames_max: int = parameter(4, "task model: the observation's scale of queued frames", low=1)
    megapixels_per_frame: tuple[float, ...] = parameter((0.3072, 0.9216), 'task model: the frame sizes',
                                                        above=0.0)
    max_faces_per_frame: int = parameter(8, "task model: the observation's scale of faces", low=1)
    initial_bandwidth_mbps: float = parameter(8.0, 'bandwidth estimate before the first clean measurement',
                                              above=0.0)
    bandwidth_smoothing: float = parameter(0.3, 'weight of the newest bandwidth sample (exponential average)',
                                           above=0.0, high=1.0)
    server_estimate_smoothing: float = parameter(0.3, 'weight of the newest server slow-down sample', above=0.0,
                                                 high=1.0)
    local_estimate_smoothing: float = parameter(0.3, 'weight of the newest local slow-down sample', above=0.0,
                                                high=1.0)
    offload_timeout_s: float = parameter(2.0, 'from the decision; then the task runs locally (fell back)',
                                         above=0.0)
    max_in_flight: int = parameter(2, 'offloads outstanding (link queue and timed-out requests the server may '
                                      'still work on included)', low=1)
    worker_queue_size: int = parameter(2, 'local tasks pending (waiting + running) in the FaceWorker', low=1)
    publish_experience: bool = parameter(True, 'send transitions to the cloud')
    experience_batch_size: int = parameter(16, 'transitions per ExperienceBatch', low=1)
    episode_tasks: int = parameter(50, 'tasks per episode (EpisodeStats; the last transition is truncated)', low=1)
    stats_window: int = parameter(10_000, 'latency samples kept per mode for the percentiles', low=1)

    def __post_init__(self) -> None:
        for item in fields(self):   # numpy numbers, ints for floats and lists for the sizes: the field's type
            value = getattr(self, item.name)
            if isinstance(item.default, float) and isinstance(value, numbers.Real) and not isinstance(value, bool):
                setattr(self, item.name, float(value))
            elif type(item.default) is int and isinstance(value, numbers.Integral) and not isinstance(value, bool):
                setattr(self, item.name, int(value))
            elif isinstance(item.default, tuple) and isinstance(value, (list, np.ndarray)):
                setattr(self, item.name, tuple(float(size) for size in value))
        check_limits(self)
        self._check_device_id()
        if self.bandwidth_max_mbps < self.bandwidth_min_mbps:
            raise ValueError(f'bandwidth_max_mbps ({self.bandwidth_max_mbps}) must be >= bandwidth_min_mbps '
                             f'({self.bandwidth_min_mbps})')

    def _check_device_id(self) -> None:
        if not self.device_id:
            raise ValueError(f'device_id must be a non-empty string, got {self.device_id!r}')

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> OffloadConfig:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f'unknown OffloadConfig fields: {sorted(unknown)}')
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data['megapixels_per_frame'] = list(self.megapixels_per_frame)
        return data

    def model_env(self) -> FaceOffloadModel:
        """The FaceOffloadModel with this config's constants: observation scales and the greedy rule."""
        return FaceOffloadModel(**{name: getattr(self, name) for name in MODEL_FIELDS})


# ------------------------------------------------------------------------------ observation
class TaskObserver:
    """The env's 8 observation features from what the device measures.

    Estimates (seconds are ``time.monotonic`` values handed in by the caller):

    * worker backlog: when the local worker will be free. Each queued local task adds its
      expected compute time (the model's time for its megapixels and the face-count estimate,
      times the measured local slow-down); each finished one resets the estimate to now + the
      expected time of the tasks still pending.
    * radio (in-flight offload) backlog: when the uploads queued so far will have been sent,
      each adding bytes * 8 / bandwidth estimate; back to now when nothing is in flight.
    * server backlog: when the server will have answered the offloads in flight, each adding
      its expected server time (model time x slow-down estimate) after its upload; reset to now
      + what is still in flight at every answer. Other clients' load is invisible to the device.
    * bandwidth: exponential average of bytes * 8 / (round trip - server compute time), from
      offloads that were alone in flight when sent (otherwise the round trip holds another
      request's server time). Starts at ``initial_bandwidth_mbps``.
    * server slow-down: exponential average of the server's compute time / the model's nominal
      time for that task (1 = as the model says). The same for the device (local slow-down),
      used only for the worker backlog.
    * face-count estimate: the faces found in the previous finished frame.
    """

    def __init__(self, config: OffloadConfig, model: FaceOffloadModel | None = None) -> None:
        self.config = config
        self.model = model if model is not None else config.model_env()
        self.bandwidth_mbps = self._clip_bandwidth(config.initial_bandwidth_mbps)
        self.server_slowdown = 1.0
        self.local_slowdown = 1.0
        self.faces_estimate = 0
        self.worker_free_at = -math.inf
        self.radio_free_at = -math.inf
        self.server_free_at = -math.inf
        self._local: dict[int, float] = {}     # task id -> expected local compute (s)
        self._remote: dict[int, float] = {}    # task id -> expected server time (s)
        self.bandwidth_samples = 0

    def _clip_bandwidth(self, mbps: float) -> float:
        return min(max(mbps, self.config.bandwidth_min_mbps), self.config.bandwidth_max_mbps)

    # ---- model times
    def local_time(self, megapixels: float, faces: float) -> float:
        c = self.config
        return self.local_slowdown * (c.device_seconds_per_megapixel * megapixels + c.device_seconds_per_face * faces)

    def nominal_server_time(self, megapixels: float, faces: float) -> float:
        c = self.config
        return c.server_seconds_per_megapixel * megapixels + c.server_seconds_per_face * faces

    def upload_time(self, image_bytes: int) -> float:
        return image_bytes * 8.0 / (self.bandwidth_mbps * 1e6)

    # ---- the observation
    def observe(self, now: float, megapixels: float, deadline_s: float | None = None) -> np.ndarray:
        """float32 [8], normalised and clipped exactly as FaceOffloadModel's observation."""
        if not (math.isfinite(megapixels) and megapixels > 0):
            raise ValueError(f'megapixels must be a finite number > 0, got {megapixels!r}')
        m = self.model
        deadline = self.config.deadline_s if deadline_s is None else float(deadline_s)
        values = (max(self.worker_free_at - now, 0.0) / m.deadline_s,
                  max(self.radio_free_at - now, 0.0) / m.deadline_s,
                  max(self.server_free_at - now, 0.0) / m.deadline_s,
                  self.bandwidth_mbps / m.bandwidth_max_mbps,
                  self.server_slowdown / 4.0,
                  megapixels / m.megapixel_scale,
                  self.faces_estimate / m.face_scale,
                  deadline / m.deadline_scale)
        return np.array([min(max(v, 0.0), m.obs_clip) for v in values], dtype=np.float32)

    # ---- events
    def local_queued(self, task_id: int, now: float, megapixels: float) -> None:
        expected = self.local_time(megapixels, self.faces_estimate)
        self._local[task_id] = expected
        self.worker_free_at = max(now, self.worker_free_at) + expected

    def local_done(self, task_id: int, now: float, megapixels: float, faces: int, compute_time_s: float,
                   ok: bool) -> None:
        self._local.pop(task_id, None)
        if ok:
            self.faces_estimate = int(faces)
            c = self.config
            nominal = c.device_seconds_per_megapixel * megapixels + c.device_seconds_per_face * faces
            if compute_time_s > 0 and nominal > 0:
                a = c.local_estimate_smoothing
                self.local_slowdown += a * (compute_time_s / nominal - self.local_slowdown)
        self.worker_free_at = now + sum(self._local.values())

    def local_dropped(self, task_id: int, now: float) -> None:
        """A task announced with local_queued never reached the worker."""
        expected = self._local.pop(task_id, None)
        if expected is not None:
            self.worker_free_at = max(self.worker_free_at - expected, now)

    def offload_queued(self, task_id: int, now: float, megapixels: float, image_bytes: int) -> None:
        server = self.server_slowdown * self.nominal_server_time(megapixels, self.faces_estimate)
        self._remote[task_id] = server
        self.radio_free_at = max(now, self.radio_free_at) + self.upload_time(image_bytes)
        self.server_free_at = max(self.radio_free_at, self.server_free_at) + server

    def offload_done(self, task_id: int, now: float, megapixels: float, *, ok: bool, faces: int = 0,
                     server_compute_s: float = 0.0, round_trip_s: float = 0.0, image_bytes: int = 0,
                     clean: bool = False) -> None:
        """An offload ended (answered, or failed when ok is False). ``clean``: it was alone in flight."""
        self._remote.pop(task_id, None)
        c = self.config
        if ok:
            self.faces_estimate = int(faces)
            nominal = self.nominal_server_time(megapixels, faces)
            if server_compute_s > 0 and nominal > 0:
                a = c.server_estimate_smoothing
                self.server_slowdown += a * (server_compute_s / nominal - self.server_slowdown)
            transfer = round_trip_s - server_compute_s
            if clean and image_bytes > 0 and transfer > 0:
                sample = self._clip_bandwidth(image_bytes * 8.0 / transfer / 1e6)
                self.bandwidth_mbps += c.bandwidth_smoothing * (sample - self.bandwidth_mbps)
                self.bandwidth_samples += 1
        self.server_free_at = now + sum(self._remote.values())
        if not self._remote:
            self.radio_free_at = min(self.radio_free_at, now)


# ------------------------------------------------------------------------------ decisions
class DecisionMaker:
    """The policy: the learned actor or a baseline. Returns (decision, action value, who decided).

    The action value is what goes into the experience: the actor's output (plus noise) for the
    learned policy; for a baseline a uniform draw from the half of [-1, 1] that means its
    decision ((0, 1] offload, [-1, 0] local), so the critic sees the whole action range.
    """

    def __init__(self, config: OffloadConfig, model: FaceOffloadModel | None = None) -> None:
        self.config = config
        self.model = model if model is not None else config.model_env()
        self.rng = np.random.default_rng(config.seed)

    def _baseline(self, name: str, obs: np.ndarray) -> int:
        if name == 'local':
            return LOCAL
        if name == 'offload':
            return OFFLOAD
        if name == 'random':
            return OFFLOAD if self.rng.random() < self.config.random_offload_probability else LOCAL
        local, offload = self.model.estimate_costs(obs)
        return OFFLOAD if float(offload) < float(local) else LOCAL

    def _action_for(self, decision: int) -> float:
        draw = float(self.rng.random())          # [0, 1)
        return 1.0 - draw if decision == OFFLOAD else -draw   # (0, 1] or (-1, 0]

    def decide(self, obs: np.ndarray, actor: Callable[[np.ndarray], np.ndarray] | None = None
               ) -> tuple[int, float, str]:
        c = self.config
        if c.policy == 'learned' and actor is not None:
            raw = np.asarray(actor(obs), dtype=np.float64).reshape(-1)
            if raw.size != 1 or not math.isfinite(raw[0]):
                raise ValueError(f'the actor must return one finite number, got {raw!r}')
            value = float(raw[0])
            if c.training and c.exploration_noise > 0:
                value += float(self.rng.normal(0.0, c.exploration_noise))
            value = min(max(value, -1.0), 1.0)
            return (OFFLOAD if value > 0.0 else LOCAL), value, 'learned'
        name = c.initial_policy if c.policy == 'learned' else c.policy
        decision = self._baseline(name, obs)
        return decision, self._action_for(decision), name


# ------------------------------------------------------------------------------ tasks and outcomes
@dataclass
class Task:
    """A decided task, from begin_task until it finishes."""

    task_id: int
    index: int                   # decision count (transitions pair index k with k + 1)
    decided_at: float
    observation: np.ndarray
    decision: int
    action: float
    decided_by: str
    policy_version: int
    megapixels: float
    image_bytes: int
    deadline_s: float
    fell_back: bool = False
    fallback_reason: str = ''
    sent_at: float | None = None
    sent_clean: bool = False     # no other offload in flight when it was sent
    transfer_time_s: float = 0.0


@dataclass(frozen=True)
class Outcome:
    """A finished task: the OffloadRecord fields, and where it ran."""

    task_id: int
    policy_version: int
    observation: np.ndarray
    decision: int
    fell_back: bool
    mode: str                    # 'local' | 'offloaded' | 'fell_back' | 'dropped'
    image_bytes: int
    faces_found: int
    latency_s: float
    compute_time_s: float
    transfer_time_s: float
    energy_j: float
    deadline_s: float
    deadline_missed: bool
    cost: float
    reward: float
    ok: bool
    detail: str = ''             # fallback reason, drop reason or error text


@dataclass(frozen=True)
class OffloadEpisodeSummary:
    """One episode (``episode_tasks`` finished tasks) of the offload controller, as EpisodeStats carries it."""
    episode: int
    length: int
    policy_version: int
    episode_return: float
    cost: float                  # sum of task costs (= -return), as the simulated clients report
    latency_mean_s: float
    energy_mean_j: float
    deadline_miss_ratio: float
    offload_fraction: float      # share of tasks the policy decided to offload


@dataclass
class ExperienceChunk:
    """Transitions ready for one ExperienceBatch."""

    policy_version: int
    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    extras: np.ndarray
    extra_names: tuple[str, ...] = EXTRA_NAMES

    def __len__(self) -> int:
        return int(self.rewards.shape[0])


class TransitionAssembler:
    """Pairs task k's observation, action and (later) reward with task k+1's observation.

    Tasks finish out of order; a transition is complete when task k has finished and task
    k + 1 has been decided. Every ``episode_tasks``-th transition is truncated (the episode
    boundary; the learner bootstraps). Complete transitions are cut into batches of ``batch_size``.
    """

    def __init__(self, batch_size: int, episode_tasks: int) -> None:
        self.batch_size = batch_size
        self.episode_tasks = episode_tasks
        self._decided: dict[int, tuple[np.ndarray, float, int]] = {}   # index -> obs, action, version
        # Task k's entry serves transition k (as obs) and transition k - 1 (as next_obs): it is
        # dropped when both have used it.
        self._uses: dict[int, int] = {}
        self._finished: dict[int, tuple[float, np.ndarray]] = {}       # index -> reward, extras
        self._ready: list[tuple[np.ndarray, float, float, np.ndarray, bool, np.ndarray, int]] = []
        self.transitions = 0

    def decided(self, index: int, obs: np.ndarray, action: float, version: int) -> None:
        self._decided[index] = (np.asarray(obs, np.float32), float(action), int(version))
        self._uses[index] = 2 if index > 0 else 1
        self._try(index - 1)

    def finished(self, index: int, reward: float, extras: Sequence[float]) -> None:
        self._finished[index] = (float(reward), np.asarray(extras, np.float32))
        self._try(index)

    def _try(self, index: int) -> None:
        if index < 0 or index not in self._finished or index + 1 not in self._decided:
            return
        obs, action, version = self._decided[index]
        reward, extras = self._finished.pop(index)
        next_obs = self._decided[index + 1][0]
        for used in (index, index + 1):
            self._uses[used] -= 1
            if self._uses[used] == 0:
                del self._uses[used], self._decided[used]
        truncated = (index + 1) % self.episode_tasks == 0
        self._ready.append((obs, action, reward, next_obs, truncated, extras, version))
        self.transitions += 1

    @property
    def pending(self) -> int:
        """Complete transitions not yet taken."""
        return len(self._ready)

    @property
    def held(self) -> int:
        """Decided tasks whose observation is still needed (memory stays bounded by the tasks in progress)."""
        return len(self._decided)

    def take(self, flush: bool = False) -> list[ExperienceChunk]:
        """Full batches (and with ``flush`` the rest as a smaller one)."""
        chunks = []
        while len(self._ready) >= self.batch_size or (flush and self._ready):
            part, self._ready = self._ready[:self.batch_size], self._ready[self.batch_size:]
            chunks.append(ExperienceChunk(
                policy_version=max(p[6] for p in part),
                obs=np.stack([p[0] for p in part]), actions=np.array([[p[1]] for p in part], np.float32),
                rewards=np.array([p[2] for p in part], np.float32), next_obs=np.stack([p[3] for p in part]),
                terminated=np.zeros(len(part), np.bool_), truncated=np.array([p[4] for p in part], np.bool_),
                extras=np.stack([p[5] for p in part])))
        return chunks


class LatencyStats:
    """Recent latencies of one mode (bounded) and the total count."""

    def __init__(self, window: int) -> None:
        self.samples: deque[float] = deque(maxlen=window)
        self.count = 0

    def add(self, value: float) -> None:
        self.samples.append(float(value))
        self.count += 1

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {'count': self.count, 'mean_s': None, 'p50_s': None, 'p95_s': None}
        values = np.fromiter(self.samples, np.float64)
        return {'count': self.count, 'mean_s': round(float(values.mean()), 6),
                'p50_s': round(float(np.percentile(values, 50)), 6),
                'p95_s': round(float(np.percentile(values, 95)), 6)}


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


# ------------------------------------------------------------------------------ link emulation
def parse_schedule(text: str) -> tuple[tuple[float, float], ...]:
    """'0:20,30:2.5,60:10' -> ((0, 20), (30, 2.5), (60, 10)): from t seconds on, the link has that
    many Mbit/s (0 = no emulation). Times start at 0 and increase; '' -> ()."""
    text = (text or '').strip()
    if not text:
        return ()
    pairs = []
    for part in text.split(','):
        try:
            t, mbps = part.split(':')
            pairs.append((float(t), float(mbps)))
        except ValueError:
            raise ValueError(f"link schedule must look like '0:20,30:2.5' (seconds:Mbit/s, ...), "
                             f"got {text!r}") from None
    return check_link_schedule(pairs)


def check_link_schedule(pairs: Sequence[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    pairs = tuple((float(t), float(b)) for t, b in pairs)
    if not pairs:
        return ()
    if pairs[0][0] != 0.0:
        raise ValueError(f'link schedule must start at time 0, got {pairs[0][0]:g}')
    for (t0, _), (t1, _) in zip(pairs, pairs[1:]):
        if not t1 > t0:
            raise ValueError(f'link schedule times must increase, got {t0:g} then {t1:g}')
    for t, b in pairs:
        if not (math.isfinite(t) and math.isfinite(b) and b >= 0.0):
            raise ValueError(f'link schedule entries must be finite with Mbit/s >= 0, got {t:g}:{b:g}')
    return pairs


class LinkEmulator:
    """A FIFO link of a given bandwidth: ``transmit(nbytes)`` waits bytes * 8 / bandwidth after the
    previous transmission ends (the way the cloud-edge paper emulated bandwidth).

    ``schedule``: ((t_s, mbps), ...) from ``start()`` on (0 Mbit/s = no emulation then), or a
    constant ``mbps`` (0 = none). The bandwidth in force when a transmission starts applies to all
    of it. Call only from threads that may wait (the node's offload thread).
    """

    def __init__(self, mbps: float = 0.0, schedule: Sequence[tuple[float, float]] = (),
                 clock: Callable[[], float] = time.monotonic,
                 wait: Callable[[float], Any] | None = None) -> None:
        if isinstance(mbps, bool) or not isinstance(mbps, (int, float)) or not math.isfinite(mbps) or mbps < 0:
            raise ValueError(f'link bandwidth must be a number >= 0 Mbit/s (0 = no emulation), got {mbps!r}')
        self.schedule = check_link_schedule(schedule) if schedule else ((0.0, float(mbps)),)
        self.clock = clock
        self.wait = wait if wait is not None else time.sleep
        self.started_at = clock()
        self.busy_until = -math.inf
        self.transmissions = 0
        self.delayed_s = 0.0
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return any(b > 0 for _, b in self.schedule)

    def start(self) -> None:
        """Time 0 of the schedule is now."""
        self.started_at = self.clock()

    def bandwidth_at(self, now: float | None = None) -> float:
        elapsed = (self.clock() if now is None else now) - self.started_at
        value = self.schedule[0][1]
        for t, mbps in self.schedule:
            if t <= elapsed:
                value = mbps
            else:
                break
        return value

    def reserve(self, nbytes: int, now: float | None = None) -> tuple[float, float]:
        """Books the link for ``nbytes``: (start, end) of the transmission, after the ones booked
        before it (both = now without emulation). The caller waits until ``end``."""
        if nbytes < 0:
            raise ValueError(f'nbytes must be >= 0, got {nbytes}')
        now = self.clock() if now is None else now
        with self._lock:
            start = max(now, self.busy_until)
            mbps = self.bandwidth_at(start)
            if mbps <= 0:
                return now, now
            end = start + nbytes * 8.0 / (mbps * 1e6)
            self.busy_until = end
            self.transmissions += 1
            self.delayed_s += end - now
            return start, end

    def transmit(self, nbytes: int) -> float:
        """Waits until ``nbytes`` have crossed the emulated link; returns the seconds waited."""
        now = self.clock()
        _, end = self.reserve(nbytes, now)
        delay = max(end - now, 0.0)
        if delay > 0:
            self.wait(delay)
        return delay
