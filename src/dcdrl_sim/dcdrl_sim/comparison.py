"""The final table of a training run: the learned policy against the comparison policies of its env.

Which policies an env is compared with belongs to the env, so it is kept here, per env id:
``COMPARISONS`` maps an env id to its baselines (and an optional oracle); an env not in it is
compared with a seeded random policy. Every env registered with the MEC entry point (the paper's
encoding and the scores encoding alike) gets the four MEC baselines and the oracle.

    results = final_evaluation(env_id, learned_policy, episodes=5, oracle_episodes=2, seed=10_000)
    write_evaluation(output_dir, results, {'env_id': env_id, ...})   # evaluation.json + evaluation.md
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium

from dcdrl_core.files import atomic_write_bytes
from dcdrl_core.strict_json import write_json
from dcdrl_sim.evaluation import EvaluationResult, Policy, evaluate_policy, summary_markdown
from dcdrl_sim.registration import ENV_IDS

EVALUATION_JSON = 'evaluation.json'
EVALUATION_MD = 'evaluation.md'
MEC_ENTRY_POINT = 'dcdrl_sim.mec.env:MecOffloadEnv'

PolicyFactory = Callable[[gymnasium.Env], Policy]


@dataclass(frozen=True)
class Comparison:
    """The policies an env's learned policy is compared with."""

    baselines: Callable[[int], dict[str, PolicyFactory]]   # seed -> {name: env -> policy}
    oracle: PolicyFactory | None = None                 # slow: run on its own episode count


def _mec_baselines(seed: int) -> dict[str, PolicyFactory]:
    from dcdrl_sim.mec.baselines import BASELINES
    return {name: _mec_baseline(name, seed) for name in BASELINES}


def _mec_baseline(name: str, seed: int) -> PolicyFactory:
    from dcdrl_sim.mec.baselines import make_baseline
    if name == 'random':
        return lambda env: make_baseline(name, env, seed=seed)
    return lambda env: make_baseline(name, env)


def _mec_oracle(env: gymnasium.Env) -> Policy:
    # Iterated best response: exact search is 600 000 candidates per step at N = 10.
    from dcdrl_sim.mec.oracle import MecOracle
    return MecOracle(env, max_exact_candidates=0)


def _random_baseline(seed: int) -> dict[str, PolicyFactory]:
    def random_factory(env: gymnasium.Env) -> Policy:
        space = env.action_space
        space.seed(seed)
        return lambda obs: space.sample()
    return {'random': random_factory}


MEC_COMPARISON = Comparison(baselines=_mec_baselines, oracle=_mec_oracle)
COMPARISONS: dict[str, Comparison] = {
    env_id: MEC_COMPARISON for env_id, (entry_point, _) in ENV_IDS.items() if entry_point == MEC_ENTRY_POINT}
RANDOM_COMPARISON = Comparison(baselines=_random_baseline)


def comparison_for(env_id: str) -> Comparison:
    return COMPARISONS.get(env_id, RANDOM_COMPARISON)


def has_oracle(env_id: str) -> bool:
    return comparison_for(env_id).oracle is not None


def baseline_factories(env_id: str, seed: int = 0) -> dict[str, PolicyFactory]:
    """The comparison policies for env_id: the four MEC baselines, or a seeded random policy."""
    return comparison_for(env_id).baselines(seed)


def final_evaluation(env_id: str, learned: Policy, episodes: int, oracle_episodes: int,
                     seed: int) -> list[EvaluationResult]:
    """The learned policy, the baselines and the oracle (when the env has one and ``oracle_episodes``
    > 0), all on the same episode seeds."""
    comparison = comparison_for(env_id)
    results = [evaluate_policy(env_id, learned, episodes=episodes, seed=seed, name='learned')]
    for name, factory in comparison.baselines(seed).items():
        results.append(evaluate_policy(env_id, policy_factory=factory, episodes=episodes, seed=seed, name=name))
    if comparison.oracle is not None and oracle_episodes > 0:
        results.append(evaluate_policy(env_id, policy_factory=comparison.oracle, episodes=oracle_episodes,
                                       seed=seed, name='oracle'))
    return results


def write_evaluation(output_dir: str | Path, results: Sequence[EvaluationResult],
                     meta: Mapping[str, Any]) -> tuple[Path, Path]:
    """evaluation.json (summary rows, per-episode rows, ``meta``) and evaluation.md (the table)."""
    output_dir = Path(output_dir)
    data = {**dict(meta), 'rows': [r.summary for r in results],
            'episodes': {r.name: r.episodes for r in results}}
    json_path = write_json(output_dir / EVALUATION_JSON, data)
    md_path = output_dir / EVALUATION_MD
    lines = [f"# Evaluation: {meta.get('env_id', '')}", '',
             f"Learned policy version {meta.get('version')} after {meta.get('updates')} updates and "
             f"{meta.get('env_steps')} environment steps; {meta.get('episodes')} episodes per policy "
             f"(oracle: {meta.get('oracle_episodes')}), episode k seeded {meta.get('seed')} + k, no "
             'exploration noise. Per-step means (cost = sum of the users\' costs per step; '
             'return = episode return).', '', summary_markdown(results), '']
    atomic_write_bytes(md_path, '\n'.join(lines).encode())
    return json_path, md_path


__all__ = ['COMPARISONS', 'Comparison', 'EVALUATION_JSON', 'EVALUATION_MD', 'baseline_factories',
           'comparison_for', 'final_evaluation', 'has_oracle', 'write_evaluation']
