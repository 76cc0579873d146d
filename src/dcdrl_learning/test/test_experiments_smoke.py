"""Smoke test of the experiments/ scripts: each main() runs with --quick and tiny settings in-process
and prints a JSON summary with the keys the results docs rely on (so the scripts cannot rot)."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

EXPERIMENTS = Path(__file__).resolve().parents[3] / 'experiments'


def load(name: str):
    if str(EXPERIMENTS) not in sys.path:
        sys.path.insert(0, str(EXPERIMENTS))   # mec_collective imports mec_ddpg's helpers
    spec = importlib.util.spec_from_file_location(f'experiments_{name}', EXPERIMENTS / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def last_json_line(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


@pytest.fixture(scope='module')
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp('runs')


def test_mec_ddpg_quick(runs: Path, capsys) -> None:
    summary = load('mec_ddpg').main(['--quick', '--total-steps', '150', '--learning-starts', '64', '--test-episodes',
                                     '1', '--episode-length', '20', '--runs-dir', str(runs), '--seed', '3',
                                     '--no-tensorboard'])
    assert last_json_line(capsys.readouterr().out) == json.loads(json.dumps(summary))
    for key in ('final_cost', 'best_cost', 'baseline_cost', 'oracle_cost', 'oracle_gap_pct', 'same_state_gap_pct',
                'beats_all_baselines', 'within_5pct_of_oracle', 'exploration_cost', 'wall_s'):
        assert key in summary
    assert set(summary['baseline_cost']) == {'local_only', 'full_offload', 'random', 'greedy'}
    assert summary['total_steps'] == 150 and summary['exploration_cost'] > 0
    run_dir = Path(summary['run_dir'])
    for name in ('scalars.csv', 'eval.json', 'config.json', 'agent.safetensors'):
        assert (run_dir / name).exists()


def test_mec_collective_quick(runs: Path, capsys) -> None:
    module = load('mec_collective')
    summary = module.main(['--quick', '--total-steps', '120', '--generation-steps', '15', '--learning-starts', '64',
                           '--num-agents', '2', '--mutation-prob', '1.0', '--test-episodes', '1',
                           '--episode-length', '20', '--runs-dir', str(runs), '--seed', '3', '--no-tensorboard'])
    assert last_json_line(capsys.readouterr().out)['experiment'] == 'mec_collective'
    for key in ('exploration_cost', 'final_cost', 'final_policy', 'master_cost', 'merged_cost', 'oracle_cost',
                'pulls', 'mutations', 'num_agents', 'total_steps'):
        assert key in summary
    assert summary['num_agents'] == 2 and summary['total_steps'] == 120 and summary['merge_critic'] is True
    history = json.loads((Path(summary['run_dir']) / 'eval.json').read_text())['history']
    assert len(history) == 4 and all(len(h['fitness']) == 2 for h in history)
    single = module.main(['--quick', '--total-steps', '60', '--num-agents', '1', '--learning-starts', '64',
                          '--test-episodes', '1', '--episode-length', '20', '--runs-dir', str(runs), '--seed', '3',
                          '--no-tensorboard'])
    assert single['num_agents'] == 1 and single['merged_cost'] is None and single['final_policy'] == 'agent0'


def test_cartpole_quick(runs: Path, capsys) -> None:
    summary = load('cartpole_swingup').main(['--quick', '--total-steps', '200', '--finetune-steps', '100',
                                             '--runs-dir', str(runs), '--seed', '3', '--no-tensorboard'])
    assert last_json_line(capsys.readouterr().out)['experiment'] == 'cartpole_swingup'
    for key in ('converged', 'steps_to_converge', 'scratch_steps', 'scratch_test', 'finetune_converged',
                'steps_to_reconverge', 'zero_shot_test', 'finetune_test', 'finetune_cart_friction'):
        assert key in summary
    assert summary['scratch_steps'] == 200 and summary['finetune_cart_friction'] == 15.0
    assert (Path(summary['run_dir']) / 'scratch.safetensors').exists()


def test_cartpole_training_episodes_take_the_given_length_and_the_run_records_both_options(tmp_path: Path) -> None:
    # 200 steps of 50-step training episodes: at least 4 episodes (the plant's 1000-step episodes give at most 1).
    summary = load('cartpole_swingup').main(['--quick', '--total-steps', '200', '--finetune-steps', '0',
                                             '--train-init-theta-std', '3', '--train-episode-steps', '50',
                                             '--runs-dir', str(tmp_path), '--seed', '3', '--no-tensorboard'])
    result = json.loads((Path(summary['run_dir']) / 'result.json').read_text())
    assert result['scratch']['episodes'] >= 4
    assert summary['train_init_theta_std'] == 3.0 and summary['train_episode_steps'] == 50


def test_cartpole_quick_with_sac_and_the_energy_table(tmp_path: Path, capsys) -> None:
    # Own runs folder: plot_results below reads the DDPG runs above.
    summary = load('cartpole_swingup').main(['--quick', '--algorithm', 'sac', '--total-steps', '200',
                                             '--finetune-steps', '100', '--runs-dir', str(tmp_path), '--seed', '3',
                                             '--no-tensorboard'])
    assert summary['scratch_steps'] == 200 and summary['finetune_steps'] == 100
    config = json.loads((Path(summary['run_dir']) / 'config.json').read_text())
    assert config['agent']['algorithm'] == 'sac'
    energy = load('cartpole_energy').main()
    assert last_json_line(capsys.readouterr().out)['experiment'] == 'cartpole_energy'
    plants = energy['plants']
    assert energy['energy_needed_j'] == pytest.approx(1.443, abs=1e-3)
    assert plants['corrected_friction_10']['best_energy_fraction'] < 1.0   # the resonant pump falls short ...
    assert plants['original_euler_friction_10']['best_energy_fraction'] > 1.0   # ... where Euler adds energy
    assert plants['corrected_friction_4.3']['best_energy_fraction'] > 1.0
    # Random actions find the top on the original's integrator, never on the corrected plant.
    assert plants['original_euler_friction_10']['random_white']['on_target_episodes'] > 0
    assert all(plants[name][f'random_{kind}']['on_target_episodes'] == 0
               for name in ('corrected_friction_10', 'corrected_friction_4.3') for kind in ('white', 'pink'))


def test_plot_results(runs: Path, tmp_path: Path, capsys) -> None:
    # Runs after the three above (file order): plots whatever they left under `runs`.
    summary = load('plot_results').main(['--runs-dir', str(runs), '--out-dir', str(tmp_path),
                                         '--collective-exp', 'collective2'])
    assert set(summary) >= {'mec_ddpg', 'mec_collective', 'cartpole', 'charts'}
    assert {'mec_ddpg_learning.png', 'mec_ddpg_final.png', 'mec_collective.png',
            'cartpole_convergence.png'} <= set(summary['charts'])
    assert all((tmp_path / name).stat().st_size < 200_000 for name in summary['charts'])
