"""N-step transition writer for K environments stepped together.

For each environment the writer keeps a window of the last (up to) n steps.  A transition
starting at step t covers k = min(n, steps left in the episode) steps and stores

    reward   = r_t + gamma r_{t+1} + ... + gamma^(k-1) r_{t+k-1}
    next_obs = s_{t+k}                          (the observation after its last step)
    discount = gamma^k, or 0 when the episode *terminated* inside the window

so a learner's target is ``reward + discount * Q(next_obs, pi(next_obs))`` for every row, with
no special cases.  Truncation (time limit) is not termination: a truncated episode's last
windows still bootstrap from the final observation with gamma^k.  At every episode end the
partial windows (k < n) are flushed, so every step of every episode starts one transition.

This fixes the two defects of the original DC-DRL n-step code: it compared continuous
actions for equality (so windows never formed) and it bootstrapped with gamma instead of
gamma^n.

Callers with gymnasium vector environments must pass the *real* final observation as
``next_obs`` of a done environment (``info["final_obs"]`` under autoreset), not the first
observation of the next episode.
"""
from __future__ import annotations

import numpy as np


def _as_matrix(name: str, value: np.ndarray, rows: int, cols: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != (rows, cols):
        raise ValueError(f'{name} must have shape [{rows}, {cols}] (num_envs, dim), got {arr.shape}')
    if arr.dtype.kind not in 'fiu':
        raise TypeError(f'{name} must be a real numeric array, got dtype {arr.dtype}')
    if not np.all(np.isfinite(arr)):
        raise ValueError(f'{name} contains NaN or infinite values')
    return arr


def _as_vector(name: str, value: np.ndarray, rows: int, kinds: str = 'fiu') -> np.ndarray:
    arr = np.asarray(value)
    if arr.shape != (rows,):
        raise ValueError(f'{name} must have shape [{rows}] (num_envs,), got {arr.shape}')
    if arr.dtype.kind not in kinds:
        raise TypeError(f'{name} must have dtype kind in {kinds!r}, got {arr.dtype}')
    if arr.dtype.kind == 'f' and not np.all(np.isfinite(arr)):
        raise ValueError(f'{name} contains NaN or infinite values')
    return arr


class NStepWriter:
    """Turns per-environment step streams into n-step transitions.

    Args:
        num_envs: K, environments stepped together (one row each per ``step`` call).
        obs_dim: observation length.
        action_dim: action length.
        n_step: window length n >= 1 (1 gives ordinary one-step transitions).  Default 1.
        gamma: discount in [0, 1].  Default 0.99.
    ``step`` returns a dict with float32 arrays ``obs [M, obs_dim]``, ``actions``,
    ``rewards [M]``, ``next_obs``, ``discounts [M]``, ready for ``ReplayBuffer.add(**out)``;
    M may be 0.
    """

    def __init__(self, num_envs: int, obs_dim: int, action_dim: int, *, n_step: int = 1,
                 gamma: float = 0.99) -> None:
        for name, value in (('num_envs', num_envs), ('obs_dim', obs_dim), ('action_dim', action_dim),
                            ('n_step', n_step)):
            if isinstance(value, bool) or int(value) != value or value < 1:
                raise ValueError(f'{name} must be a positive integer, got {value!r}')
        if not 0.0 <= gamma <= 1.0:
            raise ValueError(f'gamma must lie in [0, 1], got {gamma!r}')
        self.num_envs, self.obs_dim, self.action_dim = int(num_envs), int(obs_dim), int(action_dim)
        self.n_step = int(n_step)
        self.gamma = float(gamma)
        self._gamma_pow = self.gamma ** np.arange(self.n_step + 1, dtype=np.float64)
        k, n = self.num_envs, self.n_step
        # Window of each env, oldest step first; _count[k] steps are valid.
        self._obs = np.zeros((k, n, self.obs_dim), dtype=np.float32)
        self._act = np.zeros((k, n, self.action_dim), dtype=np.float32)
        self._rew = np.zeros((k, n), dtype=np.float64)  # float64: sums of many rewards
        self._count = np.zeros(k, dtype=np.int64)
        self._last_next_obs = np.zeros((k, self.obs_dim), dtype=np.float32)

    @property
    def pending(self) -> int:
        """Steps held in open windows (not yet the start of an emitted transition)."""
        return int(self._count.sum())

    def step(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, next_obs: np.ndarray,
             terminated: np.ndarray, truncated: np.ndarray) -> dict[str, np.ndarray]:
        """Record one step of all K environments and return the transitions it completes."""
        k = self.num_envs
        obs = _as_matrix('obs', obs, k, self.obs_dim)
        actions = _as_matrix('actions', actions, k, self.action_dim)
        next_obs = _as_matrix('next_obs', next_obs, k, self.obs_dim)
        rewards = _as_vector('rewards', rewards, k)
        terminated = _as_vector('terminated', terminated, k, 'biu').astype(bool)
        truncated = _as_vector('truncated', truncated, k, 'biu').astype(bool)

        envs = np.arange(k)
        slot = self._count
        self._obs[envs, slot] = obs
        self._act[envs, slot] = actions
        self._rew[envs, slot] = rewards
        self._count += 1
        self._last_next_obs[:] = next_obs
        done = terminated | truncated

        parts = []
        # Full windows of running episodes: emit the oldest step's n-step transition, slide.
        full = np.flatnonzero(~done & (self._count == self.n_step))
        if full.size:
            parts.append(self._emit_full(full, next_obs))
        # Episode ends: every step still in the window starts one (shorter) transition.
        for env in np.flatnonzero(done):
            parts.append(self._emit_window(int(env), bootstrap=not terminated[env]))
        return self._concat(parts)

    def flush(self, env_ids: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Emit the open windows as truncated episodes (bootstrapping from the last next_obs).

        Use when a run stops or an environment is reset from outside mid-episode.
        """
        ids = range(self.num_envs) if env_ids is None else np.asarray(env_ids, dtype=np.int64)
        parts = [self._emit_window(int(env), bootstrap=True) for env in ids if self._count[env] > 0]
        return self._concat(parts)

    def reset(self, env_ids: np.ndarray | None = None) -> None:
        """Drop open windows without emitting them."""
        if env_ids is None:
            self._count[:] = 0
        else:
            self._count[np.asarray(env_ids, dtype=np.int64)] = 0

    # ---- internals ----

    def _emit_full(self, envs: np.ndarray, next_obs: np.ndarray) -> dict[str, np.ndarray]:
        n = self.n_step
        out = {
            'obs': self._obs[envs, 0].copy(),
            'actions': self._act[envs, 0].copy(),
            'rewards': (self._rew[envs] @ self._gamma_pow[:n]).astype(np.float32),
            'next_obs': next_obs[envs].astype(np.float32),
            'discounts': np.full(envs.size, self._gamma_pow[n], dtype=np.float32),
        }
        if n > 1:  # slide the windows by one step
            self._obs[envs, :-1] = self._obs[envs, 1:]
            self._act[envs, :-1] = self._act[envs, 1:]
            self._rew[envs, :-1] = self._rew[envs, 1:]
        self._count[envs] = n - 1
        return out

    def _emit_window(self, env: int, bootstrap: bool) -> dict[str, np.ndarray]:
        c = int(self._count[env])
        rewards = self._rew[env, :c]
        returns = np.empty(c, dtype=np.float64)
        acc = 0.0
        for j in range(c - 1, -1, -1):  # suffix sums: R_j = r_j + gamma R_{j+1}
            acc = rewards[j] + self.gamma * acc
            returns[j] = acc
        steps = c - np.arange(c)  # k for each start j
        discounts = self._gamma_pow[steps] if bootstrap else np.zeros(c)
        self._count[env] = 0
        return {
            'obs': self._obs[env, :c].copy(),
            'actions': self._act[env, :c].copy(),
            'rewards': returns.astype(np.float32),
            'next_obs': np.repeat(self._last_next_obs[env][None], c, axis=0),
            'discounts': discounts.astype(np.float32),
        }

    def _concat(self, parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        if not parts:
            return {
                'obs': np.zeros((0, self.obs_dim), np.float32),
                'actions': np.zeros((0, self.action_dim), np.float32),
                'rewards': np.zeros(0, np.float32),
                'next_obs': np.zeros((0, self.obs_dim), np.float32),
                'discounts': np.zeros(0, np.float32),
            }
        if len(parts) == 1:
            return parts[0]
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
