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
by ``policy_intake.WeightsIntake.offer`` (architecture id from ``network_preset`` and the env's
dimensions, tensor names and shapes, finite float32, strictly newer version); a refusal raises
WeightsRejected and is counted by reason. The newest accepted weights wait in a slot until the
worker thread's next ``ClientLogic.step`` swaps them in between two batches, so a batch is always
produced by exactly one policy version.

Start-up in two parts: the environments (numpy, fast) at construction, the weights machinery
(torch, seconds to import on a loaded machine) in ``arm()``. A central client can stream
random-action experience while another thread arms it; ``ClientLogic(config)`` arms at once
unless told ``arm=False``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import gymnasium
import numpy as np

from dcdrl_core import training_defaults
from dcdrl_learning.noise import NOISE_KINDS, make_noise
from dcdrl_ros.parameter_dataclass import check_limits, parameter
from dcdrl_sim.rollout import RolloutBlock, RolloutCollector

if TYPE_CHECKING:  # torch-backed; imported in arm()
    from dcdrl_learning.codec import WeightsPayload
    from dcdrl_learning.inference import NumpyActor
    from dcdrl_learning.noise import ExplorationNoise
    from dcdrl_sim.collective import CollectiveMember, ModelSubmission, PullDecision
    from dcdrl_sim.policy_intake import WeightsIntake

MODES = ('central', 'collective')
# The agent presets of dcdrl_learning.agents.AGENT_PRESETS, named here so that checking a
# setting does not import torch (a unit test keeps the two lists equal).
PRESET_NAMES = ('cloud_edge', 'dcdrl')
EVAL_SEED_OFFSET = 10_000  # evaluation episodes are seeded apart from the exploring copies


@dataclass
class ClientConfig:
    """Every setting of a simulated client: the node's parameters (dcdrl_ros.parameter_dataclass)."""

    client_id: str = parameter('', "name in messages (ExperienceBatch.client_id, PolicyWeights.producer); "
                                   "'' = the node name")
    env_id: str = parameter(training_defaults.ENV_ID, 'gymnasium id of a registered env with Box actions')
    network_preset: str = parameter(training_defaults.NETWORK_PRESET, 'network (and agent) preset; with the '
                                    "env's dims it fixes the architecture id", choices=PRESET_NAMES)
    mode: str = parameter(training_defaults.MODE, 'central: act with the learner\'s policy; collective: train '
                                                  'a local agent too', choices=MODES)
    seed: int = parameter(0, "this client's seed (envs, noise, local agent, mutation): give each client its own",
                          low=0)
    num_envs: int = parameter(4, 'environment copies stepped together', low=1)
    batch_steps: int = parameter(16, 'steps of every copy per experience batch', low=1)
    publish_rate_hz: float = parameter(20.0, 'most experience batches per second (collective: fewer when '
                                             'training takes longer)', above=0.0, live=True)
    experience_depth: int = parameter(100, 'keep-last depth of the experience publisher', low=1)
    stats_period_s: float = parameter(10.0, 'period of the progress log line', above=0.0, live=True)
    exploration: str = parameter('ou', 'noise around the policy', choices=NOISE_KINDS)
    exploration_noise: float = parameter(0.3, 'scale of that noise (OU sigma/theta from the preset); changes '
                                              'while running in central mode only', low=0.0, live=True)
    gamma: float = parameter(training_defaults.GAMMA, 'collective: discount of the local 1-step transitions',
                             low=0.0, high=1.0)
    generation_steps: int = parameter(2000, 'collective: transitions per generation (between submissions)', low=1)
    eval_episodes: int = parameter(3, 'collective: fitness = mean return of this many noise-free episodes', low=1)
    eval_max_steps: int = parameter(10_000, 'collective: cut for an evaluation episode that never ends', low=1)
    mutation_probability: float = parameter(0.2, 'collective: chance of a mutation after each submission',
                                            low=0.0, high=1.0)
    mutation_scale: float = parameter(0.05, 'collective: mutation noise std per tensor, relative to its std',
                                      low=0.0)
    pull_margin: float = parameter(0.0, 'collective: the merged model must beat the own one by more than this',
                                   low=0.0)
    evaluate_merged: bool = parameter(True, 'collective: evaluate the merged model here (false: trust its '
                                            "published fitness, the paper's way)")
    batch_size: int = parameter(64, 'collective: transitions per local update', low=1)
    learning_starts: int = parameter(1000, 'collective: local transitions before the first update', low=0)
    updates_per_step: float = parameter(0.25, 'collective: local updates per transition', above=0.0)
    local_buffer_size: int = parameter(100_000, 'collective: local replay capacity', low=1)
    device: str = parameter('cpu', 'collective: torch device of the local agent')
    torch_threads: int = parameter(1, 'torch threads in this process (leave cores to the envs)', low=1)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f'mode must be one of {MODES}, got {self.mode!r}')
        if self.network_preset not in PRESET_NAMES:
            raise ValueError(f'network_preset must be one of {PRESET_NAMES}, got {self.network_preset!r}')
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
        check_limits(self)  # the rest: the fields' own limits (publish_rate_hz, stats_period_s, ...)

    def agent_config(self) -> Any:
        """The local agent's AgentConfig (collective): the preset with this client's overrides."""
        from dcdrl_learning.agents import AgentConfig
        return AgentConfig.preset(
            self.network_preset, seed=self.seed, device=self.device, torch_threads=self.torch_threads,
            gamma=self.gamma, batch_size=self.batch_size, critic_start=self.learning_starts,
            actor_start=self.learning_starts, updates_per_step=self.updates_per_step,
            exploration=self.exploration, noise_scale=self.exploration_noise, buffer_size=self.local_buffer_size)


@dataclass
class StepResult:
    """One batch's worth of work: what the node publishes and logs."""

    block: RolloutBlock
    policy_version: int                           # stamp of the block and its episodes
    swapped_to: int | None = None              # central: the policy version taken into use now
    submission: ModelSubmission | None = None  # collective: publish on client_model
    mutated: bool = False
    decisions: list[PullDecision] = field(default_factory=list)
    updates: int = 0


class ClientLogic:
    """A simulated client. ``step()`` runs in one worker thread; ``offer_*`` in any thread once armed."""

    def __init__(self, config: ClientConfig, env_kwargs: dict[str, Any] | None = None, arm: bool = True) -> None:
        self.config = config
        self.env_kwargs = dict(env_kwargs or {})
        self.collector = RolloutCollector(config.env_id, config.num_envs, seed=config.seed, env_kwargs=env_kwargs,
                                          on_episode_end=self._episode_ended)
        self.obs_dim, self.action_dim = self.collector.obs_dim, self.collector.action_dim
        self.policy_version = 0        # the version the next batch is stamped with
        self.batches = 0
        self.architecture_id = ''
        self.actor: NumpyActor | None = None   # central: the newest policy taken into use
        self.member: CollectiveMember | None = None   # collective
        self.noise: ExplorationNoise | None = None    # central
        self.policy: WeightsIntake | None = None      # learner policies (central)
        self.merged: WeightsIntake | None = None      # merged generations (collective)
        self.armed = False
        if arm:
            self.arm()

    def arm(self) -> None:
        """Build the weights machinery (imports torch). Call once, from any one thread."""
        import torch

        from dcdrl_learning.agents import Agent, AgentConfig
        from dcdrl_learning.networks import architecture_id, network_config
        from dcdrl_sim.collective import CollectiveMember
        from dcdrl_sim.policy_intake import WeightsIntake
        if self.armed:
            return
        config = self.config
        torch.set_num_threads(config.torch_threads)  # leave the cores to the environments and the learner
        self.network = network_config(config.network_preset)
        self.architecture_id = architecture_id(self.network, self.obs_dim, self.action_dim)
        if config.mode == 'central':
            preset = AgentConfig.preset(config.network_preset)  # the preset's noise shape, our scale
            self.noise = make_noise(
                config.exploration, (config.num_envs, self.action_dim), sigma=preset.noise_sigma,
                theta=preset.noise_theta, scale=config.exploration_noise, seed=config.seed + 3)
        else:
            agent = Agent(config.agent_config(), self.obs_dim, self.action_dim)
            eval_env = gymnasium.make(config.env_id, **self.env_kwargs)
            self.member = CollectiveMember(
                agent, eval_env, gamma=config.gamma, buffer_size=config.local_buffer_size,
                generation_steps=config.generation_steps, eval_episodes=config.eval_episodes,
                eval_seed=config.seed + EVAL_SEED_OFFSET, eval_max_steps=config.eval_max_steps,
                mutation_probability=config.mutation_probability, mutation_scale=config.mutation_scale,
                pull_margin=config.pull_margin, evaluate_merged=config.evaluate_merged, seed=config.seed)
            self.collector.policy = self.member.act
        self.merged = WeightsIntake(self.network, self.obs_dim, self.action_dim)
        self.policy = WeightsIntake(self.network, self.obs_dim, self.action_dim)  # set last: offers may start
        self.armed = True

    # ------------------------------------------------------------------ incoming weights (any thread)
    def _require_armed(self) -> None:
        if not self.armed:
            raise RuntimeError('ClientLogic.arm() has not run yet: weights cannot be taken in')

    def set_exploration_noise(self, scale: float) -> None:
        """Central mode: scale the noise around the policy by ``scale`` from the next step on (checked
        as at start: ValueError). The collective agent builds its noise from the value at start."""
        if self.config.mode != 'central':
            raise ValueError('exploration_noise changes while running only in central mode')
        self.config = replace(self.config, exploration_noise=scale)
        if self.noise is not None:   # not armed yet: arm() makes the noise from the new config
            self.noise.scale = float(scale)

    def offer_policy(self, payload: WeightsPayload) -> int:
        """A learner ``policy`` message's payload; raises WeightsRejected (counted)."""
        self._require_armed()
        return self.policy.offer(payload)

    def offer_merged(self, payload: WeightsPayload, fitness: float | None, generation: int) -> int:
        """A ``merged_policy`` payload (version = generation); raises WeightsRejected (counted)."""
        self._require_armed()
        return self.merged.offer(payload, fitness, generation)

    @property
    def next_generation(self) -> int:
        """The generation a submission made now is for: one after the newest merged generation seen."""
        return 1 if self.merged is None else self.merged.latest_version + 1

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
        if self.config.mode == 'collective' and not self.armed:
            raise RuntimeError('a collective client acts with its local agent: call arm() before step()')
        if self.member is None:
            incoming = self.policy.take() if self.policy is not None else None
            if incoming is not None:
                if self.actor is None:
                    from dcdrl_learning.inference import NumpyActor
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
            'mode': self.config.mode, 'architecture_id': self.architecture_id, 'armed': self.armed,
            'batches': self.batches, 'env_steps': self.collector.env_steps, 'policy_version': self.policy_version,
            'policies_accepted': 0, 'policies_refused': {}, 'merged_accepted': 0, 'merged_refused': {}}
        if self.armed:
            out.update(policies_accepted=self.policy.accepted, policies_refused=dict(self.policy.refused),
                       merged_accepted=self.merged.accepted, merged_refused=dict(self.merged.refused))
        if self.member is not None:
            out.update(self.member.stats(), next_generation=self.next_generation)
        return out

    def close(self) -> None:
        self.collector.close()
        if self.member is not None:
            self.member.eval_env.close()


__all__ = ['ClientConfig', 'ClientLogic', 'MODES', 'PRESET_NAMES', 'StepResult']
