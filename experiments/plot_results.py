"""Reads the experiment runs (scalars.csv, eval.json, result.json) and writes charts and tables.

Charts (PNG, < 200 KB each) go to --out-dir (default docs/img):
  mec_ddpg_learning.png      validation cost vs env steps per seed, with greedy / oracle / local-only levels
  mec_ddpg_final.png         test cost of DDPG vs the baselines and the oracle (mean +- std over seeds, log axis)
  mec_collective.png         best validation cost and cumulative exploration cost vs total env steps,
                             collective (K agents) vs single agent
  cartpole_convergence.png   swing-up steps of each evaluation vs env steps, scratch and fine-tuning
Prints markdown tables (mean +- std over seeds) and, as the last line, one JSON object with the aggregates.

    .venv/bin/python experiments/plot_results.py --runs-dir runs --out-dir docs/img
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dcdrl_learning.runlog import read_scalars_csv  # noqa: E402


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument('--runs-dir', default='runs')
    p.add_argument('--out-dir', default='docs/img')
    p.add_argument('--mec-exp', default='mec_ddpg', help='experiment name of the mec_ddpg.py runs')
    p.add_argument('--mec-preset-exp', default=None,
                   help='optional mec_ddpg.py runs with the untouched DC-DRL preset, shown as an extra bar')
    p.add_argument('--collective-exp', default='collective4')
    p.add_argument('--single-exp', default='single',
                   help='single-agent arm: mec_collective.py --num-agents 1 runs, or mec_ddpg runs (same loop)')
    p.add_argument('--collective-ablation-exp', default=None,
                   help='optional second collective experiment (e.g. --no-merge-critic runs), drawn beside')
    p.add_argument('--target-cost', type=float, default=0.36,
                   help='collective vs single: env steps and wall seconds until the validation curve first reaches '
                        'this cost (default: about greedy on the test episodes)')
    p.add_argument('--cartpole-exp', default='cartpole_swingup')
    p.add_argument('--dpi', type=int, default=90)
    return p.parse_args(argv)


MEC_ENV, CARTPOLE_ENV = 'dcdrl_sim-MecOffload-v0', 'dcdrl_sim-CartPoleSwingUp-v0'


def find_runs(runs_dir: Path, env: str, exp: str | None) -> dict[int, Path]:
    """seed -> newest run directory named <env>__<exp>__<seed>__<time>[-n]."""
    found: dict[int, tuple[str, Path]] = {}
    for path in sorted(runs_dir.glob(f'{env}__{exp}__*__*') if exp else []):
        parts = path.name.split('__')
        if len(parts) != 4 or parts[1] != exp or not path.is_dir():
            continue
        seed, stamp = int(parts[2]), parts[3]
        if seed not in found or stamp > found[seed][0]:
            found[seed] = (stamp, path)
    return {seed: path for seed, (_, path) in sorted(found.items())}


def series(run: Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [(s, v) for s, t, v in read_scalars_csv(run / 'scalars.csv') if t == tag]
    if not rows:
        return np.zeros(0), np.zeros(0)
    steps, values = zip(*rows)
    return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    a = np.asarray([v for v in values if v is not None], dtype=float)
    if a.size == 0:
        return float('nan'), float('nan')
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else 0.0


def fmt(values: Sequence[float], digits: int = 3) -> str:
    m, s = mean_std(values)
    return f'{m:.{digits}g} ± {s:.{digits}g}' if np.isfinite(m) else 'n/a'


def save(fig: Any, path: Path, dpi: int) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    print(f'wrote {path} ({path.stat().st_size // 1024} KB)')


# ------------------------------------------------------------------------------------------- MEC
def mec_ddpg(runs: dict[int, Path], preset: dict[int, Path], out: Path, dpi: int) -> dict[str, Any]:
    evals = {seed: json.loads((run / 'eval.json').read_text()) for seed, run in runs.items()
             if (run / 'eval.json').exists()}
    if not evals:
        return {}
    names = [row['policy'] for row in next(iter(evals.values()))['table']]
    costs = {name: [e['cost'][name] for e in evals.values()] for name in names}
    gaps = {name: [e['oracle_gap_pct'][name] for e in evals.values()] for name in names}
    same = [e['same_state']['ddpg_final']['gap_pct'] for e in evals.values()]

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for seed, run in runs.items():
        steps, values = series(run, 'eval/cost')
        ax.plot(steps, values, lw=1.2, label=f'DDPG seed {seed}')
    for seed, run in preset.items():
        steps, values = series(run, 'eval/cost')
        ax.plot(steps, values, lw=1.2, color='0.5', ls='--', label=f'DDPG, DC-DRL preset, seed {seed}')
    for name, style in (('local_only', ':'), ('greedy', '--'), ('oracle', '-.')):
        ax.axhline(np.mean(costs[name]), color='k', ls=style, lw=1, label=name)
    ax.set_yscale('log')
    ax.set_xlabel('env steps')
    ax.set_ylabel('mean cost per step (validation)')
    ax.set_title('MEC N=10: DDPG learning curves (validation episodes, no noise)', fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    save(fig, out / 'mec_ddpg_learning.png', dpi)

    preset_costs = [json.loads((run / 'eval.json').read_text())['cost']['ddpg_final'] for run in preset.values()
                    if (run / 'eval.json').exists()]
    if preset_costs:
        costs['ddpg_preset'] = preset_costs
    fig, ax = plt.subplots(figsize=(7.2, 3.4))
    order = [n for n in ('ddpg_final', 'ddpg_preset') if n in costs] + [n for n in names if not n.startswith('ddpg')]
    means = [mean_std(costs[n])[0] for n in order]
    stds = [mean_std(costs[n])[1] for n in order]
    labels = [f'{n}\n({len(costs[n])} seed{"s" if len(costs[n]) > 1 else ""})' if n.startswith('ddpg') else n
              for n in order]
    ax.bar(labels, means, yerr=stds, color=['tab:blue' if n.startswith('ddpg') else 'tab:gray' for n in order])
    ax.tick_params(axis='x', labelsize=8)
    ax.set_yscale('log')
    ax.set_ylabel('mean cost per step (test seeds)')
    ax.set_title(f'MEC N=10: test cost, mean ± std over {len(evals)} seeds')
    for i, m in enumerate(means):
        ax.text(i, m * 1.08, f'{m:.3g}', ha='center', fontsize=8)
    save(fig, out / 'mec_ddpg_final.png', dpi)

    print('\n### MEC DDPG vs baselines (test seeds, mean ± std over seeds)\n')
    print('| policy | cost per step | gap to oracle % |\n|---|---|---|')
    for name in names:
        print(f'| {name} | {fmt(costs[name])} | {fmt(gaps[name])} |')
    if preset_costs:
        print(f'| ddpg_preset ({len(preset_costs)} run(s)) | {fmt(preset_costs)} | |')
    print(f'\nsame-state gap of ddpg_final to the oracle: {fmt(same)} %')
    return {'seeds': sorted(evals), 'cost': {n: mean_std(v) for n, v in costs.items()},
            'oracle_gap_pct': {n: mean_std(v) for n, v in gaps.items()}, 'same_state_gap_pct': mean_std(same)}


def run_summary(run: Path) -> dict[str, Any] | None:
    """Final test cost, exploration cost and validation-curve tag of a mec_collective.py run or of a
    mec_ddpg.py run (the same single-agent DDPG loop, used as the single arm to save compute)."""
    if not (run / 'eval.json').exists():
        return None
    data = json.loads((run / 'eval.json').read_text())
    if 'comparison' in data:            # mec_collective.py
        cost, tag = data['comparison']['cost'], 'eval/best_cost'
        final = cost['final']
    else:                               # mec_ddpg.py
        cost, tag = data['cost'], 'eval/cost'
        final = cost['ddpg_final']
    _, expl = series(run, 'charts/exploration_cost')
    config = json.loads((run / 'config.json').read_text())
    agents = int(config.get('num_agents', 1))
    final_validation = (max(data['history'][-1]['fitness'] + [data['history'][-1].get('merged_fitness', -np.inf)])
                        if 'history' in data else None)
    return {'final': final, 'greedy': cost['greedy'], 'oracle': cost['oracle'],
            'exploration': float(expl[-1]) if expl.size else None, 'curve_tag': tag, 'agents': agents,
            'total_steps': int(config['total_steps']),
            'final_validation': None if final_validation is None else -final_validation}


def value_at(run: Path, tag: str, step: int) -> float | None:
    """The last value of `tag` logged at or before `step`."""
    steps, values = series(run, tag)
    before = values[steps <= step]
    return float(before[-1]) if before.size else None


def first_reach(run: Path, tag: str, target: float) -> dict[str, float] | None:
    """Env steps and wall seconds (since the run folder's start stamp) until `tag` first is <= target."""
    start = float(run.name.split('__')[3].split('-')[0])
    with open(run / 'scalars.csv', newline='', encoding='utf-8') as handle:
        for row in csv.DictReader(handle):
            if row['tag'] == tag and float(row['value']) <= target:
                return {'steps': int(row['step']), 'seconds': float(row['wall_time']) - start}
    return None


def compare_arm(arm: dict[int, dict[str, Any]], single: dict[int, dict[str, Any]], single_runs: dict[int, Path],
                label: str, arm_runs: dict[int, Path] | None = None, target: float | None = None) -> dict[str, Any]:
    """One collective arm vs the single agent, paired by seed, in two views (printed as tables)."""
    seeds = sorted(set(arm) & set(single))
    rel_expl = [100 * (arm[s]['exploration'] / single[s]['exploration'] - 1) for s in seeds]
    rel_final = [100 * (arm[s]['final'] / single[s]['final'] - 1) for s in seeds]
    print(f'\n{label} vs single, same total env steps, paired by seed: exploration cost {fmt(rel_expl)} %, '
          f'final test cost {fmt(rel_final)} %')
    reach = []
    if arm_runs is not None and target is not None:
        print(f'first validation cost <= {target} (total env steps, wall s): ' + '; '.join(
            f"seed {s}: {label} {first_reach(arm_runs[s], arm[s]['curve_tag'], target)}, "
            f"single {first_reach(single_runs[s], single[s]['curve_tag'], target)}" for s in seeds))
        reach = [{'seed': s, 'arm': first_reach(arm_runs[s], arm[s]['curve_tag'], target),
                  'single': first_reach(single_runs[s], single[s]['curve_tag'], target)} for s in seeds]
    # Second view: per environment, at equal env steps PER ENVIRONMENT (= equal wall time when the K
    # agents run on K machines): the collective's exploration cost per environment (total / K) and its
    # final validation cost vs the single agent's after steps/K env steps (from its scalars).
    per_env = []
    for s in seeds:
        steps_each = arm[s]['total_steps'] // arm[s]['agents']
        per_env.append({'seed': s, 'steps_each': steps_each,
                        'collective_expl_per_env': arm[s]['exploration'] / arm[s]['agents'],
                        'single_expl': value_at(single_runs[s], 'charts/exploration_cost', steps_each),
                        'collective_val': arm[s]['final_validation'],
                        'single_val': value_at(single_runs[s], single[s]['curve_tag'], steps_each)})
    rel_e = rel_v = None
    if per_env and all(None not in r.values() for r in per_env):
        rel_e = [100 * (r['collective_expl_per_env'] / r['single_expl'] - 1) for r in per_env]
        rel_v = [100 * (r['collective_val'] / r['single_val'] - 1) for r in per_env]
        print(f"per environment after {per_env[0]['steps_each']} env steps each (equal wall time on K machines):")
        print('| seed | exploration cost per env: collective / single | validation cost: collective (best of K '
              '+ merged) / single |\n|---|---|---|')
        for r in per_env:
            print(f"| {r['seed']} | {r['collective_expl_per_env']:.4g} / {r['single_expl']:.4g} | "
                  f"{r['collective_val']:.3g} / {r['single_val']:.3g} |")
        print(f'change: exploration {fmt(rel_e)} %, validation cost {fmt(rel_v)} %')
    return {'seeds': seeds, 'exploration_change_pct': mean_std(rel_expl), 'final_change_pct': mean_std(rel_final),
            'per_environment': per_env, 'target_cost': target, 'reach_target': reach,
            'per_env_exploration_change_pct': mean_std(rel_e) if rel_e else None,
            'per_env_validation_change_pct': mean_std(rel_v) if rel_v else None}


def mec_collective(collective: dict[int, Path], single: dict[int, Path], ablation: dict[int, Path],
                   out: Path, dpi: int, target: float | None = None) -> dict[str, Any]:
    arms = {'collective': collective, 'single': single, 'collective, actor-only merge': ablation}
    rows = {arm: {seed: r for seed, run in runs.items() if (r := run_summary(run)) is not None}
            for arm, runs in arms.items()}
    if not rows['collective'] or not rows['single']:
        return {}
    shown = [a for a in arms if rows[a]]
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.6))
    for arm, color in zip(shown, ('tab:red', 'tab:blue', 'tab:orange')):
        for k, (seed, summary) in enumerate(rows[arm].items()):
            steps, best = series(arms[arm][seed], summary['curve_tag'])
            axes[0].plot(steps, best, color=color, lw=1, alpha=0.8, label=arm if k == 0 else None)
            steps, expl = series(arms[arm][seed], 'charts/exploration_cost')
            axes[1].plot(steps, expl, color=color, lw=1, alpha=0.8, label=arm if k == 0 else None)
    greedy = np.mean([r['greedy'] for r in rows['single'].values()])
    axes[0].axhline(greedy, color='k', ls='--', lw=1, label='greedy')
    axes[0].set_yscale('log')
    axes[0].set_xlabel('total env steps (all agents)')
    axes[0].set_ylabel('validation cost per step (best agent)')
    axes[0].legend(fontsize=7)
    axes[1].set_xlabel('total env steps (all agents)')
    axes[1].set_ylabel('cumulative exploration cost')
    axes[1].legend(fontsize=7)
    fig.suptitle('MEC N=10: collective (K agents, merge + shared experience) vs one agent, same env steps',
                 fontsize=9)
    save(fig, out / 'mec_collective.png', dpi)

    print('\n### Collective vs single (mean ± std over seeds)\n')
    print('| arm | exploration cost (sum) | final test cost per step |\n|---|---|---|')
    for arm in shown:
        values = list(rows[arm].values())
        print(f"| {arm} | {fmt([r['exploration'] for r in values], 4)} | {fmt([r['final'] for r in values])} |")
    result = {'exploration': {a: mean_std([r['exploration'] for r in rows[a].values()]) for a in shown},
              'final_cost': {a: mean_std([r['final'] for r in rows[a].values()]) for a in shown}}
    for arm in shown:
        if arm != 'single':
            result[arm] = compare_arm(rows[arm], rows['single'], single, arm, arms[arm], target)
    return result


# ------------------------------------------------------------------------------------- cart-pole
def cartpole(runs: dict[int, Path], out: Path, dpi: int) -> dict[str, Any]:
    results = {seed: json.loads((run / 'result.json').read_text()) for seed, run in runs.items()
               if (run / 'result.json').exists()}
    if not results:
        return {}
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.6), sharey=True)
    for (seed, run), color in zip(runs.items(), plt.rcParams['axes.prop_cycle'].by_key()['color']):
        offset = results[seed]['scratch']['steps'] if seed in results else 0
        for ax, phase, shift in ((axes[0], 'scratch', 0), (axes[1], 'finetune', offset)):
            steps, values = series(run, f'{phase}/swing_up_steps')
            if steps.size:
                ax.plot(steps - shift, values, 'o-', ms=2, lw=0.8, color=color, label=f'seed {seed}')
    first = next(iter(results.values()))
    tuned_friction = (first.get('finetune') or {}).get('cart_friction', 'other')
    for ax, title in ((axes[0], 'from scratch'), (axes[1], f'fine-tuning (cart friction {tuned_friction})')):
        ax.axhline(250, color='k', ls='--', lw=1)
        ax.set_xlabel('env steps of this phase')
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    axes[0].set_ylabel('swing-up steps per evaluation (251 = none)')
    save(fig, out / 'cartpole_convergence.png', dpi)

    scratch = [r['scratch']['converged_at_steps'] for r in results.values()]
    tune = [r['finetune']['converged_at_steps'] for r in results.values() if r.get('finetune')]
    print('\n### Cart-pole swing-up\n')
    print('| seed | steps to converge | scratch test (succ/fail/median) | steps to re-converge | zero-shot test | '
          'fine-tuned test |\n|---|---|---|---|---|---|')

    def t(test: dict[str, Any] | None) -> str:
        if not test:
            return 'n/a'
        return f"{test['successes']}/{test['failures']}/{test['median_swing_up_steps']} of {test['episodes']}"

    for seed, r in results.items():
        f = r.get('finetune') or {}
        print(f"| {seed} | {r['scratch']['converged_at_steps']} | {t(r['scratch'].get('test'))} | "
              f"{f.get('converged_at_steps')} | {t(f.get('zero_shot_test'))} | {t(f.get('test'))} |")

    def median(values: list[Any]) -> float | None:
        """Median with a run that did not converge (None) counted as above every cap (censored)."""
        if not values:
            return None
        m = float(np.median([np.inf if v is None else v for v in values]))
        return m if np.isfinite(m) else None

    print(f'\nmedian steps to converge: {median(scratch)}; median steps to re-converge: {median(tune)} '
          '(a run that did not converge within its cap counts as longer than any)')
    return {'seeds': sorted(results), 'steps_to_converge': scratch, 'median_steps_to_converge': median(scratch),
            'steps_to_reconverge': tune, 'median_steps_to_reconverge': median(tune)}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    runs_dir, out = Path(args.runs_dir), Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = {
        'mec_ddpg': mec_ddpg(find_runs(runs_dir, MEC_ENV, args.mec_exp),
                             find_runs(runs_dir, MEC_ENV, args.mec_preset_exp), out, args.dpi),
        'mec_collective': mec_collective(find_runs(runs_dir, MEC_ENV, args.collective_exp),
                                         find_runs(runs_dir, MEC_ENV, args.single_exp),
                                         find_runs(runs_dir, MEC_ENV, args.collective_ablation_exp), out, args.dpi,
                                         args.target_cost),
        'cartpole': cartpole(find_runs(runs_dir, CARTPOLE_ENV, args.cartpole_exp), out, args.dpi),
    }
    summary['charts'] = sorted(p.name for p in out.glob('*.png'))
    print(json.dumps(summary))
    return summary


if __name__ == '__main__':
    main(sys.argv[1:])
