"""How much energy the cart-pole's motor can pump into the pole, per plant: the swing-up's difficulty in joules.

The swing-up needs the pole's energy to rise by m g L (centre of mass from -L/2 to +L/2: 1.44 J). The motor is
weak (5.36 N at stall) and the cart's top speed is F_stall / (cart friction + back-EMF brake). This script drives
each plant open loop from hanging still at the rail centre with a full-voltage square wave near the pole's
natural frequency (the resonant pump; a proportional pull towards the rail centre keeps the cart on the rail),
sweeps the frequency, and reports the most pole energy reached within 250 steps as a fraction of the 1.44 J
needed, without any learning. Plants: the original simulator's explicit Euler at cart friction 10 N s/m, the
corrected plant (semi-implicit Euler) at 10, and at the Quanser IP02's equivalent viscous damping, 4.3 N s/m.

    .venv/bin/python experiments/cartpole_energy.py       # seconds; last line JSON
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from dcdrl_sim.cartpole.env import CartPoleSwingUpEnv

PLANTS: dict[str, dict[str, Any]] = {'original_euler_friction_10': {'integrator': 'euler', 'cart_friction': 10.0},
                                   'corrected_friction_10': {'cart_friction': 10.0},
                                   'corrected_friction_4.3': {'cart_friction': 4.3}}
STEPS = 250
FREQUENCIES_HZ = np.round(np.linspace(0.5, 0.9, 9), 3)   # the pole's small-swing frequency is 0.76 Hz
CENTRE_GAIN = 2.0                                        # action per metre off the rail centre


def pole_energy(env: CartPoleSwingUpEnv) -> float:
    """Pole energy relative to hanging still (J): rotation about the pivot plus height of the centre of mass."""
    d = env.dynamics
    _, _, theta, theta_dot = env.state
    inertia = d.pole_mass * d.pole_length ** 2 / 3.0
    return 0.5 * inertia * theta_dot ** 2 + d.pole_mass * d.gravity * d.half_length * (1.0 + math.cos(theta))


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


def main() -> dict[str, Any]:
    result: dict[str, Any] = {}
    d = CartPoleSwingUpEnv().dynamics            # masses and length are the same in every plant here
    needed = d.pole_mass * d.gravity * d.pole_length
    for name, plant in PLANTS.items():
        d = CartPoleSwingUpEnv(**plant).dynamics
        stall = d.force_per_volt * d.max_voltage
        energy, frequency = max((pump(plant, float(f)), float(f)) for f in FREQUENCIES_HZ)
        result[name] = {'top_cart_speed_m_s': round(stall / (d.cart_friction + d.force_per_speed), 3),
                        'best_energy_fraction': round(energy / needed, 3), 'at_frequency_hz': frequency}
        print(f'{name}: {result[name]}', flush=True)
    summary = {'experiment': 'cartpole_energy', 'energy_needed_j': round(needed, 3), 'steps': STEPS,
               'plants': result}
    print(json.dumps(summary))
    return summary


if __name__ == '__main__':
    main()
