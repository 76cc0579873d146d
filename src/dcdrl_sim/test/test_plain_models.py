"""The gymnasium-free halves: the edge's plant and offload model act exactly as the registered envs, and
importing dcdrl_sim registers the ids without loading gymnasium itself."""
import json
import os
import subprocess
import sys

import numpy as np

from dcdrl_sim.cartpole.env import CartPoleSwingUpEnv
from dcdrl_sim.cartpole.swingup import CartPoleSwingUp
from dcdrl_sim.face.env import FaceOffloadEnv
from dcdrl_sim.face.model import FaceOffloadModel


def run_child(code: str) -> dict:
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_dcdrl_sim_registers_the_ids_once_gymnasium_loads_in_either_order():
    first_sim = run_child(
        'import json, sys, dcdrl_sim.cartpole.swingup, dcdrl_sim.face.model\n'
        "before = 'gymnasium' in sys.modules\n"
        'import gymnasium\n'
        "env = gymnasium.make('dcdrl_sim/CartPoleSwingUp-v0')\n"
        "ids = sorted(k for k in gymnasium.registry if k.startswith('dcdrl_sim/'))\n"
        "print(json.dumps({'before': before, 'ids': ids}))")
    assert first_sim['before'] is False
    first_gym = run_child(
        'import json, gymnasium, dcdrl_sim\n'
        "print(json.dumps({'ids': sorted(k for k in gymnasium.registry if k.startswith('dcdrl_sim/'))}))")
    assert first_sim['ids'] == first_gym['ids'] and 'dcdrl_sim/FaceOffloadContinuous-v0' in first_gym['ids']


def test_the_plain_cartpole_plant_steps_as_the_env():
    plant, env = CartPoleSwingUp(action_history=3), CartPoleSwingUpEnv(action_history=3)
    assert plant.observation_dim == env.observation_space.shape[0] and plant.action_dim == env.action_space.shape[0]
    obs_plant, _ = plant.reset(seed=11)
    obs_env, _ = env.reset(seed=11)
    assert np.array_equal(obs_plant, obs_env)
    actions = np.random.default_rng(0).uniform(-1, 1, (50, 1)).astype(np.float32)
    for action in actions:
        assert all(np.array_equal(a, b) for a, b in zip(plant.step(action)[:4], env.step(action)[:4]))


def test_the_plain_face_model_draws_the_same_tasks_as_the_env():
    model, env = FaceOffloadModel(), FaceOffloadEnv()
    assert np.array_equal(model.reset(seed=4)[0], env.reset(seed=4)[0])
    for decision in [0, 1, 1, 0, 1] * 4:
        m, e = model.step(decision), env.step(decision)
        assert np.array_equal(m[0], e[0]) and m[1:4] == e[1:4]
