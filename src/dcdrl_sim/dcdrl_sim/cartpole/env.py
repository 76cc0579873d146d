"""Cart-pole swing-up as a gymnasium env: swingup.CartPoleSwingUp (the plant) plus spaces and rendering.

The physics, task rules, delay line and episode bookkeeping are in swingup.py (no gymnasium import,
so the edge runs that plant alone); see its docstring for the observation and the episode end.
"""
from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from dcdrl_core.checks import check_int
from dcdrl_sim.cartpole.render import draw_cartpole
from dcdrl_sim.cartpole.swingup import CartPoleSwingUp


class CartPoleSwingUpEnv(CartPoleSwingUp, gymnasium.Env):
    """Swing-up and balance of a pole on a motor-driven cart (cloud-edge paper plant)."""

    metadata = {'render_modes': ['rgb_array'], 'render_fps': 30}

    def __init__(self, render_mode: str | None = None, render_width: int = 400, render_height: int = 300,
                 **plant_kwargs: Any) -> None:
        """plant_kwargs: CartPoleSwingUp's (frequency_hz, masses, limits, delays, task constants)."""
        CartPoleSwingUp.__init__(self, **plant_kwargs)
        if render_mode is not None and render_mode not in self.metadata['render_modes']:
            raise ValueError(f'render_mode must be None or one of {self.metadata["render_modes"]}, '
                             f'got {render_mode!r}')
        self.render_mode = render_mode
        self.render_width = check_int('render_width', render_width, 16)
        self.render_height = check_int('render_height', render_height, 16)
        self.metadata = dict(self.metadata, render_fps=self.frequency_hz)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(self.action_dim,), dtype=np.float32)
        self.observation_space = spaces.Box(-self.observation_high, self.observation_high, dtype=np.float32)

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn('render() called with render_mode=None; '
                                  'make the env with render_mode="rgb_array"')
            return None
        return draw_cartpole(self._x, self._theta, self.dynamics.pole_length, self.task.x_limit,
                             self.task.target_x, self._on_target, self.render_width,
                             self.render_height)
