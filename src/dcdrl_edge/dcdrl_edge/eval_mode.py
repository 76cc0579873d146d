"""The controller's deployment side, no ROS: reading the weights file, and reporting evaluation
episodes (return and swing-up steps, as the cart-pole env defines them) in the log and the final report.

    payload = read_weights_file('runs/finetune/best_actor.safetensors')   # ValueError: one clear line
    report = EvaluationReport(rate_hz=30.0)
    line = report.add(summary)        # an LoopEpisodeSummary of an evaluation episode -> its log line
    report.final_line(), report.summary()
"""
from __future__ import annotations

import math
import os
import statistics
from pathlib import Path
from typing import Any

from dcdrl_learning.codec import WeightsPayload

from .actor_buffer import load_weights_file
from .controller import LoopEpisodeSummary

# What the segments-mode learner leaves in its output_dir (dcdrl_cloud.segment_learner), and when.
LEARNER_WEIGHTS_FILES = ('a learner writes actor.safetensors (its latest policy) at every checkpoint and when it '
                         'stops, and best_actor.safetensors once it has evaluated a trained policy')


def read_weights_file(path: str | os.PathLike) -> WeightsPayload:
    """load_weights_file with a missing or unreadable file as a one-line ValueError that says which
    weights files the directory does hold (a node turns it into a [FATAL] line and exit 2)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f'weights_file {str(path)!r} is a directory, not a weights file{_what_is_there(path)}')
    if not path.is_file():
        raise ValueError(f'weights_file {str(path)!r} does not exist{_what_is_there(path.parent)}')
    try:
        return load_weights_file(path)
    except OSError as error:
        raise ValueError(f'weights_file {str(path)!r} cannot be read: {error.strerror or error}') from None


def _what_is_there(directory: Path) -> str:
    if not directory.is_dir():
        return f', nor does {str(directory)!r}: run the step that writes it first ({LEARNER_WEIGHTS_FILES})'
    present = sorted(entry.name for entry in directory.glob('*.safetensors') if entry.is_file())
    if not present:
        return f'; {str(directory)!r} holds no .safetensors file ({LEARNER_WEIGHTS_FILES})'
    return f'; {str(directory)!r} holds {", ".join(present)} ({LEARNER_WEIGHTS_FILES})'


class EvaluationReport:
    """Collects finished evaluation episodes: one log line each, a summary and a final line.

    rate_hz: the loop rate, to say how long a swing-up took in seconds of control time.
    """

    def __init__(self, rate_hz: float) -> None:
        self.rate_hz = float(rate_hz)
        self.episodes: list[dict[str, Any]] = []

    def add(self, summary: LoopEpisodeSummary) -> str:
        """Record one finished evaluation episode; returns its log line."""
        record: dict[str, Any] = {'episode': int(summary.episode), 'return': summary.episode_return,
                  'swing_up_steps': summary.swing_up_steps, 'length': int(summary.length),
                  'end': summary.end_reason, 'policy_version': int(summary.policy_version)}
        self.episodes.append(record)
        return (f'evaluation episode {record["episode"]} (#{len(self.episodes)}): return '
                f'{_number(record["return"])}, {self._swing_up_text(record["swing_up_steps"])}, '
                f'{record["length"]} steps, {record["end"]}, policy version {record["policy_version"]}')

    def _swing_up_text(self, steps: int | None) -> str:
        if steps is None:
            return 'never swung up'
        return f'swung up after {steps} steps ({steps / self.rate_hz:.1f} s)'

    def summary(self) -> dict[str, Any]:
        """The numbers of the final report (JSON-ready: None where there is no value)."""
        returns = [e['return'] for e in self.episodes if e['return'] is not None]
        swing_ups = [e['swing_up_steps'] for e in self.episodes if e['swing_up_steps'] is not None]
        return {
            'episodes': len(self.episodes),
            'return_mean': statistics.fmean(returns) if returns else None,
            'return_std': statistics.pstdev(returns) if returns else None,
            'return_min': min(returns) if returns else None,
            'return_max': max(returns) if returns else None,
            'swung_up': len(swing_ups),
            'swing_up_steps_median': statistics.median(swing_ups) if swing_ups else None,
            'returns': [e['return'] for e in self.episodes],
            'swing_up_steps': [e['swing_up_steps'] for e in self.episodes],
        }

    def final_line(self) -> str:
        """One line for the end of an eval run."""
        s = self.summary()
        if not s['episodes']:
            return 'evaluation: no episode finished (an episode still running at stop is not counted)'
        if s['return_mean'] is None:
            returns = 'returns unknown (the plant reports no reward)'
        else:
            returns = (f"return mean {_number(s['return_mean'])} +- {_number(s['return_std'])} "
                       f"(min {_number(s['return_min'])}, max {_number(s['return_max'])})")
        steps = ', '.join('-' if v is None else str(v) for v in s['swing_up_steps'])
        count = f"{s['episodes']} episode{'' if s['episodes'] == 1 else 's'}"
        return (f"evaluation: {count}, {returns}, swung up in {s['swung_up']} of "
                f"{s['episodes']} (swing-up steps: {steps})")


def _number(value: float | None) -> str:
    return 'unknown' if value is None or not math.isfinite(value) else f'{value:.2f}'


__all__ = ['LEARNER_WEIGHTS_FILES', 'EvaluationReport', 'read_weights_file']
