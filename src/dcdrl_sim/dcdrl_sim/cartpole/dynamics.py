"""Cart-pole physics with a DC-motor force model: the one definition of the plant.

Pure functions over plain numbers. Every function only uses arithmetic plus the
``sin``/``cos`` it is handed, so the same code runs on Python floats (``math``,
fast for one environment) and on numpy arrays (``numpy``, for the batched vector
environment). Nothing here keeps state.

Conventions
- ``x`` cart position (m, + to the right), ``theta`` pole angle (rad, 0 = upright,
  + = tip to the right of the cart), angles wrapped to [-pi, pi).
- The pole is a uniform rod of full length ``pole_length``; its centre of mass sits
  at half that length, ``l = pole_length / 2``.

Equations (Barto, Sutton & Anderson 1983; Florian 2007, "Correct equations for the
dynamics of the cart-pole system"), with viscous friction on the cart and at the pivot::

    theta_acc = (g sin(th) - cos(th) * (F - b_c x_dot + m l th_dot^2 sin(th)) / M
                 - b_p th_dot / (m l)) / (l (4/3 - m cos(th)^2 / M))
    x_acc     = (F - b_c x_dot + m l (th_dot^2 sin(th) - theta_acc cos(th))) / M

with M = cart mass + pole mass and ``m l`` = pole mass * pole_length / 2. The
original cloud-edge simulator used ``m / 2`` for that product (dropping the length);
this module uses the physically correct ``m * l / 2`` (see docs/simulation-cartpole-face.md).

Motor (Quanser-style linear servo): voltage ``V = max_voltage * a`` with ``a`` in
[-1, 1], force ``F = 17.69 * (6.35 V - 28.49 x_dot) / 104.84`` (the back-EMF term
makes the motor brake the cart in proportion to its speed).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dcdrl_core.checks import check_number

INTEGRATORS = ('semi_implicit_euler', 'euler')
TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class CartPoleParams:
    """Physical constants of the plant (defaults: the cloud-edge paper's Quanser rig)."""

    cart_mass: float = 0.94          # kg
    pole_mass: float = 0.23          # kg
    pole_length: float = 0.64        # m, full length of the rod
    gravity: float = 9.8             # m/s^2
    cart_friction: float = 10.0      # N*s/m, viscous friction on the cart
    pole_friction: float = 0.0011    # N*m*s/rad, viscous friction at the pivot
    max_voltage: float = 5.0         # V applied for action +1
    motor_force_gain: float = 17.69      # numerator gain of the force model
    motor_voltage_gain: float = 6.35     # multiplies the voltage
    motor_back_emf_gain: float = 28.49   # multiplies the cart speed (back-EMF)
    motor_force_divisor: float = 104.84  # denominator of the force model

    # Derived constants, computed once so the step function does no redundant work.
    total_mass: float = field(init=False, repr=False)
    half_length: float = field(init=False, repr=False)
    pole_mass_length: float = field(init=False, repr=False)   # m_pole * l / 2
    force_per_volt: float = field(init=False, repr=False)
    force_per_speed: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ('cart_mass', 'pole_mass', 'pole_length', 'gravity', 'max_voltage',
                     'motor_force_divisor'):
            check_number(name, getattr(self, name), 0.0, above=True)
        for name in ('cart_friction', 'pole_friction', 'motor_force_gain', 'motor_voltage_gain',
                     'motor_back_emf_gain'):
            check_number(name, getattr(self, name), 0.0)
        set_ = object.__setattr__  # frozen dataclass: derived fields are set once here
        set_(self, 'total_mass', float(self.cart_mass + self.pole_mass))
        set_(self, 'half_length', float(self.pole_length / 2.0))
        set_(self, 'pole_mass_length', float(self.pole_mass * self.pole_length / 2.0))
        set_(self, 'force_per_volt',
             float(self.motor_force_gain * self.motor_voltage_gain / self.motor_force_divisor))
        set_(self, 'force_per_speed',
             float(self.motor_force_gain * self.motor_back_emf_gain / self.motor_force_divisor))


def motor_force(voltage: Any, x_dot: Any, p: CartPoleParams) -> Any:
    """Force (N) the motor puts on the cart: 17.69 * (6.35 V - 28.49 x_dot) / 104.84."""
    return p.force_per_volt * voltage - p.force_per_speed * x_dot


def accelerations(x_dot: Any, theta: Any, theta_dot: Any, force: Any, p: CartPoleParams,
                  sin: Callable[[Any], Any] = math.sin,
                  cos: Callable[[Any], Any] = math.cos) -> tuple[Any, Any]:
    """(x_acc, theta_acc) of the cart-pole under an external cart force (see module doc)."""
    sin_t = sin(theta)
    cos_t = cos(theta)
    ml = p.pole_mass_length
    total = p.total_mass
    # Force on the cart-pole system that does not depend on theta_acc.
    temp = (force - p.cart_friction * x_dot + ml * theta_dot * theta_dot * sin_t) / total
    theta_acc = ((p.gravity * sin_t - cos_t * temp - p.pole_friction * theta_dot / ml)
                 / (p.half_length * (4.0 / 3.0 - p.pole_mass * cos_t * cos_t / total)))
    x_acc = temp - ml * theta_acc * cos_t / total
    return x_acc, theta_acc


def wrap_angle(theta: Any) -> Any:
    """Wrap to [-pi, pi); works on floats and arrays (floored modulo in both)."""
    return (theta + math.pi) % TWO_PI - math.pi


def step_state(x: Any, x_dot: Any, theta: Any, theta_dot: Any, voltage: Any, dt: float,
               p: CartPoleParams, substeps: int = 1, semi_implicit: bool = True,
               sin: Callable[[Any], Any] = math.sin,
               cos: Callable[[Any], Any] = math.cos) -> tuple[Any, Any, Any, Any]:
    """Advance the state by ``dt`` seconds holding ``voltage`` constant (zero-order hold).

    ``substeps`` Euler sub-steps of ``dt / substeps`` each. ``semi_implicit`` (default)
    updates velocities first and moves positions with the new velocities: it keeps
    the pendulum's energy bounded, whereas explicit Euler (``False``) adds energy at
    every step (about 2.5 % per step for this pole at 30 Hz). The motor force is
    recomputed at every sub-step because the back-EMF depends on the cart speed.
    """
    h = dt / substeps
    for _ in range(substeps):
        force = p.force_per_volt * voltage - p.force_per_speed * x_dot
        x_acc, theta_acc = accelerations(x_dot, theta, theta_dot, force, p, sin, cos)
        if semi_implicit:
            x_dot = x_dot + h * x_acc
            theta_dot = theta_dot + h * theta_acc
            x = x + h * x_dot
            theta = theta + h * theta_dot
        else:
            x = x + h * x_dot
            theta = theta + h * theta_dot
            x_dot = x_dot + h * x_acc
            theta_dot = theta_dot + h * theta_acc
    return x, x_dot, wrap_angle(theta), theta_dot


def mechanical_energy(x_dot: Any, theta: Any, theta_dot: Any, p: CartPoleParams,
                      cos: Callable[[Any], Any] = math.cos) -> Any:
    """Kinetic + potential energy (J); potential zero at the pivot height.

    T = 1/2 M x_dot^2 + m l cos(th) x_dot th_dot + 1/2 (4/3) m l^2 th_dot^2 (rod about its
    end: m l^2 + m l^2 / 3), V = m g l cos(th), with l the half length.
    """
    m = p.pole_mass
    l_c = p.half_length
    cos_t = cos(theta)
    kinetic = (0.5 * p.total_mass * x_dot * x_dot + m * l_c * cos_t * x_dot * theta_dot
               + 0.5 * (4.0 / 3.0) * m * l_c * l_c * theta_dot * theta_dot)
    return kinetic + m * p.gravity * l_c * cos_t


def tip_position(x: Any, theta: Any, p: CartPoleParams,
                 sin: Callable[[Any], Any] = math.sin,
                 cos: Callable[[Any], Any] = math.cos) -> tuple[Any, Any]:
    """(horizontal, vertical) position of the pole tip; the pivot is at height 0."""
    return x + p.pole_length * sin(theta), p.pole_length * cos(theta)
