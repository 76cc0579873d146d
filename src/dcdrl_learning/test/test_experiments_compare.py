"""Smoke tests of experiments/compare_sb3.py (our side; SB3 is not in .venv) and of mec_collective.py's
learner-only workers: tiny runs in-process, the JSON the results docs rely on."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[3] / 'experiments'


def load(name: str):
    if str(EXPERIMENTS) not in sys.path:
        sys.path.insert(0, str(EXPERIMENTS))   # the scripts import mec_ddpg's helpers
    spec = importlib.util.spec_from_file_location(f'experiments_{name}', EXPERIMENTS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compare_sb3_runs_ours_writes_a_record_and_aggregates(tmp_path: Path, capsys) -> None:
    compare = load('compare_sb3')
    compare.main(['--algorithms', 'ddpg', '--seeds', '3', '--quick', '--runs-dir', str(tmp_path)])
    records = sorted((tmp_path / 'compare').glob('mec__compare_ddpg__3__*.json'))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record['algorithm'] == 'ddpg' and record['total_steps'] == 300 and record['quick'] is True
    assert record['final_cost'] > 0 and record['oracle_cost'] > 0 and record['curve'][-1][0] == 300
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])['experiment'] == 'compare_sb3'
    # The table: quick records are left out; two made-up full records give the verdict.
    assert compare.load_records(str(tmp_path), 'mec') == []
    full = [{**record, 'quick': False, 'final_cost': 0.25, 'seed': 0},
            {**record, 'quick': False, 'algorithm': 'sb3_sac', 'final_cost': 0.3, 'seed': 0}]
    table = compare.aggregate(full)
    verdict = compare.mec_verdict(full, table)
    assert verdict['best_ours'] == 'ddpg' and verdict['at_or_below_sb3_sac'] is True
    assert '| sb3_sac | 0.300 (1 seed) |' in compare.markdown_table(table, 'mec')
    two = compare.aggregate(full + [{**full[1], 'seed': 1, 'final_cost': 0.4}])
    assert '| sb3_sac | 0.350 ± 0.071 | 0.300 / 0.400 |' in compare.markdown_table(two, 'mec')


def test_collective_workers_that_only_explore_and_a_master_that_never_pulls(tmp_path: Path) -> None:
    args = ['--quick', '--total-steps', '120', '--generation-steps', '15', '--learning-starts', '32',
            '--num-agents', '2', '--test-episodes', '1', '--episode-length', '20', '--runs-dir', str(tmp_path),
            '--seed', '3', '--no-tensorboard', '--worker-updates-per-step', '0', '--no-master-pull']
    summary = load('mec_collective').main(args)
    # Only the master learns: 2 updates per own step (one per stored transition, its own and the worker's)
    # once its buffer holds 32 (at its own step 17: 2 * 17 - 1 = 33 stored), i.e. 2 * (60 - 16) = 88; the worker,
    # ready at its own step 32, would add 29 more.
    assert summary['gradient_updates'] == 88
    history = json.loads((Path(summary['run_dir']) / 'eval.json').read_text())['history']
    assert all(0 not in h['pulled'] for h in history)
    with pytest.raises(SystemExit):
        load('mec_collective').parse_args(['--worker-updates-per-step', '-1'])


def test_the_cartpole_table_counts_converged_seeds_and_takes_the_median_of_those() -> None:
    compare = load('compare_sb3')
    records = [{'algorithm': 'sac', 'seed': seed, 'steps_to_converge': steps, 'wall_s': 300.0}
               for seed, steps in ((0, None), (1, 30_000), (2, 40_000))]
    records.append({'algorithm': 'sb3_sac', 'seed': 0, 'steps_to_converge': None, 'wall_s': 800.0})
    text = compare.markdown_table(compare.aggregate(records), 'cartpole')
    assert '| sac | 2 of 3 (35,000) | not converged / 30,000 / 40,000 | 300 / 300 / 300 |' in text
    assert '| sb3_sac | 0 of 1 | not converged | 800 |' in text


def test_cartpole_runs_every_algorithm_but_the_mec_variant_by_default() -> None:
    compare = load('compare_sb3')
    assert 'sac_b256' in compare.parse_args([]).algorithms
    assert compare.parse_args(['--env', 'cartpole']).algorithms == ['ddpg', 'td3', 'sac', 'sb3_sac', 'sb3_td3']
    with pytest.raises(SystemExit):
        compare.parse_args(['--env', 'cartpole', '--algorithms', 'sac_b256'])
