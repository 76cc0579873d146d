"""Physics of the cart-pole plant on hand-computed cases (dcdrl_sim.cartpole.dynamics)."""
import math

import numpy as np
import pytest

from dcdrl_sim.cartpole import dynamics as dyn

DEFAULT = dyn.CartPoleParams()
# No friction, no motor back-EMF: a conservative system for the energy tests.
FRICTIONLESS = dyn.CartPoleParams(cart_friction=0.0, pole_friction=0.0, motor_back_emf_gain=0.0)


def test_pole_mass_length_is_mass_times_half_length():
    # The original code used m_pole / 2 (= 0.115); the physical term is m_pole * l / 2.
    assert DEFAULT.pole_mass_length == pytest.approx(0.23 * 0.64 / 2) == pytest.approx(0.0736)
    assert DEFAULT.half_length == pytest.approx(0.32)
    assert DEFAULT.total_mass == pytest.approx(1.17)


def test_motor_force_hand_computed():
    # F = 17.69 * (6.35 V - 28.49 x_dot) / 104.84
    assert dyn.motor_force(5.0, 0.0, DEFAULT) == pytest.approx(17.69 * 31.75 / 104.84)   # 5.3573 N
    assert dyn.motor_force(5.0, 0.0, DEFAULT) == pytest.approx(5.35728, abs=1e-5)
    assert dyn.motor_force(0.0, 1.0, DEFAULT) == pytest.approx(-4.80721, abs=1e-5)      # back-EMF brakes
    assert dyn.motor_force(-5.0, 0.0, DEFAULT) < 0.0
    # Stall speed at full voltage: 6.35 * 5 / 28.49 m/s, where the force vanishes.
    assert dyn.motor_force(5.0, 6.35 * 5 / 28.49, DEFAULT) == pytest.approx(0.0, abs=1e-12)


def test_horizontal_pole_falls_with_g_over_four_thirds_l():
    # theta = pi/2, at rest, no force: theta_acc = g / (4/3 l) = 9.8 / (4/3 * 0.32) = 22.96875,
    # and the cart does not move (cos(theta) = 0 removes the coupling).
    x_acc, theta_acc = dyn.accelerations(0.0, math.pi / 2, 0.0, 0.0, FRICTIONLESS)
    assert theta_acc == pytest.approx(22.96875)
    assert x_acc == pytest.approx(0.0, abs=1e-12)


def test_push_on_upright_pole_hand_computed():
    # theta = 0, at rest, F = 1 N, no friction:
    #   temp = 1 / 1.17 = 0.8547009
    #   theta_acc = -temp / (0.32 * (4/3 - 0.23/1.17)) = -0.8547009 / 0.3637607 = -2.3496241
    #   x_acc = temp - 0.0736 * theta_acc / 1.17 = 0.8547009 + 0.1478054 = 1.0025063
    x_acc, theta_acc = dyn.accelerations(0.0, 0.0, 0.0, 1.0, FRICTIONLESS)
    assert theta_acc == pytest.approx(-2.3496241, abs=1e-6)
    assert x_acc == pytest.approx(1.0025063, abs=1e-6)


def test_friction_terms_hand_computed():
    # Hanging pole at rest except for cart speed 1 m/s and pole speed 2 rad/s, no force.
    p = dyn.CartPoleParams(cart_friction=10.0, pole_friction=0.0011)
    x_acc, theta_acc = dyn.accelerations(1.0, math.pi, 2.0, 0.0, p)
    total, ml, l_c = 1.17, 0.0736, 0.32
    temp = (-10.0 * 1.0 + ml * 4.0 * 0.0) / total            # sin(pi) = 0
    expected_theta = (0.0 - (-1.0) * temp - 0.0011 * 2.0 / ml) / (l_c * (4 / 3 - 0.23 / total))
    expected_x = temp - ml * expected_theta * (-1.0) / total
    assert theta_acc == pytest.approx(expected_theta, rel=1e-9)
    assert x_acc == pytest.approx(expected_x, rel=1e-9)
    assert x_acc < 0.0   # friction decelerates the cart


def test_wrap_angle_range_floats_and_arrays():
    assert dyn.wrap_angle(math.pi) == pytest.approx(-math.pi)
    assert dyn.wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    assert dyn.wrap_angle(-3 * math.pi / 2) == pytest.approx(math.pi / 2)
    arr = dyn.wrap_angle(np.array([0.0, 7.0, -7.0]))
    assert np.allclose(arr, [0.0, 7.0 - 2 * math.pi, -7.0 + 2 * math.pi])


def _energy_drift(dt: float, duration: float, semi_implicit: bool = True) -> float:
    """Largest energy error over the run, in units of m g l (0.72 J)."""
    state = (0.0, 0.1, 2.0, 0.5)
    e0 = dyn.mechanical_energy(state[1], state[2], state[3], FRICTIONLESS)
    worst = 0.0
    for _ in range(int(round(duration / dt))):
        state = dyn.step_state(*state, 0.0, dt, FRICTIONLESS, semi_implicit=semi_implicit)
        worst = max(worst, abs(dyn.mechanical_energy(state[1], state[2], state[3], FRICTIONLESS) - e0))
    return worst / (FRICTIONLESS.pole_mass * FRICTIONLESS.gravity * FRICTIONLESS.half_length)


def test_energy_conserved_without_friction_to_integration_accuracy():
    fine = _energy_drift(1e-4, 1.0)
    coarse = _energy_drift(4e-4, 1.0)
    assert fine < 1e-3
    # First-order method: four times the step gives about four times the error.
    assert 2.5 < coarse / fine < 6.0


def test_horizontal_momentum_conserved_without_friction():
    # No external horizontal force: M x_dot + m l cos(theta) theta_dot is constant.
    state = (0.0, 0.1, 2.0, 0.5)

    def momentum(s):
        return DEFAULT.total_mass * s[1] + FRICTIONLESS.pole_mass_length * math.cos(s[2]) * s[3]

    p0 = momentum(state)
    for _ in range(5000):
        state = dyn.step_state(*state, 0.0, 1e-4, FRICTIONLESS)
    assert momentum(state) == pytest.approx(p0, abs=2e-3)


def test_explicit_euler_gains_energy_at_30hz_semi_implicit_does_not():
    # Why the env defaults to semi-implicit Euler: at the plant's 30 Hz, explicit Euler
    # adds more than m g l of energy in 3 s; semi-implicit stays within a small error.
    explicit = _energy_drift(1 / 30, 3.0, semi_implicit=False)
    semi = _energy_drift(1 / 30, 3.0, semi_implicit=True)
    assert explicit > 1.0
    assert semi < 0.15


def test_friction_only_removes_energy():
    p = dyn.CartPoleParams(motor_back_emf_gain=0.0)   # default friction, no motor
    state = (0.0, 0.3, 2.0, 1.0)
    energy = dyn.mechanical_energy(state[1], state[2], state[3], p)
    for _ in range(2000):
        state = dyn.step_state(*state, 0.0, 1e-4, p)
        new = dyn.mechanical_energy(state[1], state[2], state[3], p)
        assert new <= energy + 1e-6
        energy = new


def test_step_state_same_on_floats_and_arrays():
    p = DEFAULT
    floats = dyn.step_state(0.1, -0.2, 2.5, 1.5, 3.0, 1 / 30, p, substeps=2)
    arrays = dyn.step_state(np.array([0.1]), np.array([-0.2]), np.array([2.5]), np.array([1.5]),
                            np.array([3.0]), 1 / 30, p, substeps=2, sin=np.sin, cos=np.cos)
    assert np.allclose([a[0] for a in arrays], floats, rtol=1e-12, atol=1e-12)


def test_tip_position():
    assert dyn.tip_position(0.1, 0.0, DEFAULT) == pytest.approx((0.1, 0.64))
    assert dyn.tip_position(0.0, math.pi / 2, DEFAULT) == pytest.approx((0.64, 0.0), abs=1e-12)


@pytest.mark.parametrize('field,value', [('cart_mass', 0.0), ('pole_length', -1.0),
                                         ('cart_friction', -0.1), ('gravity', float('nan'))])
def test_bad_params_rejected(field, value):
    with pytest.raises(ValueError, match=field):
        dyn.CartPoleParams(**{field: value})


def test_non_number_param_rejected():
    with pytest.raises(TypeError, match='pole_mass'):
        dyn.CartPoleParams(pole_mass='0.23')
