"""Face-recognition offloading as a gymnasium env: model.FaceOffloadModel (the task model) plus its spaces.

The time model, observation and cost are described in model.py (no gymnasium import, so the edge uses
that model alone).
"""
from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from dcdrl_sim.face.model import LOCAL, OBS_SIZE, OFFLOAD, FaceOffloadModel  # noqa: F401  (LOCAL, OFFLOAD: re-exported)


class FaceOffloadEnv(FaceOffloadModel, gymnasium.Env):
    """Per-task local-vs-offload decision for face recognition on a camera device."""

    metadata = {'render_modes': []}

    def __init__(self, *, render_mode: str | None = None, **model_kwargs: Any) -> None:
        """model_kwargs: FaceOffloadModel's (device and server speeds, network, power, tasks, cost)."""
        if render_mode is not None:
            raise ValueError(f'FaceOffloadEnv does not render; render_mode must be None, got {render_mode!r}')
        FaceOffloadModel.__init__(self, **model_kwargs)
        self.render_mode = None
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.Box(0.0, self.obs_clip, shape=(OBS_SIZE,), dtype=np.float32)
