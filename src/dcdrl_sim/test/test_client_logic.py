"""Client logic: policy swaps and their validation, version stamps, collective generations, mutation, pulls."""
import numpy as np
import pytest
import torch

from dcdrl_learning.codec import WeightsRejected, make_payload
from dcdrl_learning.inference import NumpyActor, actor_shapes
from dcdrl_learning.networks import architecture_id, network_config
from dcdrl_sim.client_logic import ClientConfig, ClientLogic
from dcdrl_sim.collective import evaluate_policy

MEC = 'dcdrl_sim/MecOffload-v0'  # the paper's encoding (obs 73, action 20), set in every config here
SHORT = {'episode_length': 10}  # short MEC episodes: quick evaluations, several episode ends per batch


def weights_for(logic, seed, scale=0.05):
    rng = np.random.default_rng(seed)
    shapes = actor_shapes(logic.network, logic.obs_dim, logic.action_dim)
    return {name: rng.normal(0.0, scale, shape).astype(np.float32) for name, shape in shapes.items()}


def payload(weights, arch, version):
    names = sorted(weights)
    return make_payload(arch, version, names, [weights[n].shape for n in names], [weights[n] for n in names])


@pytest.fixture
def central():
    logic = ClientLogic(ClientConfig(client_id='c0', env_id=MEC, num_envs=2, batch_steps=4, exploration='none', seed=3),
                        env_kwargs=SHORT)
    yield logic
    logic.close()


def collective_logic(**overrides):
    settings = dict(client_id='c1', env_id=MEC, mode='collective', num_envs=2, batch_steps=8, generation_steps=40,
                    learning_starts=32, batch_size=16, updates_per_step=0.25, eval_episodes=2,
                    mutation_probability=0.0, local_buffer_size=1000, seed=5)
    settings.update(overrides)
    return ClientLogic(ClientConfig(**settings), env_kwargs=SHORT)


# ---------------------------------------------------------------------------------------------- config

@pytest.mark.parametrize('field, value, message', [
    ('mode', 'solo', 'mode must be one of'), ('num_envs', 0, 'num_envs'), ('gamma', 1.5, 'gamma'),
    ('network_preset', 'huge', 'network_preset'), ('exploration', 'brown', 'exploration'),
    ('mutation_probability', -0.1, 'mutation_probability'), ('updates_per_step', 0.0, 'updates_per_step'),
    ('exploration_noise', float('nan'), 'exploration_noise'), ('seed', -1, 'seed')])
def test_bad_settings_are_refused_with_the_field_name(field, value, message):
    with pytest.raises(ValueError, match=message):
        ClientConfig(**{field: value})


# ---------------------------------------------------------------------------------------------- central

def test_random_actions_are_stamped_version_zero(central):
    result = central.step()
    assert result.policy_version == 0 and result.swapped_to is None
    assert len(result.block) == 2 * 4
    assert central.architecture_id == architecture_id(network_config('dcdrl'), 73, 20)


def test_accepted_policy_is_acted_with_and_stamped_on_experience(central):
    weights = weights_for(central, 1)
    assert central.offer_policy(payload(weights, central.architecture_id, 3)) == 3
    result = central.step()
    assert result.swapped_to == 3 and result.policy_version == 3
    expected = NumpyActor('dcdrl', 73, 20, weights)(result.block.obs)
    np.testing.assert_allclose(result.block.actions, expected, atol=1e-6)  # exploration 'none': the policy itself
    assert central.step().swapped_to is None and central.policy_version == 3


def test_exploration_noise_moves_actions_around_the_policy():
    logic = ClientLogic(ClientConfig(env_id=MEC, num_envs=2, batch_steps=4, exploration='ou', exploration_noise=0.3),
                        env_kwargs=SHORT)
    try:
        weights = weights_for(logic, 2)
        logic.offer_policy(payload(weights, logic.architecture_id, 1))
        block = logic.step().block
        greedy = NumpyActor('dcdrl', 73, 20, weights)(block.obs)
        gap = np.abs(block.actions - greedy)
        assert gap.max() > 1e-4 and np.all(np.abs(block.actions) <= 1.0)
    finally:
        logic.close()


@pytest.mark.parametrize('change, reason', [
    ('architecture', 'wrong_architecture'), ('shape', 'wrong_shape'), ('nan', 'non_finite'),
    ('stale', 'stale_version'), ('zero', 'stale_version'), ('unknown', 'unknown_architecture')])
def test_bad_policies_are_refused_counted_and_the_acting_one_kept(central, change, reason):
    good = weights_for(central, 1)
    central.offer_policy(payload(good, central.architecture_id, 5))
    central.step()
    bad, arch, version = dict(good), central.architecture_id, 6
    if change == 'architecture':
        arch = architecture_id(network_config('cloud_edge'), 73, 20)
    elif change == 'shape':
        bad['weight_0'] = np.zeros((73, 401), np.float32)
    elif change == 'nan':
        bad['bias_0'] = bad['bias_0'].copy()
        bad['bias_0'][3] = np.nan
    elif change == 'stale':
        version = 5
    elif change == 'zero':
        version = 0
    else:
        arch = 'not an id'
    with pytest.raises(WeightsRejected) as error:
        central.offer_policy(payload(bad, arch, version))
    assert error.value.reason == reason
    assert central.policy.refused == {reason: 1} and central.policy.accepted == 1
    result = central.step()
    assert result.swapped_to is None and result.policy_version == 5
    np.testing.assert_allclose(result.block.actions, NumpyActor('dcdrl', 73, 20, good)(result.block.obs), atol=1e-6)


def test_the_newest_waiting_policy_wins_and_older_ones_are_stale(central):
    central.offer_policy(payload(weights_for(central, 1), central.architecture_id, 4))
    newest = weights_for(central, 2)
    central.offer_policy(payload(newest, central.architecture_id, 7))
    with pytest.raises(WeightsRejected, match='stale_version'):
        central.offer_policy(payload(weights_for(central, 3), central.architecture_id, 6))
    result = central.step()
    assert result.swapped_to == 7 and result.policy_version == 7
    np.testing.assert_allclose(result.block.actions, NumpyActor('dcdrl', 73, 20, newest)(result.block.obs), atol=1e-6)


def test_episode_statistics_carry_the_version(central):
    central.offer_policy(payload(weights_for(central, 1), central.architecture_id, 2))
    episodes = []
    for _ in range(4):  # 10-step episodes, 4 steps per batch
        result = central.step()
        episodes += [(e, result.policy_version) for e in result.block.episodes]
    assert episodes and all(version == 2 for _, version in episodes)


# ---------------------------------------------------------------------------------------------- collective

def step_until_submission(logic, limit=20):
    for _ in range(limit):
        result = logic.step()
        if result.submission is not None:
            return result
    raise AssertionError(f'no submission within {limit} steps: {logic.stats()}')


def test_collective_generations_are_numbered_after_the_newest_merged_one():
    logic = collective_logic()
    try:
        first = step_until_submission(logic)
        assert first.submission.generation == 1 and first.submission.env_steps >= 40
        assert logic.member.updates > 0  # local training ran (learning_starts 32)
        # the submitted model is the evaluated one: its fitness is reproducible
        assert first.submission.fitness == pytest.approx(logic.member.evaluate(first.submission.weights))
        assert step_until_submission(logic).submission.generation == 1  # no merge seen yet
        logic.offer_merged(payload(logic.member.actor_weights(), logic.architecture_id, 1), -1e9, 1)
        assert logic.next_generation == 2
        assert step_until_submission(logic).submission.generation == 2
        with pytest.raises(WeightsRejected, match='stale_version'):
            logic.offer_merged(payload(logic.member.actor_weights(), logic.architecture_id, 1), 0.0, 1)
        assert logic.merged.refused == {'stale_version': 1}
    finally:
        logic.close()


def test_mutation_changes_the_actor_after_the_submission():
    logic = collective_logic(mutation_probability=1.0, mutation_scale=0.1)
    try:
        result = step_until_submission(logic)
        assert result.mutated and logic.member.mutations == 1
        after = logic.member.actor_weights()
        assert any(not np.array_equal(after[n], result.submission.weights[n]) for n in after)
    finally:
        logic.close()
    logic = collective_logic(mutation_probability=0.0, mutation_scale=0.1, learning_starts=10_000)
    try:
        result = step_until_submission(logic)  # no training, no mutation: the actor is unchanged
        assert not result.mutated
        after = logic.member.actor_weights()
        assert all(np.array_equal(after[n], result.submission.weights[n]) for n in after)
    finally:
        logic.close()


def test_pull_by_published_fitness_follows_the_rule():
    logic = collective_logic(evaluate_merged=False, learning_starts=10_000)
    try:
        own = step_until_submission(logic).submission
        worse = weights_for(logic, 11)
        logic.offer_merged(payload(worse, logic.architecture_id, 1), own.fitness - 100.0, 1)
        result = logic.step()
        [decision] = result.decisions
        assert not decision.pulled and decision.source == 'published' and decision.own_fitness == own.fitness
        assert result.policy_version == 0
        np.testing.assert_array_equal(logic.member.actor_weights()['weight_0'], own.weights['weight_0'])

        better = weights_for(logic, 12)
        logic.offer_merged(payload(better, logic.architecture_id, 2), own.fitness + 100.0, 2)
        result = logic.step()
        [decision] = result.decisions
        assert decision.pulled and decision.generation == 2 and 'pull' in decision.describe()
        assert result.policy_version == 2  # experience now carries the merged generation
        actor, target = logic.member.agent.actor.state_dict(), logic.member.agent.actor_target.state_dict()
        for name, value in better.items():
            np.testing.assert_array_equal(actor[name].numpy(), value)
            np.testing.assert_array_equal(target[name].numpy(), value)
        assert (logic.member.pulls, logic.member.no_pulls) == (1, 1)
    finally:
        logic.close()


def test_pull_by_evaluation_needs_a_strictly_better_merged_model():
    logic = collective_logic(learning_starts=10_000)
    try:
        member = logic.member
        a, b = weights_for(logic, 21, scale=0.3), weights_for(logic, 22, scale=0.3)
        fa, fb = member.evaluate(a), member.evaluate(b)
        assert fa != fb, 'pick other seeds: the two candidates must differ in fitness'
        better, worse = (a, b) if fa > fb else (b, a)
        member.load_actor(worse)
        # the same weights meet the same evaluation episodes: equal fitness, no pull
        logic.offer_merged(payload(worse, logic.architecture_id, 1), 1e9, 1)
        [same] = logic.step().decisions
        assert not same.pulled and same.merged_fitness == same.own_fitness and same.source == 'evaluated'
        logic.offer_merged(payload(better, logic.architecture_id, 2), -1e9, 2)  # published figure ignored
        [decision] = logic.step().decisions
        assert decision.pulled and decision.merged_fitness == pytest.approx(max(fa, fb))
        np.testing.assert_array_equal(member.actor_weights()['bias_2'], better['bias_2'])
    finally:
        logic.close()


def test_merged_weights_of_another_architecture_are_refused():
    logic = collective_logic(learning_starts=10_000)
    try:
        other = architecture_id(network_config('cloud_edge'), 73, 20)
        with pytest.raises(WeightsRejected, match='wrong_architecture'):
            logic.offer_merged(payload(weights_for(logic, 1), other, 1), 0.0, 1)
        assert logic.next_generation == 1 and logic.step().decisions == []
    finally:
        logic.close()


def test_evaluate_policy_is_repeatable_and_cut_at_max_steps():
    import gymnasium
    env = gymnasium.make(MEC, episode_length=10)
    policy = lambda obs: np.zeros(20, np.float32)  # noqa: E731
    first = evaluate_policy(env, policy, episodes=2, seed=7, max_steps=100)
    assert first == evaluate_policy(env, policy, episodes=2, seed=7, max_steps=100)
    assert evaluate_policy(env, policy, episodes=2, seed=7, max_steps=3) != first
    with pytest.raises(ValueError, match='episodes'):
        evaluate_policy(env, policy, episodes=0, seed=7, max_steps=3)


def test_client_keeps_torch_to_the_configured_threads(central):
    assert torch.get_num_threads() == 1


def test_preset_names_match_the_agent_presets():
    from dcdrl_learning.agents import AGENT_PRESETS
    from dcdrl_sim.client_logic import PRESET_NAMES
    assert sorted(PRESET_NAMES) == sorted(AGENT_PRESETS)


def test_an_unarmed_central_client_streams_random_actions_and_takes_weights_once_armed():
    logic = ClientLogic(ClientConfig(env_id=MEC, num_envs=2, batch_steps=4, exploration='none'), env_kwargs=SHORT,
                        arm=False)
    try:
        assert not logic.armed and logic.step().policy_version == 0
        with pytest.raises(RuntimeError, match='arm'):
            logic.offer_policy(None)
        logic.arm()
        weights = weights_for(logic, 4)
        logic.offer_policy(payload(weights, logic.architecture_id, 1))
        result = logic.step()
        assert result.policy_version == 1
        np.testing.assert_allclose(result.block.actions, NumpyActor('dcdrl', 73, 20, weights)(result.block.obs),
                                   atol=1e-6)
    finally:
        logic.close()


def test_an_unarmed_collective_client_refuses_to_step():
    unarmed = ClientLogic(ClientConfig(env_id=MEC, mode='collective', num_envs=1, batch_steps=2), env_kwargs=SHORT,
                           arm=False)
    try:
        with pytest.raises(RuntimeError, match='arm'):
            unarmed.step()
    finally:
        unarmed.close()
