"""Multi-user MEC computation offloading (DC-DRL), as a plain gymnasium environment.

Every step each of N users receives one task and decides: compute locally, or offload it on
one of C radio channels to the single edge server. Reward = -(sum of the users' costs).
The physics lives in dcdrl_sim.mec.model (shared with the baselines and the oracle).
"""
from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from dcdrl_sim.mec.model import (
    MecParams,
    MecState,
    channel_gain,
    check_box_action,
    decode_continuous,
    decode_scores,
    encode_continuous,
    encode_scores,
    evaluate_decisions,
    fill_observation,
    observation_bounds,
    observation_template,
)

ACTION_MODES = ('continuous', 'discrete', 'scores')
# Seed of the original code's user positions (np.random.seed(2020); randint(-80, 80, 2N)).
PAPER_POSITIONS_SEED = 2020


class MecOffloadEnv(gym.Env):
    """N users, C channels, one edge server; one task per user per step.

    Args (all physical constants are MecParams fields; see docs/simulation-mec.md):
        num_users: N users (default 10).
        num_channels: C radio channels (default 5).
        action_mode: "continuous" (the paper's Box(-1, 1, (2N,)) for DDPG), "discrete"
            (MultiDiscrete([C+1]*N): 0 = local, k = channel k-1) or "scores" (Box(-1, 1, (N,)):
            who offloads, channels assigned without needless sharing; model.decode_scores).
        paper_compat: reproduce the original code's quirks (off by default).
        episode_length: steps per episode; the env truncates itself at this length.
        positions: optional (N, 2) user coordinates in metres, |x|, |y| <= cover_radius_m.
        positions_seed: seed of the fixed user positions when ``positions`` is None
            (2020 reproduces the original code's positions for N = 10, R = 80).
        redraw_positions: draw new positions from the env's RNG at every reset.
        render_mode: None or "ansi".
    """

    metadata = {'render_modes': ['ansi'], 'render_fps': 2}

    def __init__(self, num_users: int = 10, num_channels: int = 5,
                 action_mode: str = 'continuous', paper_compat: bool = False,
                 episode_length: int = 50, *,
                 step_s: float = 0.6, f_local_ghz: float = 0.8, f_edge_ghz: float = 5.0,
                 cycles_range_g: tuple[float, float] = (0.6, 0.8),
                 size_range_kb: tuple[float, float] = (5000.0, 8000.0),
                 deadline_s: float = 2.0, unit_cost_local: float = 0.025,
                 unit_cost_edge: float = 0.05, unit_cost_energy: float = 0.1,
                 deadline_penalty: float = 1.0, bandwidth_hz: float = 5e6,
                 tx_power_w: float = 0.1, path_loss_exponent: float = 4.0,
                 noise_w: float = 1e-13, cover_radius_m: float = 80.0,
                 min_distance_m: float = 1.0, kappa_local: float = 1e-27,
                 positions: np.ndarray | None = None,
                 positions_seed: int = PAPER_POSITIONS_SEED,
                 redraw_positions: bool = False,
                 render_mode: str | None = None) -> None:
        super().__init__()
        self.params = MecParams(
            num_users=num_users, num_channels=num_channels, step_s=step_s,
            f_local_ghz=f_local_ghz, f_edge_ghz=f_edge_ghz,
            # two numbers each (low, high), as in MecParams; a tuple here so the params stay hashable
            cycles_range_g=tuple(cycles_range_g), size_range_kb=tuple(size_range_kb),  # type: ignore[arg-type]
            deadline_s=deadline_s, unit_cost_local=unit_cost_local,
            unit_cost_edge=unit_cost_edge, unit_cost_energy=unit_cost_energy,
            deadline_penalty=deadline_penalty, bandwidth_hz=bandwidth_hz,
            tx_power_w=tx_power_w, path_loss_exponent=path_loss_exponent, noise_w=noise_w,
            cover_radius_m=cover_radius_m, min_distance_m=min_distance_m,
            kappa_local=kappa_local, paper_compat=bool(paper_compat))
        if action_mode not in ACTION_MODES:
            raise ValueError(f'action_mode must be one of {ACTION_MODES}, got {action_mode!r}')
        if isinstance(episode_length, bool) or not isinstance(episode_length, (int, np.integer)) \
                or episode_length < 1:
            raise ValueError(f'episode_length must be an integer >= 1, got {episode_length!r}')
        if render_mode is not None and render_mode not in self.metadata['render_modes']:
            raise ValueError(f'render_mode must be None or one of {self.metadata["render_modes"]}, '
                             f'got {render_mode!r}')
        self.action_mode = action_mode
        self.episode_length = int(episode_length)
        self.redraw_positions = bool(redraw_positions)
        self.render_mode = render_mode
        n, c = self.params.num_users, self.params.num_channels

        if action_mode == 'continuous':
            self.action_space = spaces.Box(-1.0, 1.0, (2 * n,), dtype=np.float32)
        elif action_mode == 'scores':
            self.action_space = spaces.Box(-1.0, 1.0, (n,), dtype=np.float32)
        else:
            self.action_space = spaces.MultiDiscrete(np.full(n, c + 1, dtype=np.int64))
        low, high = observation_bounds(self.params, self.episode_length)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)

        if positions is None:
            self._set_positions(self._draw_positions(np.random.RandomState(positions_seed)))
        else:
            self._set_positions(self._check_positions(positions))
        self._deadline = np.full(n, self.params.deadline_s)
        self._cycles = np.zeros(n)
        self._size = np.zeros(n)
        self._local_backlog = np.zeros(n)
        self._edge_backlog = 0.0
        self._t = 0
        self._ready = False
        self._last_info: dict[str, Any] = {}
        # Task ranges as (low, width) for one vectorised draw per step.
        lo = np.array([self.params.cycles_range_g[0], self.params.size_range_kb[0]])
        hi = np.array([self.params.cycles_range_g[1], self.params.size_range_kb[1]])
        self._task_low = lo[:, None]
        self._task_width = (hi - lo)[:, None]

    # --- positions ----------------------------------------------------------------------

    def _draw_positions(self, rng: np.random.RandomState | np.random.Generator) -> np.ndarray:
        n, r = self.params.num_users, self.params.cover_radius_m
        if float(r).is_integer():
            # Integer grid in [-R, R), as the original (legacy RandomState keeps its stream).
            if isinstance(rng, np.random.RandomState):
                flat = rng.randint(-int(r), int(r), size=2 * n)
            else:
                flat = rng.integers(-int(r), int(r), size=2 * n)
            return flat.reshape(n, 2).astype(np.float64)
        return rng.uniform(-r, r, size=(n, 2))

    def _check_positions(self, positions: np.ndarray) -> np.ndarray:
        p = np.asarray(positions, dtype=np.float64)
        n, r = self.params.num_users, self.params.cover_radius_m
        if p.shape != (n, 2):
            raise ValueError(f'positions must have shape ({n}, 2), got {p.shape}')
        if not np.all(np.isfinite(p)) or np.any(np.abs(p) > r):
            raise ValueError(f'positions must be finite with |x|, |y| <= cover_radius_m = {r}')
        return p.copy()

    @property
    def positions(self) -> np.ndarray:
        return self._positions.copy()

    # --- gymnasium API ------------------------------------------------------------------

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options and 'positions' in options:
            self._set_positions(self._check_positions(options['positions']))
        elif self.redraw_positions:
            self._set_positions(self._draw_positions(self.np_random))
        self._local_backlog = np.zeros(self.params.num_users)
        self._edge_backlog = 0.0
        self._t = 0
        self._draw_tasks()
        self._ready = True
        self._last_info = {}
        return self._observe(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if not self._ready:
            raise RuntimeError('call reset() before step()')
        decisions, ghost = self.decode_action(action)
        state = MecState(self._gain, self._cycles, self._size, self._deadline,
                         self._local_backlog, self._edge_backlog)
        out = evaluate_decisions(self.params, state, decisions, ghost)
        cost = out.cost
        total = float(cost.sum())
        n = self.params.num_users
        info = {
            'cost': total,
            'latency_s': float(out.latency_s.sum() / n),
            'energy_j': float(out.energy_j.sum() / n),
            'deadline_miss_ratio': float(np.count_nonzero(out.missed) / n),
            'offload_fraction': float(np.count_nonzero(out.offloaded) / n),
            'cost_per_user': cost,
            'latency_per_user': out.latency_s,
            'energy_per_user': out.energy_j,
            'offloaded': out.offloaded,
            'channel': decisions - 1,
        }
        self._local_backlog = out.next_local_backlog_s
        self._edge_backlog = float(out.next_edge_backlog_s)
        self._t += 1
        self._draw_tasks()     # drawn whatever the action: common random numbers across policies
        self._last_info = info
        truncated = self._t >= self.episode_length
        return self._observe(), -total, False, truncated, info

    def render(self) -> str | None:
        if self.render_mode != 'ansi':
            return None
        lines = [f't={self._t} edge_backlog={self._edge_backlog:.3f}s']
        info = self._last_info
        for i in range(self.params.num_users):
            where = '-'
            if info:
                where = 'local' if info['channel'][i] < 0 else f'ch{info["channel"][i]}'
            lines.append(f'user {i}: pos={self._positions[i].tolist()} '
                         f'backlog={self._local_backlog[i]:.3f}s cycles={self._cycles[i]:.3f}G '
                         f'size={self._size[i]:.0f}KB last={where}')
        return '\n'.join(lines)

    # --- helpers for policies -----------------------------------------------------------

    def decode_action(self, action: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """Action (either mode) -> (decisions (N,) int, ghost labels for paper_compat or None)."""
        n, c = self.params.num_users, self.params.num_channels
        a = np.asarray(action)
        if self.action_mode == 'continuous':
            check_box_action(a, self.action_space.shape, self.action_mode)
            return decode_continuous(self.params, a)
        if self.action_mode == 'scores':
            check_box_action(a, self.action_space.shape, self.action_mode)
            return decode_scores(self.params, a), None
        if a.shape != (n,):
            raise ValueError(f'discrete action must have shape ({n},), got {a.shape}')
        if not np.issubdtype(a.dtype, np.integer):
            if not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)) \
                    or np.any(a != np.round(a)):
                raise ValueError(f'discrete action must be integers in [0, {c}], got {action!r}')
            a = a.astype(np.int64)
        if np.any(a < 0) or np.any(a > c):
            raise ValueError(f'discrete action values must be in [0, {c}] (0 = local, k = channel k-1), '
                             f'got {a.tolist()}')
        return a.astype(np.int64, copy=False), None

    def encode_action(self, decisions: np.ndarray) -> np.ndarray:
        """Decisions (N,) (0 = local, k = channel k-1) -> an action of this env's action_mode."""
        d = np.asarray(decisions, dtype=np.int64)
        if self.action_mode == 'continuous':
            return encode_continuous(self.params, d)
        if self.action_mode == 'scores':
            return encode_scores(self.params, d)
        return d.copy()

    def decision_state(self) -> MecState:
        """A copy of the state the next action will be scored against (float64, exact)."""
        if not self._ready:
            raise RuntimeError('call reset() before decision_state()')
        return MecState(self._gain.copy(), self._cycles.copy(), self._size.copy(),
                        self._deadline.copy(), self._local_backlog.copy(),
                        np.asarray(self._edge_backlog, dtype=np.float64))

    # --- internals ----------------------------------------------------------------------

    def _draw_tasks(self) -> None:
        u = self.np_random.random((2, self.params.num_users))
        tasks = self._task_low + self._task_width * u
        self._cycles = tasks[0]
        self._size = tasks[1]

    def _set_positions(self, positions: np.ndarray) -> None:
        self._positions = positions
        self._gain = channel_gain(self.params, positions)
        self._obs_template = observation_template(self.params, positions)

    def _observe(self) -> np.ndarray:
        state = MecState(self._gain, self._cycles, self._size, self._deadline,
                         self._local_backlog, self._edge_backlog)
        return fill_observation(self.params, self._obs_template.copy(), state, self._t,
                                self.episode_length)
