"""A client's part in DC-DRL collective training (no ROS): local agent, fitness, mutation, pull.

Per generation a collective client (DC-DRL, TPDS 2021, as corrected in docs/replay.md):

1. trains its own DDPG/TD3 agent from its own local replay buffer while it explores;
2. every ``generation_steps`` environment transitions evaluates its fitness (mean return of
   ``eval_episodes`` noise-free episodes on a separate evaluation environment) and submits its
   actor with that fitness to the parameter server;
3. with probability ``mutation_probability`` adds Gaussian noise to its actor (merge.mutate:
   per-tensor scale), after the submission, so the submitted model is the evaluated one;
4. when a merged generation arrives, pulls it when it is better than its own model
   (merge.should_pull). By default both models are evaluated here on the same seeded episodes
   (the server's figure is only the weighted mean of the contributors' fitness); the paper's
   rule (compare the server's figure with the last own fitness) is ``evaluate_merged=False``.

Everything runs in the caller's (worker) thread; nothing here reads clocks.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import gymnasium
import numpy as np
import torch

from dcdrl_learning.agents import Agent
from dcdrl_learning.inference import NumpyActor
from dcdrl_learning.merge import mutate, should_pull
from dcdrl_learning.replay import ReplayBuffer

Weights = dict[str, np.ndarray]


def evaluate_policy(env: gymnasium.Env, policy: Callable[[np.ndarray], np.ndarray], episodes: int,
                    seed: int, max_steps: int) -> float:
    """Mean undiscounted return of ``episodes`` episodes; episode k starts from ``reset(seed=seed+k)``.

    The same seeds every time, so two models evaluated with the same arguments meet the same
    episodes (common random numbers: their difference is not drowned in episode noise).
    ``max_steps`` cuts an episode that never ends.
    """
    if episodes < 1 or max_steps < 1:
        raise ValueError(f'episodes and max_steps must be >= 1, got {episodes} and {max_steps}')
    space = cast(gymnasium.spaces.Box, env.action_space)   # continuous actions only
    low = np.asarray(space.low, np.float32)
    high = np.asarray(space.high, np.float32)
    returns = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        total = 0.0
        for _ in range(max_steps):
            action = np.clip(np.asarray(policy(np.asarray(obs, np.float32).reshape(-1)), np.float32), low, high)
            obs, reward, terminated, truncated, _ = env.step(action.reshape(env.action_space.shape))
            total += float(reward)
            if terminated or truncated:
                break
        returns.append(total)
    return float(np.mean(returns))


@dataclass(frozen=True)
class ModelSubmission:
    """What the client publishes on client_model after a generation's evaluation."""

    generation: int           # the generation this model is submitted for (latest merged seen + 1)
    fitness: float
    weights: Weights          # the evaluated actor (before any mutation)
    env_steps: int            # the client's transitions so far


@dataclass(frozen=True)
class PullDecision:
    """One merged generation considered by the client (logged by the node)."""

    generation: int
    pulled: bool
    own_fitness: float
    merged_fitness: float
    source: str               # 'evaluated' (both models on the same episodes) or 'published'

    def describe(self) -> str:
        relation = '>' if self.merged_fitness > self.own_fitness else '<='
        verdict = 'pull' if self.pulled else 'no pull'
        return (f'merged generation {self.generation}: {verdict} (merged {self.merged_fitness:.4g} {relation} '
                f'own {self.own_fitness:.4g}, merged fitness {self.source})')


class CollectiveMember:
    """The local agent of a collective client, with its buffer, evaluation, mutation and pull rule.

    Args:
        agent: the local agent (built from the same network preset as every other party).
        eval_env: a separate (non-vector) environment for fitness episodes.
        gamma: discount stored with each 1-step transition (0 where the episode terminated).
        buffer_size: local replay capacity.
        generation_steps: transitions between two fitness evaluations / submissions.
        eval_episodes, eval_seed, eval_max_steps: see ``evaluate_policy``.
        mutation_probability, mutation_scale: chance and size of a mutation after a submission.
        pull_margin: the merged model must beat the own one by more than this.
        evaluate_merged: evaluate the merged model here (True) or trust the published figure.
        seed: seeds the local buffer's sampler and the mutation generator.
    """

    def __init__(self, agent: Agent, eval_env: gymnasium.Env, *, gamma: float, buffer_size: int,
                 generation_steps: int, eval_episodes: int, eval_seed: int, eval_max_steps: int,
                 mutation_probability: float, mutation_scale: float, pull_margin: float = 0.0,
                 evaluate_merged: bool = True, seed: int = 0) -> None:
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f'gamma must be in [0, 1], got {gamma}')
        if generation_steps < 1 or eval_episodes < 1 or eval_max_steps < 1:
            raise ValueError('generation_steps, eval_episodes and eval_max_steps must be >= 1, got '
                             f'{generation_steps}, {eval_episodes}, {eval_max_steps}')
        if not 0.0 <= mutation_probability <= 1.0:
            raise ValueError(f'mutation_probability must be in [0, 1], got {mutation_probability}')
        if not (math.isfinite(mutation_scale) and mutation_scale >= 0):
            raise ValueError(f'mutation_scale must be a finite number >= 0, got {mutation_scale}')
        if not (math.isfinite(pull_margin) and pull_margin >= 0):
            raise ValueError(f'pull_margin must be a finite number >= 0, got {pull_margin}')
        self.agent = agent
        self.eval_env = eval_env
        self.gamma = float(gamma)
        self.generation_steps = int(generation_steps)
        self.eval_episodes, self.eval_seed = int(eval_episodes), int(eval_seed)
        self.eval_max_steps = int(eval_max_steps)
        self.mutation_probability, self.mutation_scale = float(mutation_probability), float(mutation_scale)
        self.pull_margin, self.evaluate_merged = float(pull_margin), bool(evaluate_merged)
        self.buffer = ReplayBuffer(buffer_size, agent.obs_dim, agent.action_dim, seed=seed)
        self.rng = np.random.default_rng(seed + 7)
        self._owed_updates = 0.0
        self._steps_in_generation = 0
        # Fitness of the latest evaluation of the own model (a submission or a pull decision);
        # training and mutation since then are not re-evaluated, as in the paper.
        self.last_fitness: float | None = None
        self.env_steps = 0
        self.updates = 0
        self.submissions = 0
        self.mutations = 0
        self.pulls = 0
        self.no_pulls = 0
        self.last_critic_loss: float | None = None

    # ------------------------------------------------------------------ acting and learning
    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.agent.act(obs, explore=True)

    def episode_ended(self, env_indices: np.ndarray) -> None:
        for index in env_indices:
            self.agent.reset_noise(int(index))

    def observe(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
                terminated: np.ndarray) -> int:
        """Store 1-step transitions and run the updates they pay for; returns how many ran."""
        n = int(rewards.shape[0])
        if n == 0:
            return 0
        discounts = np.where(terminated, 0.0, self.gamma).astype(np.float32)
        self.buffer.add(obs, actions, rewards, next_obs, discounts)
        self.env_steps += n
        self._steps_in_generation += n
        stored = len(self.buffer)
        if not self.agent.ready(stored):
            self._owed_updates = 0.0  # no backlog of updates before learning starts
            return 0
        self._owed_updates += self.agent.config.updates_per_step * n
        count = int(self._owed_updates)
        self._owed_updates -= count
        for _ in range(count):
            stats = self.agent.update(self.buffer.sample(self.agent.config.batch_size), stored_transitions=stored)
            self.last_critic_loss = stats['critic_loss']
        self.updates += count
        return count

    # ------------------------------------------------------------------ weights and fitness
    def actor_weights(self) -> Weights:
        return {name: tensor.numpy() for name, tensor in self.agent.actor_state().items()}

    def evaluate(self, weights: Mapping[str, np.ndarray] | None = None) -> float:
        """Fitness of ``weights`` (default: the local actor) on the fixed evaluation episodes."""
        weights = self.actor_weights() if weights is None else weights
        actor = NumpyActor(self.agent.config.network, self.agent.obs_dim, self.agent.action_dim, weights)
        return evaluate_policy(self.eval_env, actor, self.eval_episodes, self.eval_seed, self.eval_max_steps)

    def generation_due(self) -> bool:
        return self._steps_in_generation >= self.generation_steps

    def end_generation(self, generation: int) -> tuple[ModelSubmission, bool]:
        """Evaluate, build the submission for ``generation``, then maybe mutate.

        Returns the submission and whether the actor was mutated afterwards.
        """
        weights = self.actor_weights()
        fitness = self.evaluate(weights)
        submission = ModelSubmission(generation, fitness, weights, self.env_steps)
        self._steps_in_generation = 0
        self.submissions += 1
        self.last_fitness = fitness
        mutated = bool(self.rng.random() < self.mutation_probability) and self.mutation_scale > 0
        if mutated:
            self.agent.load_actor_state(mutate(weights, self.mutation_scale, self.rng))
            self.mutations += 1
        return submission, mutated

    def consider_merged(self, generation: int, weights: Mapping[str, np.ndarray],
                        published_fitness: float | None) -> PullDecision:
        """Pull the merged actor when it is better than the own one (merge.should_pull)."""
        if self.evaluate_merged or published_fitness is None:
            merged_fitness, source = self.evaluate(weights), 'evaluated'
            own = self.evaluate()  # the same episodes as the merged model, the actor as it is now
        else:
            merged_fitness, source = float(published_fitness), 'published'
            own = self.last_fitness if self.last_fitness is not None else self.evaluate()
        pulled = should_pull(own, merged_fitness, self.pull_margin)
        if pulled:
            self.load_actor(weights)
            self.pulls += 1
        else:
            self.no_pulls += 1
        self.last_fitness = merged_fitness if pulled else own
        return PullDecision(generation, pulled, float(own), float(merged_fitness), source)

    def load_actor(self, weights: Mapping[str, np.ndarray]) -> None:
        """Replace the actor and its target (the critic keeps learning on): a pulled model is
        adopted as a whole, so the target policy used in the critic's targets matches it."""
        self.agent.load_actor_state(weights)
        with torch.no_grad():
            self.agent.actor_target.load_state_dict(
                {name: torch.as_tensor(np.asarray(value, np.float32)) for name, value in weights.items()})

    def stats(self) -> dict[str, Any]:
        return {'local_buffer': len(self.buffer), 'updates': self.updates, 'submissions': self.submissions,
                'mutations': self.mutations, 'pulls': self.pulls, 'no_pulls': self.no_pulls,
                'last_fitness': self.last_fitness, 'critic_loss': self.last_critic_loss}


__all__ = ['CollectiveMember', 'ModelSubmission', 'PullDecision', 'evaluate_policy']
