"""The live view of a cloud-edge run: action, cart position, pole angle and episode returns.

`ScopeData` keeps a rolling window of the edge's control steps (from trajectory segments) and the
returns of finished episodes; `draw_scope` renders them with matplotlib into a figure (a window
when a display is there, else a PNG the node rewrites). No ROS import: the node feeds it.
"""
from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dcdrl_core.files import atomic_write_bytes
from dcdrl_ros.parameter_dataclass import parameter


@dataclass(frozen=True)
class ScopeParameters:
    """The scope node's parameters (dcdrl_ros.parameter_dataclass)."""

    device_id: str = parameter('', "show only this controller's segments; '' = all")
    window_s: float = parameter(10.0, 'seconds of control steps shown, by their stamps, whatever the loop rate',
                                above=0.0, live=True)
    refresh_period_s: float = parameter(0.5, 'redraw period', above=0.0)
    output: str = parameter('runs/scope.png', "PNG written when there is no display ('' = never write one)")
    window: bool = parameter(True, 'open a window when a display and a GUI backend exist')


class ScopeData:
    """The last ``window_s`` seconds of control steps (time, action, x, theta), by their stamps, whatever
    the loop rate, plus (episode, return) pairs. ``max_steps`` only bounds memory (10 s at 10 kHz)."""

    def __init__(self, window_s: float = 10.0, max_steps: int = 100_000, max_episodes: int = 500) -> None:
        if not (math.isfinite(window_s) and window_s > 0) or max_steps < 2 or max_episodes < 1:
            raise ValueError(f'window_s must be > 0, max_steps >= 2 and max_episodes >= 1, '
                             f'got {window_s}, {max_steps}, {max_episodes}')
        self.window_s = float(window_s)
        self.steps: deque = deque(maxlen=max_steps)
        self.episodes: deque = deque(maxlen=max_episodes)
        self.newest_s = -math.inf  # stamps of several controllers interleave: the window ends at the newest
        self.refused = 0

    def add_step(self, stamp_s: float, observation: Sequence[float] | np.ndarray, action: Sequence[float] | np.ndarray,
                 evaluation: bool = False) -> bool:
        """One control step; observation = [x, x_dot, sin(theta), cos(theta), theta_dot, ...]."""
        obs = np.asarray(observation, dtype=np.float64).reshape(-1)
        act = np.asarray(action, dtype=np.float64).reshape(-1)
        if obs.size < 4 or act.size < 1 or not (np.isfinite(obs[:4]).all() and np.isfinite(act[0])) \
                or not math.isfinite(stamp_s):
            self.refused += 1
            return False
        theta = math.atan2(obs[2], obs[3])  # 0 = upright
        self.steps.append((float(stamp_s), float(act[0]), float(obs[0]), theta, bool(evaluation)))
        self.newest_s = max(self.newest_s, float(stamp_s))
        self._trim()
        return True

    def set_window(self, window_s: float) -> None:
        if not (math.isfinite(window_s) and window_s > 0):
            raise ValueError(f'window_s must be > 0, got {window_s!r}')
        self.window_s = float(window_s)
        self._trim()

    def _trim(self) -> None:
        oldest = self.newest_s - self.window_s
        while self.steps and self.steps[0][0] < oldest:
            self.steps.popleft()

    def add_episode(self, episode: int, episode_return: float, evaluation: bool = False) -> bool:
        if not math.isfinite(episode_return):
            self.refused += 1
            return False
        self.episodes.append((int(episode), float(episode_return), bool(evaluation)))
        return True

    def arrays(self) -> dict[str, np.ndarray]:
        """time (s, relative to the newest step), action, x, theta (rad), evaluation mask; episode arrays."""
        if self.steps:
            t, action, x, theta, evaluation = (np.array(column) for column in zip(*self.steps))
            t = t - self.newest_s
        else:
            t = action = x = theta = np.zeros(0)
            evaluation = np.zeros(0, bool)
        if self.episodes:
            episode, returns, eval_episode = (np.array(column) for column in zip(*self.episodes))
        else:
            episode = returns = np.zeros(0)
            eval_episode = np.zeros(0, bool)
        return {'time': t, 'action': action, 'x': x, 'theta': theta, 'evaluation': evaluation.astype(bool),
                'episode': episode, 'return': returns, 'eval_episode': eval_episode.astype(bool)}


def draw_scope(data: ScopeData, figure: Any = None, title: str = 'DC-DRL scope') -> Any:
    """Draw (or redraw) the four panels into `figure` (a new Agg-backed Figure when None)."""
    from matplotlib.figure import Figure
    if figure is None:
        figure = Figure(figsize=(9, 7), dpi=80)
    figure.clear()
    a = data.arrays()
    axes = figure.subplots(4, 1)
    panels = (('action', 'action [-1, 1]', (-1.05, 1.05)), ('x', 'cart x (m)', None),
              ('theta', 'pole angle (rad, 0 = up)', (-math.pi, math.pi)))
    for axis, (key, label, limits) in zip(axes, panels):
        values = a[key].astype(np.float64)
        if key == 'theta' and values.size > 1:  # no vertical line where the angle wraps at +-pi
            values[1:][np.abs(np.diff(values)) > math.pi] = np.nan
        axis.plot(a['time'], values, linewidth=0.8)
        axis.set_ylabel(label, fontsize=8)
        if limits:
            axis.set_ylim(*limits)
        axis.grid(alpha=0.3)
    axes[2].set_xlabel('time (s, 0 = newest step)', fontsize=8)
    axis = axes[3]
    train = ~a['eval_episode']
    axis.plot(a['episode'][train], a['return'][train], '.', markersize=3, label='training')
    axis.plot(a['episode'][~train], a['return'][~train], 'o', markersize=4, label='evaluation')
    axis.set_xlabel('episode', fontsize=8)
    axis.set_ylabel('return', fontsize=8)
    axis.grid(alpha=0.3)
    if len(a['episode']):
        axis.legend(fontsize=7, loc='lower right')
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure


def save_scope_png(data: ScopeData, path: str | Path, title: str = 'DC-DRL scope') -> Path:
    """Render to a PNG, replaced atomically (a viewer never sees half a file)."""
    import io
    buffer = io.BytesIO()
    draw_scope(data, title=title).savefig(buffer, format='png')
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def open_window(title: str = 'DC-DRL scope') -> Any | None:
    """A live matplotlib window when an interactive backend and a display exist, else None."""
    import os
    if not (os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')):
        return None
    try:
        import matplotlib.pyplot as plt
        plt.ion()
        figure = plt.figure(title, figsize=(9, 7))
        return figure
    except Exception:  # no GUI toolkit: fall back to the PNG
        return None
