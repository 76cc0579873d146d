"""Native batched vector version of MecOffloadEnv (gymnasium.vector.VectorEnv).

At N = 10 a step of one environment is ~30 small numpy calls whose per-call overhead
dominates; SyncVectorEnv repeats them per sub-environment and adds its own per-key info
merging. This class keeps the B environments' states as (B, N) arrays and scores them with
ONE call of the shared physics function (dcdrl_sim.mec.model.evaluate_decisions), so a step
of 8 environments costs little more than a step of one.

Sub-environment i behaves exactly like ``MecOffloadEnv(**env_kwargs)`` reset with seed
``seed + i`` (same RNG stream, same draws in the same order), with gymnasium's default
next-step autoreset: the step after a truncation resets that sub-environment, ignores its
action, and returns reward 0. Infos follow the vector convention: ``info[key]`` is an array
over environments and ``info["_" + key]`` marks which entries are valid.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from dcdrl_sim.mec.env import MecOffloadEnv
from dcdrl_sim.mec.model import (
    MecState,
    channel_gain,
    check_box_action,
    decode_continuous,
    decode_scores,
    evaluate_decisions,
    fill_observation,
    observation_template,
)

INFO_FLOAT_KEYS = ('cost', 'latency_s', 'energy_j', 'deadline_miss_ratio', 'offload_fraction')
INFO_USER_KEYS = ('cost_per_user', 'latency_per_user', 'energy_per_user', 'offloaded', 'channel')


class MecOffloadVectorEnv(VectorEnv):
    """B copies of MecOffloadEnv stepped as one batch.

    Args:
        num_envs: number of sub-environments B.
        **env_kwargs: the MecOffloadEnv constructor arguments (shared by all copies).
    """

    metadata = {'render_modes': [], 'autoreset_mode': AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 8, **env_kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f'num_envs must be an integer >= 1, got {num_envs!r}')
        if env_kwargs.get('render_mode') is not None:
            raise ValueError('MecOffloadVectorEnv does not render; use MecOffloadEnv for render_mode')
        # One template env validates the arguments and provides spaces, params and positions.
        self._template = MecOffloadEnv(**env_kwargs)
        self.params = self._template.params
        self.action_mode = self._template.action_mode
        self.episode_length = self._template.episode_length
        self.num_envs = int(num_envs)
        self.single_observation_space = self._template.observation_space
        self.single_action_space = self._template.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        b, n = self.num_envs, self.params.num_users
        self._positions = np.repeat(self._template.positions[None], b, axis=0)
        self._gain = channel_gain(self.params, self._positions)
        self._obs_template = observation_template(self.params, self._positions)
        self._deadline = np.full((b, n), self.params.deadline_s)
        self._cycles = np.zeros((b, n))
        self._size = np.zeros((b, n))
        self._local_backlog = np.zeros((b, n))
        self._edge_backlog = np.zeros(b)
        self._t = np.zeros(b, dtype=np.int64)
        self._autoreset = np.zeros(b, dtype=bool)
        self._rngs: list[np.random.Generator] = [seeding.np_random(None)[0] for _ in range(b)]
        self._task_low = self._template._task_low
        self._task_width = self._template._task_width
        self._ready = False

    # --- gymnasium vector API ------------------------------------------------------------

    def reset(self, *, seed: int | list[int | None] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        b = self.num_envs
        if seed is None:
            seeds: list[int | None] = [None] * b
        elif isinstance(seed, (int, np.integer)):
            seeds = [int(seed) + i for i in range(b)]
        else:
            seeds = list(seed)
            if len(seeds) != b:
                raise ValueError(f'seed list must have length num_envs={b}, got {len(seeds)}')
        mask = np.ones(b, dtype=bool)
        if options and 'reset_mask' in options:
            mask = np.asarray(options['reset_mask'])
            if mask.shape != (b,) or mask.dtype != np.bool_:
                raise ValueError(f'options["reset_mask"] must be a bool array of shape ({b},)')
        for i in np.flatnonzero(mask):
            if seeds[i] is not None:
                self._rngs[i] = seeding.np_random(seeds[i])[0]
        if self._ready:
            self._reset_envs(mask)
        else:
            self._reset_envs(np.ones(b, dtype=bool))
            self._ready = True
        return self._observe(), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                          dict[str, Any]]:
        if not self._ready:
            raise RuntimeError('call reset() before step()')
        decisions, ghost = self._decode(actions)
        b, n = self.num_envs, self.params.num_users
        resetting = self._autoreset.copy()
        state = MecState(self._gain, self._cycles, self._size, self._deadline,
                         self._local_backlog, self._edge_backlog)
        out = evaluate_decisions(self.params, state, decisions, ghost)
        cost = out.cost
        total = cost.sum(axis=1)
        inv_n = 1.0 / n
        info: dict[str, Any] = {
            'cost': total,
            'latency_s': out.latency_s.sum(axis=1) * inv_n,
            'energy_j': out.energy_j.sum(axis=1) * inv_n,
            'deadline_miss_ratio': out.missed.sum(axis=1) * inv_n,
            'offload_fraction': out.offloaded.sum(axis=1) * inv_n,
            'cost_per_user': cost,
            'latency_per_user': out.latency_s,
            'energy_per_user': out.energy_j,
            'offloaded': out.offloaded,
            'channel': decisions - 1,
        }
        self._local_backlog = out.next_local_backlog_s
        self._edge_backlog = out.next_edge_backlog_s
        self._t += 1
        rewards = -total
        if not resetting.any():
            self._draw_tasks(None)
            valid_mask = np.ones(b, dtype=bool)
        else:
            # Next-step autoreset: these envs start a new episode instead of stepping (their
            # physics result above is discarded; each env's RNG is drawn once, as in SyncVectorEnv).
            self._draw_tasks(np.flatnonzero(~resetting))
            self._reset_envs(resetting)
            rewards = np.where(resetting, 0.0, rewards)
            valid = ~resetting
            for key in INFO_FLOAT_KEYS + INFO_USER_KEYS:
                value = info[key]
                info[key] = np.where(valid.reshape((b,) + (1,) * (value.ndim - 1)), value,
                                     np.zeros((), dtype=value.dtype))
            valid_mask = valid
        for key in INFO_FLOAT_KEYS + INFO_USER_KEYS:
            info['_' + key] = valid_mask
        truncated = self._t >= self.episode_length
        self._autoreset = truncated.copy()
        terminated = np.zeros(b, dtype=bool)
        return self._observe(), rewards, terminated, truncated, info

    # --- helpers -----------------------------------------------------------------------

    def decision_state(self) -> MecState:
        """Copies of the (B, N) state arrays the next actions are scored against."""
        if not self._ready:
            raise RuntimeError('call reset() before decision_state()')
        return MecState(self._gain.copy(), self._cycles.copy(), self._size.copy(),
                        self._deadline.copy(), self._local_backlog.copy(),
                        self._edge_backlog.copy())

    def encode_action(self, decisions: np.ndarray) -> np.ndarray:
        """Decisions (B, N) -> actions of this env's action mode."""
        return self._template.encode_action(decisions)

    def _decode(self, actions: Any) -> tuple[np.ndarray, np.ndarray | None]:
        a = np.asarray(actions)
        b, n, c = self.num_envs, self.params.num_users, self.params.num_channels
        if self.action_mode == 'continuous':
            check_box_action(a, self.action_space.shape, self.action_mode)
            return decode_continuous(self.params, a)
        if self.action_mode == 'scores':
            check_box_action(a, self.action_space.shape, self.action_mode)
            return decode_scores(self.params, a), None
        if a.shape != (b, n):
            raise ValueError(f'actions must have shape ({b}, {n}), got {a.shape}')
        if a.dtype.kind not in 'iu':
            if a.dtype.kind != 'f' or not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
                raise ValueError(f'discrete actions must be integers in [0, {c}]')
            a = a.astype(np.int64)
        if a.min() < 0 or a.max() > c:
            raise ValueError(f'discrete action values must be in [0, {c}], '
                             f'got min {a.min()} max {a.max()}')
        return a.astype(np.int64, copy=False), None

    def _reset_envs(self, mask: np.ndarray) -> None:
        """Resets the masked envs; draws in the same order as MecOffloadEnv.reset."""
        idx = np.flatnonzero(mask)
        if self._template.redraw_positions:
            for i in idx:
                self._positions[i] = self._template._draw_positions(self._rngs[i])
            self._gain = channel_gain(self.params, self._positions)
            self._obs_template = observation_template(self.params, self._positions)
        self._local_backlog = np.where(mask[:, None], 0.0, self._local_backlog)
        self._edge_backlog = np.where(mask, 0.0, self._edge_backlog)
        self._t[idx] = 0
        self._autoreset[idx] = False
        self._draw_tasks(idx)

    def _draw_tasks(self, idx: np.ndarray | None) -> None:
        """New tasks for the envs in idx (all when None), one draw from each env's RNG."""
        n = self.params.num_users
        if idx is None:
            u = np.stack([rng.random((2, n)) for rng in self._rngs])       # (B, 2, N)
            tasks = self._task_low + self._task_width * u
            self._cycles = tasks[:, 0]
            self._size = tasks[:, 1]
            return
        if len(idx) == 0:
            return
        u = np.stack([self._rngs[i].random((2, n)) for i in idx])
        tasks = self._task_low + self._task_width * u
        self._cycles = self._cycles.copy()
        self._size = self._size.copy()
        self._cycles[idx] = tasks[:, 0]
        self._size[idx] = tasks[:, 1]

    def _observe(self) -> np.ndarray:
        state = MecState(self._gain, self._cycles, self._size, self._deadline,
                         self._local_backlog, self._edge_backlog)
        return fill_observation(self.params, self._obs_template.copy(), state, self._t,
                                self.episode_length)
