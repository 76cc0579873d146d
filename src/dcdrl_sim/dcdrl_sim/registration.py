"""Registers the dcdrl_sim environments with gymnasium (idempotent)."""
import gymnasium

ENV_IDS = {
    'dcdrl_sim/MecOffload-v0': 'dcdrl_sim.mec.env:MecOffloadEnv',
    'dcdrl_sim/CartPoleSwingUp-v0': 'dcdrl_sim.cartpole.env:CartPoleSwingUpEnv',
    'dcdrl_sim/FaceOffload-v0': 'dcdrl_sim.face.env:FaceOffloadEnv',
}


def register_envs() -> None:
    for env_id, entry_point in ENV_IDS.items():
        if env_id not in gymnasium.registry:
            gymnasium.register(id=env_id, entry_point=entry_point)
