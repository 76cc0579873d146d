"""Exploration noise: Ornstein-Uhlenbeck, Gaussian and pink, seeded, with an exponential decay of the scale.

Both processes draw from their own numpy Generator (never the global RNG), so a seeded run is
reproducible and the full state (RNG, OU state, step counter) can be checkpointed as JSON-friendly data.

Scale schedule: scale(t) = max(min_scale, scale * 0.5 ** (t / half_life)), t = number of samples
drawn so far; half_life=None means a constant scale (the DC-DRL seed), a half-life in steps is the
cloud-edge seed's decaying factor.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from dcdrl_core.checks import check_number


class ExplorationNoise:
    def __init__(self, shape: int | tuple[int, ...], sigma: float, scale: float = 1.0,
                 half_life: float | None = None, min_scale: float = 0.0, seed: int | None = None) -> None:
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        if not self.shape or any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in self.shape):
            raise ValueError(f'noise shape must be positive ints, got {shape!r}')
        self.sigma = check_number('sigma', sigma, 0.0)
        self.scale = check_number('scale', scale, 0.0)
        if half_life is not None and (check_number('half_life', half_life, 0.0) == 0):
            raise ValueError('half_life must be > 0 steps, or None for no decay')
        self.half_life = None if half_life is None else float(half_life)
        self.min_scale = check_number('min_scale', min_scale, 0.0)
        self.rng = np.random.default_rng(seed)
        self.steps = 0

    def current_scale(self) -> float:
        if self.half_life is None:
            return self.scale
        return max(self.min_scale, self.scale * 0.5 ** (self.steps / self.half_life))

    def reset(self, index: int | None = None) -> None:
        """Start a new episode (for OU: the internal state goes back to mu). The decay keeps going."""

    def _draw(self) -> np.ndarray:
        raise NotImplementedError

    def sample(self) -> np.ndarray:
        """Next noise vector (float32, shape `shape`), multiplied by the current scale."""
        value = self._draw() * self.current_scale()
        self.steps += 1
        return value.astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {'steps': self.steps, 'rng': self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps = int(state['steps'])
        self.rng.bit_generator.state = state['rng']


class GaussianNoise(ExplorationNoise):
    """Independent N(0, sigma^2) per action dimension and step."""

    def _draw(self) -> np.ndarray:
        return self.rng.normal(0.0, self.sigma, size=self.shape) if self.sigma > 0 else np.zeros(self.shape)


class OrnsteinUhlenbeckNoise(ExplorationNoise):
    """Temporally correlated noise: x += theta * (mu - x) * dt + sigma * sqrt(dt) * N(0, 1).

    reset(index) restarts one row (one environment of a vector) or all rows at mu.
    """

    def __init__(self, shape: int | tuple[int, ...], sigma: float = 0.2, theta: float = 0.15, mu: float = 0.0,
                 dt: float = 1.0, scale: float = 1.0, half_life: float | None = None, min_scale: float = 0.0,
                 seed: int | None = None) -> None:
        super().__init__(shape, sigma, scale, half_life, min_scale, seed)
        self.theta = check_number('theta', theta, 0.0)
        if isinstance(mu, bool) or not isinstance(mu, (int, float)) or not math.isfinite(mu):
            raise ValueError(f'mu must be a finite number, got {mu!r}')
        self.mu = float(mu)
        self.dt = check_number('dt', dt, 0.0)
        if self.dt == 0:
            raise ValueError('dt must be > 0')
        self.x = np.full(self.shape, self.mu)

    def reset(self, index: int | None = None) -> None:
        if index is None:
            self.x[...] = self.mu
        else:
            self.x[index] = self.mu

    def _draw(self) -> np.ndarray:
        self.x = self.x + self.theta * (self.mu - self.x) * self.dt \
            + self.sigma * math.sqrt(self.dt) * self.rng.standard_normal(self.shape)
        return self.x.copy()

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state['x'] = self.x.tolist()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        x = np.asarray(state['x'], dtype=np.float64)
        if x.shape != self.shape:
            raise ValueError(f'OU state has shape {x.shape}, expected {self.shape}')
        self.x = x


# A pink sequence is drawn per episode and row; this many steps (a cart-pole episode), then the next one.
PINK_SEQUENCE_STEPS = 1000


class PinkNoise(ExplorationNoise):
    """Gaussian noise whose power falls as 1/f over time (Eberhard et al., ICLR 2023, "Pink noise is all you
    need"): it keeps pushing the same way for a while, as white noise at 30 Hz never does, which is what
    finds a swing-up's pumping motion. sigma is the standard deviation per step.

    reset(index) draws a new sequence for one row (one environment of a vector) or for all rows.
    """

    def __init__(self, shape: int | tuple[int, ...], sigma: float, scale: float = 1.0,
                 half_life: float | None = None, min_scale: float = 0.0, seed: int | None = None) -> None:
        super().__init__(shape, sigma, scale, half_life, min_scale, seed)
        rows = int(np.prod(self.shape[:-1], dtype=np.int64))
        self.sequences = np.zeros((rows, self.shape[-1], PINK_SEQUENCE_STEPS))
        self.positions = np.zeros(rows, dtype=np.int64)
        self.reset()

    def _pink(self, rows: int) -> np.ndarray:
        frequencies = np.fft.rfftfreq(PINK_SEQUENCE_STEPS)
        amplitude = np.maximum(frequencies, 1.0 / PINK_SEQUENCE_STEPS) ** -0.5   # power ~ 1/f
        size = (rows, self.shape[-1], frequencies.size)
        spectrum = (self.rng.standard_normal(size) + 1j * self.rng.standard_normal(size)) * amplitude
        sequences = np.fft.irfft(spectrum, n=PINK_SEQUENCE_STEPS)
        sequences -= sequences.mean(axis=-1, keepdims=True)
        return sequences / sequences.std(axis=-1, keepdims=True)

    def reset(self, index: int | None = None) -> None:
        rows = slice(None) if index is None else slice(index, index + 1)
        self.sequences[rows] = self._pink(len(self.positions[rows]))
        self.positions[rows] = 0

    def _draw(self) -> np.ndarray:
        for row in np.flatnonzero(self.positions >= PINK_SEQUENCE_STEPS):
            self.reset(int(row))
        value = self.sequences[np.arange(len(self.positions)), :, self.positions]
        self.positions += 1
        return self.sigma * value.reshape(self.shape)

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state['sequences'] = self.sequences.tolist()
        state['positions'] = self.positions.tolist()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        sequences = np.asarray(state['sequences'], dtype=np.float64)
        if sequences.shape != self.sequences.shape:
            raise ValueError(f'pink noise state has shape {sequences.shape}, expected {self.sequences.shape}')
        self.sequences = sequences
        self.positions = np.asarray(state['positions'], dtype=np.int64)


NOISE_KINDS = ('ou', 'gaussian', 'pink', 'none')


def make_noise(kind: str, shape: int | tuple[int, ...], sigma: float, theta: float = 0.15, scale: float = 1.0,
               half_life: float | None = None, min_scale: float = 0.0,
               seed: int | None = None) -> ExplorationNoise | None:
    """Build the exploration noise named by `kind` ('ou', 'gaussian', 'pink' or 'none' -> None)."""
    if kind == 'ou':
        return OrnsteinUhlenbeckNoise(shape, sigma=sigma, theta=theta, scale=scale, half_life=half_life,
                                      min_scale=min_scale, seed=seed)
    if kind == 'gaussian':
        return GaussianNoise(shape, sigma=sigma, scale=scale, half_life=half_life, min_scale=min_scale, seed=seed)
    if kind == 'pink':
        return PinkNoise(shape, sigma=sigma, scale=scale, half_life=half_life, min_scale=min_scale, seed=seed)
    if kind == 'none':
        return None
    raise ValueError(f'unknown exploration noise {kind!r}; expected one of {NOISE_KINDS}')


__all__ = ['ExplorationNoise', 'GaussianNoise', 'NOISE_KINDS', 'OrnsteinUhlenbeckNoise', 'PINK_SEQUENCE_STEPS',
           'PinkNoise', 'make_noise']
