"""RateLoop (absolute deadlines, misses, no catch-up bursts) on a fake clock; WindowStats summaries."""
import numpy as np
import pytest

from dcdrl_edge.timing import RateLoop, WindowStats, check_rate_hz, switch_interval_for


class FakeClock:
    """A monotonic clock in ns that moves only when told to, by sleep(), or by `tick_ns` per read
    (so a busy-spin terminates, like real time passing)."""

    def __init__(self, start_ns: int = 1_000_000_000, tick_ns: int = 100) -> None:
        self.now = start_ns
        self.tick_ns = tick_ns
        self.sleeps: list[float] = []

    def __call__(self) -> int:
        self.now += self.tick_ns
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += int(seconds * 1e9)

    def advance(self, ns: int) -> None:
        self.now += ns


def make_loop(rate_hz=100.0, spin_s=0.0002, tick_ns=100):
    clock = FakeClock(tick_ns=tick_ns)
    return RateLoop(rate_hz, spin_s=spin_s, clock_ns=clock, sleep=clock.sleep), clock


def test_deadlines_are_absolute_and_do_not_drift():
    loop, clock = make_loop(rate_hz=100.0)            # 10 ms period
    loop.wait_next()
    start = loop.next_deadline_ns - loop.period_ns
    starts = []
    for k in range(1, 501):
        # Each step takes a different amount of work (up to 7 ms): must not shift later deadlines.
        clock.advance(int((k * 7919) % 7_000_000))
        late = loop.wait_next()
        starts.append(clock.now)
        assert 0 <= late < 10_000                    # within the spin's clock granularity
    assert loop.misses == 0 and loop.steps == 501
    expected = start + np.arange(1, 501) * loop.period_ns
    assert np.all(np.asarray(starts) >= expected)
    assert np.max(np.asarray(starts) - expected) < 10_000   # step 500 is as punctual as step 1: no drift
    assert loop.next_deadline_ns == start + 501 * loop.period_ns


def test_sleeps_until_spin_window_then_spins():
    loop, clock = make_loop(rate_hz=100.0, spin_s=0.001)
    loop.wait_next()
    before = clock.now
    loop.wait_next()
    # One sleep of about period - spin (9 ms), the last millisecond spun.
    assert len(clock.sleeps) == 1
    assert clock.sleeps[0] == pytest.approx(0.009, abs=1e-5)
    assert clock.now - before >= 10_000_000 - 1_000


def test_no_sleep_when_work_overlaps_the_spin_window():
    loop, clock = make_loop(rate_hz=1000.0, spin_s=0.0002)
    loop.wait_next()
    clock.advance(900_000)                            # 0.9 ms of a 1 ms period already used
    late = loop.wait_next()
    assert clock.sleeps == [] and late >= 0


def test_a_late_step_counts_one_miss_and_skips_to_the_next_future_deadline():
    loop, clock = make_loop(rate_hz=100.0)
    loop.wait_next()
    origin = loop.next_deadline_ns - loop.period_ns
    loop.wait_next()                                  # step 1 at origin + 10 ms
    clock.advance(35_000_000)                         # a 35 ms stall: deadlines 2, 3, 4 pass
    late = loop.wait_next()
    assert late >= loop.period_ns                     # ~25 ms late against deadline 2
    assert loop.misses == 1 and loop.skipped == 2     # deadlines 3 and 4 are skipped, no catch-up
    assert loop.next_deadline_ns == origin + 5 * loop.period_ns
    late = loop.wait_next()                           # the next step is on the grid again
    assert 0 <= late < 10_000
    assert clock.now - origin >= 5 * loop.period_ns
    assert loop.misses == 1 and loop.steps == 4


def test_slightly_late_step_is_not_a_miss():
    loop, clock = make_loop(rate_hz=100.0)
    loop.wait_next()
    clock.advance(loop.period_ns + loop.period_ns // 2)   # 1.5 periods of work: late 0.5 period
    late = loop.wait_next()
    assert loop.period_ns // 2 <= late < loop.period_ns
    assert loop.misses == 0


@pytest.mark.parametrize('rate', [0.5, 0, -3, 10001, float('nan'), float('inf')])
def test_rate_out_of_range_is_refused(rate):
    with pytest.raises(ValueError, match='rate_hz'):
        RateLoop(rate)


def test_rate_type_and_spin_checks():
    with pytest.raises(TypeError, match='rate_hz'):
        check_rate_hz('30')
    with pytest.raises(ValueError, match='spin_s'):
        RateLoop(30.0, spin_s=-1.0)
    assert RateLoop(1).period_ns == 1_000_000_000
    assert RateLoop(10000).period_ns == 100_000
    assert RateLoop(30.0).period_ns == 33_333_333


def test_window_stats_percentiles_and_window():
    stats = WindowStats(100)
    assert stats.summary() == {'p50': 0.0, 'p99': 0.0, 'max': 0.0, 'count': 0}
    for value in range(1, 101):
        stats.add(float(value))
    summary = stats.summary()
    assert summary['count'] == 100 and summary['max'] == 100.0
    assert summary['p50'] == pytest.approx(50.5)
    assert summary['p99'] == pytest.approx(np.percentile(np.arange(1, 101), 99))
    for _ in range(100):                               # a full window later only the new samples count
        stats.add(7.0)
    assert stats.summary() == {'p50': 7.0, 'p99': 7.0, 'max': 7.0, 'count': 100}
    stats.add(1000.0)
    assert stats.summary()['max'] == 1000.0 and stats.total == 201
    assert list(stats.values()[-2:]) == [7.0, 1000.0]
    stats.clear()
    assert stats.summary()['count'] == 0 and len(stats) == 0


def test_window_stats_rejects_bad_window():
    for window in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match='window'):
            WindowStats(window)


def test_switch_interval_for_rates():
    assert switch_interval_for(30) == pytest.approx(1 / 300)
    assert switch_interval_for(1) == 0.005 and switch_interval_for(200) == pytest.approx(0.0005)
    assert switch_interval_for(10000) == 0.0001
    with pytest.raises(ValueError):
        switch_interval_for(0)


def test_an_interrupting_sleep_returns_without_spinning():
    clock = FakeClock()
    calls = []

    def stop_wait(seconds):      # like threading.Event.wait on a stop event that is set
        calls.append(seconds)
        return True

    loop = RateLoop(1.0, clock_ns=clock, sleep=stop_wait)
    loop.wait_next()
    before = clock.now
    assert loop.wait_next() == 0
    assert len(calls) == 1 and clock.now - before < 1_000_000   # no busy-spin through the 1 s period
    assert loop.steps == 1


def test_realtime_priority_applies_to_the_calling_thread_or_says_why_not():
    import os
    import threading

    from dcdrl_edge.timing import set_realtime_priority
    for bad in (0, 100, -1, 1.5, True):
        with pytest.raises(ValueError):
            set_realtime_priority(bad)
    seen = {}

    def worker():   # a thread of its own: the test's thread keeps its normal scheduling
        seen['result'] = set_realtime_priority(10)
        seen['policy'] = os.sched_getscheduler(0)
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(5.0)
    ok, error_number = seen['result']
    if ok:
        assert error_number == 0 and seen['policy'] == os.SCHED_FIFO
    else:   # no privilege here: refused with the errno, nothing changed
        assert error_number > 0 and seen['policy'] != os.SCHED_FIFO
    assert os.sched_getscheduler(0) != os.SCHED_FIFO
