"""ReplayBuffer facade: storage, validation, combined replay, save/load, thread safety."""
import json
import os
import threading
import zipfile

import numpy as np
import pytest

from dcdrl_learning.replay import RateLimitTimeout, ReplayBuffer, RingStorage

OBS, ACT = 3, 2


def batch(ids, obs_dim=OBS, act_dim=ACT):
    """Transitions whose every field encodes the id, so torn or mixed rows are detectable."""
    ids = np.asarray(ids, dtype=np.float64)
    b = ids.shape[0]
    return dict(obs=np.repeat(ids[:, None], obs_dim, 1), actions=np.repeat(ids[:, None], act_dim, 1) / 1000.0,
                rewards=ids, next_obs=np.repeat(ids[:, None] + 1, obs_dim, 1),
                discounts=np.full(b, 0.5))


def assert_consistent(b):
    ids = b.rewards
    np.testing.assert_array_equal(b.obs, np.repeat(ids[:, None], b.obs.shape[1], 1))
    np.testing.assert_array_equal(b.next_obs, np.repeat(ids[:, None] + 1, b.obs.shape[1], 1))
    np.testing.assert_allclose(b.actions, np.repeat(ids[:, None], b.actions.shape[1], 1) / 1000.0, rtol=1e-6)


def test_ring_storage_wraps_around():
    st = RingStorage(10, [('x', 1)])
    np.testing.assert_array_equal(st.add_rows(np.arange(7, dtype=np.float32)[:, None]), np.arange(7))
    idx = st.add_rows(np.arange(7, 14, dtype=np.float32)[:, None])
    np.testing.assert_array_equal(idx, [7, 8, 9, 0, 1, 2, 3])
    assert st.size == 10 and st.cursor == 4 and st.newest_index == 3
    np.testing.assert_array_equal(st.data[:, 0], [10, 11, 12, 13, 4, 5, 6, 7, 8, 9])
    np.testing.assert_array_equal(st.data[st.chronological_indices(), 0], np.arange(4, 14))


def test_batch_larger_than_capacity_keeps_the_newest():
    buf = ReplayBuffer(5, OBS, ACT, seed=0)
    idx = buf.add(**batch(np.arange(12)))
    assert len(buf) == 5 and len(idx) == 5
    assert sorted(buf._storage.data[:, 0].tolist()) == [7, 8, 9, 10, 11]
    assert buf.stats()['inserts'] == 5


def test_sample_fields_types_and_consistency():
    buf = ReplayBuffer(100, OBS, ACT, seed=0)
    buf.add(**batch(np.arange(50)))
    b = buf.sample(32)
    assert len(b) == 32
    for name in ('obs', 'actions', 'rewards', 'next_obs', 'discounts', 'weights'):
        assert getattr(b, name).dtype == np.float32, name
    assert b.indices.dtype == np.int64
    assert b.obs.shape == (32, OBS) and b.actions.shape == (32, ACT) and b.rewards.shape == (32,)
    np.testing.assert_array_equal(b.weights, 1.0)
    np.testing.assert_array_equal(b.discounts, 0.5)
    assert_consistent(b)
    np.testing.assert_array_equal(b.rewards, b.indices)  # id == slot before any wrap


def test_integer_inputs_are_accepted_as_float32():
    buf = ReplayBuffer(10, 2, 1)
    buf.add(np.ones((2, 2), dtype=np.int64), np.zeros((2, 1), dtype=np.int32), [1, 2], np.ones((2, 2)), [1, 0])
    assert len(buf) == 2


@pytest.mark.parametrize('field, value, err, match', [
    ('obs', np.zeros((4, OBS + 1)), ValueError, r'obs must have shape \[4, 3\], got \[4, 4\]'),
    ('actions', np.zeros((4,)), ValueError, r'actions must have shape \[4, 2\]'),
    ('rewards', np.zeros((4, 1)), ValueError, r'rewards must have shape \[4\]'),
    ('next_obs', np.full((4, OBS), np.nan), ValueError, 'next_obs contains 12 NaN'),
    ('rewards', np.array([1e300, 0, 0, 0]), ValueError, 'float32 range'),
    ('discounts', np.array([0.5, 1.5, 0.5, 0.5]), ValueError, r'discounts must lie in \[0, 1\]'),
    ('obs', np.zeros((4, OBS), dtype=bool), TypeError, 'real numeric'),
    ('actions', np.array([['a', 'b']] * 4), TypeError, 'real numeric'),
])
def test_bad_batches_are_rejected_whole(field, value, err, match):
    buf = ReplayBuffer(10, OBS, ACT)
    buf.add(**batch([100]))
    good = batch(np.arange(4))
    good[field] = value
    with pytest.raises(err, match=match):
        buf.add(**good)
    assert len(buf) == 1  # nothing from the bad batch was stored
    assert buf.stats()['rejected'] == 1
    assert buf.sample(1).rewards[0] == 100


def test_combined_replay_puts_newest_transition_in_every_batch():
    for prioritized in (False, True):
        buf = ReplayBuffer(1000, OBS, ACT, combined=True, prioritized=prioritized, seed=3)
        buf.add(**batch(np.arange(500)))
        for new_id in range(500, 520):
            buf.add(**batch([new_id]))
            b = buf.sample(16)
            assert new_id in b.rewards.tolist()
            assert b.indices[-1] == new_id
            assert_consistent(b)
            if prioritized:
                assert np.all(b.weights > 0) and b.weights.max() == pytest.approx(1.0)


def test_without_combined_the_newest_is_usually_missing():
    buf = ReplayBuffer(1000, OBS, ACT, seed=3)
    buf.add(**batch(np.arange(500)))
    hits = sum(499 in buf.sample(16).rewards.tolist() for _ in range(20))
    assert hits < 5


def test_sample_before_min_size_raises_clearly():
    buf = ReplayBuffer(100, OBS, ACT, min_size_to_sample=10)
    buf.add(**batch(np.arange(9)))
    with pytest.raises(RateLimitTimeout, match='min_size_to_sample=10'):
        buf.sample(4)
    assert not buf.can_sample(4)
    buf.add(**batch([9]))
    assert buf.can_sample(4)
    assert len(buf.sample(4)) == 4


def test_bad_config_values():
    with pytest.raises(ValueError, match='capacity'):
        ReplayBuffer(0, 1, 1)
    with pytest.raises(ValueError, match='obs_dim'):
        ReplayBuffer(10, 0, 1)
    with pytest.raises(ValueError, match='min_size_to_sample'):
        ReplayBuffer(10, 1, 1, min_size_to_sample=11)
    with pytest.raises(ValueError, match='samples_per_insert'):
        ReplayBuffer(10, 1, 1, samples_per_insert=-1.0)
    buf = ReplayBuffer(10, 1, 1)
    with pytest.raises(ValueError, match='batch_size'):
        buf.sample(0)


@pytest.mark.parametrize('prioritized', [False, True])
def test_save_load_roundtrip_continues_identically(tmp_path, prioritized):
    buf = ReplayBuffer(64, OBS, ACT, prioritized=prioritized, samples_per_insert=2.0,
                       error_buffer=(-1000.0, 1000.0), seed=5)
    buf.add(**batch(np.arange(100)))  # wraps
    b = buf.sample(16)
    buf.update_priorities(b.indices, np.linspace(0, 3, 16))
    path = tmp_path / 'sub' / 'replay.npz'
    buf.save(path)
    assert sorted(os.listdir(path.parent)) == ['replay.npz']  # no temporary file left
    loaded = ReplayBuffer.load(path)
    assert loaded.stats() == buf.stats()
    assert len(loaded) == 64 and loaded.capacity == 64
    np.testing.assert_array_equal(loaded._storage.data, buf._storage.data)
    for _ in range(3):
        x, y = buf.sample(8), loaded.sample(8)
        np.testing.assert_array_equal(x.indices, y.indices)
        np.testing.assert_array_equal(x.obs, y.obs)
        np.testing.assert_array_equal(x.weights, y.weights)
    np.testing.assert_array_equal(buf.add(**batch([1000])), loaded.add(**batch([1000])))


def test_save_has_no_pickle_and_readable_metadata(tmp_path):
    buf = ReplayBuffer(8, OBS, ACT, seed=1)
    buf.add(**batch(np.arange(3)))
    path = tmp_path / 'r.npz'
    buf.save(path)
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z['meta_json'].tobytes())
        assert z['rows'].shape == (3, 2 * OBS + ACT + 2)
    assert meta['format'] == 'dcdrl-replay' and meta['size'] == 3 and meta['config']['obs_dim'] == OBS


def test_load_rejects_bad_files(tmp_path):
    garbage = tmp_path / 'garbage.npz'
    garbage.write_bytes(b'not a zip file')
    with pytest.raises(ValueError, match='cannot read'):
        ReplayBuffer.load(garbage)
    other = tmp_path / 'other.npz'
    np.savez(other, x=np.zeros(3))
    with pytest.raises(ValueError, match='not a dcdrl-replay file'):
        ReplayBuffer.load(other)
    pickled = tmp_path / 'pickled.npz'
    np.savez(pickled, rows=np.array([{'a': 1}], dtype=object), meta_json=np.zeros(2, np.uint8))
    with pytest.raises(ValueError):
        ReplayBuffer.load(pickled)
    # A valid file whose rows were tampered with (wrong width).
    buf = ReplayBuffer(8, OBS, ACT)
    buf.add(**batch(np.arange(3)))
    good = tmp_path / 'good.npz'
    buf.save(good)
    with np.load(good) as z:
        meta = z['meta_json']
    bad = tmp_path / 'bad.npz'
    np.savez(bad, rows=np.zeros((3, 5), np.float32), meta_json=meta)
    with pytest.raises(ValueError, match='rows must be float32'):
        ReplayBuffer.load(bad)
    assert zipfile.is_zipfile(good)


def test_concurrent_add_and_sample_never_tear_rows():
    buf = ReplayBuffer(256, OBS, ACT, prioritized=True, seed=0)
    buf.add(**batch(np.arange(16)))
    errors = []
    done = threading.Event()

    def writer(start):
        try:
            for i in range(200):
                buf.add(**batch(start + i * 8 + np.arange(8)))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader():
        try:
            while not done.is_set():
                b = buf.sample(32)
                assert_consistent(b)
                buf.update_priorities(b.indices, np.abs(b.rewards) % 7)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(s,)) for s in (10_000, 20_000)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join(timeout=60)
    done.set()
    for t in readers:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in writers + readers)
    assert not errors, errors
    assert buf.stats()['inserts'] == 16 + 2 * 200 * 8


def test_numpy_scalar_config_saves_as_json(tmp_path):
    buf = ReplayBuffer(np.int64(16), OBS, ACT, prioritized=True, alpha=np.float32(0.5), seed=np.int64(3),
                       samples_per_insert=np.float64(2.0), error_buffer=np.float32(600.0))
    buf.add(**batch(np.arange(4)))
    buf.save(tmp_path / 'r.npz')
    assert ReplayBuffer.load(tmp_path / 'r.npz').stats() == buf.stats()
    with pytest.raises(TypeError, match='seed'):
        ReplayBuffer(8, 1, 1, seed=np.random.default_rng(0))
