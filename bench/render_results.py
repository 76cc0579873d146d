"""Render a bench run (runs/bench/<run>/results.json) into docs/results-bench.md and docs/img/bench/*.png.

The page is generated: the machine, the date, quick or full, one table per bench
(measure | ours | reference | ratio | goal | met) with its chart, and the seeds' published
figures. docs/results.md (hand-written) points to it. Charts are copied from the run folder
(made by bench/run_all.py; made here when missing); each must stay under 150 KB (a warning)
and no file over 1 MB is copied.

    .venv/bin/python bench/render_results.py [runs/bench/<run>/results.json]   (default: the newest run)
    .venv/bin/python bench/render_results.py RESULTS --bench NAME   (a run of one bench: only its section and
                                                                    overview row of the existing page change)
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
sys.path.insert(0, str(BENCH_DIR))

import summary as summary_module  # noqa: E402
from summary import SEED_FIGURES, format_met, format_ratio, format_value  # noqa: E402

PAGE = ROOT / 'docs' / 'results-bench.md'
IMAGES = ROOT / 'docs' / 'img' / 'bench'
PNG_WARN_BYTES, PNG_MAX_BYTES = 150_000, 1_000_000

TITLES = {
    'transport': 'Transport: ours vs raw cyclonedds-python and rclpy (bench/transport.py)',
    'envs': 'Environments (bench/envs.py)',
    'learner': 'Learner: ours vs stable-baselines3 (bench/learner.py)',
    'replay': 'Replay buffer: ours vs cpprb (bench/replay.py)',
    'scaling': 'Scaling of the training graph (bench/scaling.py)',
    'edge_loop': 'Edge control loop (bench/edge_loop.py)',
    'face_offload': 'Face offloading (bench/face_offload.py)',
    'bandwidth': 'Weights over a limited link (bench/bandwidth.py)',
    'recording': 'Recording and playback: dcdrl bag vs ros2 bag (bench/recording.py)',
}


def newest_results(parent: Path = ROOT / 'runs' / 'bench') -> Path:
    runs = sorted(p for p in parent.glob('*/results.json'))
    if not runs:
        raise FileNotFoundError(f'no bench run under {parent}: run bench/run_all.py first')
    return runs[-1]


def _cell(text: Any) -> str:
    return str(text).replace('|', '\\|').replace('\n', ' ') if text is not None else ''


def _relative(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return path


def machine_lines(results: dict) -> list[str]:
    machine = results.get('machine') or {}
    load = machine.get('load_average')
    load_text = ', '.join(f'{x:.1f}' for x in load) if isinstance(load, list) else '?'
    lines = [
        f'- Run: {results.get("started", "?")} (UTC), {"quick (`--quick`)" if results.get("quick") else "full"}, '
        f'commit {results.get("git_commit") or "?"}, whole suite {results.get("wall_s", "?")} s.',
        f'- Machine: {machine.get("cpus", "?")} cores, {machine.get("cpu", "?")}, {machine.get("platform", "?")}; '
        f'GPU: {machine.get("cuda") or "none"}; load average at the start {load_text} '
        '(the machine may be shared: compare ratios, which are taken within one run, more than absolute rates).',
    ]
    for role, info in (results.get('interpreters') or {}).items():
        if not isinstance(info, dict):
            continue
        packages = ', '.join(f'{name} {info[name]}' for name in ('torch', 'numpy', 'cyclonedds', 'stable-baselines3',
                                                                 'cpprb', 'torchrl') if info.get(name))
        lines.append(f'- {role} interpreter `{_relative(info.get("path", "?"))}`: Python {info.get("python", "?")}'
                     f'{", " + packages if packages else ""}.')
    return lines


def status_table(results: dict, rows: list[dict]) -> list[str]:
    lines = ['| bench | status | wall time | goals met |', '| --- | --- | --- | --- |']
    for name, record in (results.get('benches') or {}).items():
        if record.get('skipped'):
            status = f'skipped: {record["skipped"]}'
        elif record.get('ok'):
            status = 'ok'
        else:
            status = f'**failed**: {record.get("error")}'
        judged = [r for r in rows if r['bench'] == name and r['met'] is not None]
        goals = f'{sum(r["met"] for r in judged)} of {len(judged)}' if judged else ''
        wall = f'{record["wall_s"]:.0f} s' if isinstance(record.get('wall_s'), (int, float)) else ''
        lines.append(f'| {name} | {_cell(status)} | {wall} | {goals} |')
    return lines


def bench_table(rows: list[dict]) -> list[str]:
    lines = ['| measure | ours | reference | ratio | goal | met |', '| --- | --- | --- | --- | --- | --- |']
    for r in rows:
        unit = f' {r["unit"]}' if r['unit'] and r['ours'] is not None else ''
        ours = format_value(r['ours']) + unit
        if r['note']:
            ours += f' ({r["note"]})' if r['ours'] is not None else r['note']
        reference = f'{format_value(r["reference"])} ({r["reference_name"]})' if r['reference'] is not None else ''
        met = format_met(r['met'])
        lines.append(f'| {_cell(r["measure"])} | {_cell(ours)} | {_cell(reference)} | {format_ratio(r["ratio"])} | '
                     f'{_cell(r["goal"])} | {"**" + met + "**" if r["met"] is False else met} |')
    return lines


def seed_lines() -> list[str]:
    lines = ['| figure | value | source |', '| --- | --- | --- |']
    for figure in SEED_FIGURES.values():
        value = figure['value']
        text = f'{value[0]:,} to {value[1]:,}' if isinstance(value, tuple) else f'{value:,g}'
        lines.append(f'| {_cell(figure["what"])} | {text} {figure["unit"]} | {_cell(figure["source"])} |')
    return lines


def copy_charts(run_dir: Path, images: Path = IMAGES) -> dict[str, str]:
    """Copies the run's PNGs into docs/img/bench/; returns bench name -> path relative to docs/."""
    images.mkdir(parents=True, exist_ok=True)
    copied = {}
    for png in sorted(run_dir.glob('*.png')):
        size = png.stat().st_size
        if size > PNG_MAX_BYTES:
            print(f'{png.name}: {size:,} bytes is over 1 MB: not copied')
            continue
        if size > PNG_WARN_BYTES:
            print(f'warning: {png.name} is {size:,} bytes (keep docs images under 150 KB)')
        shutil.copyfile(png, images / png.name)
        copied[png.stem] = f'img/bench/{png.name}'
    return copied


def render(results: dict, charts: dict[str, str], results_path: str | None = None) -> str:
    # Rows are recomputed from each bench's own JSON with the current adapters (pure functions), so
    # the page follows bench/summary.py; results.json keeps the run's snapshot under 'summary'.
    rows = summary_module.summarise({name: record.get('json') for name, record
                                     in (results.get('benches') or {}).items() if record.get('ok')})
    out = ['# Benchmark results (generated)', '',
           'Generated by `bench/render_results.py` from '
           f'`{_relative(results_path) if results_path else "results.json"}` (a `make bench` / `make bench-quick` '
           'run); do not edit by hand. The hand-written results page with the context of each number is '
           '[results.md](results.md). Reproduce: `make bench-quick` (or `make bench`), i.e. '
           '`bench/run_all.py [--quick]` then `bench/render_results.py`; per-bench logs are in the run folder.', '']
    out += machine_lines(results)
    out += ['', 'Every number is a median of several repeats after a warm-up (`--quick`: fewer and shorter '
            'repeats). Each reference was measured in the same run as ours, the two taking turns where the '
            'bench allows; ratio = ours / reference in the row\'s unit (> 1 is faster for rates, < 1 is faster '
            'for times), from the same run\'s medians (pair by pair where a bench reports per-repeat values).',
            '', '## Overview', '']
    out += status_table(results, rows)
    for name in results.get('benches') or {}:
        bench_rows = [r for r in rows if r['bench'] == name]
        if not bench_rows and name not in charts:
            continue
        out += ['', f'## {TITLES.get(name, name)}', '']
        if bench_rows:
            out += bench_table(bench_rows)
        if name in charts:
            out += ['', f'![{name}]({charts[name]})']
    out += ['', '## Published figures of the seeds', '',
            'Not measured here: the original systems\' own numbers, on their hardware, kept as references for '
            'the benches that measure the same thing (constants in `bench/summary.py`).', '']
    out += seed_lines()
    return '\n'.join(out) + '\n'


def update_bench(page: str, results: dict, name: str, results_path: str) -> str:
    """``page`` with bench ``name``'s overview row and section replaced (or added) from ``results``, a run of
    that bench alone; the section says which run and machine its numbers come from."""
    record = (results.get('benches') or {}).get(name)
    if record is None:
        raise ValueError(f'{results_path} has no bench {name!r}')
    rows = summary_module.summarise({name: record.get('json')} if record.get('ok') else {})
    lines = page.rstrip('\n').split('\n')
    overview = status_table({'benches': {name: record}}, rows)[-1]
    found = [i for i, line in enumerate(lines) if line.startswith(f'| {name} |')]
    if found:
        lines[found[0]] = overview
    else:
        start = lines.index('## Overview')
        end = next(i for i in range(start + 3, len(lines)) if not lines[i].startswith('|'))
        lines.insert(end, overview)
    section = [f'## {TITLES.get(name, name)}', '',
               f'From `{_relative(results_path)}`, a run of this bench alone (`bench/run_all.py --only {name}`):']
    section += machine_lines(results)[:2] + [''] + (bench_table(rows) if rows else [f'No rows: {record.get("error")}'])
    heading = section[0]
    if heading in lines:
        start = lines.index(heading)
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith('## ')), len(lines))
        lines[start:end] = section + ['']
    else:
        before = lines.index('## Published figures of the seeds')
        lines[before:before] = section + ['']
    return '\n'.join(lines) + '\n'


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('results', nargs='?', default=None, help='results.json (default: the newest run)')
    parser.add_argument('--page', default=str(PAGE), help='the generated page (default docs/results-bench.md)')
    parser.add_argument('--images', default=str(IMAGES), help='where the charts go (default docs/img/bench)')
    parser.add_argument('--bench', default=None,
                        help="update only this bench's section and overview row in the existing page")
    args = parser.parse_args(argv)
    path = Path(args.results) if args.results else newest_results()
    results = json.loads(path.read_text())
    if args.bench:
        page = Path(args.page)
        page.write_text(update_bench(page.read_text(), results, args.bench, str(path)))
        print(f"wrote {page} (the {args.bench} section)")
        return 0
    if not list(path.parent.glob('*.png')):
        import charts
        charts.make_charts(results, path.parent)
    copied = copy_charts(path.parent, Path(args.images))
    page = Path(args.page)
    page.write_text(render(results, copied, str(path)))
    print(f'wrote {page} ({len(copied)} charts in {args.images})')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
