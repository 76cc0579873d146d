"""The DC-DRL parameter server's logic (no ROS): generations of client models, merged elites, latest policy.

Per generation g (1, 2, ...):

* clients (and the learner in collective mode) submit their actor with its fitness for g
  (``submit``); each submission is validated: producer named, fitness present and finite,
  architecture id and tensor shapes of this server's network, finite float32 values, and a
  generation number that fits (below);
* the generation closes when ``expected_models`` different producers submitted, or
  ``generation_timeout_s`` after its *first* submission with at least ``min_models`` in
  (``poll``; the node calls it after each submission and from a timer). Counting the timeout
  from the first submission, not from the previous close, keeps a late-starting or slow graph
  from closing a generation of one model the moment its first model arrives;
* the elite is merged (dcdrl_learning.merge: rank or softmax weights over the paper's
  elite "fitness >= mean" or the best ``elite_fraction``; never raw-fitness weights) into
  generation g with version g and fitness = the weighted mean fitness of its contributors,
  and one row is appended to ``generations.csv``.

Generation numbers of submissions: g = the open generation is accepted; 0 means "the open one"
(a producer that does not track generations); an older number is refused as stale (the
producer had not yet seen the last merge; its next submission will fit); a newer number moves
an *empty* open generation forward to it (so a restarted server continues the numbering the
clients know) and is refused as ahead otherwise.

``answer`` serves get_policy: the newest merged generation if there is one, else the newest
learner ``policy`` seen, each only when it matches the requested architecture and min_version.
"""
from __future__ import annotations

import csv
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np

from dcdrl_core import training_defaults
from dcdrl_learning.codec import WeightsPayload, WeightsRejected, decode_weights, make_payload
from dcdrl_learning.inference import actor_shapes
from dcdrl_learning.merge import METHODS, GenerationCollector, GenerationResult
from dcdrl_learning.networks import PRESETS, architecture_id, network_config
from dcdrl_learning.weights_msg import MAX_ARCHITECTURE_ID_LENGTH
from dcdrl_ros.parameter_dataclass import check_limits, parameter

CSV_NAME = 'generations.csv'
CSV_COLUMNS = ('generation', 'time', 'reason', 'submissions', 'merged_clients', 'weights', 'fitness',
               'fitness_estimate')


@dataclass
class ParameterServerConfig:
    """Every setting of the parameter server: the node's parameters (dcdrl_ros.parameter_dataclass)."""

    env_id: str = parameter(training_defaults.ENV_ID, 'env whose dimensions fix the architecture id')
    network_preset: str = parameter(training_defaults.NETWORK_PRESET, 'network preset of every party',
                                    choices=sorted(PRESETS))
    expected_models: int = parameter(training_defaults.EXPECTED_MODELS, 'submissions from distinct producers that '
                                     'close a generation (collective mode: the clients + the learner)', low=1)
    generation_timeout_s: float = parameter(30.0, "close a generation this long after its first submission",
                                            above=0.0)
    min_models: int = parameter(1, 'fewest models a timed-out generation needs (<= expected_models)', low=1)
    merge_method: str = parameter('rank', 'how elite models are weighted in the merge', choices=METHODS)
    elite_fraction: float = parameter(0.0, "0 = the paper's elite (fitness >= mean); else the best fraction",
                                      low=0.0, high=1.0)
    temperature: float = parameter(1.0, 'softmax temperature, in elite fitness standard deviations', above=0.0)
    output_dir: str = parameter(training_defaults.OUTPUT_DIR, 'generations.csv is appended here')
    poll_period_s: float = parameter(0.5, 'timer period of the time-based close of a generation', above=0.0,
                                     live=True)

    def __post_init__(self) -> None:
        if self.network_preset not in PRESETS:
            raise ValueError(f'network_preset must be one of {sorted(PRESETS)}, got {self.network_preset!r}')
        for name in ('expected_models', 'min_models'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be an integer >= 1, got {value!r}')
        if self.min_models > self.expected_models:
            raise ValueError(f'min_models ({self.min_models}) must not exceed expected_models '
                             f'({self.expected_models})')
        if not (isinstance(self.generation_timeout_s, (int, float)) and math.isfinite(self.generation_timeout_s)
                and self.generation_timeout_s > 0):
            raise ValueError(f'generation_timeout_s must be a finite number > 0, got {self.generation_timeout_s!r}')
        if self.merge_method not in METHODS:
            raise ValueError(f'merge_method must be one of {METHODS}, got {self.merge_method!r}')
        if not (isinstance(self.elite_fraction, (int, float)) and 0.0 <= self.elite_fraction <= 1.0):
            raise ValueError(f'elite_fraction must be in [0, 1] (0 = fitness >= mean), got {self.elite_fraction!r}')
        if not (isinstance(self.temperature, (int, float)) and math.isfinite(self.temperature)
                and self.temperature > 0):
            raise ValueError(f'temperature must be a finite number > 0, got {self.temperature!r}')
        check_limits(self)  # the rest: the fields' own limits (poll_period_s)


def env_dims(env_id: str, **env_kwargs: Any) -> tuple[int, int]:
    """(obs_dim, action_dim) of a registered gymnasium env with a Box action space."""
    import dcdrl_sim  # noqa: F401  (registers the dcdrl_sim environments)
    env = gymnasium.make(env_id, **env_kwargs)
    try:
        if not isinstance(env.action_space, gymnasium.spaces.Box):
            raise ValueError(f'{env_id}: needs a continuous (Box) action space, got {env.action_space}')
        return int(np.prod(env.observation_space.shape)), int(np.prod(env.action_space.shape))
    finally:
        env.close()


class SubmissionRefused(ValueError):
    """A client_model submission that was not taken; ``reason`` is a short code for counting."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f'model refused ({reason}): {message}')
        self.reason = reason


@dataclass(frozen=True)
class MergedGeneration:
    generation: int
    payload: WeightsPayload        # version = generation
    fitness_estimate: float
    result: GenerationResult

    def describe(self) -> str:
        r = self.result
        parts = ', '.join(f'{c} w={r.weights[c]:.3f} f={r.fitness[c]:.4g}' for c in r.merged_clients)
        line = (f'generation {self.generation} merged ({r.reason}) from {len(r.fitness)} models: {parts}; '
                f'fitness estimate {self.fitness_estimate:.4g}')
        if r.excluded_clients:
            line += f"; outside the elite: {', '.join(r.excluded_clients)}"
        return line


@dataclass(frozen=True)
class PolicyAnswer:
    available: bool
    message: str
    payload: WeightsPayload | None = None
    generation: int = 0
    fitness: float | None = None
    producer: str = ''


class ParameterServer:
    """Collects, merges and serves. Not thread-safe: the node calls it from its spinning thread.

    ``now`` arguments are any monotonic clock in seconds (the node passes time.monotonic()).
    """

    def __init__(self, config: ParameterServerConfig, obs_dim: int, action_dim: int, now: float = 0.0,
                 producer_name: str = 'parameter_server') -> None:
        self.config = config
        network = network_config(config.network_preset)
        self.architecture_id = architecture_id(network, obs_dim, action_dim)
        self.shapes = actor_shapes(network, obs_dim, action_dim)
        self.producer_name = producer_name
        self.collector = GenerationCollector(
            config.expected_models, timeout=float(config.generation_timeout_s), min_submissions=config.min_models,
            method=config.merge_method, temperature=float(config.temperature),
            elite_fraction=float(config.elite_fraction) or None, start_generation=1, now=now)
        self.csv_path = Path(config.output_dir) / CSV_NAME
        self.accepted = 0
        self.refused: Counter[str] = Counter()
        self.fast_forwards = 0
        self.generations_closed = 0
        self.merged: MergedGeneration | None = None
        self.learner: WeightsPayload | None = None
        self.learner_producer = ''
        self.learner_accepted = 0
        self.learner_refused: Counter[str] = Counter()
        self.requests = 0
        self.requests_unanswered = 0

    @property
    def open_generation(self) -> int:
        return self.collector.generation

    # ------------------------------------------------------------------ client models
    def submit(self, payload: WeightsPayload, producer: str, generation: int, fitness: float | None,
               now: float) -> int:
        """Take a model into the open generation; returns that generation's number.

        Raises SubmissionRefused (counted in ``refused`` by reason) for anything it cannot use.
        """
        try:
            return self._submit(payload, producer, generation, fitness, now)
        except SubmissionRefused as error:
            self.refused[error.reason] += 1
            raise

    def _submit(self, payload: WeightsPayload, producer: str, generation: int, fitness: float | None,
                now: float) -> int:
        if not isinstance(producer, str) or not producer.strip():
            raise SubmissionRefused('no_producer', 'the producer field names no client')
        if fitness is None:
            raise SubmissionRefused('no_fitness', f'{producer!r} sent no fitness (has_fitness is false)')
        if not (isinstance(fitness, (int, float)) and math.isfinite(fitness)):
            raise SubmissionRefused('bad_fitness', f'{producer!r} sent fitness {fitness!r}; a finite number is needed')
        try:
            weights = decode_weights(payload, self.architecture_id, self.shapes)
        except WeightsRejected as error:
            raise SubmissionRefused(error.reason, f'{producer!r}: {error}') from None
        open_g = self.collector.generation
        target = open_g if generation == 0 else int(generation)
        if target < open_g:
            raise SubmissionRefused('stale_generation', f'{producer!r} submitted for generation {generation}, '
                                                        f'generation {open_g} is open')
        if target > open_g:
            if self.collector.submissions:
                raise SubmissionRefused('ahead_generation', f'{producer!r} submitted for generation {generation}, '
                                                            f'generation {open_g} is open and has submissions')
            self.collector.generation = target  # an empty open generation follows the producers' numbering
            self.fast_forwards += 1
        first = not self.collector.submissions
        try:
            accepted = self.collector.submit(producer, target, weights, float(fitness), now)
        except ValueError as error:  # shapes were checked above; kept as a guard
            raise SubmissionRefused('malformed', str(error)) from None
        if not accepted:
            raise SubmissionRefused('stale_generation', f'generation {target} is not open')
        if first:
            self.collector.opened_at = float(now)  # the timeout counts from the first submission
        self.accepted += 1
        return target

    def submissions_in_open_generation(self) -> int:
        return len(self.collector.submissions)

    def poll(self, now: float, wall_time: float | None = None) -> MergedGeneration | None:
        """Close the open generation when it is complete or timed out; returns the merged generation."""
        result = self.collector.poll(now)
        if result is None:
            return None
        names = sorted(result.merged)
        payload = make_payload(self.architecture_id, result.generation, names,
                               [result.merged[n].shape for n in names], [result.merged[n] for n in names])
        merged = MergedGeneration(result.generation, payload, float(result.fitness_estimate), result)
        self.merged = merged
        self.generations_closed += 1
        self._append_csv(merged, wall_time)
        return merged

    def _append_csv(self, merged: MergedGeneration, wall_time: float | None) -> None:
        r = merged.result
        self.csv_path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.csv_path.exists() or self.csv_path.stat().st_size == 0
        with open(self.csv_path, 'a', newline='') as handle:
            writer = csv.writer(handle)
            if new:
                writer.writerow(CSV_COLUMNS)
            writer.writerow([
                merged.generation, '' if wall_time is None else f'{wall_time:.3f}', r.reason, len(r.fitness),
                ';'.join(r.merged_clients),
                ';'.join(f'{c}:{w:.6g}' for c, w in sorted(r.weights.items())),
                ';'.join(f'{c}:{f:.6g}' for c, f in sorted(r.fitness.items())),
                f'{merged.fitness_estimate:.6g}'])
            handle.flush()
            os.fsync(handle.fileno())

    # ------------------------------------------------------------------ learner policy and get_policy
    def offer_learner_policy(self, payload: WeightsPayload, producer: str = '') -> int:
        """Remember the newest valid learner policy; raises WeightsRejected (counted)."""
        try:
            active = None if self.learner is None else self.learner.version
            weights = decode_weights(payload, self.architecture_id, self.shapes, active_version=active)
        except WeightsRejected as error:
            self.learner_refused[error.reason] += 1
            raise
        names = list(weights)
        self.learner = make_payload(self.architecture_id, int(payload.version), names,
                                    [weights[n].shape for n in names], [weights[n] for n in names])
        self.learner_producer = producer
        self.learner_accepted += 1
        return int(payload.version)

    def answer(self, requested_architecture: str = '', min_version: int = 0) -> PolicyAnswer:
        """get_policy: the merged generation if any, else the learner policy, if they fit the request."""
        self.requests += 1
        if len(requested_architecture) > MAX_ARCHITECTURE_ID_LENGTH:   # never echoed: the reply stays small
            self.requests_unanswered += 1
            return PolicyAnswer(False, f'architecture_id longer than {MAX_ARCHITECTURE_ID_LENGTH} characters')
        candidates = []
        if self.merged is not None:
            candidates.append((f'merged generation {self.merged.generation}', self.merged.payload,
                               self.merged.generation, self.merged.fitness_estimate, self.producer_name))
        if self.learner is not None:
            candidates.append(('learner policy', self.learner, 0, None, self.learner_producer))
        if not candidates:
            self.requests_unanswered += 1
            return PolicyAnswer(False, 'no policy yet: no merged generation and no learner policy seen')
        reasons = []
        for label, payload, generation, fitness, producer in candidates:
            if requested_architecture and requested_architecture != payload.architecture_id:
                reasons.append(f'{label} is architecture {payload.architecture_id}, not {requested_architecture}')
            elif payload.version < min_version:
                reasons.append(f'{label} is version {payload.version} < min_version {min_version}')
            else:
                return PolicyAnswer(True, f'{label}, version {payload.version}', payload, generation, fitness,
                                    producer)
        self.requests_unanswered += 1
        return PolicyAnswer(False, '; '.join(reasons))

    def stats(self) -> dict[str, Any]:
        merged = self.merged
        return {
            'architecture_id': self.architecture_id, 'open_generation': self.collector.generation,
            'open_submissions': len(self.collector.submissions), 'generations': self.generations_closed,
            'last_generation': None if merged is None else merged.generation,
            'accepted': self.accepted, 'refused': dict(self.refused),
            'fast_forwards': self.fast_forwards,
            'last_fitness_estimate': None if merged is None else merged.fitness_estimate,
            'learner_version': None if self.learner is None else self.learner.version,
            'learner_accepted': self.learner_accepted, 'learner_refused': dict(self.learner_refused),
            'requests': self.requests, 'requests_unanswered': self.requests_unanswered}


__all__ = ['CSV_COLUMNS', 'CSV_NAME', 'MergedGeneration', 'ParameterServer', 'ParameterServerConfig',
           'PolicyAnswer', 'SubmissionRefused', 'env_dims']
