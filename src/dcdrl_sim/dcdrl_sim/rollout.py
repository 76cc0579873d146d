"""Collects transitions from K vectorised environment copies (no ROS): what a simulated client does.

Handles gymnasium's next-step autoreset: after an episode ends, the next step of that
copy only resets it, so that step is not a transition and is skipped.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import gymnasium
import numpy as np

import dcdrl_sim  # noqa: F401  (registers the environments)
from dcdrl_sim.registration import make_vector_env

# Per-step info keys that every dcdrl_sim environment reports; carried as experience extras.
EXTRA_KEYS = ('cost', 'latency_s', 'energy_j', 'deadline_miss_ratio', 'offload_fraction')

Policy = Callable[[np.ndarray], np.ndarray]
# Told which copies just finished an episode (e.g. to restart their exploration noise).
EpisodeEndHook = Callable[[np.ndarray], None]


@dataclass
class RolloutEpisodeSummary:
    """One finished episode of one env copy of a simulated client's rollout."""
    env_index: int
    episode_return: float
    length: int
    cost: float
    latency_mean_s: float
    energy_mean_j: float
    deadline_miss_ratio: float
    offload_fraction: float


@dataclass
class RolloutBlock:
    """Transitions in arrival order (flat over time and env copies), with their extras."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    extra_names: tuple[str, ...]
    extras: np.ndarray  # [n, len(extra_names)]
    episodes: list[RolloutEpisodeSummary] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.rewards.shape[0])


class RolloutCollector:
    def __init__(self, env_id: str, num_envs: int = 4, seed: int | None = None,
                 policy: Policy | None = None, env_kwargs: dict[str, Any] | None = None,
                 on_episode_end: EpisodeEndHook | None = None) -> None:
        """``policy`` maps obs [num_envs, obs_dim] to actions; None (or set to None later) samples
        random actions.  ``on_episode_end`` gets the indices of the copies whose episode ended
        at a step, right after that step."""
        if num_envs < 1:
            raise ValueError(f'num_envs must be >= 1, got {num_envs}')
        self.env_id = env_id
        self.envs = make_vector_env(env_id, num_envs, **(env_kwargs or {}))
        if not isinstance(self.envs.single_action_space, gymnasium.spaces.Box):
            raise ValueError(f'{env_id}: the collector needs a continuous (Box) action space, '
                             f'got {self.envs.single_action_space}')
        self.num_envs = num_envs
        self.obs_dim = int(np.prod(self.envs.single_observation_space.shape))
        self.action_dim = int(np.prod(self.envs.single_action_space.shape))
        self.policy = policy
        self.on_episode_end = on_episode_end
        self.envs.action_space.seed(seed)
        self._obs, _ = self.envs.reset(seed=seed)
        self._skip = np.zeros(num_envs, dtype=bool)  # next step of these copies is a reset step
        self._episode = {name: np.zeros(num_envs) for name in ('return', 'length', *EXTRA_KEYS)}
        self.env_steps = 0

    def _act(self, obs: np.ndarray) -> np.ndarray:
        if self.policy is None:
            return self.envs.action_space.sample()
        actions = np.asarray(self.policy(obs), dtype=np.float32).reshape(self.num_envs, self.action_dim)
        space = cast(gymnasium.spaces.Box, self.envs.single_action_space)   # continuous actions only
        return np.clip(actions, space.low, space.high)

    def collect(self, steps: int) -> RolloutBlock:
        """Steps every copy ``steps`` times and returns the transitions (reset steps excluded)."""
        parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                              ('obs', 'actions', 'rewards', 'next_obs', 'terminated',
                                               'truncated', 'extras')}
        episodes: list[RolloutEpisodeSummary] = []
        for _ in range(steps):
            actions = self._act(self._obs)
            next_obs, rewards, terminated, truncated, info = self.envs.step(actions)
            valid = ~self._skip
            extras = np.zeros((self.num_envs, len(EXTRA_KEYS)), dtype=np.float32)
            for column, key in enumerate(EXTRA_KEYS):
                if key in info:
                    extras[:, column] = np.asarray(info[key], dtype=np.float32)
            parts['obs'].append(self._obs.reshape(self.num_envs, -1)[valid])
            parts['actions'].append(np.asarray(actions, np.float32).reshape(self.num_envs, -1)[valid])
            parts['rewards'].append(np.asarray(rewards, np.float32)[valid])
            parts['next_obs'].append(next_obs.reshape(self.num_envs, -1)[valid])
            parts['terminated'].append(np.asarray(terminated, bool)[valid])
            parts['truncated'].append(np.asarray(truncated, bool)[valid])
            parts['extras'].append(extras[valid])
            self.env_steps += int(valid.sum())
            episodes += self._track_episodes(valid, rewards, extras, terminated | truncated)
            ended = np.flatnonzero(valid & np.asarray(terminated | truncated, bool))
            if ended.size and self.on_episode_end is not None:
                self.on_episode_end(ended)
            self._skip = np.asarray(terminated | truncated, bool)
            self._obs = next_obs
        return RolloutBlock(
            obs=np.concatenate(parts['obs']).astype(np.float32),
            actions=np.concatenate(parts['actions']),
            rewards=np.concatenate(parts['rewards']),
            next_obs=np.concatenate(parts['next_obs']).astype(np.float32),
            terminated=np.concatenate(parts['terminated']),
            truncated=np.concatenate(parts['truncated']),
            extra_names=EXTRA_KEYS, extras=np.concatenate(parts['extras']), episodes=episodes)

    def _track_episodes(self, valid: np.ndarray, rewards: np.ndarray, extras: np.ndarray,
                        done: np.ndarray) -> list[RolloutEpisodeSummary]:
        stats = self._episode
        stats['return'][valid] += np.asarray(rewards)[valid]
        stats['length'][valid] += 1
        for column, key in enumerate(EXTRA_KEYS):
            stats[key][valid] += extras[valid, column]
        finished = []
        for index in np.flatnonzero(valid & np.asarray(done, bool)):
            length = max(1.0, stats['length'][index])
            finished.append(RolloutEpisodeSummary(
                env_index=int(index), episode_return=float(stats['return'][index]),
                length=int(stats['length'][index]), cost=float(stats['cost'][index]),
                latency_mean_s=float(stats['latency_s'][index] / length),
                energy_mean_j=float(stats['energy_j'][index] / length),
                deadline_miss_ratio=float(stats['deadline_miss_ratio'][index] / length),
                offload_fraction=float(stats['offload_fraction'][index] / length)))
            for values in stats.values():
                values[index] = 0.0
        return finished

    def close(self) -> None:
        self.envs.close()
