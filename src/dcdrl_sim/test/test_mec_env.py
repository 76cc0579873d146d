"""MecOffloadEnv and MecOffloadVectorEnv: gymnasium contract, determinism, info, behaviour."""
import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dcdrl_sim  # noqa: F401  (registers the ids)
from dcdrl_sim.mec.env import MecOffloadEnv
from dcdrl_sim.mec.model import build_observation
from dcdrl_sim.mec.vector import MecOffloadVectorEnv

FLOAT_KEYS = ('cost', 'latency_s', 'energy_j', 'deadline_miss_ratio', 'offload_fraction')
ARRAY_KEYS = ('cost_per_user', 'latency_per_user', 'energy_per_user', 'offloaded', 'channel')


@pytest.mark.parametrize('action_mode', ['continuous', 'discrete'])
@pytest.mark.parametrize('paper_compat', [False, True])
def test_check_env(action_mode, paper_compat):
    env = MecOffloadEnv(num_users=4, num_channels=3, action_mode=action_mode,
                        paper_compat=paper_compat, episode_length=20)
    check_env(env, skip_render_check=True)


def test_registered_id_and_module_prefix():
    env = gym.make('dcdrl_sim/MecOffload-v0')
    assert env.observation_space.shape == (73,)
    assert env.action_space.shape == (20,)
    check_env(env.unwrapped, skip_render_check=True)
    env2 = gym.make('dcdrl_sim:dcdrl_sim/MecOffload-v0', action_mode='discrete', num_channels=3)
    assert isinstance(env2.action_space, gym.spaces.MultiDiscrete)
    assert env2.action_space.nvec.tolist() == [4] * 10


def rollout(env, seed, steps, action_seed=0):
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for _ in range(steps):
        obs, reward, _, _, info = env.step(rng.uniform(-1, 1, env.action_space.shape).astype(np.float32))
        out += [obs, np.array([reward]), info['cost_per_user']]
    return out


def test_deterministic_under_a_seed():
    a = rollout(MecOffloadEnv(), seed=7, steps=30)
    b = rollout(MecOffloadEnv(), seed=7, steps=30)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    c = rollout(MecOffloadEnv(), seed=8, steps=30)
    assert not np.array_equal(a[1], c[1])
    # reset(seed) on a used env reproduces a fresh env
    env = MecOffloadEnv()
    rollout(env, seed=1, steps=5)
    for x, y in zip(rollout(env, seed=7, steps=30), a):
        np.testing.assert_array_equal(x, y)


def test_default_positions_are_the_originals():
    env = MecOffloadEnv()
    expected = np.random.RandomState(2020).randint(-80, 80, size=20).reshape(10, 2)
    np.testing.assert_array_equal(env.positions, expected)
    other = MecOffloadEnv(positions_seed=3)
    assert not np.array_equal(other.positions, env.positions)
    moving = MecOffloadEnv(redraw_positions=True)
    moving.reset(seed=1)
    p1 = moving.positions
    moving.reset(seed=2)
    assert not np.array_equal(p1, moving.positions)
    fixed = MecOffloadEnv(num_users=2, positions=[[3.0, 4.0], [-5.0, 0.0]])
    np.testing.assert_array_equal(fixed.positions, [[3, 4], [-5, 0]])


def test_info_reward_and_truncation():
    env = MecOffloadEnv(episode_length=5)
    env.reset(seed=0)
    for t in range(5):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        for key in FLOAT_KEYS:
            assert isinstance(info[key], float)
        for key in ARRAY_KEYS:
            assert info[key].shape == (10,)
        assert reward == pytest.approx(-info['cost'])
        assert info['cost'] == pytest.approx(info['cost_per_user'].sum())
        assert info['latency_s'] == pytest.approx(info['latency_per_user'].mean())
        assert info['offload_fraction'] == pytest.approx(info['offloaded'].mean())
        assert np.all((info['channel'] >= 0) == info['offloaded'])
        assert not terminated
        assert truncated == (t == 4)
        assert obs[-1] == pytest.approx((t + 1) / 5)


def test_queues_carry_over_between_steps():
    env = MecOffloadEnv(num_users=2, action_mode='discrete')
    obs, _ = env.reset(seed=0)
    state = env.decision_state()
    obs, *_ = env.step(np.array([0, 0]))
    expected = np.maximum(state.cycles_g / 0.8 - 0.6, 0.0)
    np.testing.assert_allclose(env.decision_state().local_backlog_s, expected)
    np.testing.assert_allclose(obs[[1, 8]], expected / 2.0, rtol=1e-6)
    state = env.decision_state()
    env.step(np.array([0, 0]))
    np.testing.assert_allclose(env.decision_state().local_backlog_s,
                               np.maximum(expected + state.cycles_g / 0.8 - 0.6, 0.0))


def test_observation_matches_pure_function_and_stays_in_bounds():
    for paper_compat in (False, True):
        env = MecOffloadEnv(paper_compat=paper_compat, action_mode='discrete', episode_length=50)
        obs, _ = env.reset(seed=0)
        for policy in (np.zeros(10, dtype=int), np.ones(10, dtype=int)):   # worst queues
            obs, _ = env.reset(seed=0)
            for _ in range(50):
                assert env.observation_space.contains(obs), obs
                state = env.decision_state()
                expected = build_observation(env.params, state, env.positions, env._t, 50)
                np.testing.assert_array_equal(obs, expected)
                obs, *_ = env.step(policy)
            assert env.observation_space.contains(obs)


def test_more_channels_change_behaviour():
    """The channel count is honoured: the same 'everyone offloads' decision costs less with
    5 channels than with 1, and the decoder maps the same continuous action differently."""
    costs = {}
    for c in (1, 5):
        env = MecOffloadEnv(num_channels=c, action_mode='discrete')
        env.reset(seed=0)
        _, reward, _, _, info = env.step(np.arange(10) % c + 1)
        costs[c] = -reward
        assert env.action_space.nvec.tolist() == [c + 1] * 10
    assert costs[5] < costs[1]
    action = np.tile([1.0, 0.3], 10).astype(np.float32)
    channels = [MecOffloadEnv(num_channels=c).decode_action(action)[0][0] for c in (2, 5, 8)]
    assert channels == [2, 4, 6]


def test_paper_compat_changes_the_result():
    action = np.tile([1.0, -0.9], 10).astype(np.float32)     # everyone on channel 0
    rewards = []
    for compat in (False, True):
        env = MecOffloadEnv(paper_compat=compat)
        env.reset(seed=0)
        rewards.append(env.step(action)[1])
    assert rewards[0] != rewards[1]


@pytest.mark.parametrize('action', [
    np.full(20, np.nan, dtype=np.float32), np.zeros(19, dtype=np.float32),
    np.array(['a'] * 20),
])
def test_bad_continuous_actions(action):
    env = MecOffloadEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(action)


@pytest.mark.parametrize('action', [np.full(10, 6), np.full(10, -1), np.full(10, 0.5), np.zeros(3)])
def test_bad_discrete_actions(action):
    env = MecOffloadEnv(action_mode='discrete')
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(action)


@pytest.mark.parametrize('action', [np.full(10, np.nan, dtype=np.float32), np.zeros(20, dtype=np.float32),
                                    np.array(['a'] * 10)])
def test_bad_scores_actions(action):
    env = MecOffloadEnv(action_mode='scores')
    env.reset(seed=0)
    with pytest.raises(ValueError):
        env.step(action)


def test_scores_mode_scores_like_the_decisions_it_encodes():
    """The same greedy decisions cost the same whichever action mode carries them."""
    from dcdrl_sim.mec.baselines import GreedyPolicy
    costs = {}
    for mode in ('continuous', 'scores'):
        env = MecOffloadEnv(action_mode=mode)
        policy = GreedyPolicy(env)
        obs, _ = env.reset(seed=3)
        costs[mode] = []
        for _ in range(20):
            obs, _, _, _, info = env.step(policy(obs))
            costs[mode].append(info['cost'])
    assert env.action_space.shape == (10,)
    np.testing.assert_allclose(costs['scores'], costs['continuous'])
    vector = MecOffloadVectorEnv(2, action_mode='scores')
    vector.reset(seed=0)
    with pytest.raises(ValueError):
        vector.step(np.full((2, 10), np.nan))
    vector.step(np.zeros((2, 10), dtype=np.float32))


def test_bad_constructor_arguments_and_order():
    with pytest.raises(ValueError):
        MecOffloadEnv(action_mode='bogus')
    with pytest.raises(ValueError):
        MecOffloadEnv(episode_length=0)
    with pytest.raises(ValueError):
        MecOffloadEnv(num_users=2, positions=[[0, 0]])
    with pytest.raises(ValueError):
        MecOffloadEnv(num_users=1, positions=[[500.0, 0.0]])
    with pytest.raises(ValueError):
        MecOffloadEnv(render_mode='human')
    with pytest.raises(RuntimeError):
        MecOffloadEnv().step(np.zeros(20, dtype=np.float32))


def test_render_ansi():
    env = MecOffloadEnv(num_users=2, render_mode='ansi')
    env.reset(seed=0)
    env.step(env.action_space.sample())
    text = env.render()
    assert 'user 1' in text and 'edge_backlog' in text


# --- vector env -------------------------------------------------------------------------

@pytest.mark.parametrize('kwargs', [
    {}, {'paper_compat': True}, {'action_mode': 'discrete', 'num_channels': 3}, {'action_mode': 'scores'},
    {'redraw_positions': True, 'episode_length': 7, 'num_users': 4},
])
def test_native_vector_env_equals_sync_vector_env(kwargs):
    n_envs = 3
    native = MecOffloadVectorEnv(n_envs, **kwargs)
    sync = gym.vector.SyncVectorEnv([lambda: MecOffloadEnv(**kwargs) for _ in range(n_envs)])
    o1, _ = native.reset(seed=11)
    o2, _ = sync.reset(seed=11)
    np.testing.assert_array_equal(o1, o2)
    native.action_space.seed(0)
    for t in range(60):
        actions = native.action_space.sample()
        r1, r2 = native.step(actions), sync.step(actions)
        for x, y in zip(r1[:4], r2[:4]):
            np.testing.assert_allclose(x, y, rtol=1e-12, err_msg=f'step {t}')
        for key, value in r2[4].items():
            np.testing.assert_allclose(r1[4][key], value, rtol=1e-12, err_msg=f'{key} step {t}')


def test_native_vector_env_partial_reset_and_spaces():
    env = MecOffloadVectorEnv(4, episode_length=3)
    assert env.observation_space.shape == (4, 73)
    assert env.action_space.shape == (4, 20)
    obs, _ = env.reset(seed=0)
    env.step(env.action_space.sample())
    obs, _ = env.reset(seed=5, options={'reset_mask': np.array([False, True, False, False])})
    assert obs[1, -1] == 0.0 and obs[0, -1] == pytest.approx(1 / 3)
    single = MecOffloadEnv(episode_length=3)
    np.testing.assert_array_equal(obs[1], single.reset(seed=6)[0])   # env 1 got seed 5 + 1
    for _ in range(2):
        _, _, _, truncated, _ = env.step(env.action_space.sample())
    assert truncated.tolist() == [True, False, True, True]
    _, rewards, _, _, info = env.step(env.action_space.sample())
    assert rewards[0] == 0.0 and rewards[1] != 0.0                 # next-step autoreset
    assert info['_cost'].tolist() == [False, True, False, False]
    with pytest.raises(ValueError):
        env.step(np.full((4, 20), np.nan))
    with pytest.raises(ValueError):
        MecOffloadVectorEnv(0)
