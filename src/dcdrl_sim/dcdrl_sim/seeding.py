"""The random generator of a plain (gymnasium-free) model, seeded the way gymnasium.Env seeds its own.

A gymnasium env class that inherits a Seeded model first (class Env(Model, gymnasium.Env)) uses this
np_random in place of gymnasium's: the same stream for the same seed (PCG64 over SeedSequence(seed)).
"""
from __future__ import annotations

import numpy as np


class Seeded:
    _np_random: np.random.Generator | None = None
    _np_random_seed: int | None = None

    @property
    def np_random(self) -> np.random.Generator:
        """The episode generator; an unseeded one from OS entropy until seed_rng() is given a seed."""
        if self._np_random is None:
            self.seed_rng(None)
        assert self._np_random is not None   # seed_rng made one
        return self._np_random

    @np_random.setter
    def np_random(self, value: np.random.Generator) -> None:
        self._np_random = value
        self._np_random_seed = -1   # gymnasium's mark for a generator set from outside

    @property
    def np_random_seed(self) -> int:
        if self._np_random is None:
            self.seed_rng(None)
        assert self._np_random_seed is not None   # set with every generator
        return self._np_random_seed

    def seed_rng(self, seed: int | None) -> None:
        """reset(seed=...)'s seeding: a new generator when a seed is given (or none exists yet), else keep it."""
        if seed is None and self._np_random is not None:
            return
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f'seed must be a non-negative int, got {seed!r}')
        sequence = np.random.SeedSequence(None if seed is None else int(seed))
        self._np_random = np.random.Generator(np.random.PCG64(sequence))
        self._np_random_seed = int(sequence.entropy)  # type: ignore[arg-type]  # an int: seeded with an int or None
