"""The controller's eval mode without ROS: the weights file (missing, a directory, not a weights file:
one-line errors that say what the directory holds) and the evaluation report (one line per episode,
the final line and the numbers of the final report)."""
import numpy as np
import pytest

from dcdrl_edge.controller import LoopEpisodeSummary
from dcdrl_edge.eval_mode import EvaluationReport, read_weights_file
from dcdrl_learning.codec import make_payload, payload_to_bytes


def _episode(episode, episode_return, swing_up_steps, length=300, end='truncated', version=7):
    return LoopEpisodeSummary(episode, length, True, end == 'terminated', end != 'terminated', end, version, 0, length,
                          episode_return, swing_up_steps)


def test_a_missing_weights_file_is_one_line_that_says_what_the_directory_holds(tmp_path):
    run = tmp_path / 'finetune'
    with pytest.raises(ValueError) as missing_dir:
        read_weights_file(run / 'best_actor.safetensors')
    text = str(missing_dir.value)
    assert '\n' not in text and f"'{run}'" in text and 'nor does' in text and 'run the step that writes it' in text
    run.mkdir()
    with pytest.raises(ValueError, match='holds no .safetensors file'):
        read_weights_file(run / 'best_actor.safetensors')
    payload = make_payload('arch', 3, ['w'], [(2,)], [np.ones(2, np.float32)])
    (run / 'actor.safetensors').write_bytes(payload_to_bytes(payload))
    with pytest.raises(ValueError) as only_latest:
        read_weights_file(run / 'best_actor.safetensors')
    assert f"'{run}' holds actor.safetensors (a learner writes actor.safetensors (its latest policy)" \
        in str(only_latest.value)
    assert read_weights_file(run / 'actor.safetensors').version == 3
    with pytest.raises(ValueError, match='is a directory, not a weights file; .* holds actor.safetensors'):
        read_weights_file(run)
    (run / 'notes.safetensors').write_bytes(b'not weights')
    with pytest.raises(ValueError, match='not a valid weights file'):
        read_weights_file(run / 'notes.safetensors')


def test_evaluation_report_lines_and_summary():
    report = EvaluationReport(rate_hz=30.0)
    assert report.final_line() == 'evaluation: no episode finished (an episode still running at stop is not counted)'
    assert report.add(_episode(4, 120.5, 90)) == ('evaluation episode 4 (#1): return 120.50, swung up after 90 steps '
                                                  '(3.0 s), 300 steps, truncated, policy version 7')
    assert report.add(_episode(5, -12.0, None, length=41, end='terminated')) == (
        'evaluation episode 5 (#2): return -12.00, never swung up, 41 steps, terminated, policy version 7')
    report.add(_episode(6, 100.0, 120))
    summary = report.summary()
    assert summary['episodes'] == 3 and summary['swung_up'] == 2 and summary['swing_up_steps_median'] == 105
    assert summary['returns'] == [120.5, -12.0, 100.0] and summary['swing_up_steps'] == [90, None, 120]
    assert summary['return_mean'] == pytest.approx(69.5) and (summary['return_min'], summary['return_max']) == \
        (-12.0, 120.5)
    assert report.final_line() == ('evaluation: 3 episodes, return mean 69.50 +- 58.23 (min -12.00, max 120.50), '
                                   'swung up in 2 of 3 (swing-up steps: 90, -, 120)')


def test_a_plant_without_rewards_reports_unknown_returns():
    report = EvaluationReport(rate_hz=50.0)
    assert 'return unknown, swung up after 25 steps (0.5 s)' in report.add(_episode(1, None, 25))
    assert report.summary()['return_mean'] is None
    assert report.final_line().startswith('evaluation: 1 episode, returns unknown (the plant reports no reward), '
                                          'swung up in 1 of 1')


def test_the_episode_count_in_log_lines_reads_as_english():
    from dcdrl_edge.controller_node import episodes_text
    assert episodes_text(1) == '1 episode' and episodes_text(3) == '3 episodes'
    assert episodes_text(1, 'evaluation episode') == '1 evaluation episode'
