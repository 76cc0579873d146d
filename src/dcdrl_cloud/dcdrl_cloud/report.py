"""The run report (no ROS): report.md and PNG plots from the files a training run leaves.

The learner writes it into its output_dir when its training time is up or it is stopped
(Learner.write_report), so a launched graph and `make run` leave the same report; main_job only
shows it. Reads, under the output directory: the learner's scalars.csv (RunLogger), evaluation.json
(final table), learner.json, generations.csv (collective mode), and a replay summary when the
caller has one.
"""
from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Baseline rows of the final evaluation drawn as horizontal lines next to the learning curve.
BASELINE_ROWS = ('local_only', 'full_offload', 'random', 'greedy', 'oracle')


def read_scalars(output_dir: Path) -> dict[str, list[tuple[float, float, float]]]:
    """tag -> [(wall_time, step, value)] from the newest scalars.csv below output_dir."""
    files = sorted(output_dir.glob('*/scalars.csv'), key=lambda p: p.stat().st_mtime)
    series: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    if not files:
        return series
    with open(files[-1], newline='') as handle:
        for row in csv.DictReader(handle):
            try:
                value = float(row['value'])
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                series[row['tag']].append((float(row['wall_time']), float(row['step']), value))
    return series


def first_at_or_below(points: list[tuple[float, float, float]], target: float) -> tuple[float, float] | None:
    """(seconds since the first point, step) of the first (wall_time, step, value) point with value <= target;
    None when none is (time to a target cost, from read_scalars' eval/cost)."""
    if not points:
        return None
    start = points[0][0]
    return next(((t - start, step) for t, step, value in points if value <= target), None)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass
class LearningCurve:
    """What the learning-curve plot shows (computed without matplotlib, so it can be tested)."""

    field: str                                   # 'cost' (mean per step, MEC) or 'return' (per episode)
    points: list[tuple[float, float]]            # (learner updates, value) of the periodic evaluations
    final: tuple[float, float] | None         # the final table's learned row, at its update count
    baselines: list[tuple[str, float]]           # the final table's other rows
    log_scale: bool                              # every value > 0: a log axis keeps 0.3 and 14 apart


def learning_curve(series: dict, evaluation: dict | None) -> LearningCurve | None:
    """The learned policy's evaluations and the final table as one curve; None when there is nothing."""
    evaluation = evaluation or {}
    rows = {row.get('policy'): row for row in evaluation.get('rows', []) if isinstance(row, dict)}
    field = 'cost' if series.get('eval/cost') or _number(rows.get('learned', {}).get('cost')) else 'return'
    points = [(p[1], p[2]) for p in series.get(f'eval/{field}', [])]
    final = None
    learned = _number(rows.get('learned', {}).get(field))
    if learned is not None:
        step = _number(evaluation.get('updates'))
        final = (step if step is not None else (points[-1][0] if points else 0.0), learned)
        if points and points[-1] == final:
            points = points[:-1]  # the learner also logs the final evaluation as eval/*: drawn once, as final
    if not points and final is None:
        return None
    baselines = [(name, value) for name in BASELINE_ROWS
                 if (value := _number(rows.get(name, {}).get(field))) is not None]
    values = [v for _, v in points] + ([final[1]] if final else []) + [v for _, v in baselines]
    return LearningCurve(field, points, final, baselines, log_scale=all(v > 0 for v in values))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) else None


def _plot_learning_curve(series: dict, evaluation: dict | None, path: Path, plt: Any) -> bool:
    curve = learning_curve(series, evaluation)
    if curve is None:
        return False
    figure, axis = plt.subplots(figsize=(7, 4))
    line = curve.points + ([curve.final] if curve.final else [])  # the curve ends at the table's number
    if curve.points:
        axis.plot([p[0] for p in line], [p[1] for p in line], marker='o', markersize=3, color='C0',
                  label='learned policy (periodic evaluation)')
    if curve.final is not None:
        axis.plot([curve.final[0]], [curve.final[1]], marker='*', markersize=14, linestyle='none', color='C0',
                  markeredgecolor='black', label=f'learned, final evaluation ({curve.final[1]:.3g})')
    for name, value in curve.baselines:
        axis.axhline(value, linestyle='--', linewidth=1, color=f'C{BASELINE_ROWS.index(name) + 1}',
                     label=f'{name} ({value:.3g})')
    if curve.log_scale:
        axis.set_yscale('log')
    axis.set_xlabel('learner updates')
    axis.set_ylabel(('mean cost per step' if curve.field == 'cost' else 'episode return')
                    + (' (log scale)' if curve.log_scale else ''))
    axis.set_title('Learning curve vs baselines (lines: final evaluation)')
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def _plot_lines(series: dict, tags: dict[str, str], path: Path, title: str, ylabel: str, plt: Any) -> bool:
    present = {tag: label for tag, label in tags.items() if series.get(tag)}
    if not present:
        return False
    figure, axis = plt.subplots(figsize=(7, 3.5))
    start = min(series[tag][0][0] for tag in present)
    for tag, label in present.items():
        axis.plot([p[0] - start for p in series[tag]], [p[2] for p in series[tag]], label=label)
    axis.set_xlabel('seconds since the learner started')
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def build_report(output_dir: str | Path, replay_summary: dict[str, Any] | None = None,
                 done: dict[str, Any] | None = None, title: str = 'DC-DRL training run') -> Path:
    """Writes output_dir/report.md and its PNG plots; returns the report's path."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    output_dir = Path(output_dir)
    series = read_scalars(output_dir)
    evaluation = _read_json(output_dir / 'evaluation.json')
    learner = _read_json(output_dir / 'learner.json')
    plots = []
    if _plot_learning_curve(series, evaluation, output_dir / 'learning_curve.png', plt):
        plots.append(('Learning curve', 'learning_curve.png'))
    if _plot_lines(series, {'charts/version_lag_min': 'min', 'charts/version_lag_mean': 'mean',
                            'charts/version_lag_max': 'max'},
                   output_dir / 'version_lag.png', 'Policy lag of the sampled data',
                   'learner version - producing version', plt):
        plots.append(('Version lag', 'version_lag.png'))
    if _plot_lines(series, {'charts/updates_per_sec': 'learner updates/s',
                            'charts/env_steps_per_sec': 'env steps/s (all clients)'},
                   output_dir / 'throughput.png', 'Throughput', 'per second', plt):
        plots.append(('Throughput', 'throughput.png'))

    lines = [f'# {title}', '', f'Output directory: `{output_dir}`', '']
    if done:
        lines += ['## Summary', '', '| | |', '| --- | --- |']
        lines += [f'| {key} | {value} |' for key, value in done.items() if not isinstance(value, dict)]
        lines.append('')
    evaluation_md = output_dir / 'evaluation.md'
    if evaluation_md.exists():
        lines += ['## Final evaluation', '', evaluation_md.read_text().split('\n', 1)[-1].strip(), '']
    for caption, name in plots:
        lines += [f'## {caption}', '', f'![{caption}]({name})', '']
    if replay_summary:
        lines += ['## Replay buffer', '', '```json', json.dumps(replay_summary, indent=2), '```', '']
    generations = output_dir / 'generations.csv'
    if generations.exists():
        rows = generations.read_text().strip().splitlines()
        lines += ['## Collective generations', '', f'{len(rows) - 1} generations merged '
                  '(generations.csv); last rows:', '', '```', *rows[:1], *rows[1:][-5:], '```', '']
    if learner:
        lines += ['## Learner', '', '```json', json.dumps(learner, indent=2)[:3000], '```', '']
    report = output_dir / 'report.md'
    report.write_text('\n'.join(lines))
    return report
