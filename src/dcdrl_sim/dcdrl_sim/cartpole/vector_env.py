"""Batched cart-pole swing-up: N plants stepped together with numpy (no per-env Python loop).

Same physics (dynamics.step_state) and task rules (task.reward) as CartPoleSwingUpEnv,
evaluated on arrays; same constructor keywords plus ``num_envs``. Autoreset follows
gymnasium's default "next step" mode: a sub-environment that ended at step t is
reset at step t+1 (its action ignored, reward 0, terminated/truncated False) and
returns its first observation then.

Two backends give the same results for the same seed (tested):
- ``"numpy"``: the state of all plants in arrays, one numpy call per formula. Its cost is
  numpy's per-call overhead (about 40 calls per step), so it pays off for many envs.
- ``"loop"``: one CartPoleSwingUpEnv per plant stepped in a plain loop (float math), which
  is faster than numpy for a few envs and skips SyncVectorEnv's per-key info merging.
``backend="auto"`` (default) picks ``loop`` up to ``LOOP_MAX_ENVS`` envs, else ``numpy``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space

try:
    from gymnasium.vector import AutoresetMode
    NEXT_STEP: Any = AutoresetMode.NEXT_STEP
except ImportError:  # gymnasium 1.0 had no enum yet
    NEXT_STEP = 'NextStep'

from dcdrl_sim.cartpole import dynamics as dyn
from dcdrl_sim.cartpole import task as task_rules
from dcdrl_sim.cartpole.env import CartPoleSwingUpEnv

BACKENDS = ('auto', 'numpy', 'loop')
LOOP_MAX_ENVS = 8   # measured crossover on 2 cores: about 8 to 12 envs


class CartPoleSwingUpVectorEnv(VectorEnv):
    """``num_envs`` independent CartPoleSwingUpEnv plants in numpy arrays."""

    metadata = {'render_modes': [], 'autoreset_mode': NEXT_STEP}

    def __init__(self, num_envs: int = 8, backend: str = 'auto', **env_kwargs: Any) -> None:
        if not isinstance(num_envs, (int, np.integer)) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f'num_envs must be an int >= 1, got {num_envs!r}')
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
        if env_kwargs.get('render_mode') is not None:
            raise ValueError('CartPoleSwingUpVectorEnv does not render; use CartPoleSwingUpEnv')
        # One single env validates the keywords and holds the parameters and spaces.
        self.template = CartPoleSwingUpEnv(**env_kwargs)
        self.num_envs = int(num_envs)
        self.dynamics = self.template.dynamics
        self.task = self.template.task
        self.single_observation_space = self.template.observation_space
        self.single_action_space = self.template.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

        n = self.num_envs
        self._x = np.zeros(n)
        self._x_dot = np.zeros(n)
        self._theta = np.full(n, math.pi)
        self._theta_dot = np.zeros(n)
        self._pending = np.zeros((n, self.template.action_delay_steps))
        self._history = np.zeros((n, self.template.action_history))
        self._steps = np.zeros(n, dtype=np.int64)
        self._steps_on_target = np.zeros(n, dtype=np.int64)
        self._autoreset = np.zeros(n, dtype=bool)
        self._everywhere = np.ones(n, dtype=bool)
        self._everywhere.flags.writeable = False
        if backend == 'auto':
            backend = 'loop' if n <= LOOP_MAX_ENVS else 'numpy'
        self.backend = backend
        self._envs = [CartPoleSwingUpEnv(**env_kwargs) for _ in range(n)] if backend == 'loop' else []

    # ------------------------------------------------------------------ state access
    @property
    def state(self) -> np.ndarray:
        """Physical states, shape (num_envs, 4): [x, x_dot, theta, theta_dot]."""
        if self._envs:
            return np.stack([env.state for env in self._envs])
        return np.stack([self._x, self._x_dot, self._theta, self._theta_dot], axis=1)

    def _draw_starts(self, count: int) -> np.ndarray:
        """Start states (count, 4) from the paper's distribution; both backends draw here."""
        t = self.template
        rng = self.np_random
        theta = rng.normal(t.init_theta_mean, t.init_theta_std, count) if t.init_theta_std > 0 \
            else np.full(count, t.init_theta_mean)
        x = rng.uniform(-t.init_x_range, t.init_x_range, count) if t.init_x_range > 0 \
            else np.zeros(count)
        return np.stack([x, np.zeros(count), theta, np.zeros(count)], axis=1)

    def _reset_envs(self, mask: np.ndarray, states: np.ndarray | None = None) -> None:
        count = int(mask.sum())
        if count == 0:
            return
        if states is None:
            states = self._draw_starts(count)
        self._x[mask] = states[:, 0]
        self._x_dot[mask] = states[:, 1]
        self._theta[mask] = dyn.wrap_angle(states[:, 2])
        self._theta_dot[mask] = states[:, 3]
        self._pending[mask] = 0.0
        self._history[mask] = 0.0
        self._steps[mask] = 0
        self._steps_on_target[mask] = 0

    def _distance(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        sin_t = np.sin(self._theta)
        cos_t = np.cos(self._theta)
        length = self.dynamics.pole_length
        distance = task_rules.tip_distance(self._x + length * sin_t, length * cos_t, length,
                                           self.task.target_x, np.sqrt)
        return distance, sin_t, cos_t

    def _observation(self, sin_t: np.ndarray, cos_t: np.ndarray) -> np.ndarray:
        obs = np.empty((self.num_envs, 5 + self._history.shape[1]), dtype=np.float32)
        obs[:, 0] = self._x
        obs[:, 1] = self._x_dot
        obs[:, 2] = sin_t
        obs[:, 3] = cos_t
        obs[:, 4] = self._theta_dot
        obs[:, 5:] = self._history
        return obs

    def _info(self, distance: np.ndarray, on_target: np.ndarray) -> dict[str, np.ndarray]:
        everywhere = self._everywhere   # every key is set for every env (the "_key" masks)
        return {'on_target': on_target, '_on_target': everywhere,
                'swing_up': on_target.copy(), '_swing_up': everywhere,
                'tip_distance': distance, '_tip_distance': everywhere}

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset all sub-environments; ``options={'state': array (num_envs, 4)}`` sets the states."""
        super().reset(seed=seed)
        states = None
        if options and 'state' in options:
            states = np.asarray(options['state'], dtype=np.float64)
            if states.shape != (self.num_envs, 4) or not np.all(np.isfinite(states)):
                raise ValueError(f"options['state'] must be finite with shape ({self.num_envs}, 4), "
                                 f'got shape {states.shape}')
        self._autoreset[:] = False
        if self._envs:
            if states is None:
                states = self._draw_starts(self.num_envs)
            results = [env.reset(options={'state': start}) for env, start in zip(self._envs, states)]
            distance = np.array([info['tip_distance'] for _, info in results])
            return (np.stack([obs for obs, _ in results]),
                    self._info(distance, np.array([info['on_target'] for _, info in results])))
        self._reset_envs(np.ones(self.num_envs, dtype=bool), states)
        distance, sin_t, cos_t = self._distance()
        return self._observation(sin_t, cos_t), self._info(distance,
                                                             distance <= self.task.target_distance)

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                          dict[str, Any]]:
        a = np.asarray(actions, dtype=np.float64)
        if a.size != self.num_envs or a.shape not in ((self.num_envs,), (self.num_envs, 1)):
            raise ValueError(f'actions must have shape ({self.num_envs}, 1), got {a.shape}')
        a = a.reshape(self.num_envs)
        if not math.isfinite(float(a.sum())):   # one reduction instead of isfinite + all
            raise ValueError('actions must be finite (NaN or inf found)')
        a = np.minimum(np.maximum(a, -1.0), 1.0)   # cheaper than np.clip on small arrays
        if self._envs:
            return self._step_loop(a)

        # Actuation delay line and action history, as in the single env.
        pending = self._pending
        if pending.shape[1] == 0:
            applied = a
        else:
            applied = pending[:, 0].copy()
            pending[:, :-1] = pending[:, 1:]
            pending[:, -1] = a
        history = self._history
        if history.shape[1] > 0:
            history[:, 1:] = history[:, :-1]
            history[:, 0] = a

        t = self.template
        p = self.dynamics
        self._x, self._x_dot, self._theta, self._theta_dot = dyn.step_state(
            self._x, self._x_dot, self._theta, self._theta_dot, p.max_voltage * applied, t.dt, p,
            t.substeps, t._semi_implicit, np.sin, np.cos)
        self._steps += 1

        task = self.task
        failed = task_rules.failed(self._x, self._theta_dot, task)
        resetting = self._autoreset
        any_reset = bool(resetting.any())
        if any_reset:  # next-step autoreset: these envs start a new episode now
            self._reset_envs(resetting)
            failed &= ~resetting
        distance, sin_t, cos_t = self._distance()
        on_target = distance <= task.target_distance
        self._steps_on_target = (self._steps_on_target + 1) * on_target
        reward = task_rules.reward(distance, a, failed, task, np.exp)
        truncated = self._steps >= t.max_steps
        if task.target_steps_to_stop is not None:
            truncated |= self._steps_on_target > task.target_steps_to_stop
        truncated &= ~failed
        if any_reset:
            self._steps_on_target[resetting] = 0  # a reset is not an on-target step
            reward[resetting] = 0.0
            truncated[resetting] = False
        self._autoreset = failed | truncated
        return (self._observation(sin_t, cos_t), reward, failed, truncated,
                self._info(distance, on_target))

    def _step_loop(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                 dict[str, Any]]:
        """The "loop" backend: each plant is a CartPoleSwingUpEnv stepped with a float."""
        resetting = self._autoreset
        starts = iter(self._draw_starts(int(resetting.sum()))) if resetting.any() else None
        observations, rewards, terminated, truncated, on_target, distance = [], [], [], [], [], []
        for env, action, reset_now in zip(self._envs, a.tolist(), resetting.tolist()):
            if reset_now:   # next-step autoreset: the action is ignored
                assert starts is not None   # drawn above for every resetting plant
                obs, info = env.reset(options={'state': next(starts)})
                reward, term, trunc = 0.0, False, False
            else:
                obs, reward, term, trunc, info = env.step(action)
            observations.append(obs)
            rewards.append(reward)
            terminated.append(term)
            truncated.append(trunc)
            on_target.append(info['on_target'])
            distance.append(info['tip_distance'])
        terminated_arr = np.array(terminated)
        truncated_arr = np.array(truncated)
        self._autoreset = terminated_arr | truncated_arr
        return (np.stack(observations), np.array(rewards), terminated_arr, truncated_arr,
                self._info(np.array(distance), np.array(on_target)))
