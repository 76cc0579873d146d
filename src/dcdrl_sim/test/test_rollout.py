"""The simulated client's rollouts: shapes, reset steps skipped, episode statistics, policies."""
import numpy as np
import pytest

from dcdrl_sim.rollout import EXTRA_KEYS, RolloutCollector


def test_mec_rollout_shapes_and_extras():
    collector = RolloutCollector('dcdrl_sim/MecOffload-v0', num_envs=3, seed=0)
    block = collector.collect(10)
    assert block.obs.shape == (30, 73) and block.actions.shape == (30, 20)
    assert block.next_obs.shape == block.obs.shape and block.extras.shape == (30, len(EXTRA_KEYS))
    assert block.obs.dtype == np.float32
    # reward is minus the step cost, which is carried as an extra
    np.testing.assert_allclose(block.rewards, -block.extras[:, EXTRA_KEYS.index('cost')], rtol=1e-5)


def test_episode_ends_are_reported_and_reset_steps_are_not_transitions():
    collector = RolloutCollector('dcdrl_sim/MecOffload-v0', num_envs=2, seed=1,
                                 env_kwargs={'episode_length': 5})
    block = collector.collect(12)  # per copy: 5 steps, reset step, 5 steps, reset step
    assert len(block) == 2 * 10
    assert block.truncated.sum() + block.terminated.sum() == 4
    assert len(block.episodes) == 4 and all(e.length == 5 for e in block.episodes)
    episode = block.episodes[0]
    assert episode.cost == pytest.approx(-episode.episode_return, rel=1e-4)


def test_policy_actions_are_used_and_clipped():
    collector = RolloutCollector('dcdrl_sim/CartPoleSwingUp-v0', num_envs=2, seed=2,
                                 policy=lambda obs: np.full((len(obs), 1), 5.0))
    block = collector.collect(3)
    assert np.all(block.actions == 1.0)


def test_discrete_action_spaces_are_refused():
    with pytest.raises(ValueError, match='continuous'):
        RolloutCollector('dcdrl_sim/FaceOffload-v0', num_envs=1)


def test_episode_end_hook_names_the_copies_that_finished():
    ended = []
    collector = RolloutCollector('dcdrl_sim/MecOffload-v0', num_envs=2, seed=1, env_kwargs={'episode_length': 5},
                                 on_episode_end=lambda indices: ended.append(indices.tolist()))
    collector.collect(6)  # both copies end at their 5th step; the 6th is a reset step
    assert ended == [[0, 1]]
