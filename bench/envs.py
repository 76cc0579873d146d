"""Environment throughput of dcdrl_sim, and the MEC oracle's time per step.

For each registered dcdrl_sim id: steps/s of one env made with gymnasium.make, of
gymnasium.vector.SyncVectorEnv x8, and of the env's native batched vector env where it has
one (x8). "steps/s" counts environment transitions (a x8 vector step is 8 steps). Actions are
drawn before timing; episode resets are included. The native and the Sync vector env take
turns in every repeat (after a warm-up of each); `runs` lists every repeat and
native_over_sync is the median of the per-repeat ratios. One process, one thread (BLAS threads are
set to 1 before numpy is imported).

MEC oracle: milliseconds per decision for N = 4, 6, 8 users (C = 5) on states visited by a
mixed policy: exact search over one vector per channel relabelling (the default), exact over
all (C+1)^N vectors, and the iterated best response used for large N.

Goals: MEC N=10 >= 20 000 steps/s vectorised on one core; cart-pole
>= 100 000 steps/s vectorised. An env id that fails to make is skipped with the reason.

    .venv/bin/python bench/envs.py [--quick]
Last line: one JSON object with every number.
"""
from __future__ import annotations

import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import argparse  # noqa: E402
import importlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_ROOT, 'src', 'dcdrl_sim'))

import gymnasium as gym  # noqa: E402

import dcdrl_sim  # noqa: E402,F401  (registers the ids)
from dcdrl_sim.registration import ENV_IDS  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import machine_info  # noqa: E402

VECTOR_ENVS = 8
# Native batched vector envs by id (used when the id's spec has no vector_entry_point).
NATIVE_VECTOR = {
    'dcdrl_sim/MecOffload-v0': 'dcdrl_sim.mec.vector:MecOffloadVectorEnv',
    'dcdrl_sim/CartPoleSwingUp-v0': 'dcdrl_sim.cartpole.vector_env:CartPoleSwingUpVectorEnv',
}
GOALS = {'dcdrl_sim/MecOffload-v0': 20_000, 'dcdrl_sim/CartPoleSwingUp-v0': 100_000}


def load(path: str) -> Any:
    module, name = path.split(':')
    return getattr(importlib.import_module(module), name)


def action_pool(space: gym.Space, count: int, seed: int = 0) -> list[Any]:
    space.seed(seed)
    return [space.sample() for _ in range(count)]


def median_rate(run: Callable[[], int], repeats: int) -> float:
    """Median steps/s over repeats, after one warm-up run."""
    run()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        steps = run()
        rates.append(steps / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_single(env_id: str, steps: int, repeats: int) -> float:
    env = gym.make(env_id)
    actions = action_pool(env.action_space, steps)
    env.reset(seed=0)

    def run() -> int:
        for action in actions:
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        return steps

    rate = median_rate(run, repeats)
    env.close()
    return rate


def bench_vectors(makers: dict[str, Callable[[], gym.vector.VectorEnv]], steps: int,
                  repeats: int) -> dict[str, list[float]]:
    """Steps/s of each vector env, per repeat: all are built and warmed up first, then every
    repeat times each once in turn, so the i-th runs of two of them saw the same machine load."""
    runners: dict[str, Callable[[], int]] = {}
    opened = []
    for name, make_vec in makers.items():
        venv = make_vec()
        opened.append(venv)
        actions = action_pool(venv.action_space, steps)
        venv.reset(seed=0)

        def run(venv: gym.vector.VectorEnv = venv, actions: list[Any] = actions) -> int:
            for action in actions:
                venv.step(action)          # next-step autoreset inside the vector env
            return steps * venv.num_envs

        runners[name] = run
    for run in runners.values():   # warm-up
        run()
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            count = run()
            rates[name].append(count / (time.perf_counter() - start))
    for venv in opened:
        venv.close()
    return rates


def native_vector_maker(env_id: str) -> Callable[[], gym.vector.VectorEnv] | None:
    spec = gym.spec(env_id)
    if spec.vector_entry_point is not None:
        return lambda: gym.make_vec(env_id, num_envs=VECTOR_ENVS,
                                    vectorization_mode='vector_entry_point')
    if env_id in NATIVE_VECTOR:
        cls = load(NATIVE_VECTOR[env_id])
        return lambda: cls(num_envs=VECTOR_ENVS)
    return None


def bench_oracle(quick: bool) -> dict[str, dict[str, float]]:
    from dcdrl_sim.mec.env import MecOffloadEnv
    from dcdrl_sim.mec.oracle import best_response_search, exhaustive_search

    def states(n: int, count: int) -> list:
        env = MecOffloadEnv(num_users=n, action_mode='discrete')
        env.reset(seed=0)
        rng = np.random.default_rng(0)
        out = []
        for _ in range(count):
            out.append(env.decision_state())
            env.step(np.where(rng.random(n) < 0.7, 0, rng.integers(1, 6, n)))
        return out

    def time_ms(fn: Callable[[Any], Any], sample: list) -> float:
        fn(sample[0])                                  # warm-up (builds cached tables)
        times = []
        for state in sample:
            start = time.perf_counter()
            fn(state)
            times.append(1e3 * (time.perf_counter() - start))
        return statistics.median(times)

    result: dict[str, dict[str, float]] = {'exact_symmetry': {}, 'exact_full': {},
                                           'best_response': {}}
    for n in (4, 6, 8):
        sample = states(n, 5 if quick else 15)
        params = MecOffloadEnv(num_users=n).params
        result['exact_symmetry'][str(n)] = time_ms(
            lambda s, p=params: exhaustive_search(p, s, True), sample)
        if n < 8 or not quick:
            result['exact_full'][str(n)] = time_ms(
                lambda s, p=params: exhaustive_search(p, s, False, 65_536), sample[:3])
        result['best_response'][str(n)] = time_ms(
            lambda s, p=params: best_response_search(p, s, 20 * p.num_users), sample)
    for n in (10, 20):
        sample = states(n, 5 if quick else 15)
        params = MecOffloadEnv(num_users=n).params
        result['best_response'][str(n)] = time_ms(
            lambda s, p=params: best_response_search(p, s, 20 * p.num_users), sample)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--quick', action='store_true', help='short runs (< 60 s)')
    args = parser.parse_args()
    started = time.perf_counter()
    single_steps, vector_steps, repeats = (2_000, 500, 3) if args.quick else (10_000, 2_500, 5)

    results: dict[str, Any] = {'quick': args.quick, 'vector_envs': VECTOR_ENVS, 'envs': {},
                               'skipped': {}}
    for env_id in ENV_IDS:
        try:
            gym.make(env_id).close()
        except Exception as exc:  # an env another part has not landed yet
            results['skipped'][env_id] = f'{type(exc).__name__}: {exc}'
            print(f'{env_id}: skipped ({type(exc).__name__}: {exc})')
            continue
        row: dict[str, Any] = {}
        row['single_steps_per_s'] = bench_single(env_id, single_steps, repeats)
        makers: dict[str, Callable[[], gym.vector.VectorEnv]] = {}
        try:
            maker = native_vector_maker(env_id)
        except Exception as exc:
            maker = None
            print(f'{env_id}: native vector env not loadable ({type(exc).__name__}: {exc})')
        if maker is not None:
            makers['native_x8'] = maker   # ours first in every pair
        makers['sync_x8'] = lambda env_id=env_id: gym.vector.SyncVectorEnv([lambda: gym.make(env_id)] * VECTOR_ENVS)
        rates = bench_vectors(makers, vector_steps, repeats)
        for name, values in rates.items():
            row[f'{name}_steps_per_s'] = statistics.median(values)
        row['runs'] = rates
        if 'native_x8' in rates:
            row['native_over_sync'] = statistics.median(a / b for a, b in zip(rates['native_x8'], rates['sync_x8']))
        best_vector = max(row.get('native_x8_steps_per_s', 0.0), row['sync_x8_steps_per_s'])
        if env_id in GOALS:
            row['goal_vector_steps_per_s'] = GOALS[env_id]
            row['goal_met'] = best_vector >= GOALS[env_id]
        results['envs'][env_id] = row
        parts = [f'{k.replace("_steps_per_s", "")} {v:,.0f}/s' for k, v in row.items()
                 if k.endswith('_steps_per_s') and not k.startswith('goal')]
        goal = f' (goal {GOALS[env_id]:,}/s vectorised: {"met" if row["goal_met"] else "NOT met"})' \
            if env_id in GOALS else ''
        print(f'{env_id}: ' + ', '.join(parts) + goal)

    oracle = bench_oracle(args.quick)
    results['mec_oracle_ms_per_step'] = oracle
    for kind, by_n in oracle.items():
        print(f'MEC oracle {kind} (C=5): ' + ', '.join(f'N={n}: {ms:.2f} ms' for n, ms in by_n.items()))
    results['machine'] = machine_info()
    results['wall_s'] = round(time.perf_counter() - started, 1)
    print(json.dumps(results))


if __name__ == '__main__':
    main()
