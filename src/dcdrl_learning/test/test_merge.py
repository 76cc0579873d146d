"""Collective merge: weights favour better fitness (also when negative), mutation, pull, generations."""
import numpy as np
import pytest

from dcdrl_learning.merge import (
    GenerationCollector,
    average_models,
    elite_mask,
    merge_models,
    merge_weights,
    mutate,
    should_pull,
)


def model(value, shape=(2, 3)):
    return {'w': np.full(shape, value, np.float32), 'b': np.full(shape[-1:], value, np.float32)}


@pytest.mark.parametrize('method', ['rank', 'softmax'])
@pytest.mark.parametrize('offset', [0.0, -1000.0, 1000.0])
def test_weights_favour_better_fitness_whatever_the_sign(method, offset):
    f = np.array([-10.0, -40.0, -12.0, -25.0]) + offset
    w = merge_weights(f, method=method, elite_fraction=1.0)
    assert w.sum() == pytest.approx(1.0)
    assert np.all(w > 0)
    order = np.argsort(-f)
    assert np.all(np.diff(w[order]) < 0), w  # strictly decreasing from best to worst


def test_raw_negative_fitness_weighting_would_favour_the_worse_model():
    # The original's rule for contrast: raw fitness / sum gives the worse model more weight.
    f = np.array([-10.0, -40.0])
    raw = f / f.sum()
    assert raw[1] > raw[0]
    w = merge_weights(f, elite_fraction=1.0)
    assert w[0] > w[1]
    merged = merge_models([model(1.0), model(5.0)], f, elite_fraction=1.0)
    assert merged['w'][0, 0] < 3.0  # pulled toward the better model's value 1.0


def test_default_elite_is_at_least_the_mean():
    f = [-10.0, -40.0, -12.0, -25.0]  # mean -21.75: models 0 and 2
    np.testing.assert_array_equal(elite_mask(f), [True, False, True, False])
    w = merge_weights(f)
    assert w[1] == 0.0 and w[3] == 0.0
    np.testing.assert_allclose(w, [2 / 3, 0.0, 1 / 3, 0.0])  # rank weights 2 and 1


def test_elite_fraction_and_ties():
    f = [5.0, 3.0, 3.0, 1.0]
    np.testing.assert_array_equal(elite_mask(f, 0.25), [True, False, False, False])
    np.testing.assert_array_equal(elite_mask(f, 0.5), [True, True, True, False])  # tie kept whole
    w = merge_weights(f, elite_fraction=0.5)
    assert w[1] == w[2] and w[0] > w[1]
    np.testing.assert_allclose(merge_weights([2.0, 2.0, 2.0]), [1 / 3] * 3)


def test_softmax_temperature_concentrates_and_is_scale_free():
    f = np.array([1.0, 2.0, 3.0])
    sharp = merge_weights(f, 'softmax', temperature=0.1, elite_fraction=1.0)
    soft = merge_weights(f, 'softmax', temperature=10.0, elite_fraction=1.0)
    assert sharp[2] > 0.99 and soft[2] < 0.4
    np.testing.assert_allclose(merge_weights(f * 1000 - 7, 'softmax', elite_fraction=1.0),
                               merge_weights(f, 'softmax', elite_fraction=1.0))


def test_merge_models_is_the_weighted_average():
    models = [model(1.0), model(2.0), model(10.0)]
    f = [3.0, 2.0, -100.0]  # mean -31.7: the third is excluded
    merged = merge_models(models, f)
    # ranks among the elite: 2 and 1 -> weights 2/3 and 1/3
    np.testing.assert_allclose(merged['w'], np.full((2, 3), 2 / 3 + 2 / 3), rtol=1e-6)
    assert merged['w'].dtype == np.float32 and set(merged) == {'w', 'b'}
    assert models[0]['w'][0, 0] == 1.0  # inputs untouched


def test_merge_rejects_bad_input():
    with pytest.raises(ValueError, match='different tensor names'):
        merge_models([model(1.0), {'w': np.zeros((2, 3), np.float32)}], [1.0, 2.0])
    with pytest.raises(ValueError, match='shape'):
        merge_models([model(1.0), model(1.0, shape=(3, 3))], [1.0, 2.0])
    with pytest.raises(ValueError, match='NaN'):
        merge_models([model(1.0), model(np.nan)], [1.0, 2.0])
    with pytest.raises(ValueError, match='finite'):
        merge_weights([1.0, np.nan])
    with pytest.raises(ValueError, match='2 models but 3'):
        merge_models([model(1.0), model(2.0)], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match='method'):
        merge_weights([1.0], method='fitness')
    with pytest.raises(ValueError, match='temperature'):
        merge_weights([1.0], method='softmax', temperature=0)
    with pytest.raises(ValueError, match='elite_fraction'):
        merge_weights([1.0], elite_fraction=0.0)
    with pytest.raises(TypeError, match='floating point'):
        average_models([{'w': np.zeros(3, np.int64)}], [1.0])


def test_mutate_scales_noise_per_tensor():
    rng = np.random.default_rng(0)
    big = np.random.default_rng(1).normal(0, 10.0, size=(200, 200)).astype(np.float32)
    small = np.random.default_rng(2).normal(0, 0.01, size=(200, 200)).astype(np.float32)
    m = {'big': big, 'small': small, 'zero_bias': np.zeros(500, np.float32)}
    out = mutate(m, 0.1, rng)
    assert np.std(out['big'] - big) == pytest.approx(0.1 * big.std(), rel=0.05)
    assert np.std(out['small'] - small) == pytest.approx(0.1 * small.std(), rel=0.05)
    assert np.std(out['zero_bias']) == pytest.approx(0.1 * 1e-3, rel=0.2)  # min_std floor
    assert all(v.dtype == np.float32 for v in out.values())
    assert np.all(m['zero_bias'] == 0)  # input untouched
    same = mutate(m, 0.0, rng)
    np.testing.assert_array_equal(same['big'], big)
    a = mutate(m, 0.1, np.random.default_rng(5))
    b = mutate(m, 0.1, np.random.default_rng(5))
    np.testing.assert_array_equal(a['small'], b['small'])  # reproducible from the generator
    with pytest.raises(ValueError, match='scale'):
        mutate(m, -1.0, rng)


def test_should_pull_only_when_merged_is_better():
    assert should_pull(own_fitness=-30.0, merged_fitness=-20.0)
    assert not should_pull(own_fitness=-20.0, merged_fitness=-30.0)
    assert not should_pull(-20.0, -20.0)
    assert not should_pull(-20.0, -19.5, margin=1.0)
    with pytest.raises(ValueError, match='own_fitness'):
        should_pull(float('nan'), 1.0)


def test_generation_closes_when_all_clients_reported():
    col = GenerationCollector(['a', 'b', 'c'], timeout=10.0, now=0.0)
    assert col.submit('a', 0, model(1.0), -10.0, now=1.0)
    assert col.submit('b', 0, model(3.0), -50.0, now=2.0)
    assert col.poll(now=3.0) is None
    assert col.submit('c', 0, model(2.0), -20.0, now=4.0)
    res = col.poll(now=4.0)
    assert res is not None and res.reason == 'complete' and res.generation == 0
    assert res.merged_clients == ('a', 'c')  # mean -26.7: b excluded, best first
    assert res.excluded_clients == ('b',) and res.missing_clients == ()
    assert res.weights['a'] > res.weights['c'] > res.weights['b'] == 0.0
    assert res.fitness_estimate == pytest.approx(2 / 3 * -10 + 1 / 3 * -20)
    np.testing.assert_allclose(res.merged['w'], 2 / 3 * 1.0 + 1 / 3 * 2.0, rtol=1e-6)
    assert col.generation == 1 and col.submissions == {}


def test_generation_times_out_with_partial_reports_and_refuses_stale():
    col = GenerationCollector(['a', 'b', 'c'], timeout=5, min_submissions=2, now=100)
    col.submit('a', 0, model(1.0), 1.0, now=101)
    assert col.poll(now=106) is None  # timed out but only 1 of min 2 submissions
    col.submit('b', 0, model(2.0), 2.0, now=107)
    res = col.poll(now=107)
    assert res.reason == 'timeout' and res.missing_clients == ('c',)
    assert res.merged_clients == ('b',)  # mean 1.5: only b is at least the mean
    assert not col.submit('c', 0, model(3.0), 3.0, now=108)  # stale generation
    assert not col.submit('c', 5, model(3.0), 3.0, now=108)  # ahead
    assert col.stale == 1 and col.ahead == 1
    assert col.poll(now=111) is None  # generation 1 opened at 107: not timed out yet
    col.submit('c', 1, model(3.0), 3.0, now=111)
    assert col.poll(now=111.5) is None  # only 1 < min_submissions
    col.submit('c', 1, model(4.0), 4.0, now=112)  # a re-submission replaces the first
    col.submit('a', 1, model(0.0), 0.0, now=112)
    res = col.poll(now=112)
    assert res.reason == 'timeout' and res.fitness == {'a': 0.0, 'c': 4.0}


def test_generation_with_anonymous_count_and_bad_submissions():
    col = GenerationCollector(2, timeout=3)
    col.submit('x', 0, model(1.0), 1.0, now=0)
    with pytest.raises(ValueError, match='does not match the architecture'):
        col.submit('y', 0, model(1.0, shape=(4, 3)), 1.0, now=0)
    with pytest.raises(ValueError, match='fitness'):
        col.submit('y', 0, model(1.0), float('inf'), now=0)
    col.submit('y', 0, model(1.0), 1.0, now=0)
    assert col.poll(0).reason == 'complete'
    named = GenerationCollector(['a'], timeout=1)
    with pytest.raises(ValueError, match="unknown client 'z'"):
        named.submit('z', 0, model(1.0), 1.0, now=0)
    with pytest.raises(ValueError, match='timeout'):
        GenerationCollector(2, timeout=0)
    with pytest.raises(ValueError, match='min_submissions'):
        GenerationCollector(2, timeout=1, min_submissions=3)
