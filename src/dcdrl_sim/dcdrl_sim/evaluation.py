"""Runs a policy on an environment for K episodes and tabulates the results.

Works for any single (non-vector) gymnasium env. Episode return and length are always
reported; the offloading metrics are reported when the step info carries the common keys
(MecOffloadEnv, FaceOffloadEnv):

    "cost"                 sum of the users' costs this step
    "latency_s"            mean task latency this step
    "energy_j"             mean energy per task this step
    "deadline_miss_ratio"  fraction of this step's tasks that missed their deadline
    "offload_fraction"     fraction of this step's tasks that were offloaded

Per episode each metric is the mean over the episode's steps; the summary is the mean over
episodes. Episode k is reset with seed ``seed + k``, so two policies evaluated with the same
seed see the same task sequence whenever the env draws its tasks independently of actions
(MecOffloadEnv does).

    result = evaluate_policy("dcdrl_sim/MecOffload-v0", policy_factory=GreedyPolicy, episodes=5)
    print(result.to_markdown())
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

COMMON_INFO_KEYS = ('cost', 'latency_s', 'energy_j', 'deadline_miss_ratio', 'offload_fraction')
SUMMARY_COLUMNS = ('policy', 'episodes', 'return', 'return_std', 'length') + COMMON_INFO_KEYS \
    + ('decision_ms',)

Policy = Callable[[Any], Any]


@dataclass
class EvaluationResult:
    """Per-episode rows and their summary for one policy."""

    name: str
    episodes: list[dict[str, float]] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, Any]:
        """Means over episodes (and the std of the return); metrics absent from every
        episode are left out."""
        out: dict[str, Any] = {'policy': self.name, 'episodes': len(self.episodes)}
        if not self.episodes:
            return out
        returns = np.array([row['return'] for row in self.episodes])
        out['return'] = float(returns.mean())
        out['return_std'] = float(returns.std())
        keys = ['length', *COMMON_INFO_KEYS, 'decision_ms']
        for key in keys:
            values = [row[key] for row in self.episodes if key in row and not math.isnan(row[key])]
            if values:
                out[key] = float(np.mean(values))
        return out

    def to_markdown(self, per_episode: bool = False) -> str:
        """A markdown table: the summary row, or one row per episode."""
        if per_episode:
            return markdown_table(self.episodes)
        return markdown_table([self.summary])


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """Rows of dicts -> a markdown table; columns default to the union of keys in a fixed
    order (known columns first)."""
    if not rows:
        return ''
    if columns is None:
        present = {key for row in rows for key in row}
        columns = [c for c in ('policy', 'episode', 'seed') + SUMMARY_COLUMNS[1:] if c in present]
        columns = list(dict.fromkeys(columns))
        columns += sorted(present - set(columns))
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column, '')
            if isinstance(value, float):
                cells.append(f'{value:.4g}')
            else:
                cells.append(str(value))
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def evaluate_policy(env_or_id: gym.Env | str, policy: Policy | None = None, episodes: int = 10,
                    seed: int = 0, *, policy_factory: Callable[[gym.Env], Policy] | None = None,
                    env_kwargs: Mapping[str, Any] | None = None, max_steps: int = 100_000,
                    name: str | None = None) -> EvaluationResult:
    """Runs ``policy`` (obs -> action) for ``episodes`` episodes.

    Args:
        env_or_id: a gymnasium env (not closed afterwards) or a registered id (made with
            ``env_kwargs`` and closed afterwards).
        policy: callable obs -> action. Give exactly one of policy / policy_factory.
        policy_factory: callable env -> policy, for policies built from the env (the MEC
            baselines and oracle: ``policy_factory=GreedyPolicy``).
        episodes: number of episodes K; episode k is reset with seed ``seed + k``.
        max_steps: per-episode cap for envs that never end on their own.
        name: label of the result (defaults to the policy's ``name`` attribute or class).
    A policy with a ``reset()`` method has it called at the start of every episode.
    """
    if (policy is None) == (policy_factory is None):
        raise ValueError('give exactly one of policy and policy_factory')
    if isinstance(episodes, bool) or not isinstance(episodes, (int, np.integer)) or episodes < 1:
        raise ValueError(f'episodes must be an integer >= 1, got {episodes!r}')
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f'seed must be an integer, got {seed!r}')
    if max_steps < 1:
        raise ValueError(f'max_steps must be >= 1, got {max_steps!r}')
    owns_env = isinstance(env_or_id, str)
    if isinstance(env_or_id, str):
        env = gym.make(env_or_id, **dict(env_kwargs or {}))
    else:
        if env_kwargs:
            raise ValueError('env_kwargs only apply when env_or_id is an id string')
        env = env_or_id
    if isinstance(env, gym.vector.VectorEnv) or not isinstance(env, gym.Env):
        raise TypeError(f'evaluate_policy needs a single gymnasium.Env, got {type(env).__name__}')
    try:
        if policy is None:
            assert policy_factory is not None   # exactly one of the two, checked above
            policy = policy_factory(env)
        label = (name or getattr(policy, 'name', None) or getattr(policy, '__name__', None)
                 or type(policy).__name__)
        result = EvaluationResult(name=str(label))
        for k in range(int(episodes)):
            result.episodes.append(_run_episode(env, policy, int(seed) + k, max_steps, k))
        return result
    finally:
        if owns_env:
            env.close()


def _run_episode(env: gym.Env, policy: Policy, seed: int, max_steps: int,
                 episode: int) -> dict[str, float]:
    reset = getattr(policy, 'reset', None)
    if callable(reset):
        reset()
    obs, _ = env.reset(seed=seed)
    sums = dict.fromkeys(COMMON_INFO_KEYS, 0.0)
    counts = dict.fromkeys(COMMON_INFO_KEYS, 0)
    episode_return, length, decide_s = 0.0, 0, 0.0
    while length < max_steps:
        start = time.perf_counter()
        action = policy(obs)
        decide_s += time.perf_counter() - start
        obs, reward, terminated, truncated, info = env.step(action)
        episode_return += float(reward)
        length += 1
        for key in COMMON_INFO_KEYS:
            value = info.get(key)
            if value is not None and np.ndim(value) == 0 and not math.isnan(float(value)):
                sums[key] += float(value)
                counts[key] += 1
        if terminated or truncated:
            break
    row: dict[str, float] = {'episode': episode, 'seed': seed, 'return': episode_return,
                             'length': length}
    for key in COMMON_INFO_KEYS:
        if counts[key]:
            row[key] = sums[key] / counts[key]
    row['decision_ms'] = 1e3 * decide_s / length
    return row


def compare_policies(env_or_id: gym.Env | str,
                     policy_factories: Mapping[str, Callable[[gym.Env], Policy]],
                     episodes: int = 10, seed: int = 0, *,
                     env_kwargs: Mapping[str, Any] | None = None,
                     max_steps: int = 100_000) -> list[EvaluationResult]:
    """Evaluates several policies on the same seeds; wrap a plain policy p as ``lambda env: p``.

    ``summary_markdown(results)`` renders the one-row-per-policy table.
    """
    return [evaluate_policy(env_or_id, policy_factory=factory, episodes=episodes, seed=seed,
                            env_kwargs=env_kwargs, max_steps=max_steps, name=label)
            for label, factory in policy_factories.items()]


def summary_markdown(results: Sequence[EvaluationResult]) -> str:
    """One row per policy."""
    return markdown_table([r.summary for r in results])
