"""FaceOffloadContinuousEnv: the Box view of the face task, its bandwidth schedule and true costs."""
import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import dcdrl_sim  # noqa: F401  (registers the environments)
from dcdrl_sim.evaluation import evaluate_policy
from dcdrl_sim.face.continuous import (
    ENV_ID,
    FaceOffloadContinuousEnv,
    TrueCostOracle,
    box_action,
    check_schedule,
    decision_of,
    schedule_value,
)
from dcdrl_sim.face.env import LOCAL, OFFLOAD, FaceOffloadEnv


def test_registered_with_a_box_action_and_passes_the_env_checker():
    env = gymnasium.make(ENV_ID)
    assert env.action_space == gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32)
    assert env.observation_space.shape == (8,)
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        check_env(env.unwrapped)


@pytest.mark.parametrize('action,expected', [
    (np.array([0.3], np.float32), OFFLOAD), (np.array([-0.3]), LOCAL), (np.array([0.0]), LOCAL),
    ([1.0], OFFLOAD), (1e-6, OFFLOAD), (np.array([[-1.0]]), LOCAL)])
def test_decision_is_offload_iff_positive(action, expected):
    assert decision_of(action) == expected


@pytest.mark.parametrize('bad', [np.array([np.nan]), np.array([0.1, 0.2]), 'x', np.array([])])
def test_bad_actions_are_refused(bad):
    with pytest.raises(ValueError, match='action must be'):
        decision_of(bad)


def test_same_trajectory_as_the_discrete_env_for_the_same_seed_and_decisions():
    discrete, continuous = FaceOffloadEnv(), FaceOffloadContinuousEnv()
    obs_d, _ = discrete.reset(seed=5)
    obs_c, _ = continuous.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(60):
        a = float(rng.uniform(-1, 1))
        obs_d, r_d, *_ = discrete.step(OFFLOAD if a > 0 else LOCAL)
        obs_c, r_c, *_ = continuous.step(np.array([a], np.float32))
        assert r_d == r_c
        np.testing.assert_array_equal(obs_d, obs_c)


def test_true_costs_predict_the_next_step_and_leave_the_env_unchanged():
    env = FaceOffloadContinuousEnv(server_slow_switch_rate_hz=0.05)
    twin = FaceOffloadContinuousEnv(server_slow_switch_rate_hz=0.05)
    env.reset(seed=3)
    twin.reset(seed=3)
    rng = np.random.default_rng(1)
    differed = 0
    for _ in range(80):
        local, offload = env.true_costs()
        differed += local != offload
        decision = int(rng.integers(2))
        _, reward, _, _, info = env.step(box_action(decision))
        assert info['cost'] == pytest.approx([local, offload][decision], abs=1e-12)
        twin_obs, twin_reward, *_ = twin.step(box_action(decision))   # never peeked: same sequence
        assert twin_reward == reward
    assert differed > 70


def test_oracle_beats_both_fixed_policies_on_the_same_episodes():
    # Over whole (200-task) episodes. The oracle is myopic: on a short stretch a fixed policy can
    # win by leaving shorter queues (seed 7, 60 tasks: all-offload -229 against the oracle's -256).
    oracle = evaluate_policy(ENV_ID, policy_factory=TrueCostOracle, episodes=3, seed=7, name='oracle')
    for action in (-1.0, 1.0):
        fixed = evaluate_policy(ENV_ID, lambda obs, a=action: np.array([a], np.float32), episodes=3, seed=7)
        assert oracle.summary['return'] >= fixed.summary['return']


def test_bandwidth_schedule_replaces_the_random_walk_but_keeps_the_task_sequence():
    schedule = [(0.0, 20.0), (100.0, 1.0), (300.0, 12.0)]
    env = FaceOffloadContinuousEnv(bandwidth_schedule=schedule, bandwidth_measurement_noise=0.0)
    plain = FaceOffloadContinuousEnv(bandwidth_measurement_noise=0.0)
    _, info = env.reset(seed=0)
    plain.reset(seed=0)
    assert info['bandwidth_mbps'] == 20.0
    seen = set()
    for _ in range(150):
        _, _, _, _, info = env.step(np.array([-1.0]))
        plain.step(np.array([-1.0]))
        expected = schedule_value(check_schedule(schedule), env.now)
        assert env.bandwidth_mbps == expected
        seen.add(expected)
        assert env.task == plain.task   # the same tasks arrive at the same times
    assert seen == {20.0, 1.0, 12.0}


@pytest.mark.parametrize('bad,match', [
    ([], 'at least one'), ([(1.0, 5.0)], 'start at time 0'), ([(0.0, 5.0), (0.0, 6.0)], 'increase'),
    ([(0.0, -1.0)], 'mbps > 0'), ([(0.0,)], 'pairs'), ('fast', 'pairs')])
def test_bad_schedules_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        FaceOffloadContinuousEnv(bandwidth_schedule=bad)


def test_oracle_needs_the_continuous_env():
    with pytest.raises(TypeError, match='FaceOffloadContinuousEnv'):
        TrueCostOracle(FaceOffloadEnv())
    with pytest.raises(RuntimeError, match='reset'):
        FaceOffloadContinuousEnv().true_costs()
