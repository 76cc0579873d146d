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
    verdict = compare.mec_verdict(full, table, min_seeds=1)
    assert verdict['best_ours'] == 'ddpg' and verdict['at_or_below_sb3_sac'] is True
    # By default an arm needs three seeds to count as our best.
    assert compare.mec_verdict(full, table)['best_ours'] is None
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


def test_cartpole_runs_every_algorithm_but_the_mec_variants_by_default() -> None:
    compare = load('compare_sb3')
    assert {'sac_b256', 'sac_net256', 'sac_g99', 'sac_sb3'} <= set(compare.parse_args([]).algorithms)
    assert compare.parse_args(['--env', 'cartpole']).algorithms == ['ddpg', 'td3', 'sac', 'sb3_sac', 'sb3_td3']
    for variant in ('sac_b256', 'sac_net256', 'sac_g99', 'sac_sb3'):
        with pytest.raises(SystemExit):
            compare.parse_args(['--env', 'cartpole', '--algorithms', variant])


def test_the_sac_variants_change_only_what_they_name() -> None:
    compare = load('compare_sb3')
    mec_ddpg = load('mec_ddpg')

    def config(name):
        return mec_ddpg.agent_config(mec_ddpg.parse_args(['--algorithm', 'sac', *compare.OUR_RUNS[name][1]]), 0)
    base, net256, g99 = config('sac'), config('sac_net256'), config('sac_g99')
    assert base.network.actor_layer_norm and base.network.actor_hidden == (400, 300)
    assert net256.network.actor_hidden == net256.network.critic_hidden == (256, 256)
    assert not net256.network.actor_layer_norm and not net256.network.critic_layer_norm
    assert net256.network.critic_action_layer == 0 and base.network.critic_action_layer == 1
    assert (g99.gamma, g99.n_step) == (0.99, 1) and (base.gamma, base.n_step) == (0.9, 3)
    assert net256.with_changes(network=base.network) == base == g99.with_changes(gamma=0.9, n_step=3)
    sb3 = config('sac_sb3')
    assert (sb3.network, sb3.gamma, sb3.n_step, sb3.batch_size, sb3.critic_start, sb3.actor_start, sb3.alpha) == \
        (net256.network, 0.99, 1, 256, 100, 100, 1.0) and base.alpha == 0.2


def test_graph_clients_params_file_is_train_yaml_with_the_eval_period(tmp_path: Path) -> None:
    import yaml

    from dcdrl_ros.param_files import parse_parameter_file
    graph_clients = load('graph_clients')
    args = graph_clients.parse_args(['--learner-param', 'batch_size=128'])
    assert args.learner_params == {'batch_size': 128}
    path = graph_clients.params_file(5.0, tmp_path, args.learner_params)
    assert [name for name, _ in parse_parameter_file(path)] == ['/**', '/**/learner']   # what main_job checks
    params = yaml.safe_load(path.read_text())
    assert params['/**/learner']['ros__parameters'] == {'eval_period_s': 5.0, 'batch_size': 128}
    assert params['/**']['ros__parameters']['publish_rate_hz'] == 10.0   # the rest of config/train.yaml


def test_graph_clients_table_pairs_the_arms_by_seed(tmp_path: Path, capsys) -> None:
    graph_clients = load('graph_clients')
    out = tmp_path / 'graph_clients'
    out.mkdir()
    seconds = {(1, 0): 80.0, (2, 0): 60.0, (1, 1): 100.0, (2, 1): None}
    for (k, seed), s in seconds.items():
        record = {'clients': k, 'seed': seed, 'mode': 'central', 'learner_params': {}, 'seconds_to_target': s,
                  'updates_to_target': None if s is None else 9, 'final_cost': 0.3, 'updates': 20_000}
        (out / f'k{k}__{seed}__1.json').write_text(json.dumps(record))
    summary = graph_clients.table(str(tmp_path))
    assert summary['k1']['seconds_to_target'] == [80.0, 100.0] and summary['k1']['median_s'] == 90.0
    assert summary['k2']['reached'] == 1
    # Seed 0: K = 2 sooner; seed 1: only K = 1 reached the target, so K = 1 was sooner there.
    assert summary['k2_over_k1'] == [0.75] and summary['k2_sooner_seeds'] == [0]
    assert summary['k2_sooner'] is False
    assert '| 2 | 60 / - | 60 |' in capsys.readouterr().out
