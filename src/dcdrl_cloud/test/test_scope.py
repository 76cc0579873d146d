"""The live view's data window and rendering (no ROS)."""
import math

import numpy as np
import pytest

from dcdrl_cloud.scope import ScopeData, draw_scope, save_scope_png


def test_window_keeps_the_newest_steps_and_converts_the_angle():
    data = ScopeData(window_s=4 / 30 + 1e-9)
    for k in range(8):
        theta = 0.1 * k
        assert data.add_step(k / 30, [0.01 * k, 0, math.sin(theta), math.cos(theta), 0], [0.5])
    a = data.arrays()
    assert len(a['time']) == 5 and a['time'][-1] == 0.0 and a['time'][0] == pytest.approx(-4 / 30)
    np.testing.assert_allclose(a['theta'], [0.3, 0.4, 0.5, 0.6, 0.7], atol=1e-12)
    np.testing.assert_allclose(a['x'], [0.03, 0.04, 0.05, 0.06, 0.07])


@pytest.mark.parametrize('rate_hz', [30.0, 150.0, 1000.0])
def test_the_window_is_ten_seconds_of_stamps_whatever_the_loop_rate(rate_hz):
    # The pretrain loop runs at 150 Hz: a window sized in steps for 30 Hz showed 2 s there.
    data = ScopeData()
    for k in range(int(25 * rate_hz)):
        data.add_step(100.0 + k / rate_hz, [0.0, 0.0, 0.0, 1.0, 0.0], [math.sin(k / rate_hz)])
    time = data.arrays()['time']
    assert time[-1] == 0.0 and -10.0 <= time[0] < -10.0 + 1.5 / rate_hz
    assert len(time) == pytest.approx(10 * rate_hz, abs=2)
    line = draw_scope(data).axes[0].lines[0]  # what the PNG shows: the action over the last 10 s
    assert min(line.get_xdata()) == pytest.approx(-10.0, abs=1.5 / rate_hz) and max(line.get_xdata()) == 0.0
    data.set_window(2.0)  # window_s is live
    assert data.arrays()['time'][0] >= -2.0


def test_bad_steps_and_returns_are_refused_and_counted():
    data = ScopeData()
    assert not data.add_step(0.0, [0.0, 0.0, math.nan, 1.0], [0.0])
    assert not data.add_step(0.0, [0.0, 0.0], [0.0])           # too short
    assert not data.add_step(0.0, [0.0, 0.0, 0.0, 1.0], [])    # no action
    assert not data.add_episode(1, math.inf)
    assert data.refused == 4 and len(data.steps) == 0 and len(data.episodes) == 0
    with pytest.raises(ValueError):
        ScopeData(window_s=0.0)


def test_png_is_written_even_before_any_data(tmp_path):
    empty = save_scope_png(ScopeData(), tmp_path / 'empty.png')
    data = ScopeData()
    for k in range(100):
        data.add_step(k / 30, [0.0, 0.0, math.sin(k), math.cos(k), 0.0], [math.sin(k / 5)])
    data.add_episode(1, 3.0)
    data.add_episode(2, 7.5, evaluation=True)
    full = save_scope_png(data, tmp_path / 'scope.png')
    for path in (empty, full):
        assert path.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    figure = draw_scope(data)
    assert len(figure.axes) == 4
