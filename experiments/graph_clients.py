"""The training graph with K = 1 and K = 2 clients on one machine: wall seconds to a target cost.

CleanRL-style: read top to bottom. Each run is the main job a user starts (`make run`, i.e.
`python -m dcdrl_cloud.main_job`): replay node, learner, parameter server and K client processes
over loopback DDS, central mode, `config/train.yaml` with one change, the learner's evaluation
period (`--eval-period-s`, default 5 s instead of 20 s, so the time to the target is read to 5 s), and
any `--learner-param NAME=VALUE`.
Every run gets its own ROS_DOMAIN_ID. Per run it reads the learner's periodic noise-free
evaluations (eval/cost in scalars.csv) and records the wall seconds from the first evaluation (the
initial policy) until the cost first is <= `--target-cost`, with the learner's updates then, and
the final table's learned cost. The arms take turns (K = 1, K = 2, K = 1, ...) so a change in the
machine's load hits both.

Each run writes runs/graph_clients/<mode>_k<K>__<seed>__<unix time>.json; `--table` aggregates them
(per-seed and median seconds to the target; K = 2 is "sooner" when it reached the target first in
most seeds, a run that never reached it counting as never) and prints one JSON object last.

    .venv/bin/python experiments/graph_clients.py --seeds 0 1 2          # about 25 minutes
    .venv/bin/python experiments/graph_clients.py --table
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from dcdrl_cloud.report import first_at_or_below, read_scalars
from dcdrl_ros.testing import fresh_domain_id, loopback_env

ROOT = Path(__file__).resolve().parent.parent


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--clients', nargs='+', type=int, default=[1, 2], choices=(1, 2, 3, 4))
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--mode', default='central', choices=('central', 'collective'),
                   help="main_job's --mode: central (clients act, the learner trains) or collective")
    p.add_argument('--duration', type=float, default=150.0, help='seconds of training per run')
    p.add_argument('--target-cost', type=float, default=0.5,
                   help='MEC cost per step (local-only 9.3, greedy about 0.3)')
    p.add_argument('--eval-period-s', type=float, default=5.0, help="the learner's evaluation period")
    p.add_argument('--learner-param', action='append', default=[], metavar='NAME=VALUE',
                   help='another learner parameter for every run (repeatable), e.g. batch_size=128; the table '
                        'compares runs with the same ones')
    p.add_argument('--runs-dir', default='runs')
    p.add_argument('--table', action='store_true', help='only aggregate runs/graph_clients/*.json')
    args = p.parse_args(argv)
    if args.duration <= 0 or args.eval_period_s <= 0:
        p.error('--duration and --eval-period-s must be > 0')
    args.learner_params = {}
    for item in args.learner_param:
        name, sep, value = item.partition('=')
        if not sep or not name:
            p.error(f'--learner-param {item!r}: expected NAME=VALUE')
        args.learner_params[name] = yaml.safe_load(value)
    return args


def params_file(eval_period_s: float, directory: Path, learner_params: dict[str, Any] | None = None) -> Path:
    """config/train.yaml plus the learner's evaluation period and `learner_params` (the learner node runs as
    /dcdrl/learner, so its block is '/**/learner')."""
    params = yaml.safe_load((ROOT / 'config' / 'train.yaml').read_text())
    params['/**/learner'] = {'ros__parameters': {'eval_period_s': float(eval_period_s), **(learner_params or {})}}
    path = directory / 'train.yaml'
    path.write_text(yaml.safe_dump(params))
    return path


def run_graph(clients: int, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        command = [sys.executable, '-m', 'dcdrl_cloud.main_job', '--mode', args.mode, '--num-clients', str(clients),
                   '--seed', str(seed),
                   '--duration', str(args.duration),
                   '--params-file', str(params_file(args.eval_period_s, runs, args.learner_params)),
                   '--runs-dir', str(runs / 'runs'), '--quiet']
        started = time.time()
        result = subprocess.run(command, env=loopback_env(fresh_domain_id()), capture_output=True, text=True,
                                timeout=args.duration + 300)
        if result.returncode != 0:
            raise SystemExit(f'K={clients} seed {seed}: main job failed (exit {result.returncode}): '
                             f'{result.stderr.strip()[-800:]}')
        run_dir = next((runs / 'runs').iterdir())
        points = read_scalars(run_dir).get('eval/cost', [])
        learner = json.loads((run_dir / 'learner.json').read_text())
        evaluation = json.loads((run_dir / 'evaluation.json').read_text())
    hit = first_at_or_below(points, args.target_cost)
    learned = next((row for row in evaluation.get('rows', []) if row.get('policy') == 'learned'), {})
    return {'clients': clients, 'seed': seed, 'mode': args.mode, 'learner_params': args.learner_params,
            'target_cost': args.target_cost,
            'seconds_to_target': hit[0] if hit else None, 'updates_to_target': hit[1] if hit else None,
            'curve': [[t - points[0][0], step, value] for t, step, value in points] if points else [],
            'final_cost': learned.get('cost'), 'updates': learner.get('updates'),
            'env_steps': learner.get('env_steps'), 'wall_s': time.time() - started,
            'duration_s': args.duration, 'eval_period_s': args.eval_period_s, 'load_avg': list(os.getloadavg())}


def table(runs_dir: str, mode: str = 'central', learner_params: dict[str, Any] | None = None) -> dict[str, Any]:
    runs = [json.loads(Path(f).read_text()) for f in sorted(glob.glob(f'{runs_dir}/graph_clients/*.json'))]
    by_arm: dict[int, dict[int, dict[str, Any]]] = {}
    for run in runs:   # the newest run of each (K, seed) with the mode and learner parameters asked for
        if run['mode'] == mode and run['learner_params'] == (learner_params or {}):
            by_arm.setdefault(run['clients'], {})[run['seed']] = run
    print('| clients | seconds to target (per seed) | median s | updates to target | final cost | updates in all |')
    print('| --- | --- | --- | --- | --- | --- |')
    summary: dict[str, Any] = {}
    for k in sorted(by_arm):
        arm = [by_arm[k][s] for s in sorted(by_arm[k])]
        seconds = [r['seconds_to_target'] for r in arm]
        reached = [s for s in seconds if s is not None]
        median = statistics.median(reached) if reached else None
        cells = [' / '.join('-' if s is None else f'{s:.0f}' for s in seconds),
                 '-' if median is None else f'{median:.0f}',
                 ' / '.join(str(r['updates_to_target']) for r in arm),
                 ' / '.join('-' if r['final_cost'] is None else f"{r['final_cost']:.3f}" for r in arm),
                 ' / '.join(str(r['updates']) for r in arm)]
        print(f'| {k} | ' + ' | '.join(cells) + ' |')
        summary[f'k{k}'] = {'seeds': sorted(by_arm[k]), 'seconds_to_target': seconds, 'median_s': median,
                            'reached': len(reached)}
    if 1 in by_arm and 2 in by_arm:   # paired by seed; a run that never reached the target took "forever"
        def seconds(k: int, seed: int) -> float:
            value = by_arm[k][seed]['seconds_to_target']
            return float('inf') if value is None else float(value)
        paired = sorted(set(by_arm[1]) & set(by_arm[2]))
        summary['k2_over_k1'] = [seconds(2, s) / seconds(1, s) for s in paired
                                 if math.isfinite(seconds(1, s)) and math.isfinite(seconds(2, s))]
        summary['k2_sooner_seeds'] = [s for s in paired if seconds(2, s) < seconds(1, s)]
        summary['k2_sooner'] = 2 * len(summary['k2_sooner_seeds']) > len(paired)   # in most seeds
    return summary


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.table:
        summary = table(args.runs_dir, args.mode, args.learner_params)
        print(json.dumps(summary))
        return summary
    out = Path(args.runs_dir) / 'graph_clients'
    out.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for clients in args.clients:
            record = run_graph(clients, seed, args)
            path = out / f'{args.mode}_k{clients}__{seed}__{int(time.time())}.json'
            path.write_text(json.dumps(record))
            print(json.dumps({k: v for k, v in record.items() if k != 'curve'}), flush=True)
    summary = table(args.runs_dir, args.mode, args.learner_params)
    print(json.dumps(summary))
    return summary


if __name__ == '__main__':
    main()
