"""The live view's data window and rendering (no ROS)."""
import math

import numpy as np
import pytest

from dcdrl_cloud.scope import ScopeData, draw_scope, save_scope_png


def test_window_keeps_the_newest_steps_and_converts_the_angle():
    data = ScopeData(window_steps=5)
    for k in range(8):
        theta = 0.1 * k
        assert data.add_step(k / 30, [0.01 * k, 0, math.sin(theta), math.cos(theta), 0], [0.5])
    a = data.arrays()
    assert len(a['time']) == 5 and a['time'][-1] == 0.0 and a['time'][0] == pytest.approx(-4 / 30)
    np.testing.assert_allclose(a['theta'], [0.3, 0.4, 0.5, 0.6, 0.7], atol=1e-12)
    np.testing.assert_allclose(a['x'], [0.03, 0.04, 0.05, 0.06, 0.07])


def test_bad_steps_and_returns_are_refused_and_counted():
    data = ScopeData()
    assert not data.add_step(0.0, [0.0, 0.0, math.nan, 1.0], [0.0])
    assert not data.add_step(0.0, [0.0, 0.0], [0.0])           # too short
    assert not data.add_step(0.0, [0.0, 0.0, 0.0, 1.0], [])    # no action
    assert not data.add_episode(1, math.inf)
    assert data.refused == 4 and len(data.steps) == 0 and len(data.episodes) == 0
    with pytest.raises(ValueError):
        ScopeData(window_steps=1)


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
