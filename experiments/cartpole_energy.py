"""How much energy the cart-pole's motor can pump into the pole, per plant: the swing-up's difficulty in joules.

The swing-up needs the pole's energy to rise by m g L (centre of mass from -L/2 to +L/2: 1.44 J). The motor is
weak (5.36 N at stall) and the cart's top speed is F_stall / (cart friction + back-EMF brake). This script drives
each plant open loop from hanging still at the rail centre with a full-voltage square wave near the pole's
natural frequency (the resonant pump; a proportional pull towards the rail centre keeps the cart on the rail),
sweeps the frequency, and reports the most pole energy reached within 250 steps as a fraction of the 1.44 J
needed, without any learning. It also drives each plant with what an agent explores with before it has learned
anything, tanh of white or pink unit noise, for full 1000-step episodes from the training start distribution:
how many episodes bring the tip on target, how many end on the rail or at the spin limit, and the median of
the most energy reached. Plants: the original simulator's explicit Euler at cart friction 10 N s/m, the
corrected plant (semi-implicit Euler) at 10, and at the Quanser IP02's equivalent viscous damping, 4.3 N s/m.

    .venv/bin/python experiments/cartpole_energy.py       # seconds; last line JSON
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from dcdrl_learning.noise import GaussianNoise, PinkNoise
from dcdrl_sim.cartpole.env import CartPoleSwingUpEnv

PLANTS: dict[str, dict[str, Any]] = {'original_euler_friction_10': {'integrator': 'euler', 'cart_friction': 10.0},
                                   'corrected_friction_10': {'cart_friction': 10.0},
                                   'corrected_friction_4.3': {'cart_friction': 4.3}}
STEPS = 250
FREQUENCIES_HZ = np.round(np.linspace(0.5, 0.9, 9), 3)   # the pole's small-swing frequency is 0.76 Hz
CENTRE_GAIN = 2.0                                        # action per metre off the rail centre
RANDOM_EPISODES = 12


def pole_energy(env: CartPoleSwingUpEnv) -> float:
    """Pole energy relative to hanging still (J): rotation about the pivot plus height of the centre of mass."""
    d = env.dynamics
    _, _, theta, theta_dot = env.state
    inertia = d.pole_mass * d.pole_length ** 2 / 3.0
    return 0.5 * inertia * theta_dot ** 2 + d.pole_mass * d.gravity * d.half_length * (1.0 + math.cos(theta))


def swing_up_energy() -> float:
    """m g L: the pole's centre of mass rises by its full length (masses and length are the same in every plant)."""
    d = CartPoleSwingUpEnv().dynamics
    return d.pole_mass * d.gravity * d.pole_length


def pump(plant: dict[str, Any], frequency_hz: float) -> float:
    """The most pole energy within STEPS (or until the cart leaves the rail) for one square-wave frequency."""
    env = CartPoleSwingUpEnv(target_steps_to_stop=None, **plant)
    env.reset(seed=0, options={'state': (0.0, 0.0, math.pi, 0.0)})
    best = 0.0
    for step in range(1, STEPS + 1):
        square = 1.0 if math.sin(2.0 * math.pi * frequency_hz * step / env.frequency_hz) > 0 else -1.0
        _, _, terminated, _, _ = env.step([max(-1.0, min(1.0, square - CENTRE_GAIN * env.state[0]))])
        best = max(best, pole_energy(env))
        if terminated:
            break
    return best


def explore_at_random(plant: dict[str, Any], kind: str) -> dict[str, Any]:
    """RANDOM_EPISODES full episodes of actions tanh(unit white or pink noise): on-target episodes, failures,
    median of the most pole energy (fraction of the swing-up's)."""
    needed = swing_up_energy()
    on_target = failures = 0
    energies = []
    for episode in range(RANDOM_EPISODES):
        env = CartPoleSwingUpEnv(target_steps_to_stop=None, **plant)
        env.reset(seed=episode)
        noise = PinkNoise(1, sigma=1.0, seed=episode) if kind == 'pink' else GaussianNoise(1, 1.0, seed=episode)
        best, hit, terminated, truncated = 0.0, False, False, False
        while not (terminated or truncated):
            _, _, terminated, truncated, info = env.step(np.tanh(noise.sample()))
            best, hit = max(best, pole_energy(env)), hit or info['on_target']
        on_target, failures = on_target + hit, failures + terminated
        energies.append(best / needed)
    return {'on_target_episodes': on_target, 'failed_episodes': failures,
            'median_best_energy_fraction': round(float(np.median(energies)), 3)}


def main() -> dict[str, Any]:
    result: dict[str, Any] = {}
    needed = swing_up_energy()
    for name, plant in PLANTS.items():
        d = CartPoleSwingUpEnv(**plant).dynamics
        stall = d.force_per_volt * d.max_voltage
        energy, frequency = max((pump(plant, float(f)), float(f)) for f in FREQUENCIES_HZ)
        result[name] = {'top_cart_speed_m_s': round(stall / (d.cart_friction + d.force_per_speed), 3),
                        'best_energy_fraction': round(energy / needed, 3), 'at_frequency_hz': frequency,
                        **{f'random_{kind}': explore_at_random(plant, kind) for kind in ('white', 'pink')}}
        print(f'{name}: {result[name]}', flush=True)
    summary = {'experiment': 'cartpole_energy', 'energy_needed_j': round(needed, 3), 'steps': STEPS,
               'random_episodes': RANDOM_EPISODES,
               'plants': result}
    print(json.dumps(summary))
    return summary


if __name__ == '__main__':
    main()
