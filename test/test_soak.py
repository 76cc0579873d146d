"""Two minutes of every training and edge node together: memory stays flat (bench/soak.py, quick).

The 30-minute soak is a benchmark (`python bench/soak.py`), not part of the suite.
"""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'bench'))
from soak import soak  # noqa: E402

pytestmark = [pytest.mark.dds, pytest.mark.slow]


def test_every_node_keeps_flat_memory_for_two_minutes(tmp_path, monkeypatch):
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    result = soak(duration_s=120.0, warmup_s=60.0, sample_s=5.0, max_growth_mb=20.0, max_growth_pct=5.0,
                  output=tmp_path)
    nodes = result['nodes']
    assert set(nodes) == {'replay_buffer', 'learner', 'parameter_server', 'client_0', 'edge_learner', 'controller',
                          'controller_lp', 'controller_lp.loop'}
    for name, row in nodes.items():
        assert row.get('exited_early') is None, f'{name} exited during the soak: {row}'
        assert row['flat'], f'{name} memory grew: {row}'
