"""Rate limiter: Reverb SampleToInsertRatio semantics, blocking and release across threads."""
import threading

import numpy as np
import pytest

from dcdrl_learning.replay import RateLimiter, RateLimitTimeout, ReplayBuffer


def test_min_size_gate():
    lim = RateLimiter(min_size_to_sample=3)
    assert not lim.can_sample(1)
    lim.insert(2)
    assert not lim.can_sample(1)
    lim.insert(1)
    assert lim.can_sample(1_000_000)  # MinSize: no ratio limit
    assert lim.can_insert(1_000_000)
    lim.insert(0, deletes=1)  # size falls below the gate again
    assert not lim.can_sample(1)


def test_sample_to_insert_ratio_bounds():
    # spi 2, min size 10, error_buffer 6: error must stay in [20 - 6, 20 + 6].
    lim = RateLimiter(min_size_to_sample=10, samples_per_insert=2.0, error_buffer=6)
    assert lim.can_insert(10) and not lim.can_sample(1)  # stage 1: inserts are free
    lim.insert(10)  # error = 20
    assert lim.can_sample(6) and not lim.can_sample(7)  # 20 - 6 = 14 >= 14; 13 < 14
    assert lim.can_insert(3) and not lim.can_insert(4)  # 26 <= 26; 28 > 26
    lim.sample(6)  # error = 14
    assert not lim.can_sample(1)
    assert lim.can_insert(6) and not lim.can_insert(7)  # 14 + 12 = 26; 14 + 14 = 28
    lim.insert(6)  # error = 26
    assert lim.can_sample(12) and not lim.can_sample(13)
    assert not lim.can_insert(1)


def test_error_buffer_pair_is_used_without_offset():
    lim = RateLimiter(min_size_to_sample=1, samples_per_insert=1.0, error_buffer=(-4.0, 4.0))
    lim.insert(1)  # error = 1
    assert lim.can_sample(5) and not lim.can_sample(6)


def test_invalid_configs():
    with pytest.raises(ValueError, match='min_size_to_sample'):
        RateLimiter(min_size_to_sample=0)
    with pytest.raises(ValueError, match=r'2 \* max\(1, samples_per_insert\)'):
        RateLimiter(min_size_to_sample=1, samples_per_insert=4.0, error_buffer=3.0)
    with pytest.raises(ValueError, match='deadlock'):
        RateLimiter(min_size_to_sample=1, samples_per_insert=1.0, error_buffer=(5.0, 20.0))
    with pytest.raises(ValueError, match='samples_per_insert'):
        RateLimiter(samples_per_insert=float('nan'))


def test_request_that_can_never_pass_raises():
    lim = RateLimiter(min_size_to_sample=1, samples_per_insert=1.0, error_buffer=4.0)
    lim.insert(1)
    with pytest.raises(ValueError, match='sample of 20 items'):
        lim.await_can_sample(20, timeout=1.0)
    with pytest.raises(ValueError, match='insert of 20 items'):
        lim.await_can_insert(20, timeout=1.0)


def test_waits_time_out_and_return_false():
    lim = RateLimiter(min_size_to_sample=5)
    assert lim.await_can_sample(1, timeout=0.01) is False
    assert lim.await_can_sample(1, timeout=0) is False


def test_sampler_blocks_until_min_size_then_is_released():
    buf = ReplayBuffer(100, 2, 1, min_size_to_sample=8, seed=0)
    result = {}

    def learner():
        try:
            result['batch'] = buf.sample(4, timeout=30.0)
        except Exception as exc:  # pragma: no cover - reported below
            result['error'] = exc

    t = threading.Thread(target=learner)
    t.start()
    obs = np.zeros((8, 2))
    buf.add(obs, np.zeros((8, 1)), np.zeros(8), obs, np.ones(8))  # wakes the learner
    t.join(timeout=30.0)
    assert not t.is_alive()
    assert 'error' not in result, result
    assert len(result['batch']) == 4


def test_inserter_blocks_on_ratio_and_is_released_by_sampling():
    # spi = 1, min size 4, error within [4 - 4, 4 + 4]: an actor may run at most 4 items ahead.
    buf = ReplayBuffer(1000, 1, 1, min_size_to_sample=4, samples_per_insert=1.0, error_buffer=4.0, seed=0)

    def add(n, **kw):
        z = np.zeros((n, 1))
        return buf.add(z, z, np.zeros(n), z, np.ones(n), **kw)

    add(4)
    add(4)  # error = 8: the upper bound
    assert not buf.can_insert(1)
    with pytest.raises(RateLimitTimeout, match='not sampling fast enough'):
        add(1)  # default timeout 0: refused at once
    with pytest.raises(RateLimitTimeout):
        add(1, timeout=0.01)  # a bounded wait that nobody releases
    assert buf.stats()['rate_limited'] == 2
    assert len(buf) == 8

    result = {}

    def actor():
        try:
            result['indices'] = add(2, timeout=30.0)
        except Exception as exc:  # pragma: no cover - reported below
            result['error'] = exc

    t = threading.Thread(target=actor)
    t.start()
    buf.sample(2)  # error 8 -> 6: room for 2 more inserts; the actor proceeds
    t.join(timeout=30.0)
    assert not t.is_alive()
    assert 'error' not in result, result
    assert len(result['indices']) == 2 and len(buf) == 10
    stats = buf.stats()
    assert stats['inserts'] == 10 and stats['samples'] == 2


def test_ratio_is_kept_over_a_threaded_run():
    spi = 2.0
    buf = ReplayBuffer(10_000, 1, 1, min_size_to_sample=64, samples_per_insert=spi,
                       error_buffer=512.0, seed=0)
    stop = threading.Event()
    errors = []

    def actor():
        try:
            z = np.zeros((16, 1))
            for _ in range(100):
                buf.add(z, z, np.zeros(16), z, np.ones(16), timeout=30.0)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)
        finally:
            stop.set()

    def learner():
        try:
            while buf.stats()['samples'] < 100 * 16 * spi - 600:
                buf.sample(32, timeout=30.0)
        except Exception as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=actor), threading.Thread(target=learner)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60.0)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    s = buf.stats()
    error = s['inserts'] * spi - s['samples']
    offset = spi * 64
    assert offset - 512 <= error <= offset + 512
