"""Replay add+sample throughput: dcdrl_learning's ReplayBuffer side by side with cpprb (and TorchRL).

Workload (the MEC problem's sizes): obs 73, action 20; batched adds of 64 transitions, samples
of 128, and for prioritised replay an update_priorities of the 128 sampled items.  One
"iteration" = add + sample (+ update).  The buffer is filled to capacity first, so every add
overwrites and the PER sum tree is at full depth.  Each library gets the same pre-generated
numpy data; TorchRL receives zero-copy torch views of it.

Libraries that are not importable are reported as "skipped: <lib> not installed".
Run with the bench venv to include them:  /work/bench-venv/bin/python bench/replay.py --quick
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(_ROOT, 'src', p) for p in ('dcdrl_core', 'dcdrl_learning')]

from dcdrl_learning.replay import ReplayBuffer  # noqa: E402
from machine import machine_info  # noqa: E402  (bench/machine.py: this file's folder is on sys.path)

OBS_DIM, ACT_DIM = 73, 20
ADD_BATCH, SAMPLE_BATCH = 64, 128
ALPHA, BETA = 0.6, 0.4


def make_pool(n_batches: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [dict(obs=rng.standard_normal((ADD_BATCH, OBS_DIM), dtype=np.float32),
                 actions=rng.uniform(-1, 1, (ADD_BATCH, ACT_DIM)).astype(np.float32),
                 rewards=rng.standard_normal(ADD_BATCH, dtype=np.float32),
                 next_obs=rng.standard_normal((ADD_BATCH, OBS_DIM), dtype=np.float32),
                 discounts=np.full(ADD_BATCH, 0.9, np.float32)) for _ in range(n_batches)]


# ---- adapters: each returns (add(batch), sample() -> indices, update(indices, td)) ----

def ours(capacity: int, prioritized: bool):
    buf = ReplayBuffer(capacity, OBS_DIM, ACT_DIM, prioritized=prioritized, alpha=ALPHA, beta=BETA, seed=0)

    def add(b):
        buf.add(b['obs'], b['actions'], b['rewards'], b['next_obs'], b['discounts'])

    def sample():
        return buf.sample(SAMPLE_BATCH).indices

    return add, sample, buf.update_priorities


def cpprb_adapter(capacity: int, prioritized: bool):
    import cpprb
    env = {'obs': {'shape': OBS_DIM}, 'act': {'shape': ACT_DIM}, 'rew': {},
           'next_obs': {'shape': OBS_DIM}, 'discount': {}}
    if prioritized:
        buf = cpprb.PrioritizedReplayBuffer(capacity, env, alpha=ALPHA)
    else:
        buf = cpprb.ReplayBuffer(capacity, env)

    def add(b):
        buf.add(obs=b['obs'], act=b['actions'], rew=b['rewards'], next_obs=b['next_obs'],
                discount=b['discounts'])

    if prioritized:
        def sample():
            return buf.sample(SAMPLE_BATCH, beta=BETA)['indexes']

        def update(idx, td):
            buf.update_priorities(idx, np.abs(td))
    else:
        def sample():
            buf.sample(SAMPLE_BATCH)
            return None

        def update(idx, td):
            pass
    return add, sample, update


def torchrl_adapter(capacity: int, prioritized: bool):
    import torch
    from tensordict import TensorDict
    from torchrl.data import LazyTensorStorage, PrioritizedSampler, RandomSampler
    from torchrl.data import ReplayBuffer as TRB
    # TorchRL's PrioritizedSampler needs its C++ extension (torchrl._torchrl); when that does
    # not load against the installed torch this raises RuntimeError, reported as unavailable.
    sampler = PrioritizedSampler(capacity, alpha=ALPHA, beta=BETA) if prioritized else RandomSampler()
    buf = TRB(storage=LazyTensorStorage(capacity), sampler=sampler, batch_size=SAMPLE_BATCH)

    def add(b):
        buf.extend(TensorDict({k: torch.from_numpy(v) for k, v in b.items()}, batch_size=[ADD_BATCH]))

    def sample():
        if prioritized:
            _, info = buf.sample(return_info=True)
            return info['index']
        buf.sample()
        return None

    def update(idx, td):
        buf.update_priority(idx, torch.from_numpy(np.abs(td)))
    return add, sample, update


LIBS = {'dcdrl': (ours, None), 'cpprb': (cpprb_adapter, 'cpprb'), 'torchrl': (torchrl_adapter, 'torchrl')}


def available(module: str | None) -> bool:
    if module is None:
        return True
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def fill(factory, capacity: int, prioritized: bool, pool: list[dict[str, np.ndarray]]):
    ops = factory(capacity, prioritized)
    for i in range(capacity // ADD_BATCH + 1):  # fill to capacity (also the warm-up)
        ops[0](pool[i % len(pool)])
    return ops


def time_block(ops, prioritized: bool, iters: int, pool: list[dict[str, np.ndarray]],
               td: np.ndarray) -> tuple[float, float, float]:
    """Seconds per iteration: (whole iteration, add part, sample[+update] part)."""
    add, sample, update = ops
    t_add = t_sample = 0.0
    start = time.perf_counter()
    for i in range(iters):
        t0 = time.perf_counter()
        add(pool[i % len(pool)])
        t1 = time.perf_counter()
        idx = sample()
        if prioritized:
            update(idx, td)
        t2 = time.perf_counter()
        t_add += t1 - t0
        t_sample += t2 - t1
    total = time.perf_counter() - start
    return total / iters, t_add / iters, t_sample / iters


def summarise(samples: list[tuple[float, float, float]]) -> dict:
    """Medians over repeats, and `runs`: each repeat's iterations/s (for pair-by-pair ratios)."""
    it = statistics.median(s[0] for s in samples)
    return {'iter_us': round(it * 1e6, 1),
            'add_us': round(statistics.median(s[1] for s in samples) * 1e6, 1),
            'sample_us': round(statistics.median(s[2] for s in samples) * 1e6, 1),
            'iters_per_s': round(1.0 / it, 1),
            'transitions_added_per_s': round(ADD_BATCH / it),
            'transitions_sampled_per_s': round(SAMPLE_BATCH / it),
            'runs': [round(1.0 / s[0], 1) for s in samples]}


def paired_speedup(ours: list[tuple[float, float, float]], theirs: list[tuple[float, float, float]]) -> float:
    """Median over repeats of (their iteration time / ours) in the same repeat: the two ran one
    after the other, so each pair saw the same machine load."""
    return statistics.median(t[0] / o[0] for o, t in zip(ours, theirs))


def run_replay_bench(quick: bool) -> dict:
    """Median over repeats; the libraries take turns inside each repeat (dcdrl, cpprb, dcdrl,
    cpprb, ...), so a load spike from other processes hits both sides of a pair alike. The
    speedups are medians of the per-repeat ratios; `runs` holds each repeat's iterations/s."""
    capacity = 100_000 if quick else 1_000_000
    iters = 600 if quick else 2000
    repeats = 5 if quick else 9
    pool = make_pool(16)
    td = np.abs(np.random.default_rng(1).standard_normal(SAMPLE_BATCH)) + 0.1
    results: dict = {'capacity': capacity, 'obs_dim': OBS_DIM, 'action_dim': ACT_DIM,
                     'add_batch': ADD_BATCH, 'sample_batch': SAMPLE_BATCH, 'iters': iters,
                     'repeats': repeats, 'quick': quick}
    libs = ('dcdrl', 'cpprb') if quick else ('dcdrl', 'cpprb', 'torchrl')
    for mode in ('uniform', 'prioritized'):
        prioritized = mode == 'prioritized'
        entry: dict = {}
        ops = {}
        for lib in libs:
            factory, module = LIBS[lib]
            if not available(module):
                entry[lib] = f'skipped: {lib} not installed'
                continue
            try:
                ops[lib] = fill(factory, capacity, prioritized, pool)
            except (ImportError, RuntimeError) as exc:  # e.g. a compiled extension that does not load
                entry[lib] = f'unavailable: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}'
        timings: dict[str, list] = {lib: [] for lib in ops}
        for _ in range(repeats):
            for lib, lib_ops in ops.items():
                timings[lib].append(time_block(lib_ops, prioritized, iters, pool, td))
        for lib in ops:
            entry[lib] = summarise(timings[lib])
        del ops  # free the buffers before the next mode
        for lib in libs[1:]:
            if isinstance(entry.get(lib), dict) and 'dcdrl' in timings:
                entry[f'speedup_vs_{lib}'] = round(paired_speedup(timings['dcdrl'], timings[lib]), 2)
        results[mode] = {k: entry[k] for k in sorted(entry, key=lambda k: (k.startswith('speedup'), k != 'dcdrl'))}
    if quick:
        results['torchrl'] = 'not run in --quick (slow to import and run); run without --quick'
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='capacity 1e5, fewer iterations (< 30 s)')
    args = parser.parse_args()
    start = time.perf_counter()
    res = run_replay_bench(args.quick)
    for mode in ('uniform', 'prioritized'):
        for lib, r in res[mode].items():
            if isinstance(r, dict):
                part = 'sample+update' if mode == 'prioritized' else 'sample       '
                print(f'{mode:12s} {lib:8s} add {r["add_us"]:8.1f} us  {part} '
                      f'{r["sample_us"]:8.1f} us  iter {r["iter_us"]:8.1f} us  '
                      f'{r["transitions_added_per_s"]:>9,d} added/s  {r["transitions_sampled_per_s"]:>9,d} sampled/s')
            elif isinstance(r, str):
                print(f'{mode:12s} {lib:8s} {r}')
            else:
                print(f'{mode:12s} {lib}: {r}x (dcdrl iteration time vs the other, >1 = dcdrl faster)')
    res['wall_s'] = round(time.perf_counter() - start, 1)
    res['machine'] = machine_info()
    print(json.dumps(res))


if __name__ == '__main__':
    main()
