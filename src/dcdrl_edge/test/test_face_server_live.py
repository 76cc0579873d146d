"""The face server's default tolerance changes while it runs (ros2 param set tolerance), checked as at start."""
import pytest

from dcdrl_edge.face_server import FaceServerConfig, FaceServerLogic


class Engine:
    """Stands in for FaceEngine: only its default tolerance matters here."""
    tolerance = 0.5


def test_set_tolerance_reaches_the_engine_and_refuses_out_of_range():
    engine = Engine()
    logic = FaceServerLogic(FaceServerConfig(), engine=engine)
    logic.set_tolerance(0.3)
    assert engine.tolerance == 0.3 and logic.config.tolerance == 0.3
    with pytest.raises(ValueError, match=r'tolerance must be in \(0, 1\]'):
        logic.set_tolerance(1.5)
    assert engine.tolerance == 0.3 and logic.config.tolerance == 0.3
