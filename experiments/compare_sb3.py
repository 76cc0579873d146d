"""Learning quality against stable-baselines3: our DDPG / TD3 / SAC vs SB3 SAC and TD3, one run per call.

CleanRL-style: read top to bottom. What a user could pick off the shelf instead of our learner,
trained for the same number of environment steps and scored by the same evaluation:

- MEC (`--env mec`): `dcdrl_sim/MecOffloadScores-v0` (N = 10 users, offload-score action), 40,000
  env steps. Ours run through `mec_ddpg.main` with the tuned settings of docs/results-learning.md
  (`TUNED` below; SAC uses its own defaults plus the task's gamma, n-step and tau; `sac_b256` is that
  SAC with SB3's batch 256 and learning from step 100, `sac_net256` with SB3's 256-256 nets (no layer norm,
  the action entering the critic with the observation), `sac_g99` with SB3's gamma 0.99 and 1-step returns,
  `sac_sb3` with all of these and SB3's temperature start 1.0, `sac_sb3_init` with SB3's initial output layers
  too, `sac_utd2` our SAC with two gradient steps per env step);
  SB3 runs its defaults (`SAC('MlpPolicy', env)`, `TD3('MlpPolicy', env)`). Every final policy is scored by
  `mec_ddpg.compare_with_baselines`: the same 10 test episodes reset with seeds 10000-10009, with
  greedy and the per-step oracle (`MecOracle`) on the same episodes. The validation curve (5 episodes
  from seed 20000 every 2,000 steps) is logged for every algorithm.
- Cart-pole (`--env cartpole`): `CartPoleSwingUp-v0` (corrected plant), env steps until
  `ConvergenceTracker(k=3, max_swing_up_steps=250)` says converged (one noise-free evaluation every
  5 training episodes, as `cartpole_swingup.py`), capped at `--total-steps`.

Each run writes runs/compare/<env>__compare_<algorithm>__<seed>__<unix time>.json (its summary, the
validation curve, the machine and its load) and prints it as JSON; `--table` reads those files and
prints the markdown table, writes the plot (`--plot`) and prints a JSON summary as the last line.
SB3 is imported only inside its runner, so ours also run in .venv; SB3 needs the bench venv:

    /work/bench-venv/bin/python experiments/compare_sb3.py --algorithms ddpg td3 sac sb3_sac sb3_td3 --seeds 0 1 2
    /work/bench-venv/bin/python experiments/compare_sb3.py --table --plot docs/img/compare_sb3.png
    .venv/bin/python experiments/compare_sb3.py --algorithms ddpg --seeds 0 --quick     # seconds; smoke test
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # mec_ddpg's evaluation, cartpole_swingup's
import cartpole_swingup  # noqa: E402
import mec_ddpg  # noqa: E402

from dcdrl_learning.runlog import read_scalars_csv  # noqa: E402
from dcdrl_sim.cartpole.env import CartPoleSwingUpEnv  # noqa: E402
from dcdrl_sim.cartpole.evaluation import ConvergenceTracker, evaluate_swing_up  # noqa: E402
from dcdrl_sim.mec.env import MecOffloadEnv  # noqa: E402

SB3 = ('sb3_sac', 'sb3_td3')
# The tuned DDPG settings of docs/results-learning.md (section 1), used for our DDPG and TD3.
TUNED = ['--noise-scale', '1.0', '--tau', '0.005', '--n-step', '3', '--actor-lr', '3e-4',
         '--exploration', 'gaussian', '--noise-sigma', '0.3']
# SAC: standard SAC learning rates (3e-4 both), the task's gamma / n-step / tau; no exploration noise
# (the policy's own entropy explores).
SAC_SETTINGS = ['--tau', '0.005', '--n-step', '3', '--actor-lr', '3e-4', '--critic-lr', '3e-4',
                '--exploration', 'none']
# MEC only: our SAC with the two settings in which SB3's SAC defaults differ from ours and that act early in
# a run (batch 256, learning from step 100); the networks, gamma and n-step stay ours.
SAC_B256_SETTINGS = [*SAC_SETTINGS, '--batch-size', '256', '--learning-starts', '100']
# MEC only, the other places where SB3's SAC defaults differ from ours: its critic and actor (256-256 relu without
# layer norm, the action entering the critic with the observation: `sac_net256`), its gamma 0.99 with 1-step
# returns (`sac_g99`).
SAC_NET256_SETTINGS = [*SAC_SETTINGS, '--hidden', '256', '256', '--no-layer-norm', '--critic-action-layer', '0']
SAC_G99_SETTINGS = [*SAC_SETTINGS, '--gamma', '0.99', '--n-step', '1']
# All of SB3's SAC defaults at once (the three above and its temperature start 1.0): our implementation with
# SB3's settings, so that what is left between the two is implementation, not settings.
SAC_SB3_SETTINGS = [*SAC_NET256_SETTINGS, '--gamma', '0.99', '--n-step', '1', '--batch-size', '256',
                    '--learning-starts', '100', '--alpha', '1.0']
# MEC only: our SAC with two gradient steps per env step. Our update is about twice as fast as SB3's (bench/learner.py),
# so this spends about the wall time SB3's SAC spends on one; the env steps stay equal.
SAC_UTD2_SETTINGS = [*SAC_SETTINGS, '--updates-per-step', '2']
# MEC only: `sac_sb3` with SB3's initial output layers too (PyTorch's default range, +-1/sqrt(256), instead of
# the DDPG paper's +-3e-3).
SAC_SB3_INIT_SETTINGS = [*SAC_SB3_SETTINGS, '--final-init', '0.0625']
OUR_RUNS = {'ddpg': ('ddpg', TUNED), 'td3': ('td3', TUNED), 'sac': ('sac', SAC_SETTINGS),
            'sac_b256': ('sac', SAC_B256_SETTINGS), 'sac_net256': ('sac', SAC_NET256_SETTINGS),
            'sac_g99': ('sac', SAC_G99_SETTINGS), 'sac_sb3': ('sac', SAC_SB3_SETTINGS),
            'sac_utd2': ('sac', SAC_UTD2_SETTINGS), 'sac_sb3_init': ('sac', SAC_SB3_INIT_SETTINGS)}
# name -> (mec_ddpg --algorithm, settings)
OURS = tuple(OUR_RUNS)
MEC_ONLY = ('sac_b256', 'sac_net256', 'sac_g99', 'sac_sb3', 'sac_utd2', 'sac_sb3_init')
# The rule: an arm needs this many seeds before it can be called our best.
MIN_SEEDS = 3
MEC_ENV_KW = {'num_users': 10, 'num_channels': 5, 'episode_length': 50, 'action_mode': 'scores'}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--env', default='mec', choices=('mec', 'cartpole'))
    p.add_argument('--algorithms', nargs='+', default=None, choices=OURS + SB3,
                   help='default: all of them (cart-pole: all but the MEC-only variants, ' + ', '.join(MEC_ONLY) + ')')
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--total-steps', type=int, default=None,
                   help='env steps (MEC: 40,000) or the cap on steps to converge (cart-pole: 50,000)')
    p.add_argument('--eval-every', type=int, default=2000, help='MEC: env steps between validation evaluations')
    p.add_argument('--runs-dir', default='runs')
    p.add_argument('--quick', action='store_true', help='tiny runs for smoke tests')
    p.add_argument('--table', action='store_true', help='only aggregate runs/compare/*.json into a table')
    p.add_argument('--plot', default=None, help='with --table: write the chart (PNG) here')
    args = p.parse_args(argv)
    if args.total_steps is None:
        args.total_steps = 40_000 if args.env == 'mec' else 50_000
    if args.quick:
        args.total_steps, args.eval_every = min(args.total_steps, 300), 150
    if args.algorithms is None:
        args.algorithms = [a for a in OURS + SB3 if args.env == 'mec' or a not in MEC_ONLY]
    mec_only = [a for a in args.algorithms if a in MEC_ONLY]
    if args.env == 'cartpole' and mec_only and not args.table:
        p.error(f'{", ".join(mec_only)}: MEC variants (cart-pole runs cartpole_swingup.py with its own settings)')
    return args


def machine() -> dict[str, Any]:
    return {'host': platform.node(), 'cpu': platform.processor() or platform.machine(), 'cores': os.cpu_count(),
            'python': platform.python_version(), 'torch': torch.__version__, 'torch_threads': torch.get_num_threads(),
            'load_avg': list(os.getloadavg())}


# ------------------------------------------------------------------------------------------ ours
def run_ours_mec(algorithm: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    learner, settings = OUR_RUNS[algorithm]
    argv = ['--seed', str(seed), '--total-steps', str(args.total_steps), '--exp-name', f'compare_{algorithm}',
            '--action-mode', 'scores', '--algorithm', learner, '--eval-every', str(args.eval_every),
            '--runs-dir', args.runs_dir, '--no-tensorboard', '--no-save-model', *settings]
    if args.quick:
        argv.append('--quick')
    summary = mec_ddpg.main(argv)
    curve = [[step, value] for step, tag, value in read_scalars_csv(Path(summary['run_dir']) / 'scalars.csv')
             if tag == 'eval/cost']
    return {'final_cost': summary['final_cost'], 'best_validated_cost': summary['best_cost'],
            'greedy_cost': summary['baseline_cost']['greedy'], 'oracle_cost': summary['oracle_cost'],
            'curve': curve, 'train_s': summary['train_s'], 'run_dir': summary['run_dir'], 'settings': settings}


def run_ours_cartpole(algorithm: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    argv = ['--seed', str(seed), '--total-steps', str(args.total_steps), '--finetune-steps', '0',
            '--algorithm', algorithm, '--exp-name', f'compare_{algorithm}', '--runs-dir', args.runs_dir,
            '--no-tensorboard', *(['--quick'] if args.quick else [])]
    summary = cartpole_swingup.main(argv)
    return {'converged': summary['converged'], 'steps_to_converge': summary['steps_to_converge'],
            'train_s': summary.get('wall_s'), 'run_dir': summary.get('run_dir')}


# ------------------------------------------------------------------------------------------ SB3
def sb3_model(algorithm: str, env: Any, seed: int) -> Any:
    """SB3 with its defaults; imported here so that our runs need no SB3."""
    from stable_baselines3 import SAC, TD3
    cls = {'sb3_sac': SAC, 'sb3_td3': TD3}[algorithm]
    return cls('MlpPolicy', env, seed=seed, device='cpu')


def sb3_policy(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    return lambda obs: model.predict(obs, deterministic=True)[0]


def run_sb3_mec(algorithm: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    from stable_baselines3.common.callbacks import BaseCallback

    curve: list[list[float]] = []

    class Validate(BaseCallback):
        """Validation cost every eval_every env steps: the same seeds and episodes as ours."""

        def _on_step(self) -> bool:
            if self.num_timesteps % args.eval_every == 0:
                curve.append([self.num_timesteps, mec_ddpg.mean_cost(MEC_ENV_KW, sb3_policy(self.model),
                                                                     mec_ddpg.VALIDATION_SEED, 5)])
            return True

    start = time.time()
    model = sb3_model(algorithm, MecOffloadEnv(**MEC_ENV_KW), seed)
    model.learn(total_timesteps=args.total_steps, callback=Validate())
    train_s = time.time() - start
    comparison = mec_ddpg.compare_with_baselines(MEC_ENV_KW, {algorithm: sb3_policy(model)},
                                                 episodes=2 if args.quick else 10)
    cost = comparison['cost']
    return {'final_cost': cost[algorithm], 'greedy_cost': cost['greedy'], 'oracle_cost': cost['oracle'],
            'curve': curve, 'train_s': round(train_s, 1)}


def run_sb3_cartpole(algorithm: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """SB3 until the same convergence rule as cartpole_swingup.py (same evaluation starts)."""
    from stable_baselines3.common.callbacks import BaseCallback

    eval_env = CartPoleSwingUpEnv(target_steps_to_stop=None)
    tracker = ConvergenceTracker(k=3, max_swing_up_steps=250)
    eval_seed = cartpole_swingup.EVAL_SEED_BASE + 10_000 * seed
    state: dict[str, Any] = {'episodes': 0, 'converged_at': None}

    class Converge(BaseCallback):
        def _on_step(self) -> bool:
            if not self.locals['dones'][0]:
                return True
            state['episodes'] += 1
            if state['episodes'] % 5 == 0:
                result = evaluate_swing_up(eval_env, sb3_policy(self.model), seed=eval_seed + tracker.evaluations,
                                           max_swing_up_steps=250, max_steps=251, stop_on_success=True)
                if tracker.update(result):
                    state['converged_at'] = self.num_timesteps
                    return False
            return True

    start = time.time()
    model = sb3_model(algorithm, CartPoleSwingUpEnv(), seed)
    model.learn(total_timesteps=args.total_steps, callback=Converge())
    return {'converged': state['converged_at'] is not None, 'steps_to_converge': state['converged_at'],
            'evaluations': tracker.evaluations, 'train_s': round(time.time() - start, 1)}


# ---------------------------------------------------------------------------------------- runs
def run_one(algorithm: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)   # one thread per process, like every reported run
    load_before = list(os.getloadavg())
    start = time.time()
    runners = {('mec', False): run_ours_mec, ('mec', True): run_sb3_mec,
               ('cartpole', False): run_ours_cartpole, ('cartpole', True): run_sb3_cartpole}
    result = runners[(args.env, algorithm in SB3)](algorithm, seed, args)
    record = {'env': args.env, 'algorithm': algorithm, 'seed': seed, 'total_steps': args.total_steps,
              **result, 'wall_s': round(time.time() - start, 1), 'load_before': load_before,
              'machine': machine(), 'quick': args.quick}
    out_dir = Path(args.runs_dir) / 'compare'
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f'{args.env}__compare_{algorithm}__{seed}__{int(time.time())}.json'
    path.write_text(json.dumps(record, indent=2), encoding='utf-8')
    record['path'] = str(path)
    print(json.dumps({k: v for k, v in record.items() if k != 'curve'}), flush=True)
    return record


def load_records(runs_dir: str, env: str) -> list[dict[str, Any]]:
    records = [json.loads(Path(f).read_text(encoding='utf-8'))
               for f in sorted(glob.glob(str(Path(runs_dir) / 'compare' / f'{env}__compare_*.json')))]
    return [r for r in records if not r.get('quick')]


def aggregate(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """algorithm -> mean / std / per-seed values of the final cost (MEC) or steps to converge (cart-pole)."""
    table: dict[str, dict[str, Any]] = {}
    key = 'final_cost' if records and 'final_cost' in records[0] else 'steps_to_converge'
    for algorithm in OURS + SB3:
        rows = sorted((r for r in records if r['algorithm'] == algorithm), key=lambda r: r['seed'])
        if not rows:
            continue
        values = [r[key] for r in rows]
        finite = [v for v in values if v is not None]
        table[algorithm] = {'seeds': [r['seed'] for r in rows], 'values': values,
                            'mean': float(np.mean(finite)) if finite else None,
                            'std': float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0 if finite else None,
                            'wall_s': [r['wall_s'] for r in rows]}
    return table


def mec_verdict(records: list[dict[str, Any]], table: dict[str, dict[str, Any]],
                min_seeds: int = MIN_SEEDS) -> dict[str, Any]:
    """The goals: our best arm (of those with >= min_seeds seeds) against SB3 SAC's mean and the oracle."""
    ours = {a: table[a]['mean'] for a in OURS if a in table and len(table[a]['values']) >= min_seeds}
    best = min(ours, key=lambda a: ours[a]) if ours else None
    oracle = float(np.mean([r['oracle_cost'] for r in records]))
    greedy = float(np.mean([r['greedy_cost'] for r in records]))
    sb3_sac = table.get('sb3_sac', {}).get('mean')
    return {'best_ours': best, 'best_ours_cost': ours.get(best) if best else None, 'sb3_sac_cost': sb3_sac,
            'oracle_cost': oracle, 'greedy_cost': greedy,
            'at_or_below_sb3_sac': None if best is None or sb3_sac is None else ours[best] <= sb3_sac,
            'below_oracle': None if best is None else ours[best] < oracle}


def markdown_table(table: dict[str, dict[str, Any]], env: str) -> str:
    what = 'cost per step (test, mean ± std)' if env == 'mec' else 'converged (median env steps of those)'
    lines = [f'| algorithm | {what} | per seed | wall s per run |', '| --- | --- | --- | --- |']
    for algorithm, row in table.items():
        fmt = (lambda v: f'{v:.3f}') if env == 'mec' else (lambda v: 'not converged' if v is None else f'{v:,}')
        if env == 'mec':
            spread = f' ± {row["std"]:.3f}' if len(row['values']) > 1 else ' (1 seed)'
            mean = f'{row["mean"]:.3f}{spread}'
        else:   # a mean over the seeds that converged would hide those that did not
            converged = [v for v in row['values'] if v is not None]
            mean = f'{len(converged)} of {len(row["values"])}' + \
                (f' ({float(np.median(converged)):,.0f})' if converged else '')
        lines.append(f'| {algorithm} | {mean} | {" / ".join(fmt(v) for v in row["values"])} '
                     f'| {" / ".join(f"{w:.0f}" for w in row["wall_s"])} |')
    return '\n'.join(lines)


def plot(records: list[dict[str, Any]], table: dict[str, dict[str, Any]], path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax_bar, ax_curve) = plt.subplots(1, 2, figsize=(10, 4.0), dpi=80)
    names = list(table)
    ax_bar.bar(names, [table[n]['mean'] for n in names], yerr=[table[n]['std'] for n in names], capsize=4,
               color=['tab:blue' if n in OURS else 'tab:gray' for n in names])
    for axis in (ax_bar, ax_curve):
        for label, key, style in (('greedy', 'greedy_cost', '--'), ('per-step oracle', 'oracle_cost', ':')):
            axis.axhline(float(np.mean([r[key] for r in records])), color='k', linestyle=style, label=label)
    ax_bar.tick_params(axis='x', labelrotation=45, labelsize=8)   # eight or more names side by side
    ax_bar.set_ylabel('test cost per step (10 episodes)')
    ax_bar.set_title('final policy, mean ± std over seeds')
    ax_bar.legend(fontsize=8)
    for n in names:
        rows = [r for r in records if r['algorithm'] == n and r.get('curve')]
        if not rows:
            continue
        steps = [s for s, _ in rows[0]['curve']]
        length = min(len(r['curve']) for r in rows)
        mean = np.mean([[v for _, v in r['curve'][:length]] for r in rows], axis=0)
        ax_curve.plot(steps[:length], mean, label=n, linestyle='-' if n in OURS else '--')
    ax_curve.set_yscale('log')
    ax_curve.set_xlabel('env steps')
    ax_curve.set_ylabel('validation cost per step (mean of seeds)')
    ax_curve.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if not args.table:
        for seed in args.seeds:
            for algorithm in args.algorithms:
                run_one(algorithm, seed, args)
    records = load_records(args.runs_dir, args.env)
    table = aggregate(records)
    print(markdown_table(table, args.env))
    summary: dict[str, Any] = {'experiment': 'compare_sb3', 'env': args.env, 'table': table}
    if args.env == 'mec' and records:
        summary['goals'] = mec_verdict(records, table)
        if args.plot:
            plot(records, table, args.plot)
    print(json.dumps(summary))
    return summary


if __name__ == '__main__':
    main(sys.argv[1:])
