"""Cart-pole swing-up with a DC-motor model: the cloud-edge paper's plant, in plain Python and numpy.

CartPoleSwingUp has the gymnasium API's reset/step but imports no gymnasium, so an edge device
runs it as its simulated plant with numpy alone; env.CartPoleSwingUpEnv adds the spaces and
rendering and is what gymnasium.make builds.

One step = one control period (``1 / frequency_hz`` s, 30 Hz by default). The agent
commands a in [-1, 1]; the motor sees ``max_voltage * a`` after ``action_delay_steps``
periods (actuation delay), held constant over the period. The observation carries
the most recent commands so a policy can account for the delay::

    [x, x_dot, sin(theta), cos(theta), theta_dot, a_t, a_{t-1}, ..., a_{t-H+1}]   (float32)

theta = 0 is upright. Physics live in dynamics.py, task rules in task.py; this
class only keeps the state, the delay line and the episode bookkeeping.

Episode end
- terminated: the cart reached the end of the rail (|x| >= x_limit) or the pole
  spins too fast (|theta_dot| > theta_dot_limit); the step's reward includes the
  failure penalty.
- truncated: ``max_steps`` steps, or the tip stayed on target for more than
  ``target_steps_to_stop`` consecutive steps (an early stop that saves training
  time; it is not a terminal state of the task, so learners should bootstrap).
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from dcdrl_core.checks import check_int, check_number
from dcdrl_sim.cartpole import dynamics as dyn
from dcdrl_sim.cartpole import task as task_rules
from dcdrl_sim.seeding import Seeded

_exp = math.exp
_sin = math.sin
_cos = math.cos
_sqrt = math.sqrt


def action_to_float(action: Any) -> float:
    """The scalar in a (1,)-shaped action (array, list or number); rejects NaN and other shapes."""
    if type(action) is np.ndarray and action.shape == (1,):  # fast path: what agents send
        value = float(action[0])
    elif type(action) is float:   # the batched env's loop backend
        value = action
    else:
        arr = np.asarray(action, dtype=np.float64)
        if arr.size != 1:
            raise ValueError(f'action must hold exactly one value (shape (1,)), got shape {arr.shape}')
        value = float(arr.reshape(-1)[0])
    if value != value or value in (math.inf, -math.inf):
        raise ValueError(f'action must be finite, got {value!r}')
    return value


class CartPoleSwingUp(Seeded):
    """Swing-up and balance of a pole on a motor-driven cart (cloud-edge paper plant)."""

    def __init__(
        self,
        frequency_hz: float = 30.0,
        cart_mass: float = 0.94,
        pole_mass: float = 0.23,
        pole_length: float = 0.64,
        gravity: float = 9.8,
        cart_friction: float = 10.0,
        pole_friction: float = 0.0011,
        action_delay_steps: int = 1,
        action_history: int = 5,
        max_steps: int = 1000,
        x_limit: float = 0.3,
        theta_dot_limit: float = 15.0,
        target_steps_to_stop: int | None = 100,
        *,
        max_voltage: float = 5.0,
        motor_force_gain: float = 17.69,
        motor_voltage_gain: float = 6.35,
        motor_back_emf_gain: float = 28.49,
        motor_force_divisor: float = 104.84,
        integrator: str = 'semi_implicit_euler',
        substeps: int = 1,
        target_x: float = 0.0,
        target_distance: float = 0.05,
        tip_reward_scale: float = 0.5,
        tip_reward_decay: float = 5.0,
        action_cost: float = 0.05,
        failure_penalty: float = 10.0,
        init_theta_mean: float = math.pi,
        init_theta_std: float = 0.8,
        init_x_range: float = 0.24,
    ) -> None:
        self.frequency_hz = check_number('frequency_hz', frequency_hz, 0.0, above=True)
        self.dt = 1.0 / self.frequency_hz
        self.dynamics = dyn.CartPoleParams(
            cart_mass=cart_mass, pole_mass=pole_mass, pole_length=pole_length, gravity=gravity,
            cart_friction=cart_friction, pole_friction=pole_friction, max_voltage=max_voltage,
            motor_force_gain=motor_force_gain, motor_voltage_gain=motor_voltage_gain,
            motor_back_emf_gain=motor_back_emf_gain, motor_force_divisor=motor_force_divisor)
        self.task = task_rules.SwingUpTask(
            x_limit=x_limit, theta_dot_limit=theta_dot_limit, target_x=target_x,
            target_distance=target_distance, target_steps_to_stop=target_steps_to_stop,
            tip_reward_scale=tip_reward_scale, tip_reward_decay=tip_reward_decay,
            action_cost=action_cost, failure_penalty=failure_penalty)
        if integrator not in dyn.INTEGRATORS:
            raise ValueError(f'integrator must be one of {dyn.INTEGRATORS}, got {integrator!r}')
        self.integrator = integrator
        self._semi_implicit = integrator == 'semi_implicit_euler'
        self.substeps = check_int('substeps', substeps, 1)
        self.action_delay_steps = check_int('action_delay_steps', action_delay_steps, 0)
        self.action_history = check_int('action_history', action_history, 0)
        self.max_steps = check_int('max_steps', max_steps, 1)
        self.init_theta_mean = check_number('init_theta_mean', init_theta_mean)
        self.init_theta_std = check_number('init_theta_std', init_theta_std, 0.0)
        self.init_x_range = check_number('init_x_range', init_x_range, 0.0)
        if self.init_x_range >= self.task.x_limit:
            raise ValueError(f'init_x_range ({self.init_x_range}) must be below x_limit '
                             f'({self.task.x_limit}), or episodes would start failed')
        # Observation bounds: unbounded entries use float32's largest value (as gymnasium's CartPole
        # does), so positions and speeds past the failure limits can still be observed.
        self.observation_dim = 5 + self.action_history
        self.action_dim = 1
        high = np.full(self.observation_dim, np.finfo(np.float32).max, dtype=np.float32)
        high[2:4] = 1.0
        high[5:] = 1.0
        self.observation_high = high

        # State (plain floats: small numpy ops would dominate the step time).
        self._x = 0.0
        self._x_dot = 0.0
        self._theta = math.pi
        self._theta_dot = 0.0
        self._pending: deque = deque([0.0] * self.action_delay_steps)
        self._history: deque = deque([0.0] * self.action_history, maxlen=self.action_history)
        self._steps = 0
        self._steps_on_target = 0
        self._on_target = False

    # ------------------------------------------------------------------ state access
    @property
    def state(self) -> np.ndarray:
        """Physical state [x, x_dot, theta, theta_dot] (float64 copy)."""
        return np.array([self._x, self._x_dot, self._theta, self._theta_dot], dtype=np.float64)

    @property
    def pending_actions(self) -> tuple[float, ...]:
        """Commands not yet applied, oldest (next to be applied) first."""
        return tuple(self._pending)

    @property
    def elapsed_steps(self) -> int:
        return self._steps

    @property
    def steps_on_target(self) -> int:
        """Consecutive steps (up to now) with the tip on target."""
        return self._steps_on_target

    def set_state(self, x: float, x_dot: float, theta: float, theta_dot: float,
                  pending_actions: Sequence[float] | None = None,
                  action_history: Sequence[float] | None = None) -> np.ndarray:
        """Put the plant into a given state (tests, the edge controller); returns the observation.

        ``pending_actions`` (oldest first, ``action_delay_steps`` values) and
        ``action_history`` (newest first, ``action_history`` values) default to
        keeping the current ones. Episode counters are left unchanged.
        """
        values = [check_number(name, v) for name, v in
                  (('x', x), ('x_dot', x_dot), ('theta', theta), ('theta_dot', theta_dot))]
        self._x, self._x_dot = values[0], values[1]
        self._theta, self._theta_dot = dyn.wrap_angle(values[2]), values[3]
        if pending_actions is not None:
            self._pending = deque(self._action_list('pending_actions', pending_actions,
                                                    self.action_delay_steps))
        if action_history is not None:
            self._history = deque(self._action_list('action_history', action_history,
                                                    self.action_history), maxlen=self.action_history)
        self._on_target = self._tip_distance(self._x, self._theta) <= self.task.target_distance
        return self._observation()

    @staticmethod
    def _action_list(name: str, values: Sequence[float], length: int) -> list:
        out = [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]
        if len(out) != length:
            raise ValueError(f'{name} must hold {length} values, got {len(out)}')
        if not all(math.isfinite(v) and -1.0 <= v <= 1.0 for v in out):
            raise ValueError(f'{name} values must be finite and in [-1, 1], got {out}')
        return out

    # ------------------------------------------------------------------ the gymnasium API (reset, step)
    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start hanging down: theta ~ N(pi, 0.8), x ~ U(-0.24, 0.24), at rest.

        ``options={'state': (x, x_dot, theta, theta_dot)}`` starts from a given state.
        """
        self.seed_rng(seed)
        self._pending = deque([0.0] * self.action_delay_steps)
        self._history = deque([0.0] * self.action_history, maxlen=self.action_history)
        self._steps = 0
        self._steps_on_target = 0
        if options and 'state' in options:
            state = np.asarray(options['state'], dtype=np.float64).reshape(-1)
            if state.shape != (4,):
                raise ValueError(f"options['state'] must be (x, x_dot, theta, theta_dot), "
                                 f'got shape {state.shape}')
            x, x_dot, theta, theta_dot = (float(v) for v in state)
            obs = self.set_state(x, x_dot, theta, theta_dot)
        else:
            rng = self.np_random
            theta = rng.normal(self.init_theta_mean, self.init_theta_std) if self.init_theta_std > 0 \
                else self.init_theta_mean
            x = rng.uniform(-self.init_x_range, self.init_x_range) if self.init_x_range > 0 else 0.0
            obs = self.set_state(float(x), 0.0, float(theta), 0.0)
        return obs, {'on_target': self._on_target, 'swing_up': self._on_target,
                     'tip_distance': self._tip_distance(self._x, self._theta)}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = action_to_float(action)
        if a > 1.0:  # exploration noise may overshoot: saturate like the real amplifier
            a = 1.0
        elif a < -1.0:
            a = -1.0
        # Actuation delay: the command joins the queue, the oldest one drives the motor.
        pending = self._pending
        pending.append(a)
        applied = pending.popleft()
        self._history.appendleft(a)

        p = self.dynamics
        x, x_dot, theta, theta_dot = dyn.step_state(
            self._x, self._x_dot, self._theta, self._theta_dot, p.max_voltage * applied, self.dt, p,
            self.substeps, self._semi_implicit)
        self._x, self._x_dot, self._theta, self._theta_dot = x, x_dot, theta, theta_dot
        self._steps += 1

        task = self.task
        # Tip distance inline (same formula as dynamics.tip_position + task.tip_distance,
        # checked by the tests) so sin/cos are computed once for it and the observation.
        sin_t = _sin(theta)
        cos_t = _cos(theta)
        length = p.pole_length
        dx = x + length * sin_t - task.target_x
        dy = length * cos_t - length
        distance = _sqrt(dx * dx + dy * dy)
        on_target = distance <= task.target_distance
        self._on_target = on_target
        self._steps_on_target = self._steps_on_target + 1 if on_target else 0
        is_failed = abs(x) >= task.x_limit or abs(theta_dot) > task.theta_dot_limit
        reward = task_rules.reward(distance, a, is_failed, task, _exp)
        stop_after = task.target_steps_to_stop
        truncated = self._steps >= self.max_steps or (
            stop_after is not None and self._steps_on_target > stop_after)
        # Few info keys on purpose: vector wrappers merge every key of every step.
        info = {'on_target': on_target, 'swing_up': on_target, 'tip_distance': distance}
        obs = np.array((x, x_dot, sin_t, cos_t, theta_dot, *self._history), dtype=np.float32)
        return obs, reward, is_failed, truncated and not is_failed, info

    def close(self) -> None:
        """Nothing to release (gymnasium's API)."""

    # ------------------------------------------------------------------ helpers
    def _tip_distance(self, x: float, theta: float) -> float:
        tip_x, tip_y = dyn.tip_position(x, theta, self.dynamics)
        return task_rules.tip_distance(tip_x, tip_y, self.dynamics.pole_length, self.task.target_x,
                                       _sqrt)

    def _observation(self) -> np.ndarray:
        theta = self._theta
        return np.array((self._x, self._x_dot, _sin(theta), _cos(theta), self._theta_dot,
                         *self._history), dtype=np.float32)
