"""Docs-ready PNG charts of one bench run (bench/run_all.py's results.json), matplotlib Agg.

Each chart puts ours beside its same-run reference; a chart whose bench did not run (or whose
JSON lacks the numbers) is not made. Small files on purpose (about 100 dpi, 6.4 x 3.4 in):
docs/img/bench/ keeps each under 150 KB.

    .venv/bin/python bench/charts.py runs/bench/<run>/results.json [--out DIR]
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

OURS, REFERENCE, GOAL = '#1f77b4', '#b0b0b0', '#d62728'
SIZE, DPI = (6.4, 3.4), 100


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _bars(ax, groups: list[str], ours: list[float | None], reference: list[float | None],
          reference_label: str, ours_label: str = 'ours') -> None:
    """Side-by-side bars per group, each labelled with its value."""
    width = 0.38
    for offset, values, colour, label in ((-width / 2, reference, REFERENCE, reference_label),
                                          (width / 2, ours, OURS, ours_label)):
        xs = [i + offset for i, v in enumerate(values) if v is not None]
        ys = [v for v in values if v is not None]
        bars = ax.bar(xs, ys, width, color=colour, label=label)
        ax.bar_label(bars, labels=[_short(v) for v in ys], fontsize=7, padding=1)
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.legend(fontsize=7, frameon=False)
    ax.margins(y=0.15)


def _short(value: float) -> str:
    if value >= 10_000:
        return f'{value / 1000:.0f}k'
    if value >= 1000:
        return f'{value / 1000:.1f}k'
    if value >= 10:
        return f'{value:.0f}'
    return f'{value:.2g}'


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, pil_kwargs={'optimize': True})
    plt.close(fig)
    return path


def transport_chart(result: dict, path: Path) -> Path | None:
    results = _dict(result.get('results'))
    payloads = [p for p in ('experience', 'weights') if f'{p}/ours' in results and f'{p}/raw' in results]
    if not payloads:
        return None
    fig, axes = plt.subplots(1, len(payloads), figsize=SIZE, squeeze=False)
    titles = {'experience': 'one MEC transition (812 B)', 'weights': 'actor weights (178 KB)'}
    for ax, payload in zip(axes[0], payloads):
        ours, raw = results[f'{payload}/ours'], results[f'{payload}/raw']
        _bars(ax, ['msg/s'], [ours.get('msgs_per_s')], [raw.get('msgs_per_s')], 'raw cyclonedds-python')
        ax.set_title(titles[payload], fontsize=9)
        ratio = ours.get('msgs_per_s', 0) / raw['msgs_per_s'] if raw.get('msgs_per_s') else None
        if ratio:
            ax.set_xlabel(f'ours / raw = {ratio:.2f}x (goal >= 0.8x)', fontsize=8)
    fig.suptitle('Transport throughput, same run, loopback DDS', fontsize=10)
    return _save(fig, path)


def learner_chart(result: dict, path: Path) -> Path | None:
    learner = _dict(result.get('learner'))
    algorithms = [a for a in ('ddpg', 'td3') if isinstance(learner.get(f'dcdrl_{a}'), dict)]
    if not algorithms:
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    _bars(ax, [a.upper() for a in algorithms],
          [learner[f'dcdrl_{a}'].get('updates_per_s') for a in algorithms],
          [_dict(learner.get(f'sb3_{a}')).get('updates_per_s') for a in algorithms], 'stable-baselines3')
    ax.set_ylabel('gradient updates/s', fontsize=8)
    ax.set_title('Learner, batch 128, 256-128-64, 1 cpu thread (goal TD3 >= 1.5x SB3)', fontsize=9)
    return _save(fig, path)


def replay_chart(result: dict, path: Path) -> Path | None:
    modes = [m for m in ('uniform', 'prioritized') if isinstance(_dict(result.get(m)).get('dcdrl'), dict)]
    if not modes:
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    _bars(ax, modes, [result[m]['dcdrl'].get('iters_per_s') for m in modes],
          [_dict(result[m].get('cpprb')).get('iters_per_s') for m in modes], 'cpprb')
    ax.set_ylabel('add 64 + sample 128 per second', fontsize=8)
    ax.set_title(f'Replay buffer, capacity {result.get("capacity", "?"):,} (goal >= 1.0x cpprb)', fontsize=9)
    return _save(fig, path)


def scaling_chart(result: dict, path: Path) -> Path | None:
    collection = _dict(result.get('collection_steps_per_s'))
    one, two = collection.get('1'), collection.get('2')
    if not isinstance(one, (int, float)) or not isinstance(two, (int, float)):
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    _bars(ax, ['1 client', '2 clients'], [one, two], [one, 2 * one], 'linear scaling')
    ax.set_ylabel('environment steps/s into the replay node', fontsize=8)
    cpus = _dict(result.get('machine')).get('cpus', '?')
    ax.set_title(f'Collection scaling on {cpus} cores: {two / (2 * one):.2f}x linear (goal >= 0.85x)', fontsize=9)
    return _save(fig, path)


def edge_loop_chart(result: dict, path: Path) -> Path | None:
    loops = [loop for loop in result.get('loops') or [] if isinstance(loop, dict)]
    if not loops:
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    groups = [f'{loop.get("rate_hz", 0):g} Hz' for loop in loops]
    width = 0.27
    for k, (key, label, colour) in enumerate((('period_error_p50_us', 'p50', '#9ecae1'),
                                              ('period_error_p99_us', 'p99', OURS),
                                              ('period_error_max_us', 'max', '#08306b'))):
        # A 0 us median would vanish on the log axis: draw it at 1 us (labelled with its value).
        values = [max(float(loop.get(key) or 0.0), 1.0) for loop in loops]
        bars = ax.bar([i + (k - 1) * width for i in range(len(loops))], values, width, color=colour, label=label)
        ax.bar_label(bars, labels=[_short(float(loop.get(key) or 0.0)) for loop in loops], fontsize=7, padding=1)
    ax.axhline(200, color=GOAL, linestyle='--', linewidth=1, label='goal p99 at 1 kHz: 200 us')
    ax.set_yscale('log')
    ax.set_xticks(range(len(loops)), groups, fontsize=8)
    ax.set_ylabel('period error (us, log)', fontsize=8)
    ax.legend(fontsize=7, frameon=False, ncol=4)
    ax.set_title('Edge control loop: how late each step starts, with 10 Hz weight swaps', fontsize=9)
    ax.margins(y=0.2)
    return _save(fig, path)


def envs_chart(result: dict, path: Path) -> Path | None:
    envs = {k: v for k, v in _dict(result.get('envs')).items() if isinstance(v, dict)}
    if not envs:
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    names = [k.split('/')[-1].replace('-v0', '') for k in envs]
    native = [v.get('native_x8_steps_per_s') for v in envs.values()]
    _bars(ax, names, native if any(n is not None for n in native) else
          [v.get('sync_x8_steps_per_s') for v in envs.values()],
          [v.get('sync_x8_steps_per_s') for v in envs.values()], 'gymnasium SyncVectorEnv x8',
          ours_label='native vector env x8')
    for i, v in enumerate(envs.values()):
        goal = v.get('goal_vector_steps_per_s')
        if goal:
            ax.plot([i - 0.45, i + 0.45], [goal, goal], color=GOAL, linestyle='--', linewidth=1)
    ax.set_yscale('log')
    ax.set_ylabel('steps/s (log); dashed: goal', fontsize=8)
    ax.set_title('Environment throughput, one core', fontsize=9)
    ax.tick_params(axis='x', labelsize=7)
    return _save(fig, path)


def face_offload_chart(result: dict, path: Path) -> Path | None:
    policies = {k: v for k, v in _dict(_dict(result.get('policy')).get('policies')).items() if isinstance(v, dict)}
    if not policies or not all(isinstance(v.get('latency_s'), (int, float)) for v in policies.values()):
        return None
    fig, ax = plt.subplots(figsize=SIZE)
    names = list(policies)
    colours = [OURS if n == 'learned' else GOAL if n == 'oracle' else REFERENCE for n in names]
    bars = ax.bar(range(len(names)), [policies[n]['latency_s'] for n in names], 0.6, color=colours)
    ax.bar_label(bars, labels=[f'{policies[n]["latency_s"]:.2f}' for n in names], fontsize=7, padding=1)
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_ylabel('mean latency per task (s)', fontsize=8)
    ax.set_title('Face offloading, changing bandwidth: learned (blue), oracle (red), baselines', fontsize=9)
    ax.margins(y=0.15)
    return _save(fig, path)


CHARTS: dict[str, tuple[str, Callable[[dict, Path], Path | None]]] = {
    'transport': ('transport.png', transport_chart),
    'envs': ('envs.png', envs_chart),
    'learner': ('learner.png', learner_chart),
    'replay': ('replay.png', replay_chart),
    'scaling': ('scaling.png', scaling_chart),
    'edge_loop': ('edge_loop.png', edge_loop_chart),
    'face_offload': ('face_offload.png', face_offload_chart),
}


def make_charts(results: dict, out_dir: Path) -> list[Path]:
    """One PNG per bench that ran and has a chart; returns the paths made."""
    made = []
    for name, (filename, draw) in CHARTS.items():
        record = _dict(_dict(results.get('benches')).get(name))
        result = record.get('json')
        if not record.get('ok') or not isinstance(result, dict):
            continue
        if name == 'scaling':
            result = {**result, 'machine': result.get('machine') or results.get('machine')}
        try:
            path = draw(result, Path(out_dir) / filename)
        except (KeyError, TypeError, ValueError, ZeroDivisionError) as exc:  # a changed JSON layout
            print(f'chart {filename} not made: {type(exc).__name__}: {exc}')
            continue
        if path is not None:
            made.append(path)
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('results', help='results.json of a bench run')
    parser.add_argument('--out', default=None, help='folder for the PNGs (default: beside results.json)')
    args = parser.parse_args()
    path = Path(args.results)
    made = make_charts(json.loads(path.read_text()), Path(args.out) if args.out else path.parent)
    print('\n'.join(str(p) for p in made))


if __name__ == '__main__':
    main()
