"""ExperienceBatch <-> arrays: round trip and every refusal."""
import numpy as np
import pytest

from dcdrl_learning.experience import ExperienceRejected, fill_experience, read_experience
from dcdrl_ros import runtime  # noqa: F401  (interface import hook)

from dcdrl_msgs.msg import ExperienceBatch


def _batch(rng, batch=5, obs_dim=7, action_dim=3, **overrides):
    values = dict(client_id='c0', sequence=4, policy_version=9, obs=rng.random((batch, obs_dim)),
                  actions=rng.random((batch, action_dim)), rewards=rng.random(batch),
                  next_obs=rng.random((batch, obs_dim)), terminated=rng.random(batch) < 0.3,
                  truncated=np.zeros(batch, bool), extra_names=['latency_s', 'energy_j'],
                  extras=rng.random((batch, 2)))
    values.update(overrides)
    return values, fill_experience(ExperienceBatch(), **values)


def test_round_trip_through_the_wire_format():
    values, message = _batch(np.random.default_rng(0))
    experience = read_experience(ExperienceBatch.deserialize(message.serialize()))
    assert (experience.client_id, experience.sequence, experience.policy_version) == ('c0', 4, 9)
    np.testing.assert_allclose(experience.obs, values['obs'].astype(np.float32))
    np.testing.assert_array_equal(experience.terminated, values['terminated'])
    np.testing.assert_allclose(experience.extra('energy_j'), values['extras'][:, 1].astype(np.float32))
    assert experience.extra('unknown') is None and len(experience) == 5


@pytest.mark.parametrize('mutate, reason', [
    (lambda m: setattr(m, 'obs', m.obs[:-1]), 'obs has 34 values, expected 35'),
    (lambda m: setattr(m, 'batch_size', 0), 'must be > 0'),
    (lambda m: m.rewards.__setitem__(2, np.nan), 'rewards contains NaN or Inf'),
    (lambda m: m.next_obs.__setitem__(0, np.inf), 'next_obs contains NaN or Inf'),
    (lambda m: setattr(m, 'extra_names', ['only_one']), 'extras has 10 values, expected 5'),
    # size limits of the strings (docs/robustness.md, G1)
    (lambda m: setattr(m, 'client_id', 'c' * 65), 'client_id must have 1 to 64 characters, got 65 characters'),
    (lambda m: setattr(m, 'client_id', ''), 'client_id must have 1 to 64 characters, got 0 characters'),
    (lambda m: setattr(m, 'extra_names', ['x'] * 33), '33 extra_names, at most 32'),
    (lambda m: setattr(m, 'extra_names', ['latency_s', 'e' * 65]), 'each extra name must have 1 to 64 characters'),
])
def test_bad_batches_are_refused_with_the_reason(mutate, reason):
    _, message = _batch(np.random.default_rng(1))
    mutate(message)
    with pytest.raises(ExperienceRejected, match=reason.replace('(', r'\(')):
        read_experience(message)


def test_unexpected_dimensions_are_refused():
    _, message = _batch(np.random.default_rng(2))
    with pytest.raises(ExperienceRejected, match='obs_dim 7, expected 73'):
        read_experience(message, obs_dim=73)
    with pytest.raises(ExperienceRejected, match='action_dim 3, expected 20'):
        read_experience(message, action_dim=20)
