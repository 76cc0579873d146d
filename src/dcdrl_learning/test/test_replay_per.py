"""Sum tree and prioritised sampling (statistical checks with fixed seeds)."""
import numpy as np
import pytest

from dcdrl_learning.replay import PrioritizedSampler, ReplayBuffer, SumTree


def test_sum_tree_totals_and_prefix_search_match_cumsum():
    rng = np.random.default_rng(0)
    tree = SumTree(37)  # not a power of two on purpose
    values = np.zeros(37)
    for _ in range(20):
        idx = rng.integers(0, 37, 8)
        val = rng.random(8) * 5
        tree.set(idx, val)
        for i, v in zip(idx, val):  # duplicates: the last write wins, as in numpy
            values[i] = v
        assert tree.total == pytest.approx(values.sum())
    targets = rng.random(1000) * values.sum()
    want = np.searchsorted(np.cumsum(values), targets, side='right')
    np.testing.assert_array_equal(tree.find_prefix(targets), want)


@pytest.mark.parametrize('block_size', [1, 3, 16, None])
def test_sum_tree_range_and_scattered_updates_agree_with_reference(block_size):
    rng = np.random.default_rng(block_size or 0)
    cap = 101
    tree = SumTree(cap, block_size=block_size)
    values = np.zeros(cap)
    for step in range(30):
        if step % 2:
            first = int(rng.integers(0, cap - 10))
            val = rng.random(10)
            tree.set_range(first, val)
            values[first:first + 10] = val
        else:
            idx = rng.integers(0, cap, 12)
            val = rng.random(12)
            tree.set(idx, val)
            values[idx] = val  # numpy: last duplicate wins, as in the tree
        np.testing.assert_allclose(tree.get(np.arange(cap)), values)
        assert tree.total == pytest.approx(values.sum())
    targets = np.sort(rng.random(500)) * values.sum()
    want = np.searchsorted(np.cumsum(values), targets, side='right')
    np.testing.assert_array_equal(tree.find_prefix(targets), want)
    with pytest.raises(ValueError, match='outside'):
        tree.set_range(cap - 2, np.ones(5))


def test_sum_tree_never_returns_zero_priority_leaf():
    tree = SumTree(8)
    tree.set(np.arange(3), np.array([1.0, 0.0, 2.0]))
    leaves = tree.find_prefix(np.array([0.0, 0.999999, 1.0, 2.9999999, 3.0]))
    assert set(leaves.tolist()) <= {0, 2}


def test_per_sampling_is_proportional_to_priority():
    buf = ReplayBuffer(64, 1, 1, prioritized=True, alpha=1.0, seed=123)
    n = 20
    buf.add(np.arange(n)[:, None], np.zeros((n, 1)), np.zeros(n), np.zeros((n, 1)), np.ones(n))
    td = np.arange(1, n + 1, dtype=np.float64)  # priority of item i is i+1 (alpha = 1)
    buf.update_priorities(np.arange(n), td)
    counts = np.zeros(n)
    draws = 0
    for _ in range(400):
        batch = buf.sample(100)
        np.add.at(counts, batch.indices, 1)
        draws += 100
    expected = draws * td / td.sum()
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    # 19 degrees of freedom: chi2 > 43.8 has p < 0.001.  Stratified draws make it smaller still.
    assert chi2 < 43.8, (chi2, counts, expected)
    # The most likely item is drawn about 20x as often as the least likely one.
    assert 14 < counts[-1] / counts[0] < 28


def test_alpha_zero_is_uniform_and_weights_are_one():
    buf = ReplayBuffer(64, 1, 1, prioritized=True, alpha=0.0, seed=1)
    buf.add(np.zeros((10, 1)), np.zeros((10, 1)), np.zeros(10), np.zeros((10, 1)), np.ones(10))
    buf.update_priorities(np.arange(10), np.arange(10) * 100.0)
    counts = np.bincount(np.concatenate([buf.sample(100).indices for _ in range(100)]), minlength=10)
    assert counts.min() > 800 and counts.max() < 1200
    np.testing.assert_allclose(buf.sample(16).weights, 1.0)


def test_importance_weights_follow_formula():
    rng = np.random.default_rng(0)
    sampler = PrioritizedSampler(8, rng, alpha=1.0, beta=0.5, beta_steps=0)
    sampler.on_insert(np.arange(4))
    sampler.update_priorities(np.arange(4), np.array([1.0, 2.0, 3.0, 4.0]) - 1e-6)
    idx = np.array([0, 3])
    w = sampler.weights(idx, size=4)
    p = np.array([1.0, 4.0]) / 10.0
    raw = (4 * p) ** -0.5
    np.testing.assert_allclose(w, raw / raw.max(), rtol=1e-5)
    assert w[0] == pytest.approx(1.0)  # the rarest item has the largest weight


def test_beta_anneals_linearly_to_end():
    sampler = PrioritizedSampler(8, np.random.default_rng(0), beta=0.4, beta_end=1.0, beta_steps=10)
    sampler.on_insert(np.arange(8))
    assert sampler.beta == pytest.approx(0.4)
    for _ in range(5):
        sampler.sample(8, 4)
    assert sampler.beta == pytest.approx(0.7)
    for _ in range(50):
        sampler.sample(8, 4)
    assert sampler.beta == pytest.approx(1.0)


def test_new_items_get_max_priority():
    buf = ReplayBuffer(16, 1, 1, prioritized=True, alpha=1.0, seed=0)
    buf.add(np.zeros((4, 1)), np.zeros((4, 1)), np.zeros(4), np.zeros((4, 1)), np.ones(4))
    buf.update_priorities(np.arange(4), np.array([0.1, 0.1, 9.0, 0.1]))
    (new,) = buf.add(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros(1), np.zeros((1, 1)), np.ones(1))
    tree = buf._sampler.tree
    assert tree.get([new])[0] == pytest.approx(9.0, rel=1e-4)


def test_update_priorities_rejects_bad_input():
    buf = ReplayBuffer(16, 1, 1, prioritized=True, seed=0)
    buf.add(np.zeros((4, 1)), np.zeros((4, 1)), np.zeros(4), np.zeros((4, 1)), np.ones(4))
    with pytest.raises(ValueError, match='NaN'):
        buf.update_priorities(np.arange(2), np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r'indices must lie in \[0, 4\)'):
        buf.update_priorities(np.array([5]), np.array([1.0]))
    with pytest.raises(ValueError, match='shape'):
        buf.update_priorities(np.arange(2), np.array([1.0]))


def test_bad_per_config():
    with pytest.raises(ValueError, match='beta'):
        ReplayBuffer(8, 1, 1, prioritized=True, beta=1.5)
    with pytest.raises(ValueError, match='alpha'):
        ReplayBuffer(8, 1, 1, prioritized=True, alpha=-1)
