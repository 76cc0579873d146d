"""The plant interface of the edge controller (the extension point for hardware) and two plants.

A plant is what the control loop reads and actuates once per control period. The loop calls, on
its own thread and never concurrently:

    plant.begin_reset(seed)        # once, when an episode ends (or at start-up)
    plant.reset_step() -> bool     # once per period while resetting; True = ready for an episode
    plant.read() -> PlantReading   # once per period during an episode (or while holding)
    plant.write(action)            # once per period: the policy's action or the safe action

None of these may block for long: a control period at 1 kHz is 1 ms. A rig that needs seconds to
home the cart does it over many reset_step() calls.

Plants here:
- SimulatedCartPolePlant: dcdrl_sim's CartPoleSwingUp (the gymnasium env's plant, without gymnasium);
  write() advances the physics by one env step, so run by the fixed-rate loop it is a plant in real time.
- TopicPlant: a robot behind ROS topics (the node subscribes to its state and publishes commands);
  builds the policy observation and applies the safety rules itself.
For a hardware driver (e.g. the Quanser linear servo of the cloud-edge paper) subclass Plant:
docs/edge-controller.md walks through it.
"""
from __future__ import annotations

import abc
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dcdrl_core.checks import check_number
from dcdrl_sim.cartpole.swingup import CartPoleSwingUp


@dataclass(slots=True)
class PlantReading:
    """What the plant reports at one control step.

    observation: float32 [observation_dim], the policy's input (the controller copies it).
    terminated: the episode failed / hit a safety limit (a terminal state for the learner).
    truncated: the episode stops for another reason (time limit, target reached, stale sensor):
        not a terminal state, the learner bootstraps.
    info: extra numbers for logs (e.g. tip_distance, on_target, reward, stale).
    """

    observation: np.ndarray
    terminated: bool = False
    truncated: bool = False
    info: dict = field(default_factory=dict)


class Plant(abc.ABC):
    """The interface between the control loop and a system to control. Subclass it for hardware.

    Attributes every plant sets in __init__:
        observation_dim (int): length of PlantReading.observation.
        action_dim (int): length of the action given to write().
        nominal_rate_hz (float | None): the control rate the plant is built for (a simulator's
            step frequency), None when any rate works; the node may warn when the loop differs.

    Threading: every method is called from the control-loop thread only (except where a subclass
    documents otherwise, e.g. TopicPlant.update_state). No method may block for longer than a
    small fraction of a control period.
    """

    observation_dim: int
    action_dim: int
    nominal_rate_hz: float | None = None

    @abc.abstractmethod
    def begin_reset(self, seed: int | None) -> None:
        """Start the reset routine between episodes (called once, right after the episode's last
        step, or at start-up). Must return at once: long work goes into reset_step().

        seed: for a simulator, the seed of the episode's initial state (None = continue the
        random stream); real plants ignore it.
        """

    @abc.abstractmethod
    def reset_step(self) -> bool:
        """Advance the reset routine by one control period; True when the plant is ready for the
        first step of a new episode.

        A real rig drives the cart home and waits for the pole to hang still here, a little every
        period, and returns False until done. The controller does not write() while resetting:
        during the reset the plant owns its actuator.
        """

    @abc.abstractmethod
    def read(self) -> PlantReading:
        """The current observation and whether the episode is over (safety limits, time limit)."""

    @abc.abstractmethod
    def write(self, action: np.ndarray) -> None:
        """Apply an action (float32 [action_dim], in [-1, 1]) until the next write(). Do not keep
        or modify the array: the caller may reuse it."""

    def safe_action(self) -> np.ndarray:
        """The action that is always safe to apply (no policy, hold, episode end): zeros by default."""
        return np.zeros(self.action_dim, np.float32)

    def close(self) -> None:  # noqa: B027  (optional hook: a plant without hardware has nothing to release)
        """Release the hardware (called once by the node at shutdown, after the loop stopped)."""


class SimulatedCartPolePlant(Plant):
    """dcdrl_sim's cart-pole swing-up env as a plant (the default, and the 'real' plant with other
    friction for fine-tuning).

    write() advances the physics by one env step (dt = 1 / env frequency_hz); the real-time pacing
    comes from the loop, so run the loop at the env's frequency_hz (nominal_rate_hz) to simulate in
    real time. read() returns the latest observation and the env's terminated / truncated; info has
    tip_distance, on_target and, after a step, the env's reward (for edge-side logs).
    The reset is done at once in begin_reset(); reset_step() returns True.
    After the episode ended, write() leaves the env alone (no steps past the end).
    """

    def __init__(self, env_kwargs: Mapping[str, Any] | None = None, seed: int | None = 0) -> None:
        kwargs = dict(env_kwargs or {})
        if kwargs.pop('render_mode', None) is not None:
            raise ValueError('SimulatedCartPolePlant does not render: leave render_mode unset')
        self.env = CartPoleSwingUp(**kwargs)
        self.observation_dim = self.env.observation_dim
        self.action_dim = self.env.action_dim
        self.nominal_rate_hz = float(self.env.frequency_hz)
        self.seed = seed
        self._seeded = False
        self._observation: np.ndarray | None = None
        self._terminated = False
        self._truncated = False
        self._info: dict = {}
        self.resets = 0

    def begin_reset(self, seed: int | None = None) -> None:
        if seed is None and not self._seeded:
            seed = self.seed           # the first episode is reproducible even when no seed is given
        observation, info = self.env.reset(seed=seed)
        self._seeded = self._seeded or seed is not None
        self._observation = observation
        self._terminated = self._truncated = False
        self._info = {'tip_distance': float(info['tip_distance']), 'on_target': bool(info['on_target'])}
        self.resets += 1

    def reset_step(self) -> bool:
        return self._observation is not None

    def read(self) -> PlantReading:
        if self._observation is None:
            raise RuntimeError('SimulatedCartPolePlant.read() before the first begin_reset()')
        return PlantReading(self._observation, self._terminated, self._truncated, self._info)

    def write(self, action: np.ndarray) -> None:
        if self._observation is None:
            raise RuntimeError('SimulatedCartPolePlant.write() before the first begin_reset()')
        if self._terminated or self._truncated:
            return
        observation, reward, terminated, truncated, info = self.env.step(action)
        self._observation = observation
        self._terminated, self._truncated = bool(terminated), bool(truncated)
        info['reward'] = float(reward)
        self._info = info

    def close(self) -> None:
        self.env.close()


class TopicPlant(Plant):
    """A cart-pole robot behind ROS topics: the node feeds its state in, commands go out.

    The node's state subscription calls update_state([x, x_dot, theta, theta_dot]) (theta = 0
    upright, radians; metres; any thread); write() calls send_command(action) (the node publishes
    it). read() builds the policy's observation like the simulator,
        [x, x_dot, sin(theta), cos(theta), theta_dot, a_{k-1}, ..., a_{k-obs_history}],
    and applies the safety rules: terminated when |x| >= x_limit or |theta_dot| > theta_dot_limit,
    truncated after max_steps writes, and truncated with info['stale'] = True when no state arrived
    for stale_after_s (a sensor outage is not the policy's failure, so no failure penalty).

    Reset: begin_reset() clears the action history and the step count; reset_step() returns True
    once a state newer than begin_reset() arrived with |theta_dot| <= reset_theta_dot_max and |x| <
    x_limit. Homing the cart and letting the pole settle is the robot's job (or a subclass's
    reset_step()); this class only waits for it.
    """

    def __init__(self, send_command: Callable[[np.ndarray], None], obs_history: int = 5, x_limit: float = 0.3,
                 theta_dot_limit: float = 15.0, max_steps: int = 1000, stale_after_s: float = 0.1,
                 clock: Callable[[], float] = time.monotonic, reset_theta_dot_max: float = 0.5) -> None:
        if not callable(send_command):
            raise TypeError('send_command must be callable')
        for name, value, minimum in (('obs_history', obs_history, 0), ('max_steps', max_steps, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f'{name} must be an int >= {minimum}, got {value!r}')
        self.x_limit = check_number('x_limit', x_limit, 0.0, above=True)
        self.theta_dot_limit = check_number('theta_dot_limit', theta_dot_limit, 0.0, above=True)
        self.stale_after_s = check_number('stale_after_s', stale_after_s, 0.0, above=True)
        self.reset_theta_dot_max = check_number('reset_theta_dot_max', reset_theta_dot_max, 0.0)
        self.obs_history = obs_history
        self.max_steps = max_steps
        self.observation_dim = 5 + obs_history
        self.action_dim = 1
        self._send_command = send_command
        self._clock = clock
        # (x, x_dot, theta, theta_dot, arrival time): replaced by one assignment, never mutated.
        self._latest: tuple[float, float, float, float, float] | None = None
        self._history: deque = deque([0.0] * obs_history, maxlen=obs_history)
        self._steps = 0
        self._reset_since = -math.inf
        self.states_received = 0
        self.rejected_states = 0
        self.stale_reads = 0

    # ------------------------------------------------------------------ the node's subscription
    def update_state(self, values: Sequence[float]) -> None:
        """Store the robot's latest state [x, x_dot, theta, theta_dot]. Raises ValueError (and
        counts it in rejected_states) for the wrong length or non-finite values."""
        try:
            # The length first: a long array from the topic is refused without converting its values.
            count = len(values)
            if count != 4:
                raise ValueError(f'got {count}')
            state = tuple(float(v) for v in values)
        except (TypeError, ValueError) as exc:
            self.rejected_states += 1
            raise ValueError(f'state must be 4 numbers [x, x_dot, theta, theta_dot], {exc}') from exc
        if not all(math.isfinite(v) for v in state):
            self.rejected_states += 1
            raise ValueError(f'state values must be finite, got {list(state)}')
        # one reference assignment: no lock on the loop path (four numbers: counted above)
        self._latest = state + (self._clock(),)  # type: ignore[assignment]
        self.states_received += 1

    # ------------------------------------------------------------------ the loop
    def begin_reset(self, seed: int | None = None) -> None:
        self._history = deque([0.0] * self.obs_history, maxlen=self.obs_history)
        self._steps = 0
        self._reset_since = self._clock()

    def reset_step(self) -> bool:
        latest = self._latest
        if latest is None:
            return False
        x, _, _, theta_dot, stamp = latest
        fresh = stamp >= self._reset_since and self._clock() - stamp <= self.stale_after_s
        return fresh and abs(theta_dot) <= self.reset_theta_dot_max and abs(x) < self.x_limit

    def read(self) -> PlantReading:
        latest = self._latest
        now = self._clock()
        if latest is None:   # nothing ever received: hanging down at the centre, and stale
            x, x_dot, theta, theta_dot, age = 0.0, 0.0, math.pi, 0.0, math.inf
        else:
            x, x_dot, theta, theta_dot, stamp = latest
            age = now - stamp
        stale = age > self.stale_after_s
        observation = np.array((x, x_dot, math.sin(theta), math.cos(theta), theta_dot, *self._history),
                               dtype=np.float32)
        terminated = abs(x) >= self.x_limit or abs(theta_dot) > self.theta_dot_limit
        truncated = not terminated and (stale or self._steps >= self.max_steps)
        if stale:
            self.stale_reads += 1
        return PlantReading(observation, terminated, truncated, {'stale': stale, 'state_age_s': age})

    def write(self, action: np.ndarray) -> None:
        command = np.array(action, dtype=np.float32).reshape(-1)
        if command.shape != (1,) or not np.isfinite(command).all():
            raise ValueError(f'action must be 1 finite value, got {action!r}')
        self._history.appendleft(float(command[0]))
        self._steps += 1
        self._send_command(command)


__all__ = ['Plant', 'PlantReading', 'SimulatedCartPolePlant', 'TopicPlant']
