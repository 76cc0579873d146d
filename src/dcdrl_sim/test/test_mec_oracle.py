"""MEC baselines and the per-step oracle."""
import itertools

import gymnasium as gym
import numpy as np
import pytest

from dcdrl_sim.mec.baselines import (
    BASELINES,
    FullOffloadPolicy,
    GreedyPolicy,
    LocalOnlyPolicy,
    RandomPolicy,
    greedy_decisions,
    make_baseline,
    round_robin_offload,
)
from dcdrl_sim.mec.env import MecOffloadEnv
from dcdrl_sim.mec.model import evaluate_decisions, total_cost
from dcdrl_sim.mec.oracle import (
    MecOracle,
    _canonical_candidates,
    best_response_search,
    count_candidates,
    exhaustive_search,
)
from dcdrl_sim.mec.vector import MecOffloadVectorEnv


def visited_states(env, steps, seed=0, policy_seed=0):
    """States along a trajectory of a policy that mixes local and offloading, so that local
    queues build up and the decisions matter."""
    rng = np.random.default_rng(policy_seed)
    env.reset(seed=seed)
    states = []
    for _ in range(steps):
        states.append(env.decision_state())
        n, c = env.params.num_users, env.params.num_channels
        decisions = np.where(rng.random(n) < 0.7, 0, rng.integers(1, c + 1, n))
        env.step(env.encode_action(decisions))
    return states


@pytest.mark.parametrize('num_users,num_channels,paper_compat', [
    (4, 1, False), (4, 3, False), (5, 2, False), (5, 2, True), (6, 5, False),
])
def test_oracle_never_worse_than_any_baseline(num_users, num_channels, paper_compat):
    env = MecOffloadEnv(num_users=num_users, num_channels=num_channels, paper_compat=paper_compat,
                        action_mode='discrete')
    oracle = MecOracle(env)
    assert oracle.exact
    baselines = [make_baseline(name, env) for name in BASELINES]
    strictly_better = 0
    for state in visited_states(env, 12):
        best = float(total_cost(env.params, state, oracle.decide(state)))
        costs = [float(total_cost(env.params, state, b.decide(state))) for b in baselines]
        assert all(best <= c + 1e-12 for c in costs)
        strictly_better += best < min(costs) - 1e-9
    # and the exhaustive search really is exhaustive: no vector beats it
    state = visited_states(env, 6)[-1]
    grid = np.array(list(itertools.product(range(num_channels + 1), repeat=num_users)))
    assert float(total_cost(env.params, state, oracle.decide(state))) \
        == pytest.approx(float(total_cost(env.params, state, grid).min()))


def test_channel_symmetry_keeps_the_search_exact():
    env = MecOffloadEnv(num_users=5, num_channels=3, action_mode='discrete')
    for state in visited_states(env, 8, seed=3):
        sym = exhaustive_search(env.params, state, use_channel_symmetry=True)
        full = exhaustive_search(env.params, state, use_channel_symmetry=False, chunk_size=100)
        assert float(total_cost(env.params, state, sym)) == \
            pytest.approx(float(total_cost(env.params, state, full)), rel=1e-12)


def canonical_form(decisions):
    mapping, out = {}, []
    for d in decisions:
        if d == 0:
            out.append(0)
        else:
            mapping.setdefault(d, len(mapping) + 1)
            out.append(mapping[d])
    return tuple(out)


@pytest.mark.parametrize('n,c', [(1, 1), (3, 2), (4, 3), (5, 5)])
def test_canonical_candidates_cover_every_relabelling_class_once(n, c):
    table = _canonical_candidates(n, c)
    rows = {tuple(r) for r in table.tolist()}
    assert len(rows) == len(table) == count_candidates(n, c, True)
    classes = {canonical_form(d) for d in itertools.product(range(c + 1), repeat=n)}
    assert rows == classes
    assert count_candidates(n, c, False) == (c + 1) ** n


def test_best_response_for_large_n_beats_its_starting_points():
    env = MecOffloadEnv(num_users=14, num_channels=4, action_mode='discrete')
    oracle = MecOracle(env)
    assert not oracle.exact
    for state in visited_states(env, 6, seed=2)[2:]:
        best = float(total_cost(env.params, state, oracle.decide(state)))
        for start in (np.zeros(14, dtype=int), round_robin_offload(env.params),
                      greedy_decisions(env.params, state)):
            assert best <= float(total_cost(env.params, state, start)) + 1e-12


def test_best_response_matches_exact_on_small_cases_mostly():
    env = MecOffloadEnv(num_users=5, num_channels=2, action_mode='discrete')
    gaps = []
    for state in visited_states(env, 15, seed=4):
        exact = float(total_cost(env.params, state, exhaustive_search(env.params, state)))
        local = float(total_cost(env.params, state, best_response_search(env.params, state, 50)))
        assert local >= exact - 1e-12
        gaps.append(local - exact)
    assert np.median(gaps) == pytest.approx(0.0, abs=1e-12)


def test_more_channels_never_hurt_the_oracle_and_sometimes_help():
    """C really changes behaviour: on identical states the optimum with 3 channels is never
    worse than with 1, and strictly better once queues build up."""
    one = MecOffloadEnv(num_users=5, num_channels=1, action_mode='discrete')
    three = MecOffloadEnv(num_users=5, num_channels=3, action_mode='discrete')
    diffs = []
    for state in visited_states(one, 15, seed=5):
        c1 = float(total_cost(one.params, state, MecOracle(one).decide(state)))
        c3 = float(total_cost(three.params, state, MecOracle(three).decide(state)))
        assert c3 <= c1 + 1e-12
        diffs.append(c1 - c3)
    assert max(diffs) > 0.5            # at least one avoided deadline miss


def test_baseline_decisions():
    env = MecOffloadEnv(num_users=6, num_channels=4, action_mode='discrete')
    obs, _ = env.reset(seed=0)
    state = env.decision_state()
    assert LocalOnlyPolicy(env).decide(state).tolist() == [0] * 6
    assert FullOffloadPolicy(env).decide(state).tolist() == [1, 2, 3, 4, 1, 2]
    r1, r2 = RandomPolicy(env, seed=3), RandomPolicy(env, seed=3)
    draws = [r1.decide(state) for _ in range(20)]
    assert all(np.array_equal(a, r2.decide(state)) for a in draws)
    assert np.concatenate(draws).min() >= 0 and np.concatenate(draws).max() <= 4
    # greedy: every user's choice is its own best response to the users decided before it
    d = GreedyPolicy(env).decide(state)
    order = np.argsort(-state.gain_w, kind='stable')
    for rank, i in enumerate(order):
        partial = np.zeros(6, dtype=int)
        partial[order[:rank]] = d[order[:rank]]
        options = np.repeat(partial[None], 5, axis=0)
        options[:, i] = np.arange(5)
        own = evaluate_decisions(env.params, state, options).cost[:, i]
        assert own[d[i]] == pytest.approx(own.min())
    with pytest.raises(ValueError):
        make_baseline('bogus', env)
    with pytest.raises(TypeError):
        LocalOnlyPolicy(gym.make('CartPole-v1'))


def test_policies_map_observations_to_actions_in_both_modes():
    for mode in ('continuous', 'discrete'):
        env = gym.make('dcdrl_sim/MecOffload-v0', num_users=5, num_channels=3, action_mode=mode)
        obs, _ = env.reset(seed=0)
        for _ in range(4):   # build some queues
            obs, *_ = env.step(env.unwrapped.encode_action(np.zeros(5, dtype=int)))
        for policy in (GreedyPolicy(env), MecOracle(env), FullOffloadPolicy(env)):
            action = policy(obs)
            assert env.action_space.contains(action)
            # reading the state back from the float32 observation gives the same choice
            np.testing.assert_array_equal(env.unwrapped.decode_action(action)[0],
                                          env.unwrapped.decode_action(policy.act())[0])
        batch = np.stack([obs, obs])
        assert MecOracle(env)(batch).shape == (2,) + env.action_space.shape


def test_policies_work_on_the_vector_env():
    venv = MecOffloadVectorEnv(3, num_users=4, action_mode='discrete')
    obs, _ = venv.reset(seed=0)
    oracle = MecOracle(venv)
    actions = oracle(obs)
    assert actions.shape == (3, 4)
    np.testing.assert_array_equal(actions, oracle.act())
    venv.step(actions)


def test_oracle_rejects_bad_settings():
    env = MecOffloadEnv(num_users=3)
    with pytest.raises(ValueError):
        MecOracle(env, chunk_size=0)
