"""The learners take live parameter changes (ros2 param set on their nodes): checked as at start,
periods rescheduled from the moment of the change, fields read at start refused."""
import math
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_learner import Clock, make_learner  # noqa: E402  (the learners' own test helpers)
from test_segment_learner import make_learner as make_segment_learner  # noqa: E402


def test_the_learner_reschedules_changed_periods(tmp_path):
    clock = Clock()
    learner, _out = make_learner(tmp_path, clock=clock)
    learner.start()
    assert learner._next_eval == math.inf   # eval_period_s 0: off
    clock.now += 3.0
    config = learner.reconfigure(eval_period_s=5.0, stats_period_s=2.5, publish_every_updates=7)
    assert learner.config is config and config.publish_every_updates == 7
    assert learner._next_eval == clock.now + 5.0 and learner._next_stats == clock.now + 2.5
    learner.reconfigure(checkpoint_period_s=0.0, eval_period_s=0.0)
    assert learner._next_checkpoint == math.inf and learner._next_eval == math.inf


def test_the_learner_checks_changes_as_at_start_and_refuses_fixed_fields(tmp_path):
    learner, _out = make_learner(tmp_path)
    with pytest.raises(ValueError, match='publish_every_updates must be >= 1'):
        learner.reconfigure(publish_every_updates=0)
    with pytest.raises(ValueError, match='batch_size cannot change while the learner runs'):
        learner.reconfigure(batch_size=32)
    assert learner.config.publish_every_updates == 5 and learner.config.batch_size == 64


def test_the_segment_learner_reschedules_and_refuses(tmp_path):
    clock = Clock()
    learner, _out = make_segment_learner(tmp_path, clock=clock)
    learner.start()
    clock.now += 1.0
    learner.reconfigure(publish_period_s=2.0, checkpoint_period_s=5.0, stop_when_converged=False)
    assert learner._next_publish == clock.now + 2.0 and learner._next_checkpoint == clock.now + 5.0
    assert learner.config.stop_when_converged is False
    with pytest.raises(ValueError, match='buffer_size cannot change'):
        learner.reconfigure(buffer_size=10)
