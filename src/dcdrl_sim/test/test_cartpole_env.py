"""CartPoleSwingUpEnv and its batched twin: API, determinism, delay, rules, bad input."""
import math
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dcdrl_sim  # noqa: F401  (registers the environments)
from dcdrl_sim.cartpole import dynamics as dyn
from dcdrl_sim.cartpole import task as task_rules
from dcdrl_sim.cartpole.env import CartPoleSwingUpEnv
from dcdrl_sim.cartpole.vector_env import CartPoleSwingUpVectorEnv

ENV_ID = 'dcdrl_sim/CartPoleSwingUp-v0'


def act(value: float) -> np.ndarray:
    return np.array([value], dtype=np.float32)


def test_check_env_passes_without_warnings():
    env = gymnasium.make(ENV_ID, render_mode='rgb_array').unwrapped   # has a spec
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        check_env(env)


def test_make_spaces_and_observation_layout():
    env = gymnasium.make(ENV_ID)
    assert env.action_space == gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    obs, info = env.reset(seed=3)
    assert obs.shape == (10,) and obs.dtype == np.float32
    x, x_dot, theta, theta_dot = env.unwrapped.state
    assert obs[:5] == pytest.approx([x, x_dot, math.sin(theta), math.cos(theta), theta_dot], abs=1e-6)
    assert np.all(obs[5:] == 0.0)
    assert set(info) >= {'on_target', 'swing_up', 'tip_distance'}
    env.close()


def test_action_history_newest_first():
    env = CartPoleSwingUpEnv(action_history=3)
    env.reset(seed=0)
    for value in (0.1, -0.2, 0.3, 0.4):
        obs, *_ = env.step(act(value))
    assert obs[5:] == pytest.approx([0.4, 0.3, -0.2])


def test_same_seed_same_trajectory_other_seed_differs():
    def rollout(seed):
        env = gymnasium.make(ENV_ID)
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(0)
        out = [obs]
        for _ in range(50):
            obs, reward, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 1).astype(np.float32))
            out.append(np.append(obs, reward))
            if terminated or truncated:
                break
        return out

    a, b, c = rollout(7), rollout(7), rollout(8)
    assert len(a) == len(b) and all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_start_distribution_hanging_down():
    env = CartPoleSwingUpEnv()
    env.reset(seed=0)
    starts = np.array([env.reset()[0] for _ in range(400)])
    xs = starts[:, 0]
    theta = np.arctan2(starts[:, 2], starts[:, 3]) % (2 * math.pi)   # around pi
    assert np.all(np.abs(xs) <= 0.24)
    assert abs(theta.mean() - math.pi) < 0.15
    assert 0.65 < theta.std() < 0.95
    assert np.all(starts[:, 1] == 0.0) and np.all(starts[:, 4] == 0.0)


@pytest.mark.parametrize('delay', [0, 1, 2])
def test_actuation_delay_and_force_sign(delay):
    env = CartPoleSwingUpEnv(action_delay_steps=delay)
    env.reset(seed=0, options={'state': (0.0, 0.0, math.pi, 0.0)})   # hanging still: equilibrium
    for _ in range(delay):
        env.step(act(1.0))
        assert abs(env.state[1]) < 1e-12   # command not yet at the motor (sin(pi) ~ 1e-16)
    env.step(act(1.0))
    assert env.state[1] > 0.0          # positive voltage pushes the cart to +x
    assert env.pending_actions == tuple([1.0] * delay)

    env.reset(seed=0, options={'state': (0.0, 0.0, math.pi, 0.0)})
    for _ in range(delay + 1):
        env.step(act(-1.0))
    assert env.state[1] < 0.0


def test_step_matches_dynamics_function():
    env = CartPoleSwingUpEnv(action_delay_steps=0)
    env.reset(options={'state': (0.05, 0.1, 2.0, -1.0)})
    obs, *_ = env.step(act(0.5))
    expected = dyn.step_state(0.05, 0.1, 2.0, -1.0, 2.5, 1 / 30, env.dynamics)
    assert env.state == pytest.approx(expected)


def test_reward_and_tip_distance_follow_task_rules():
    env = CartPoleSwingUpEnv(action_delay_steps=0)
    env.reset(options={'state': (0.1, 0.0, 2.5, 0.0)})
    _, reward, terminated, _, info = env.step(act(0.6))
    x, _, theta, _ = env.state
    tip = dyn.tip_position(x, theta, env.dynamics)
    distance = task_rules.tip_distance(*tip, 0.64, 0.0)
    assert info['tip_distance'] == pytest.approx(distance)
    assert reward == pytest.approx(0.5 * math.exp(-5 * distance) - 0.05 * 0.36)
    assert not terminated


def test_reward_formula_hand_computed():
    task = task_rules.SwingUpTask()
    assert task_rules.reward(0.0, 0.0, False, task) == pytest.approx(0.5)
    assert task_rules.reward(0.1, 0.5, True, task) == pytest.approx(
        0.5 * math.exp(-0.5) - 0.05 * 0.25 - 10.0)


def test_rail_end_terminates_with_penalty():
    env = CartPoleSwingUpEnv()
    env.reset(options={'state': (0.295, 1.0, math.pi, 0.0)})
    _, reward, terminated, truncated, _ = env.step(act(0.0))
    assert terminated and not truncated
    assert reward < -9.0


def test_spin_limit_terminates():
    env = CartPoleSwingUpEnv()
    env.reset(options={'state': (0.0, 0.0, math.pi, 16.0)})
    _, _, terminated, _, _ = env.step(act(0.0))
    assert terminated


def test_on_target_early_stop_truncates_and_can_be_disabled():
    upright = {'state': (0.0, 0.0, 0.0, 0.0)}     # exact unstable equilibrium: stays there
    env = CartPoleSwingUpEnv(target_steps_to_stop=100)
    env.reset(options=upright)
    for step in range(1, 102):
        _, reward, terminated, truncated, info = env.step(act(0.0))
        assert info['on_target'] and info['swing_up'] and not terminated
        assert reward == pytest.approx(0.5)
        assert truncated == (step == 101)     # more than 100 consecutive steps on target

    env = CartPoleSwingUpEnv(target_steps_to_stop=None, max_steps=150)
    env.reset(options=upright)
    results = [env.step(act(0.0)) for _ in range(150)]
    assert not any(r[3] for r in results[:-1]) and results[-1][3]   # only max_steps ends it


def test_max_steps_truncates():
    env = CartPoleSwingUpEnv(max_steps=5)
    env.reset(options={'state': (0.0, 0.0, math.pi, 0.0)})
    flags = [env.step(act(0.0))[3] for _ in range(5)]
    assert flags == [False, False, False, False, True]


def test_friction_knob_changes_the_plant():
    low = CartPoleSwingUpEnv(cart_friction=1.0, action_delay_steps=0)
    high = CartPoleSwingUpEnv(action_delay_steps=0)
    assert low.dynamics.cart_friction == 1.0 and high.dynamics.cart_friction == 10.0
    for env in (low, high):
        env.reset(options={'state': (0.0, 0.0, math.pi, 0.0)})
        for _ in range(10):
            env.step(act(1.0))
    assert low.state[1] > high.state[1] > 0.0   # less friction, faster cart


def test_set_state_and_state_roundtrip():
    env = CartPoleSwingUpEnv(action_history=2)
    env.reset(seed=0)
    obs = env.set_state(0.1, -0.2, 0.3, 0.4, pending_actions=[0.5], action_history=[0.6, -0.7])
    assert env.state == pytest.approx([0.1, -0.2, 0.3, 0.4])
    assert obs == pytest.approx([0.1, -0.2, math.sin(0.3), math.cos(0.3), 0.4, 0.6, -0.7], abs=1e-6)
    assert env.pending_actions == (0.5,)
    with pytest.raises(ValueError, match='pending_actions'):
        env.set_state(0, 0, 0, 0, pending_actions=[0.1, 0.2])
    with pytest.raises(ValueError, match='theta'):
        env.set_state(0, 0, float('nan'), 0)


def test_out_of_range_actions_saturate():
    env = CartPoleSwingUpEnv(action_delay_steps=0)
    env.reset(options={'state': (0.0, 0.0, math.pi, 0.0)})
    obs, *_ = env.step(act(3.0))
    assert obs[5] == 1.0


@pytest.mark.parametrize('bad', [np.array([np.nan], np.float32), np.array([0.1, 0.2]), [[np.inf]]])
def test_bad_actions_rejected(bad):
    env = CartPoleSwingUpEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match='action'):
        env.step(bad)


@pytest.mark.parametrize('kwargs,match', [
    ({'frequency_hz': 0.0}, 'frequency_hz'),
    ({'pole_mass': -1.0}, 'pole_mass'),
    ({'action_delay_steps': -1}, 'action_delay_steps'),
    ({'action_history': 1.5}, 'action_history'),
    ({'init_x_range': 0.3}, 'init_x_range'),
    ({'integrator': 'rk4'}, 'integrator'),
    ({'target_steps_to_stop': -2}, 'target_steps_to_stop'),
    ({'render_mode': 'human'}, 'render_mode'),
])
def test_bad_config_rejected(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        CartPoleSwingUpEnv(**kwargs)


def test_render_rgb_array():
    env = gymnasium.make(ENV_ID, render_mode='rgb_array')
    env.reset(seed=0)
    frame = env.render()
    assert frame.shape == (300, 400, 3) and frame.dtype == np.uint8
    assert (frame != 255).any(axis=2).mean() > 0.01     # something drawn
    env.close()


def test_sync_vector_env_runs():
    envs = gymnasium.vector.SyncVectorEnv([lambda: CartPoleSwingUpEnv() for _ in range(4)])
    obs, _ = envs.reset(seed=1)
    obs, rewards, terminated, truncated, infos = envs.step(np.zeros((4, 1), np.float32))
    assert obs.shape == (4, 10) and rewards.shape == (4,)
    assert infos['on_target'].shape == (4,)
    envs.close()


@pytest.mark.parametrize('backend', ['numpy', 'loop'])
def test_vector_env_matches_single_env(backend):
    n = 5
    venv = CartPoleSwingUpVectorEnv(n, backend=backend)
    _, info = venv.reset(seed=4)
    starts = venv.state
    singles = [CartPoleSwingUpEnv() for _ in range(n)]
    for env, start in zip(singles, starts):
        env.reset(options={'state': start})
    rng = np.random.default_rng(1)
    for _ in range(40):
        actions = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
        obs, rewards, terminated, truncated, info = venv.step(actions)
        for i, env in enumerate(singles):
            o, r, te, tr, inf = env.step(actions[i])
            assert obs[i] == pytest.approx(o, abs=1e-5)
            assert rewards[i] == pytest.approx(r, abs=1e-9)
            assert (terminated[i], truncated[i], info['on_target'][i]) == (te, tr, inf['on_target'])
            if te or tr:
                return   # trajectories beyond an autoreset are not comparable
    assert info['tip_distance'].shape == (n,)


@pytest.mark.parametrize('backend', ['numpy', 'loop'])
def test_vector_env_next_step_autoreset(backend):
    venv = CartPoleSwingUpVectorEnv(2, backend=backend, max_steps=3)
    venv.reset(seed=0)
    zero = np.zeros((2, 1))
    results = [venv.step(zero) for _ in range(4)]
    assert results[2][3].all()                       # truncated at step 3
    assert not results[3][3].any() and np.all(results[3][1] == 0.0)   # reset step
    assert np.all(results[3][0][:, 1] == 0.0)        # fresh start at rest
    with pytest.raises(ValueError, match='actions'):
        venv.step(np.zeros((3, 1)))
    with pytest.raises(ValueError, match='finite'):
        venv.step(np.full((2, 1), np.nan))


def test_vector_backends_agree_through_autoresets():
    kwargs = dict(max_steps=25, cart_friction=3.0)
    loop = CartPoleSwingUpVectorEnv(6, backend='loop', **kwargs)
    fast = CartPoleSwingUpVectorEnv(6, backend='numpy', **kwargs)
    assert np.array_equal(loop.reset(seed=11)[0], fast.reset(seed=11)[0])
    rng = np.random.default_rng(2)
    ended = 0
    for _ in range(80):
        actions = rng.uniform(-1.2, 1.2, (6, 1))
        a, b = loop.step(actions), fast.step(actions)
        assert np.allclose(a[0], b[0], atol=1e-5)
        assert np.allclose(a[1], b[1], atol=1e-9)
        assert np.array_equal(a[2], b[2]) and np.array_equal(a[3], b[3])
        assert np.array_equal(a[4]['on_target'], b[4]['on_target'])
        ended += int(a[2].sum() + a[3].sum())
    assert ended >= 6      # autoresets happened and were drawn identically


def test_vector_backend_choice():
    assert CartPoleSwingUpVectorEnv(8).backend == 'loop'
    assert CartPoleSwingUpVectorEnv(256).backend == 'numpy'
    with pytest.raises(ValueError, match='backend'):
        CartPoleSwingUpVectorEnv(2, backend='gpu')
