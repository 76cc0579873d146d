"""What a simulated DC-DRL client does (no ROS): act, stamp versions, take in weights, collective steps.

The node (client_node.py) only moves messages; this module decides.

* ``central`` mode: the client acts with the newest learner ``policy`` it accepted (a NumpyActor,
  plus exploration noise of scale ``exploration_noise``), random actions before the first one.
  Every experience batch and episode carries the version of the policy that chose its actions
  (0 = random).
* ``collective`` mode: the client trains its own agent (collective.CollectiveMember), submits it
  with its fitness every generation, mutates, and pulls merged generations by the DC-DRL rule.
  It acts with its local agent; experience carries the generation of the last merged model it
  pulled (0 = its own lineage only).

Incoming weights (learner ``policy`` or ``merged_policy``) are validated in the receiving thread
by ``WeightsIntake.offer`` (architecture id from ``network_preset`` and the env's dimensions,
tensor names and shapes, finite float32, strictly newer version); a refusal raises
WeightsRejected and is counted by reason. The newest accepted weights wait in a slot until the
worker thread's next ``ClientLogic.step`` swaps them in between two batches, so a batch is always
produced by exactly one policy version.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
import math
import threading
from typing import Any, Optional

import gymnasium
import numpy as np

from dcdrl_core.learning.agents import AGENT_PRESETS, Agent, AgentConfig
from dcdrl_core.learning.codec import WeightsPayload, WeightsRejected, decode_weights
from dcdrl_core.learning.inference import NumpyActor, actor_shapes
from dcdrl_core.learning.networks import NetworkConfig, architecture_id, network_config
from dcdrl_core.learning.noise import NOISE_KINDS, make_noise
from dcdrl_sim.collective import CollectiveMember, ModelSubmission, PullDecision
from dcdrl_sim.rollout import RolloutBlock, RolloutCollector

MODES = ('central', 'collective')
EVAL_SEED_OFFSET = 10_000  # evaluation episodes are seeded apart from the exploring copies


@dataclass
class ClientConfig:
    """Every setting of a simulated client (the node's parameters, same names and defaults)."""

    client_id: str = ''                          # name in messages; '' = the node name
    env_id: str = 'dcdrl_sim/MecOffload-v0'      # any registered gymnasium env with a Box action space
    network_preset: str = 'dcdrl'                # network (and, collective, agent) preset
    mode: str = 'central'                        # 'central' or 'collective'
    seed: int = 0                                # this client's seed (envs, noise, agent); give each client its own
    num_envs: int = 4                            # environment copies stepped together
    batch_steps: int = 16                        # steps of every copy per experience batch
    exploration: str = 'ou'                      # noise around the policy: 'ou', 'gaussian' or 'none'
    exploration_noise: float = 0.3               # scale of that noise (OU sigma/theta from the preset)
    gamma: float = 0.9                           # (collective) discount of the local 1-step transitions
    generation_steps: int = 2000                 # (collective) transitions per generation
    eval_episodes: int = 3                       # (collective) fitness = mean return of this many episodes
    eval_max_steps: int = 10_000                 # (collective) cut for an evaluation episode that never ends
    mutation_probability: float = 0.2            # (collective) chance of a mutation after each submission
    mutation_scale: float = 0.05                 # (collective) noise std per tensor, relative to its std
    pull_margin: float = 0.0                     # (collective) merged must beat own by more than this
    evaluate_merged: bool = True                 # (collective) evaluate merged here (else trust its fitness)
    batch_size: int = 64                         # (collective) local updates: transitions per update
    learning_starts: int = 1000                  # (collective) local transitions before the first update
    updates_per_step: float = 0.25               # (collective) local updates per transition
    local_buffer_size: int = 100_000             # (collective) local replay capacity
    device: str = 'cpu'                          # (collective) torch device of the local agent
    torch_threads: int = 1                       # torch threads in this process (leave cores to the envs)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {self.mode!r}')
        if self.network_preset not in AGENT_PRESETS:
            raise ValueError(f'network_preset must be one of {sorted(AGENT_PRESETS)}, got {self.network_preset!r}')
        if self.exploration not in NOISE_KINDS:
            raise ValueError(f'exploration must be one of {NOISE_KINDS}, got {self.exploration!r}')
        for name in ('num_envs', 'batch_steps', 'generation_steps', 'eval_episodes', 'eval_max_steps',
                     'batch_size', 'local_buffer_size', 'torch_threads'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be an integer >= 1, got {value!r}')
        for name in ('seed', 'learning_starts'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f'{name} must be an integer >= 0, got {value!r}')
        for name in ('exploration_noise', 'mutation_scale', 'pull_margin'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f'{name} must be a finite number >= 0, got {value!r}')
        for name in ('gamma', 'mutation_probability'):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
                raise ValueError(f'{name} must be in [0, 1], got {value!r}')
        if not (isinstance(self.updates_per_step, (int, float)) and math.isfinite(self.updates_per_step)
                and self.updates_per_step > 0):
            raise ValueError(f'updates_per_step must be a finite number > 0, got {self.updates_per_step!r}')

    def agent_config(self) -> AgentConfig:
        """The local agent (collective): the preset with this client's overrides."""
        return AgentConfig.preset(
            self.network_preset, seed=self.seed, device=self.device, torch_threads=self.torch_threads,
            gamma=self.gamma, batch_size=self.batch_size, critic_start=self.learning_starts,
            actor_start=self.learning_starts, updates_per_step=self.updates_per_step,
            exploration=self.exploration, noise_scale=self.exploration_noise, buffer_size=self.local_buffer_size)


@dataclass
class Incoming:
    """Validated weights waiting to be swapped in."""

    version: int
    weights: dict[str, np.ndarray]
    fitness: Optional[float] = None
    generation: int = 0


class WeightsIntake:
    """Validates weights for one architecture and keeps the newest valid ones waiting (thread-safe).

    ``offer`` runs in the receiving thread, ``take`` in the worker; versions must rise strictly
    (the first accepted must be >= 1: version 0 means "no policy").
    """

    def __init__(self, network: NetworkConfig, obs_dim: int, action_dim: int) -> None:
        self.architecture_id = architecture_id(network, obs_dim, action_dim)
        self.shapes = actor_shapes(network, obs_dim, action_dim)
        self.latest_version = 0          # newest version accepted (waiting or in use)
        self.accepted = 0
        self.refused: Counter[str] = Counter()
        self._pending: Optional[Incoming] = None
        self._lock = threading.Lock()

    def offer(self, payload: WeightsPayload, fitness: Optional[float] = None, generation: int = 0) -> int:
        """Validate and keep; returns the version. Raises WeightsRejected (counted by reason)."""
        try:
            weights = decode_weights(payload, self.architecture_id, self.shapes, active_version=self.latest_version)
            if fitness is not None and not math.isfinite(fitness):
                raise WeightsRejected('malformed', f'fitness must be finite, got {fitness}')
            with self._lock:  # another offer may have won the race since the check above
                if payload.version <= self.latest_version:
                    raise WeightsRejected('stale_version', f'version {payload.version} is not newer than '
                                                           f'{self.latest_version}')
                self._pending = Incoming(int(payload.version), weights, fitness, int(generation))
                self.latest_version = int(payload.version)
                self.accepted += 1
        except WeightsRejected as error:
            with self._lock:
                self.refused[error.reason] += 1
            raise
        return int(payload.version)

    def take(self) -> Optional[Incoming]:
        with self._lock:
            incoming, self._pending = self._pending, None
        return incoming

    def refused_total(self) -> int:
        with self._lock:
            return sum(self.refused.values())


@dataclass
class StepResult:
    """One batch's worth of work: what the node publishes and logs."""

    block: RolloutBlock
    policy_version: int                           # stamp of the block and its episodes
    swapped_to: Optional[int] = None              # central: the policy version taken into use now
    submission: Optional[ModelSubmission] = None  # collective: publish on client_model
    mutated: bool = False
    decisions: list[PullDecision] = field(default_factory=list)
    updates: int = 0


class ClientLogic:
    """A simulated client. ``step()`` runs in one worker thread; ``offer_*`` in any thread."""

    def __init__(self, config: ClientConfig, env_kwargs: Optional[dict[str, Any]] = None) -> None:
        import torch  # only to keep it to the configured threads; the codec imports it anyway
        torch.set_num_threads(config.torch_threads)
        self.config = config
        self.network = network_config(config.network_preset)
        self.collector = RolloutCollector(config.env_id, config.num_envs, seed=config.seed, env_kwargs=env_kwargs,
                                          on_episode_end=self._episode_ended)
        self.obs_dim, self.action_dim = self.collector.obs_dim, self.collector.action_dim
        self.architecture_id = architecture_id(self.network, self.obs_dim, self.action_dim)
        self.policy = WeightsIntake(self.network, self.obs_dim, self.action_dim)   # learner policy (central)
        self.merged = WeightsIntake(self.network, self.obs_dim, self.action_dim)   # merged generations (collective)
        self.policy_version = 0        # the version the next batch is stamped with
        self.actor: Optional[NumpyActor] = None
        self.member: Optional[CollectiveMember] = None
        self.noise = None
        if config.mode == 'central':
            preset = AgentConfig.preset(config.network_preset)  # the preset's noise shape, our scale
            self.noise = make_noise(
                config.exploration, (config.num_envs, self.action_dim), sigma=preset.noise_sigma,
                theta=preset.noise_theta, scale=config.exploration_noise, seed=config.seed + 3)
        else:
            agent = Agent(config.agent_config(), self.obs_dim, self.action_dim)
            eval_env = gymnasium.make(config.env_id, **(env_kwargs or {}))
            self.member = CollectiveMember(
                agent, eval_env, gamma=config.gamma, buffer_size=config.local_buffer_size,
                generation_steps=config.generation_steps, eval_episodes=config.eval_episodes,
                eval_seed=config.seed + EVAL_SEED_OFFSET, eval_max_steps=config.eval_max_steps,
                mutation_probability=config.mutation_probability, mutation_scale=config.mutation_scale,
                pull_margin=config.pull_margin, evaluate_merged=config.evaluate_merged, seed=config.seed)
            self.collector.policy = self.member.act
        self.batches = 0

    # ------------------------------------------------------------------ incoming weights (any thread)
    def offer_policy(self, payload: WeightsPayload) -> int:
        """A learner ``policy`` message's payload; raises WeightsRejected (counted)."""
        return self.policy.offer(payload)

    def offer_merged(self, payload: WeightsPayload, fitness: Optional[float], generation: int) -> int:
        """A ``merged_policy`` payload (version = generation); raises WeightsRejected (counted)."""
        return self.merged.offer(payload, fitness, generation)

    @property
    def next_generation(self) -> int:
        """The generation a submission made now is for: one after the newest merged generation seen."""
        return self.merged.latest_version + 1

    # ------------------------------------------------------------------ the worker's loop body
    def _central_act(self, obs: np.ndarray) -> np.ndarray:
        assert self.actor is not None
        actions = self.actor(obs)
        if self.noise is not None:
            actions = actions + self.noise.sample()
        return np.clip(actions, -1.0, 1.0)

    def _episode_ended(self, env_indices: np.ndarray) -> None:
        if self.member is not None:
            self.member.episode_ended(env_indices)
        elif self.noise is not None:
            for index in env_indices:
                self.noise.reset(int(index))

    def step(self) -> StepResult:
        """Swap in waiting weights, collect one batch, and (collective) learn and run the generation."""
        swapped_to = None
        decisions: list[PullDecision] = []
        if self.member is None:
            incoming = self.policy.take()
            if incoming is not None:
                if self.actor is None:
                    self.actor = NumpyActor(self.network, self.obs_dim, self.action_dim, incoming.weights,
                                            incoming.version)
                    self.collector.policy = self._central_act
                else:
                    self.actor.load_weights(incoming.weights, incoming.version)
                self.policy_version = swapped_to = incoming.version
        else:
            incoming = self.merged.take()
            if incoming is not None:
                decision = self.member.consider_merged(incoming.generation or incoming.version, incoming.weights,
                                                       incoming.fitness)
                decisions.append(decision)
                if decision.pulled:
                    self.policy_version = incoming.version
        block = self.collector.collect(self.config.batch_steps)
        result = StepResult(block, self.policy_version, swapped_to=swapped_to, decisions=decisions)
        if self.member is not None:
            result.updates = self.member.observe(block.obs, block.actions, block.rewards, block.next_obs,
                                                 block.terminated)
            if self.member.generation_due():
                result.submission, result.mutated = self.member.end_generation(self.next_generation)
        self.batches += 1
        return result

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            'mode': self.config.mode, 'architecture_id': self.architecture_id, 'batches': self.batches,
            'env_steps': self.collector.env_steps, 'policy_version': self.policy_version,
            'policies_accepted': self.policy.accepted, 'policies_refused': dict(self.policy.refused),
            'merged_accepted': self.merged.accepted, 'merged_refused': dict(self.merged.refused),
        }
        if self.member is not None:
            out.update(self.member.stats(), next_generation=self.next_generation)
        return out

    def close(self) -> None:
        self.collector.close()
        if self.member is not None:
            self.member.eval_env.close()


__all__ = ['ClientConfig', 'ClientLogic', 'Incoming', 'MODES', 'StepResult', 'WeightsIntake']
