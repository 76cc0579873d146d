"""NStepWriter: n-step returns with gamma^k bootstrap and correct episode-end handling."""
import numpy as np
import pytest

from dcdrl_learning.replay import NStepWriter


def run_single_env(rewards, n, gamma, terminated_at_end):
    """Feed one episode with obs_t = [t]; return the emitted transitions."""
    writer = NStepWriter(1, obs_dim=1, action_dim=1, n_step=n, gamma=gamma)
    out = []
    last = len(rewards) - 1
    for t, r in enumerate(rewards):
        end = t == last
        res = writer.step(obs=[[t]], actions=[[10 + t]], rewards=[r], next_obs=[[t + 1]],
                          terminated=[end and terminated_at_end], truncated=[end and not terminated_at_end])
        out.append(res)
    assert writer.pending == 0
    return {k: np.concatenate([o[k] for o in out]) for k in out[0]}


def test_hand_made_trajectory_terminated():
    # n = 3, gamma = 0.5, rewards 1..5, the episode terminates after the 5th step.
    got = run_single_env([1, 2, 3, 4, 5], n=3, gamma=0.5, terminated_at_end=True)
    np.testing.assert_allclose(got['obs'][:, 0], [0, 1, 2, 3, 4])
    np.testing.assert_allclose(got['actions'][:, 0], [10, 11, 12, 13, 14])
    # R_0 = 1 + .5*2 + .25*3; R_1 = 2 + .5*3 + .25*4; then the flushed tail of the episode.
    np.testing.assert_allclose(got['rewards'], [2.75, 4.5, 6.25, 6.5, 5.0])
    np.testing.assert_allclose(got['next_obs'][:, 0], [3, 4, 5, 5, 5])
    # Full windows bootstrap with gamma^3 (not gamma: the original's bug); terminal ones don't.
    np.testing.assert_allclose(got['discounts'], [0.125, 0.125, 0.0, 0.0, 0.0])


def test_hand_made_trajectory_truncated_bootstraps_with_gamma_k():
    got = run_single_env([1, 2, 3, 4, 5], n=3, gamma=0.5, terminated_at_end=False)
    np.testing.assert_allclose(got['rewards'], [2.75, 4.5, 6.25, 6.5, 5.0])
    np.testing.assert_allclose(got['next_obs'][:, 0], [3, 4, 5, 5, 5])
    # Truncated windows of length 3, 2, 1 bootstrap from the final observation with gamma^k.
    np.testing.assert_allclose(got['discounts'], [0.125, 0.125, 0.125, 0.25, 0.5])


def test_episode_shorter_than_n():
    got = run_single_env([1.0, 1.0], n=5, gamma=0.9, terminated_at_end=True)
    np.testing.assert_allclose(got['rewards'], [1.9, 1.0])
    np.testing.assert_allclose(got['discounts'], [0.0, 0.0])
    np.testing.assert_allclose(got['next_obs'][:, 0], [2, 2])


def test_one_step_is_plain_transitions():
    got = run_single_env([3.0, -1.0, 2.0], n=1, gamma=0.9, terminated_at_end=False)
    np.testing.assert_allclose(got['rewards'], [3.0, -1.0, 2.0])
    np.testing.assert_allclose(got['discounts'], [0.9, 0.9, 0.9])
    np.testing.assert_allclose(got['next_obs'][:, 0], [1, 2, 3])


def reference_nstep(episodes, n, gamma):
    """Brute force: for every step of every episode, the n-step transition it starts."""
    rows = []
    for steps, terminated in episodes:  # steps: list of (obs, action, reward, next_obs)
        length = len(steps)
        for t in range(length):
            k = min(n, length - t)
            ret = sum(gamma ** i * steps[t + i][2] for i in range(k))
            last = t + k == length
            discount = 0.0 if (last and terminated) else gamma ** k
            rows.append((steps[t][0], steps[t][1], ret, steps[t + k - 1][3], discount))
    return sorted(rows, key=lambda r: (r[0], r[1]))


def test_vectorised_envs_match_brute_force():
    rng = np.random.default_rng(7)
    k, n, gamma = 4, 3, 0.9
    writer = NStepWriter(k, obs_dim=2, action_dim=1, n_step=n, gamma=gamma)
    episodes = [[] for _ in range(k)]
    finished = []
    emitted = []
    counter = 0
    for _ in range(60):
        obs = np.zeros((k, 2))
        obs[:, 0] = counter + np.arange(k)  # unique id per (step, env)
        counter += k
        actions = rng.normal(size=(k, 1))
        rewards = rng.normal(size=k)
        next_obs = obs + 0.5
        ends = rng.random(k) < 0.15
        term = ends & (rng.random(k) < 0.5)
        trunc = ends & ~term
        res = writer.step(obs, actions, rewards, next_obs, term, trunc)
        emitted.append(res)
        for e in range(k):
            episodes[e].append((obs[e, 0], actions[e, 0], rewards[e], next_obs[e, 0]))
            if ends[e]:
                finished.append((episodes[e], bool(term[e])))
                episodes[e] = []
    tail = writer.flush()  # open windows end as truncated
    emitted.append(tail)
    finished.extend((ep, False) for ep in episodes if ep)
    got = {key: np.concatenate([r[key] for r in emitted]) for key in emitted[0]}
    got_rows = sorted(zip(got['obs'][:, 0], got['actions'][:, 0], got['rewards'],
                          got['next_obs'][:, 0], got['discounts']), key=lambda r: (r[0], r[1]))
    want = reference_nstep(finished, n, gamma)
    assert len(got_rows) == len(want) == 60 * k
    np.testing.assert_allclose(np.array(got_rows, dtype=np.float64), np.array(want), rtol=1e-5, atol=1e-5)
    assert all(v.dtype == np.float32 for v in got.values())


def test_terminated_and_truncated_together_counts_as_terminated():
    w = NStepWriter(1, 1, 1, n_step=2, gamma=0.5)
    res = w.step([[0]], [[0]], [1.0], [[1]], terminated=[True], truncated=[True])
    assert res['discounts'].tolist() == [0.0]


def test_reset_drops_windows():
    w = NStepWriter(2, 1, 1, n_step=3, gamma=0.5)
    w.step([[0], [0]], [[0], [0]], [1.0, 1.0], [[1], [1]], [False, False], [False, False])
    assert w.pending == 2
    w.reset([0])
    assert w.pending == 1
    assert len(w.flush()['rewards']) == 1
    assert w.pending == 0


@pytest.mark.parametrize('kwargs, match', [
    (dict(obs=[[0]], actions=[[0]], rewards=[1.0], next_obs=[[np.nan]]), 'next_obs'),
    (dict(obs=[[0, 1]], actions=[[0]], rewards=[1.0], next_obs=[[0]]), r'obs must have shape \[1, 1\]'),
    (dict(obs=[[0]], actions=[[0]], rewards=[1.0, 2.0], next_obs=[[0]]), 'rewards'),
])
def test_bad_input_is_rejected(kwargs, match):
    w = NStepWriter(1, 1, 1, n_step=2)
    with pytest.raises(ValueError, match=match):
        w.step(**kwargs, terminated=[False], truncated=[False])
    assert w.pending == 0


def test_bad_config():
    with pytest.raises(ValueError, match='n_step'):
        NStepWriter(1, 1, 1, n_step=0)
    with pytest.raises(ValueError, match='gamma'):
        NStepWriter(1, 1, 1, gamma=1.5)
