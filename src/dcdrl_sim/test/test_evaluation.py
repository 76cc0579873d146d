"""evaluate_policy / compare_policies on the MEC env, a plain gymnasium env, and the face env."""
import gymnasium as gym
import numpy as np
import pytest

import dcdrl_sim  # noqa: F401  (registers the ids)
from dcdrl_sim.evaluation import (
    COMMON_INFO_KEYS,
    EvaluationResult,
    compare_policies,
    evaluate_policy,
    markdown_table,
    summary_markdown,
)
from dcdrl_sim.mec.baselines import GreedyPolicy, LocalOnlyPolicy
from dcdrl_sim.mec.oracle import MecOracle

MEC = 'dcdrl_sim/MecOffload-v0'
SMALL = {'num_users': 4, 'num_channels': 2, 'episode_length': 10}


def test_mec_rows_and_summary():
    result = evaluate_policy(MEC, policy_factory=LocalOnlyPolicy, episodes=3, seed=5,
                             env_kwargs=SMALL)
    assert result.name == 'local_only'
    assert [row['seed'] for row in result.episodes] == [5, 6, 7]
    for row in result.episodes:
        assert row['length'] == 10
        assert set(COMMON_INFO_KEYS) <= set(row)
        assert row['cost'] == pytest.approx(-row['return'] / row['length'])
        assert row['offload_fraction'] == 0.0
        assert 0.0 <= row['deadline_miss_ratio'] <= 1.0
        assert row['decision_ms'] >= 0.0
    summary = result.summary
    assert summary['episodes'] == 3
    assert summary['return'] == pytest.approx(np.mean([r['return'] for r in result.episodes]))
    table = result.to_markdown()
    assert table.splitlines()[0].startswith('| policy | episodes | return')
    assert len(result.to_markdown(per_episode=True).splitlines()) == 2 + 3


def test_same_seed_same_numbers_and_common_random_numbers():
    a = evaluate_policy(MEC, policy_factory=GreedyPolicy, episodes=2, seed=1, env_kwargs=SMALL)
    b = evaluate_policy(MEC, policy_factory=GreedyPolicy, episodes=2, seed=1, env_kwargs=SMALL)
    assert [r['return'] for r in a.episodes] == [r['return'] for r in b.episodes]
    results = compare_policies(MEC, {'local': LocalOnlyPolicy, 'greedy': GreedyPolicy,
                                     'oracle': MecOracle}, episodes=2, seed=1, env_kwargs=SMALL)
    assert [r.name for r in results] == ['local', 'greedy', 'oracle']
    # all policies saw the same task draws, so the returns compare like for like; (the
    # oracle is only per-step optimal, so it is not asserted to win whole episodes)
    local, greedy, oracle = (r.summary['return'] for r in results)
    assert greedy > local and oracle > local
    assert len(summary_markdown(results).splitlines()) == 2 + 3


def test_works_with_an_env_without_offloading_keys():
    env = gym.make('CartPole-v1')
    result = evaluate_policy(env, lambda obs: 0, episodes=2, seed=0)
    row = result.episodes[0]
    assert set(row) == {'episode', 'seed', 'return', 'length', 'decision_ms'}
    assert row['return'] == row['length']          # reward 1 per step
    assert 'cost' not in result.summary
    assert result.name == '<lambda>'
    env.close()


def test_face_env_when_available():
    try:
        env = gym.make('dcdrl_sim/FaceOffload-v0')
    except Exception as exc:  # the face env is written in parallel; skip until it lands
        pytest.skip(f'FaceOffload-v0 not available: {exc}')
    result = evaluate_policy(env, lambda obs: env.action_space.sample(), episodes=1, seed=0,
                             max_steps=50)
    assert set(COMMON_INFO_KEYS) <= set(result.episodes[0])


def test_policy_reset_is_called_each_episode():
    class Counting:
        name = 'counting'

        def __init__(self):
            self.resets = 0

        def reset(self):
            self.resets += 1

        def __call__(self, obs):
            return np.zeros(8, dtype=np.float32)

    policy = Counting()
    evaluate_policy(MEC, policy, episodes=3, env_kwargs=SMALL)
    assert policy.resets == 3


def test_max_steps_caps_an_episode():
    result = evaluate_policy(MEC, policy_factory=LocalOnlyPolicy, episodes=1, max_steps=4,
                             env_kwargs=SMALL)
    assert result.episodes[0]['length'] == 4


def test_bad_arguments():
    policy = lambda obs: 0  # noqa: E731
    with pytest.raises(ValueError):
        evaluate_policy(MEC, policy, policy_factory=LocalOnlyPolicy)
    with pytest.raises(ValueError):
        evaluate_policy(MEC)
    with pytest.raises(ValueError):
        evaluate_policy(MEC, policy, episodes=0)
    with pytest.raises(TypeError):
        evaluate_policy(gym.vector.SyncVectorEnv([lambda: gym.make('CartPole-v1')]), policy)
    env = gym.make('CartPole-v1')
    with pytest.raises(ValueError):
        evaluate_policy(env, policy, env_kwargs={'x': 1})


def test_markdown_table_formatting():
    assert markdown_table([]) == ''
    text = markdown_table([{'policy': 'a', 'return': 1.23456789, 'extra': 3}])
    lines = text.splitlines()
    assert lines[0] == '| policy | return | extra |'
    assert lines[2] == '| a | 1.235 | 3 |'
    assert EvaluationResult('x').summary == {'policy': 'x', 'episodes': 0}
