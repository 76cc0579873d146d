"""Parameter server logic: validation and counting, closing generations, merging, generations.csv, get_policy."""
import csv

import numpy as np
import pytest

from dcdrl_cloud.parameter_server import (
    CSV_COLUMNS,
    ParameterServer,
    ParameterServerConfig,
    SubmissionRefused,
    env_dims,
)
from dcdrl_learning.codec import WeightsRejected, make_payload
from dcdrl_learning.inference import actor_shapes
from dcdrl_learning.networks import architecture_id, network_config

OBS, ACT = 6, 2
ARCH = architecture_id(network_config('dcdrl'), OBS, ACT)
SHAPES = actor_shapes(network_config('dcdrl'), OBS, ACT)


def model(value, seed=None):
    """An actor whose tensors are all ``value`` (or random with a seed)."""
    rng = np.random.default_rng(seed)
    return {n: (rng.normal(size=s) if seed is not None else np.full(s, value)).astype(np.float32)
            for n, s in SHAPES.items()}


def payload(weights, version=0, arch=ARCH):
    names = sorted(weights)
    return make_payload(arch, version, names, [weights[n].shape for n in names], [weights[n] for n in names])


def server(tmp_path, **settings):
    config = ParameterServerConfig(output_dir=str(tmp_path), **{'expected_models': 2, **settings})
    return ParameterServer(config, OBS, ACT, now=0.0)


def rows(tmp_path):
    with open(tmp_path / 'generations.csv', newline='') as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize('field, value, message', [
    ('expected_models', 0, 'expected_models'), ('min_models', 3, 'min_models'),
    ('generation_timeout_s', 0.0, 'generation_timeout_s'), ('merge_method', 'mean', 'merge_method'),
    ('elite_fraction', 1.5, 'elite_fraction'), ('temperature', -1.0, 'temperature'),
    ('network_preset', 'huge', 'network_preset')])
def test_bad_settings_are_refused_with_the_field_name(field, value, message):
    with pytest.raises(ValueError, match=message):
        ParameterServerConfig(**{'expected_models': 2, field: value})


def test_env_dims_match_the_clients_view():
    assert env_dims('dcdrl_sim/MecOffload-v0') == (73, 20)
    with pytest.raises(ValueError, match='Box'):
        env_dims('dcdrl_sim/FaceOffload-v0')


def test_a_complete_generation_merges_the_elite_and_is_logged(tmp_path):
    ps = server(tmp_path, elite_fraction=1.0)  # both models merged, rank weights 2/3 and 1/3
    assert ps.submit(payload(model(1.0)), 'a', 1, -10.0, now=1.0) == 1
    assert ps.poll(now=2.0) is None
    assert ps.submit(payload(model(4.0)), 'b', 1, -40.0, now=3.0) == 1
    merged = ps.poll(now=3.0, wall_time=1234.5)
    assert merged.generation == 1 and merged.payload.version == 1 and merged.payload.architecture_id == ARCH
    # the better (less negative) model weighs more: 2/3 * 1 + 1/3 * 4 = 2
    np.testing.assert_allclose(merged.payload.named_arrays()['weight_0'], 2.0, rtol=1e-6)
    assert merged.fitness_estimate == pytest.approx(2 / 3 * -10 + 1 / 3 * -40)
    assert merged.result.reason == 'complete' and merged.result.merged_clients == ('a', 'b')
    assert ps.open_generation == 2 and ps.stats()['generations'] == 1
    [row] = rows(tmp_path)
    assert tuple(row) == CSV_COLUMNS
    assert row['generation'] == '1' and row['time'] == '1234.500' and row['merged_clients'] == 'a;b'
    assert row['weights'] == 'a:0.666667;b:0.333333' and row['fitness'] == 'a:-10;b:-40'
    assert float(row['fitness_estimate']) == pytest.approx(-20.0)


def test_paper_elite_keeps_only_models_at_least_as_fit_as_the_mean(tmp_path):
    ps = server(tmp_path, expected_models=3)  # elite_fraction 0 = fitness >= mean
    for name, value, fitness in (('a', 1.0, -10.0), ('b', 2.0, -12.0), ('c', 9.0, -50.0)):
        ps.submit(payload(model(value)), name, 1, fitness, now=0.0)
    merged = ps.poll(now=0.0)
    assert merged.result.merged_clients == ('a', 'b') and merged.result.excluded_clients == ('c',)
    np.testing.assert_allclose(merged.payload.named_arrays()['bias_0'], 2 / 3 * 1 + 1 / 3 * 2, rtol=1e-6)
    assert 'outside the elite: c' in merged.describe()


def test_timeout_counts_from_the_first_submission(tmp_path):
    ps = server(tmp_path, expected_models=3, generation_timeout_s=10.0)
    assert ps.poll(now=100.0) is None  # nothing in: stays open however long
    ps.submit(payload(model(1.0)), 'a', 1, -1.0, now=100.0)
    assert ps.poll(now=105.0) is None  # not 10 s since the first submission yet
    merged = ps.poll(now=110.5)
    assert merged.result.reason == 'timeout' and merged.result.merged_clients == ('a',)
    assert ps.open_generation == 2


def test_a_timed_out_generation_waits_for_min_models(tmp_path):
    ps = server(tmp_path, expected_models=3, generation_timeout_s=10.0, min_models=2)
    ps.submit(payload(model(1.0)), 'a', 1, -1.0, now=0.0)
    assert ps.poll(now=50.0) is None  # timed out, but fewer than min_models
    ps.submit(payload(model(2.0)), 'b', 1, -2.0, now=51.0)
    assert ps.poll(now=51.0).result.reason == 'timeout'


def test_a_second_submission_of_a_producer_replaces_its_first(tmp_path):
    ps = server(tmp_path)
    ps.submit(payload(model(1.0)), 'a', 1, -30.0, now=0.0)
    ps.submit(payload(model(3.0)), 'a', 1, -5.0, now=1.0)
    assert ps.poll(now=1.0) is None and ps.submissions_in_open_generation() == 1
    ps.submit(payload(model(5.0)), 'b', 1, -7.0, now=2.0)
    merged = ps.poll(now=2.0)
    assert merged.result.fitness == {'a': -5.0, 'b': -7.0}


@pytest.mark.parametrize('change, reason', [
    ('architecture', 'wrong_architecture'), ('unknown', 'unknown_architecture'), ('shape', 'wrong_shape'),
    ('missing', 'missing_names'), ('nan', 'non_finite'), ('dtype', 'bad_dtype'), ('no_fitness', 'no_fitness'),
    ('nan_fitness', 'bad_fitness'), ('producer', 'no_producer'), ('stale', 'stale_generation')])
def test_bad_submissions_are_refused_and_counted(tmp_path, change, reason):
    ps = server(tmp_path)
    weights, arch, producer, generation, fitness = model(1.0), ARCH, 'a', 1, -1.0
    if change == 'architecture':
        arch = architecture_id(network_config('cloud_edge'), OBS, ACT)
    elif change == 'unknown':
        arch = 'mlp'
    elif change == 'shape':
        weights['weight_0'] = np.zeros((OBS, 399), np.float32)
    elif change == 'missing':
        del weights['bias_2']
    elif change == 'nan':
        weights['weight_1'][0, 0] = np.inf
    elif change == 'dtype':
        weights['bias_0'] = weights['bias_0'].astype(np.float64)
    elif change == 'no_fitness':
        fitness = None
    elif change == 'nan_fitness':
        fitness = float('nan')
    elif change == 'producer':
        producer = ' '
    else:
        ps.submit(payload(model(1.0)), 'x', 1, -1.0, now=0.0)
        ps.submit(payload(model(1.0)), 'y', 1, -1.0, now=0.0)
        ps.poll(now=0.0)  # generation 1 closed; 2 is open
    with pytest.raises(SubmissionRefused) as error:
        ps.submit(payload(weights, arch=arch), producer, generation, fitness, now=1.0)
    assert error.value.reason == reason and ps.refused == {reason: 1}
    assert ps.submissions_in_open_generation() == 0 and ps.poll(now=1e6) is None


def test_generation_zero_means_the_open_one_and_ahead_numbers_move_an_empty_generation(tmp_path):
    ps = server(tmp_path)
    assert ps.submit(payload(model(1.0)), 'a', 0, -1.0, now=0.0) == 1
    with pytest.raises(SubmissionRefused, match='ahead_generation'):
        ps.submit(payload(model(1.0)), 'b', 4, -1.0, now=0.0)  # generation 1 has a model already
    ps.submit(payload(model(1.0)), 'b', 1, -1.0, now=0.0)
    assert ps.poll(now=0.0).generation == 1
    # a restarted server meets clients that know generation 6: it follows them
    assert ps.submit(payload(model(2.0)), 'a', 7, -1.0, now=1.0) == 7
    ps.submit(payload(model(2.0)), 'b', 7, -1.0, now=1.0)
    merged = ps.poll(now=1.0)
    assert merged.generation == 7 and merged.payload.version == 7 and ps.fast_forwards == 1
    assert [r['generation'] for r in rows(tmp_path)] == ['1', '7']


def test_get_policy_prefers_merged_then_learner_and_honours_the_request(tmp_path):
    ps = server(tmp_path)
    answer = ps.answer()
    assert not answer.available and 'no policy yet' in answer.message
    learner = model(0.5, seed=3)
    assert ps.offer_learner_policy(payload(learner, version=9), 'learner') == 9
    answer = ps.answer(ARCH, 0)
    assert answer.available and answer.payload.version == 9 and answer.generation == 0 and answer.producer == 'learner'
    np.testing.assert_array_equal(answer.payload.named_arrays()['weight_0'], learner['weight_0'])
    for name, fitness in (('a', -1.0), ('b', -2.0)):
        ps.submit(payload(model(1.0)), name, 1, fitness, now=0.0)
    ps.poll(now=0.0)
    answer = ps.answer('', 0)
    assert answer.available and answer.generation == 1 and answer.payload.version == 1
    assert answer.fitness == pytest.approx(-1.0) and answer.producer == 'parameter_server'
    # merged generation 1 is too old for min_version 5: the learner's version 9 fits
    assert ps.answer(ARCH, 5).payload.version == 9
    answer = ps.answer(ARCH, 10)
    assert not answer.available and 'min_version 10' in answer.message
    other = architecture_id(network_config('cloud_edge'), OBS, ACT)
    answer = ps.answer(other, 0)
    assert not answer.available and other in answer.message
    assert ps.stats()['requests'] == 6 and ps.stats()['requests_unanswered'] == 3


def test_learner_policies_must_be_newer_and_valid(tmp_path):
    ps = server(tmp_path)
    ps.offer_learner_policy(payload(model(1.0), version=3))
    for bad, reason in ((payload(model(2.0), version=3), 'stale_version'),
                        (payload(model(np.nan), version=4), 'non_finite'),
                        (payload(model(1.0), version=5, arch='mlp-x-00000000'), 'wrong_architecture')):
        with pytest.raises(WeightsRejected) as error:
            ps.offer_learner_policy(bad)
        assert error.value.reason == reason
    assert ps.learner.version == 3 and sum(ps.learner_refused.values()) == 3
