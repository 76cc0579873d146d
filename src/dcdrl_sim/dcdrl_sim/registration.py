"""Registers the dcdrl_sim environments with gymnasium (idempotent).

Environments with a native batched implementation also register it as their
``vector_entry_point``, so ``gymnasium.make_vec(id, n, vectorization_mode="vector_entry_point")``
steps all copies in one numpy call.
"""
from __future__ import annotations

from typing import Any

import gymnasium

ENV_IDS = {
    'dcdrl_sim/MecOffload-v0': ('dcdrl_sim.mec.env:MecOffloadEnv', 'dcdrl_sim.mec.vector:MecOffloadVectorEnv'),
    'dcdrl_sim/CartPoleSwingUp-v0': ('dcdrl_sim.cartpole.env:CartPoleSwingUpEnv',
                                     'dcdrl_sim.cartpole.vector_env:CartPoleSwingUpVectorEnv'),
    'dcdrl_sim/FaceOffload-v0': ('dcdrl_sim.face.env:FaceOffloadEnv', None),
    'dcdrl_sim/FaceOffloadContinuous-v0': ('dcdrl_sim.face.continuous:FaceOffloadContinuousEnv', None),
    # The MEC env with N offload scores as its action (docs/simulation-mec.md): what DDPG learns best.
    'dcdrl_sim/MecOffloadScores-v0': ('dcdrl_sim.mec.env:MecOffloadEnv', 'dcdrl_sim.mec.vector:MecOffloadVectorEnv'),
}
ENV_KWARGS = {'dcdrl_sim/MecOffloadScores-v0': {'action_mode': 'scores'}}


def register_envs() -> None:
    for env_id, (entry_point, vector_entry_point) in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point, vector_entry_point=vector_entry_point,
                               kwargs=ENV_KWARGS.get(env_id, {}))


def make_vector_env(env_id: str, num_envs: int, **env_kwargs: Any) -> gymnasium.vector.VectorEnv:
    """The fastest vector env for ``env_id``: native batched when registered, else synchronous.

    Both use gymnasium's default next-step autoreset.
    """
    spec = gymnasium.spec(env_id)
    mode = 'vector_entry_point' if spec.vector_entry_point is not None else 'sync'
    return gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode=mode, **env_kwargs)
