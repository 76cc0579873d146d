"""Replay intake: valid batches stored, bad ones counted and dropped, lost batches counted."""
import json

import numpy as np
import pytest

from dcdrl_cloud.ingest import ExperienceIngest, IngestStats
from dcdrl_learning.experience import ExperienceRejected, fill_experience
from dcdrl_ros import runtime  # noqa: F401  (interface import hook)

from dcdrl_msgs.msg import ExperienceBatch


def _message(sequence, client='c0', batch=4, obs_dim=6, terminated=None):
    rng = np.random.default_rng(sequence)
    return fill_experience(
        ExperienceBatch(), client_id=client, sequence=sequence, policy_version=1,
        obs=rng.random((batch, obs_dim)), actions=rng.random((batch, 2)), rewards=rng.random(batch),
        next_obs=rng.random((batch, obs_dim)),
        terminated=np.zeros(batch, bool) if terminated is None else terminated, truncated=np.zeros(batch, bool))


def test_valid_batches_are_stored_with_discounts_from_termination():
    ingest = ExperienceIngest(capacity=100, gamma=0.9, seed=0)
    ingest.ingest(_message(0, terminated=np.array([False, True, False, False])))
    assert len(ingest.buffer) == 4
    sample = ingest.buffer.sample(64)
    assert set(np.round(sample.discounts.astype(float), 6).tolist()) == {0.0, 0.9}


def test_bad_batch_is_counted_and_nothing_stored_is_lost():
    ingest = ExperienceIngest(capacity=100)
    ingest.ingest(_message(0))
    bad = _message(1)
    bad.rewards[0] = np.nan
    with pytest.raises(ExperienceRejected):
        ingest.ingest(bad)
    with pytest.raises(ExperienceRejected, match='obs_dim 9, expected 6'):
        ingest.ingest(_message(2, obs_dim=9))  # the first batch fixed the dimensions
    summary = ingest.summary()
    assert summary['rejected'] == 2 and summary['replay_size'] == 4 and summary['transitions'] == 4


def test_sequence_gaps_count_lost_batches_per_client():
    ingest = ExperienceIngest(capacity=100)
    for sequence in (0, 1, 4):
        ingest.ingest(_message(sequence, client='a'))
    ingest.ingest(_message(0, client='b'))
    clients = ingest.summary()['clients']
    assert {k: clients['a'][k] for k in ('batches', 'transitions', 'lost_batches')} == \
        {'batches': 3, 'transitions': 12, 'lost_batches': 2}
    assert clients['b']['lost_batches'] == 0


def test_a_restarted_client_counts_a_restart_not_a_loss():
    ingest = ExperienceIngest(capacity=100)
    for sequence in (5, 6, 0, 1, 3):  # first seen mid-stream, then restarted, then one lost
        ingest.ingest(_message(sequence))
    record = ingest.summary()['clients']['c0']
    assert (record['restarts'], record['lost_batches'], record['batches']) == (1, 1, 5)


def test_counters_survive_a_json_round_trip_and_bad_ones_are_refused():
    ingest = ExperienceIngest(capacity=100)
    for sequence in (0, 2):
        ingest.ingest(_message(sequence, client='a'))
    data = json.loads(json.dumps(ingest.stats.to_dict()))
    again = ExperienceIngest(capacity=100)
    again.restore_stats(IngestStats.from_dict(data))
    assert again.stats == ingest.stats and again.summary()['transitions_this_run'] == 0
    with pytest.raises(ValueError, match='malformed ingest counters'):
        IngestStats.from_dict({'batches': 1})


def test_new_clients_beyond_max_clients_and_unlisted_clients_are_refused():
    """Made-up client ids cannot grow the per-client records without bound (docs/robustness.md, G2)."""
    ingest = ExperienceIngest(capacity=100, max_clients=2)
    for client in ('a', 'b'):
        ingest.ingest(_message(0, client=client))
    with pytest.raises(ExperienceRejected, match='from c: already 2 clients'):
        ingest.ingest(_message(0, client='c'))
    ingest.ingest(_message(1, client='a'))   # known clients go on
    summary = ingest.summary()
    assert sorted(summary['clients']) == ['a', 'b'] and summary['rejected'] == 1 and summary['replay_size'] == 12
    listed = ExperienceIngest(capacity=100, allowed_clients=('client_0',))
    listed.ingest(_message(0, client='client_0'))
    with pytest.raises(ExperienceRejected, match='from client_9: not in allowed_clients'):
        listed.ingest(_message(0, client='client_9'))
    assert listed.stats.rejected == 1 and list(listed.stats.clients) == ['client_0']


@pytest.mark.parametrize('kwargs', [{'capacity': 0}, {'capacity': 10, 'gamma': 1.5}, {'capacity': True},
                                    {'capacity': 10, 'max_clients': 0}])
def test_bad_configuration_is_refused(kwargs):
    with pytest.raises(ValueError):
        ExperienceIngest(**kwargs)
