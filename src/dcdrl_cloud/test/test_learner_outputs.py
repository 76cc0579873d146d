"""What a training run leaves and says: the learner writes the run report itself (at the end and when
stopped), the learning curve ends at the final table's number on a log axis, the final evaluation is
in the scalars (TensorBoard), the learning rates are parameters, and a learner without batches says
what it waits for instead of printing NaN losses."""
import csv
import math
import os
import sys

import pytest

from dcdrl_cloud.batches import waiting_for_replay
from dcdrl_cloud.learner import LearnerConfig
from dcdrl_cloud.report import first_at_or_below, learning_curve

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_learner import Clock, feed, make_learner  # noqa: E402  (the learner's own test helpers)


def scalar_rows(learner):
    with open(learner.logger.run_dir / 'scalars.csv', newline='') as handle:
        return list(csv.DictReader(handle))


def test_a_learner_without_batches_says_what_it_waits_for_instead_of_nan_losses(tmp_path, capsys):
    clock = Clock()
    learner, out = make_learner(tmp_path, clock=clock, progress_period_s=10.0, stats_period_s=1.0)
    learner.start()
    waiting = []
    for second in range(25):
        clock.now += 1.0
        if second == 12:
            learner.observe_replay(380, 380)
        learner.step(0.0)
        waiting = [text for level, text in out.lines if text.startswith('waiting for')]
    # Throttled: one line per progress period (at 1, 11 and 21 s), none with a NaN loss printed.
    assert waiting == ['waiting for the replay buffer (nothing on replay/stats yet: is it running, in this '
                       'namespace?)'] * 2 + ['waiting for the replay buffer (380 / 1,000 transitions)']
    assert 'nan' not in capsys.readouterr().out
    feed(learner, 3)  # batches arrive: the usual progress line takes over
    clock.now += 11.0
    learner.step(0.0)
    assert 'critic_loss' in capsys.readouterr().out
    learner.close(evaluate=False)


def test_waiting_line_once_the_replay_holds_enough():
    assert waiting_for_replay(1500, 1000) == 'waiting for the replay buffer (1,500 transitions stored, no batch yet)'


def test_learning_rates_are_settable_default_to_the_preset_and_survive_a_resume(tmp_path):
    learner, _ = make_learner(tmp_path)
    assert [g['lr'] for g in learner.agent.actor_optim.param_groups] == [1e-4]   # the dcdrl preset's
    assert [g['lr'] for g in learner.agent.critic_optim.param_groups] == [1e-3]
    learner.start()
    feed(learner, 2)
    learner.close(evaluate=False)
    resumed, _ = make_learner(tmp_path, actor_lr=5e-4, critic_lr=2e-3)  # the checkpoint's optimizers held 1e-4
    assert resumed.resumed_from is not None
    assert resumed.agent.actor_optim.param_groups[0]['lr'] == 5e-4
    assert resumed.agent.critic_optim.param_groups[0]['lr'] == 2e-3
    resumed.close(evaluate=False)
    for bad in (-1e-3, math.inf, True):   # 0.0 is the default: the preset's rate
        with pytest.raises(ValueError, match='actor_lr must be'):
            LearnerConfig(actor_lr=bad)


def test_the_learner_writes_the_report_and_the_final_evaluation_ends_the_curve(tmp_path):
    learner, _ = make_learner(tmp_path, report=True)
    learner.start()
    learner.evaluate()
    feed(learner, 6)
    summary = learner.finish()
    output = tmp_path / 'out'
    assert summary['report'] == str(output / 'report.md')
    report = (output / 'report.md').read_text()
    assert '## Final evaluation' in report and '![Learning curve](learning_curve.png)' in report
    assert (output / 'learning_curve.png').stat().st_size > 0
    learned = summary['table']['learned']['cost']
    rows = scalar_rows(learner)
    final = [r for r in rows if r['tag'] == 'eval/cost' and int(r['step']) == learner.updates]
    assert final and float(final[-1]['value']) == learned   # in TensorBoard's eval/cost too
    assert any(r['tag'] == 'final/greedy/cost' for r in rows)
    learner.close()


def test_a_stopped_learner_still_writes_the_report_of_what_it_did(tmp_path):
    learner, _ = make_learner(tmp_path, report=True, duration_s=300.0)
    learner.start()
    feed(learner, 3)
    learner.close()   # what destroy_node does on Ctrl-C or SIGTERM, long before duration_s
    assert 'Final evaluation' in (tmp_path / 'out' / 'report.md').read_text()


def test_learning_curve_ends_at_the_final_table_on_a_log_axis():
    series = {'eval/cost': [(0.0, 0, 9.3), (1.0, 500, 2.1), (2.0, 900, 0.7), (3.0, 1200, 0.279)]}
    evaluation = {'updates': 1200, 'rows': [
        {'policy': 'learned', 'cost': 0.279}, {'policy': 'greedy', 'cost': 0.30},
        {'policy': 'full_offload', 'cost': 14.2}]}
    curve = learning_curve(series, evaluation)
    assert curve.field == 'cost' and curve.log_scale
    assert curve.final == (1200, 0.279) and curve.points == [(0, 9.3), (500, 2.1), (900, 0.7)]
    assert curve.baselines == [('full_offload', 14.2), ('greedy', 0.30)]
    # A run from before the learner logged its final evaluation: the table still ends the curve.
    older = learning_curve({'eval/cost': series['eval/cost'][:3]}, evaluation)
    assert older.final == (1200, 0.279) and len(older.points) == 3


def test_learning_curve_of_returns_below_zero_stays_linear():
    curve = learning_curve({'eval/return': [(0.0, 0, -50.0), (1.0, 10, -20.0)]},
                           {'updates': 10, 'rows': [{'policy': 'learned', 'return': -20.0},
                                                    {'policy': 'random', 'return': -18.0}]})
    assert curve.field == 'return' and not curve.log_scale and curve.final == (10, -20.0)
    assert learning_curve({}, None) is None



def test_time_to_target_is_the_first_evaluation_at_or_below_it_counted_from_the_first():
    points = [(100.0, 0, 9.3), (105.0, 700, 0.6), (110.0, 1400, 0.5), (115.0, 2100, 0.2)]
    assert first_at_or_below(points, 0.5) == (10.0, 1400)
    assert first_at_or_below(points, 0.1) is None
    assert first_at_or_below([], 0.5) is None
