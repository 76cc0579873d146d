"""The replay journal: what was stored since the last snapshot survives a kill."""
import numpy as np

from dcdrl_cloud.journal import ExperienceJournal
from dcdrl_cloud.replay_service import ReplayService
from dcdrl_cloud.replay_service_config import ReplayServiceConfig
from dcdrl_learning.experience import Experience


def _batch(sequence: int, size: int = 4, obs_dim: int = 3) -> Experience:
    rng = np.random.default_rng(sequence)
    return Experience(client_id='c0', sequence=sequence, policy_version=sequence + 1,
                      obs=rng.random((size, obs_dim), dtype=np.float32),
                      actions=rng.random((size, 1), dtype=np.float32), rewards=rng.random(size, dtype=np.float32),
                      next_obs=rng.random((size, obs_dim), dtype=np.float32),
                      terminated=np.zeros(size, bool), truncated=np.zeros(size, bool), extra_names=('cost',),
                      extras=rng.random((size, 1), dtype=np.float32))


def test_records_round_trip_and_a_torn_tail_is_skipped(tmp_path):
    path = tmp_path / 'replay.journal'
    journal = ExperienceJournal(path)
    journal.open()
    batches = [_batch(k) for k in range(3)]
    for batch in batches:
        journal.append(batch)
    journal.close()
    path.write_bytes(path.read_bytes() + path.read_bytes()[:50])  # a record cut short by a kill
    replay = ExperienceJournal(path).read()
    assert replay.torn == 1 and len(replay.batches) == 3 and replay.transitions == 12
    for got, want in zip(replay.batches, batches):
        assert (got.client_id, got.sequence, got.policy_version, got.extra_names) == \
            (want.client_id, want.sequence, want.policy_version, want.extra_names)
        for name in ('obs', 'actions', 'rewards', 'next_obs', 'terminated', 'extras'):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))


def test_service_restores_snapshot_plus_journal_after_a_kill(tmp_path, monkeypatch):
    config = ReplayServiceConfig(capacity=100, min_size_to_sample=1)
    snapshot, journal_path = tmp_path / 'replay.npz', tmp_path / 'replay.journal'
    first = ReplayService(config)
    first.attach_journal(journal_path)
    stored = []
    monkeypatch.setattr(first.intake, 'validate', lambda experience: experience)  # feed Experience directly
    for k in range(3):
        stored.append(first.ingest(_batch(k)))
    assert first.save(snapshot) and journal_path.stat().st_size == 0  # the snapshot empties the journal
    for k in range(3, 5):
        stored.append(first.ingest(_batch(k)))
    # Killed here: no final snapshot, no close.
    second = ReplayService(config)
    assert second.restore(snapshot).size == 12
    replayed = second.attach_journal(journal_path)
    assert len(replayed.batches) == 2 and replayed.torn == 0
    assert len(second) == 20
    assert list(second.versions[:20]) == [b.policy_version for b in stored for _ in range(4)]
