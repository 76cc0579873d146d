"""The replay node's logic: credits, sequences, versions per slot, priorities, lag, snapshots."""
import threading

import numpy as np
import pytest

from dcdrl_cloud.learner import read_sampled_batch
from dcdrl_cloud.replay_messages import fill_priority_update, fill_sampled_batch, read_priority_update
from dcdrl_cloud.replay_service import PriorityRejected, ReplayService, RequestRejected
from dcdrl_cloud.replay_service_config import ReplayServiceConfig
from dcdrl_cloud.replay_snapshot import SnapshotRefused
from dcdrl_learning.experience import ExperienceRejected, fill_experience
from dcdrl_learning.replay import ReplayBuffer
from dcdrl_ros import runtime  # noqa: F401  (interface import hook)

from dcdrl_msgs.msg import ExperienceBatch, PriorityUpdate, SampledBatch

OBS, ACT = 5, 2


def _message(sequence, version, client='c0', batch=8, terminated=None, obs_dim=OBS):
    """A batch whose obs[:, 0] holds the policy version, so served rows can be checked against it."""
    rng = np.random.default_rng(sequence * 1000 + version)
    obs = rng.random((batch, obs_dim)).astype(np.float32)
    obs[:, 0] = version
    return fill_experience(
        ExperienceBatch(), client_id=client, sequence=sequence, policy_version=version, obs=obs,
        actions=rng.random((batch, ACT)), rewards=rng.random(batch), next_obs=rng.random((batch, obs_dim)),
        terminated=np.zeros(batch, bool) if terminated is None else terminated, truncated=np.zeros(batch, bool))


def _service(**overrides):
    values = dict(capacity=256, min_size_to_sample=16, seed=3, env_id='test/Env-v0')
    values.update(overrides)
    return ReplayService(ReplayServiceConfig(**values))


def _fill(service, batches, client='c0', start=0, version=None):
    for sequence in range(start, start + batches):
        service.ingest(_message(sequence, sequence if version is None else version, client=client))


def _drain(service, limit=1000):
    served = []
    while len(served) < limit:
        batch = service.next_batch(0.0)
        if batch is None:
            return served
        served.append(batch)
    return served


# ---- configuration ----

def test_gamma_default_is_the_dcdrl_presets():
    from dcdrl_learning.agents import AGENT_PRESETS
    assert ReplayServiceConfig().gamma == AGENT_PRESETS['dcdrl']['gamma']


@pytest.mark.parametrize('overrides, fragment', [
    ({'capacity': 0}, 'capacity'),
    ({'gamma': 1.5}, 'gamma'),
    ({'gamma': float('nan')}, 'gamma'),
    ({'alpha': -1.0}, 'alpha'),
    ({'beta': 2.0}, 'beta'),
    ({'samples_per_insert': -1.0}, 'samples_per_insert'),
    ({'min_size_to_sample': 300}, 'min_size_to_sample'),
    ({'max_batch_size': 0}, 'max_batch_size'),
    ({'lag_window': 0}, 'lag_window'),
    ({'max_clients': 0}, 'max_clients'),
    ({'allowed_clients': ('client_0', '')}, 'allowed_clients'),
    ({'samples_per_insert': 4.0, 'sample_error_buffer': 3.0}, 'sample_error_buffer'),
])
def test_bad_configuration_is_refused_with_the_field_named(overrides, fragment):
    values = dict(capacity=256, min_size_to_sample=16)
    values.update(overrides)
    with pytest.raises(ValueError, match=fragment):
        ReplayServiceConfig(**values)


def test_prioritized_must_be_a_bool():
    with pytest.raises(TypeError, match='prioritized'):
        ReplayServiceConfig(prioritized=1)


# ---- serving ----

def test_credits_are_served_only_after_min_size_with_sequences_and_versions():
    service = _service(min_size_to_sample=32)
    assert service.request('learner', 3, 10) == 3
    assert service.next_batch(0.0) is None  # no data at all
    _fill(service, 3)  # 24 < 32
    assert service.next_batch(0.0) is None and service.outstanding('learner') == 3
    _fill(service, 2, start=3)
    served = _drain(service)
    assert [s.sequence for s in served] == [0, 1, 2]
    assert service.outstanding('learner') == 0
    for s in served:
        assert s.requester == 'learner' and len(s) == 10 and s.replay_size == 40
        assert s.batch.obs.shape == (10, OBS) and s.batch.actions.shape == (10, ACT)
        assert s.policy_versions.dtype == np.uint64
        # obs[:, 0] was stamped with the version of the batch that produced the row
        np.testing.assert_array_equal(s.policy_versions, s.batch.obs[:, 0].astype(np.uint64))
    service.request('learner', 1, 4)
    assert _drain(service)[0].sequence == 3  # sequences continue


def test_requesters_are_served_round_robin():
    service = _service()
    _fill(service, 4)
    service.request('b', 3, 4)
    service.request('a', 2, 4)
    names = [s.requester for s in _drain(service)]
    assert names == ['a', 'b', 'a', 'b', 'b']


@pytest.mark.parametrize('requester, batches, batch_size, fragment', [
    ('', 1, 8, 'non-empty'),
    ('l', 1, 0, 'batch_size'),
    ('l', 1, 5000, 'batch_size'),
    ('l', -1, 8, 'batches'),
    ('r' * 65, 1, 8, 'at most 64 characters, got 65'),   # docs/robustness.md, G6
])
def test_bad_requests_are_refused_and_counted(requester, batches, batch_size, fragment):
    service = _service()
    with pytest.raises(RequestRejected, match=fragment):
        service.request(requester, batches, batch_size)
    assert service.counters.rejected_requests == 1 and service.requesters == {}


def test_credits_are_capped_and_requesters_bounded():
    service = _service(max_outstanding_batches=5, max_requesters=2)
    assert service.request('a', 4, 8) == 4
    assert service.request('a', 4, 8) == 5
    assert service.requesters['a'].dropped_credits == 3
    service.request('b', 1, 8)
    with pytest.raises(RequestRejected, match='max_requesters'):
        service.request('c', 1, 8)


def test_samples_per_insert_limits_sampling_never_inserting():
    service = _service(capacity=64, min_size_to_sample=16, samples_per_insert=1.0, sample_error_buffer=8.0)
    service.request('l', 100, 8)
    _fill(service, 2)  # min size reached: sample_error_buffer (8) items may be sampled ...
    assert len(_drain(service)) == 1
    _fill(service, 2, start=2)  # ... then samples_per_insert per inserted item
    assert len(_drain(service)) == 2
    _fill(service, 40, start=4)  # 5x capacity with no sampling: inserts are never refused
    assert len(service) == 64 and service.intake.stats.transitions == 352


def test_close_wakes_a_waiting_server():
    service = _service()
    result = []
    thread = threading.Thread(target=lambda: result.append(service.next_batch(60.0)))
    thread.start()
    service.close()
    thread.join(timeout=30.0)
    assert not thread.is_alive() and result == [None]


def test_concurrent_ingest_serve_and_save_keep_versions_consistent(tmp_path):
    service = _service(capacity=128, min_size_to_sample=8, max_outstanding_batches=200)
    service.request('l', 200, 16)
    served, errors = [], []

    def serve():
        while len(served) < 200:
            batch = service.next_batch(5.0)
            if batch is None:
                errors.append('timed out')
                return
            served.append(batch)

    def ingest():
        for sequence in range(300):  # wraps the ring several times while batches are sampled
            service.ingest(_message(sequence, sequence))

    threads = [threading.Thread(target=serve), threading.Thread(target=ingest)]
    for thread in threads:
        thread.start()
    for _ in range(3):
        service.save(tmp_path / 'replay.npz')
    for thread in threads:
        thread.join(timeout=60.0)
    assert not errors and len(served) == 200
    for s in served:
        np.testing.assert_array_equal(s.policy_versions, s.batch.obs[:, 0].astype(np.uint64))


# ---- intake ----

def test_rejected_experience_is_counted_and_stores_nothing():
    service = _service()
    _fill(service, 1)
    with pytest.raises(ExperienceRejected, match='obs_dim 7, expected 5'):
        service.ingest(_message(1, 1, obs_dim=7))
    assert len(service) == 8 and service.stats()['rejected_batches'] == 1


def test_max_clients_and_allowed_clients_reach_the_intake():
    service = _service(max_clients=1)
    _fill(service, 1, client='c0')
    with pytest.raises(ExperienceRejected, match='max_clients'):
        service.ingest(_message(0, 1, client='c1'))
    listed = _service(allowed_clients=('c1',))
    with pytest.raises(ExperienceRejected, match='not in allowed_clients'):
        listed.ingest(_message(0, 1, client='c0'))
    assert service.stats()['rejected_batches'] == listed.stats()['rejected_batches'] == 1


def test_discounts_are_gamma_or_zero_after_termination():
    service = _service(gamma=0.5)
    for sequence in range(2):
        service.ingest(_message(sequence, 0, terminated=np.array([True] + [False] * 7)))
    service.request('l', 1, 256)
    assert set(_drain(service)[0].batch.discounts.tolist()) == {0.0, 0.5}


# ---- priorities ----

def test_valid_priority_update_changes_prioritised_sampling():
    service = _service(prioritized=True, min_size_to_sample=8)
    _fill(service, 4)
    slots = np.arange(32, dtype=np.uint64)
    priorities = np.full(32, 1e-3, np.float32)
    priorities[5] = 100.0
    assert service.update_priorities(slots, priorities) == 32
    service.request('l', 1, 256)
    batch = _drain(service)[0].batch
    assert np.count_nonzero(batch.indices == 5) > 200  # nearly all the mass is on slot 5
    assert service.counters.priority_updates == 1 and service.counters.priority_items == 32


@pytest.mark.parametrize('indices, priorities, fragment', [
    (np.arange(4, dtype=np.uint64), np.ones(3, np.float32), 'same size'),
    (np.arange(4, dtype=np.uint64), np.array([1, np.nan, 1, 1], np.float32), 'NaN'),
    (np.array([0, 40], dtype=np.uint64), np.ones(2, np.float32), r'\[0, 32\)'),
    (np.array([2**63 + 5], dtype=np.uint64), np.ones(1, np.float32), r'\[0, 32\)'),
    (np.zeros((2, 2), dtype=np.uint64), np.ones((2, 2), np.float32), '1-D'),
    (np.array([0.5, 1.5]), np.ones(2, np.float32), 'integer'),
])
def test_bad_priority_updates_are_refused_counted_and_change_nothing(indices, priorities, fragment):
    service = _service(prioritized=True, min_size_to_sample=8)
    _fill(service, 4)
    before = service.buffer.stats()['max_priority']
    with pytest.raises(PriorityRejected, match=fragment):
        service.update_priorities(indices, priorities)
    assert service.counters.rejected_priority_updates == 1 and service.counters.priority_updates == 0
    assert service.buffer.stats()['max_priority'] == before


def test_priority_update_on_a_uniform_buffer_is_checked_then_ignored():
    service = _service()
    _fill(service, 2)
    assert service.update_priorities(np.arange(4, dtype=np.uint64), np.ones(4, np.float32)) == 0
    assert service.counters.ignored_priority_updates == 1
    with pytest.raises(PriorityRejected):
        service.update_priorities(np.array([99], dtype=np.uint64), np.ones(1, np.float32))


def test_priority_update_before_any_data_is_refused():
    with pytest.raises(PriorityRejected, match=r'\[0, 0\)'):
        _service().update_priorities(np.array([0], dtype=np.uint64), np.ones(1, np.float32))


# ---- version lag ----

def test_version_lag_over_a_window_of_batches_weighted_by_transitions():
    service = _service(lag_window=2)
    assert service.version_lag() == {'min': None, 'mean': None, 'max': None}
    assert np.isnan(service.stats()['version_lag_mean'])
    service.observe_policy(10)
    service.ingest(_message(0, 2))                    # lag 8, falls out of the window
    service.ingest(_message(1, 7, batch=4))           # lag 3
    service.ingest(_message(2, 9, batch=12))          # lag 1
    assert service.version_lag() == {'min': 1.0, 'mean': 1.5, 'max': 3.0}
    stats = service.stats()
    assert (stats['version_lag_min'], stats['version_lag_max']) == (1.0, 3.0)


# ---- snapshots ----

def test_snapshot_round_trip_restores_everything_and_continues_the_same_samples(tmp_path):
    path = tmp_path / 'out' / 'replay.npz'
    service = _service(prioritized=True)
    service.observe_policy(42)
    _fill(service, 6, client='a')
    _fill(service, 2, client='b', start=3)
    service.update_priorities(np.arange(10, dtype=np.uint64), np.linspace(0.1, 5, 10))
    service.request('learner', 2, 8)
    _drain(service)
    assert service.dirty and service.save(path) and not service.dirty
    assert not list(path.parent.glob('.*'))  # no temporary file left

    restored = _service(prioritized=True)
    result = restored.restore(path)
    assert result.restored and not result.migrated and result.size == 64 == len(restored)
    np.testing.assert_array_equal(restored.versions, service.versions)
    assert restored.latest_policy_version == 42
    assert restored.intake.summary()['clients'] == service.intake.summary()['clients']
    assert restored.intake.stats.transitions == 64 and restored.counters.snapshots == 1
    assert restored.requesters['learner'].sequence == 2 and restored.outstanding('learner') == 0
    for svc in (service, restored):
        svc.request('learner', 1, 8)
    a, b = _drain(service)[0], _drain(restored)[0]
    assert a.sequence == b.sequence == 2
    np.testing.assert_array_equal(a.batch.indices, b.batch.indices)
    np.testing.assert_array_equal(a.batch.obs, b.batch.obs)
    # the file is still an ordinary ReplayBuffer file
    assert len(ReplayBuffer.load(path)) == 64


def test_restore_after_wrap_around_keeps_slot_versions(tmp_path):
    service = _service(capacity=40, min_size_to_sample=8)
    _fill(service, 7)  # 56 items into 40 slots
    service.save(tmp_path / 'replay.npz')
    restored = _service(capacity=40, min_size_to_sample=8)
    restored.restore(tmp_path / 'replay.npz')
    restored.request('l', 1, 64)
    s = _drain(restored)[0]
    np.testing.assert_array_equal(s.policy_versions, s.batch.obs[:, 0].astype(np.uint64))
    assert set(s.policy_versions.tolist()) <= {2, 3, 4, 5, 6}


def test_changed_settings_migrate_the_newest_transitions_with_their_versions(tmp_path):
    service = _service(capacity=40, min_size_to_sample=8, gamma=0.9)
    _fill(service, 7)  # slots hold versions 2..6 (version 2 partly overwritten)
    service.save(tmp_path / 'replay.npz')
    smaller = _service(capacity=16, min_size_to_sample=8, gamma=0.5, prioritized=True)
    result = smaller.restore(tmp_path / 'replay.npz')
    assert result.restored and result.migrated and len(smaller) == 16
    smaller.request('l', 1, 256)
    s = _drain(smaller)[0]
    assert set(s.policy_versions.tolist()) == {5, 6}  # the newest 16 transitions
    np.testing.assert_array_equal(s.policy_versions, s.batch.obs[:, 0].astype(np.uint64))
    assert set(s.batch.discounts.tolist()) == {0.5}  # gamma rewritten
    assert smaller.buffer.prioritized


def test_snapshot_of_another_env_or_a_broken_file_is_refused(tmp_path):
    service = _service()
    _fill(service, 2)
    service.save(tmp_path / 'replay.npz')
    with pytest.raises(SnapshotRefused, match='test/Env-v0'):
        _service(env_id='other/Env-v0').restore(tmp_path / 'replay.npz')
    (tmp_path / 'broken.npz').write_bytes(b'not a zip file')
    with pytest.raises(SnapshotRefused, match='cannot read'):
        _service().restore(tmp_path / 'broken.npz')
    result = _service().restore(tmp_path / 'missing.npz')
    assert not result.restored and 'no snapshot' in result.reason


def test_a_bare_replay_buffer_file_restores_with_version_zero(tmp_path):
    buffer = ReplayBuffer(256, OBS, ACT, min_size_to_sample=16, seed=3)
    rng = np.random.default_rng(0)
    buffer.add(rng.random((20, OBS)), rng.random((20, ACT)), rng.random(20), rng.random((20, OBS)),
               np.full(20, 0.9))
    buffer.save(tmp_path / 'replay.npz')
    service = _service()
    assert service.restore(tmp_path / 'replay.npz').size == 20
    assert not service.versions.any()
    with pytest.raises(ExperienceRejected, match='obs_dim'):
        service.ingest(_message(0, 0, obs_dim=OBS + 1))  # the file fixed the dimensions


def test_a_failed_snapshot_leaves_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / 'replay.npz'
    service = _service()
    assert not service.save(path) and not path.exists()  # nothing to save yet
    _fill(service, 2)
    service.save(path)
    _fill(service, 2, start=2)

    def broken(*args, **kwargs):
        raise OSError('disk full')
    monkeypatch.setattr(np.lib.format, 'write_array', broken)
    with pytest.raises(OSError, match='disk full'):
        service.save(path)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ['replay.npz'] and service.dirty
    fresh = _service()
    assert fresh.restore(path).size == 16 and fresh.counters.snapshots == 1


# ---- messages ----

def test_sampled_batch_message_round_trip_and_refusals():
    service = _service()
    _fill(service, 3)
    service.observe_policy(5)
    service.request('learner_1', 1, 12)
    served = _drain(service)[0]
    message = SampledBatch.deserialize(fill_sampled_batch(SampledBatch(), served).serialize())
    back = read_sampled_batch(message, 'learner_1', OBS, ACT)  # the learner's reader
    assert (back.sequence, back.replay_size, len(back)) == (0, 24, 12)
    np.testing.assert_array_equal(back.obs, served.batch.obs)
    np.testing.assert_array_equal(back.indices, served.batch.indices)
    np.testing.assert_array_equal(back.policy_versions, served.policy_versions)
    with pytest.raises(ValueError, match='wrong_requester'):
        read_sampled_batch(message, 'learner_2', OBS, ACT)
    with pytest.raises(ValueError, match='wrong_dims'):
        read_sampled_batch(message, 'learner_1', OBS + 1, ACT)
    message.rewards = message.rewards[:-1]
    with pytest.raises(ValueError, match='rewards has 11 values'):
        read_sampled_batch(message, 'learner_1', OBS, ACT)


def test_priority_update_message_round_trip():
    message = fill_priority_update(PriorityUpdate(), [3, 1], [0.5, 2.0])
    indices, priorities = read_priority_update(PriorityUpdate.deserialize(message.serialize()))
    assert indices.dtype == np.uint64 and indices.tolist() == [3, 1] and priorities.tolist() == [0.5, 2.0]
