"""Learner throughput: DDPG/TD3/SAC gradient updates per second, dcdrl_learning vs stable-baselines3.

Workload (the cloud-edge seed): actor and critic 256-128-64, obs 12, action 1, batch 128,
uniform replay of 20 000 random transitions. One "update" = sample a batch from the replay
buffer + one critic step (+ the actor step and target updates when due), for both libraries
(SB3's `train(gradient_steps=N)` samples inside; ours calls ReplayBuffer.sample + Agent.update).
SAC on both sides: twin critics, automatic entropy temperature, an actor step per critic step.
The variants take turns inside every repeat (ours DDPG, SB3 DDPG, ours TD3, SB3 TD3, ...), after a
warm-up of each, so a load spike from other processes hits both sides of a pair alike; a rate is
the median over repeats, a ratio the median of the per-repeat ratios (`runs` lists every repeat).
One process; torch threads set by --threads (default 1: the learner shares a 2-core machine with
the environments).

Accelerator (--device auto|cuda|cpu; auto = cuda when torch.cuda.is_available()): the comparison
with SB3 always runs on cpu; with an accelerator, ours (DDPG/TD3 replayed as CUDA graphs,
AgentConfig.cuda_graph) and SB3 on it join the same turns and a
correctness check trains a cpu and an accelerator agent with the same seed on the same batches
and compares their actor parameters (JSON key "cuda": device_name, dcdrl_ddpg/dcdrl_td3
updates_per_s, matches_cpu, max_abs_diff).

Second half: replay add+sample throughput vs cpprb, from bench/replay.py's run_replay_bench
(owned by the replay part); reported as missing when that file is absent.

Goals: >= 3x SB3's updates/s for TD3 and SAC; replay >= 1.0x cpprb.
Comparison packages (bench/requirements.txt) are optional: a missing one prints
"skipped: <reason>". Full comparison: /work/bench-venv/bin/python bench/learner.py [--quick]

Last line: one JSON object with every number.
"""
from __future__ import annotations

import os

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(_ROOT, 'src', p) for p in ('dcdrl_core', 'dcdrl_learning')]

from dcdrl_learning.agents import Agent, AgentConfig  # noqa: E402
from dcdrl_learning.networks import PRESETS  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import machine_info  # noqa: E402

OBS_DIM, ACT_DIM, BATCH = 12, 1, 128
FILL = 20_000
GOAL_VS_SB3 = 3.0   # for TD3 and SAC (DDPG is reported without a goal)
ALGORITHMS = ('ddpg', 'td3', 'sac')
DEVICES = ('cpu', 'cuda', 'auto')


def random_transitions(count: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        'obs': rng.standard_normal((count, OBS_DIM), dtype=np.float32),
        'actions': rng.uniform(-1, 1, (count, ACT_DIM)).astype(np.float32),
        'rewards': rng.standard_normal(count, dtype=np.float32),
        'next_obs': rng.standard_normal((count, OBS_DIM), dtype=np.float32),
        'dones': (rng.random(count) < 0.01).astype(np.float32),
    }


def ours(algorithm: str, data: dict[str, np.ndarray], device: str = 'cpu') -> Callable[[int], None]:
    """N updates of our agent on `device`, each sampling from our replay buffer."""
    from dcdrl_learning.replay import ReplayBuffer
    buffer = ReplayBuffer(FILL, OBS_DIM, ACT_DIM, seed=0)
    buffer.add(data['obs'], data['actions'], data['rewards'], data['next_obs'], 0.99 * (1.0 - data['dones']))
    agent = Agent(AgentConfig(algorithm=algorithm, network=PRESETS['cloud_edge'], critic_start=0, actor_start=0,
                              batch_size=BATCH, device=device, seed=0, cuda_graph=device != 'cpu'), OBS_DIM, ACT_DIM)

    def run(n: int) -> None:
        for _ in range(n):
            agent.update(buffer.sample(BATCH))
    return run


def sb3(algorithm: str, data: dict[str, np.ndarray], device: str = 'cpu') -> Callable[[int], None]:
    """N updates of stable-baselines3's TD3/DDPG/SAC on `device` (same nets, batch, buffer contents)."""
    import gymnasium as gym
    from stable_baselines3 import DDPG, SAC, TD3
    from stable_baselines3.common.logger import Logger

    class Box12(gym.Env):  # only the spaces matter: SB3 needs an env to build the model
        observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)

        def reset(self, *, seed=None, options=None):
            return np.zeros(OBS_DIM, np.float32), {}

        def step(self, action):
            return np.zeros(OBS_DIM, np.float32), 0.0, False, False, {}

    cls = {'td3': TD3, 'ddpg': DDPG, 'sac': SAC}[algorithm]
    model = cls('MlpPolicy', Box12(), batch_size=BATCH, buffer_size=FILL, learning_starts=0, gamma=0.99,
                policy_kwargs={'net_arch': [256, 128, 64]}, device=device, seed=0, verbose=0)
    model.set_logger(Logger(folder=None, output_formats=[]))
    for i in range(FILL):
        model.replay_buffer.add(data['obs'][i:i + 1], data['next_obs'][i:i + 1], data['actions'][i:i + 1],
                                data['rewards'][i:i + 1], data['dones'][i:i + 1], [{}])

    def run(n: int) -> None:
        model.train(gradient_steps=n, batch_size=BATCH)
    return run


def available(module: str) -> str | None:
    """None when importable, else the reason it is skipped."""
    if importlib.util.find_spec(module) is None:
        return f'skipped: {module} not installed (pip install -r bench/requirements.txt)'
    return None


def accelerator(device: str) -> str | None:
    """The torch device of the accelerator block for --device: 'cuda' or None (no block)."""
    if device not in DEVICES:
        raise ValueError(f'device must be one of {DEVICES}, got {device!r}')
    if device == 'cpu':
        return None
    if not torch.cuda.is_available():
        if device == 'cuda':
            raise ValueError("device 'cuda' asked for but torch.cuda.is_available() is False")
        return None
    return 'cuda'


def learner_bench(quick: bool, device: str | None = None) -> dict[str, Any]:
    """Updates/s of ours and SB3 on cpu (and ours, SB3 on `device` when given), taking turns.

    Every repeat runs each variant once in a fixed order (ours ddpg, SB3 ddpg, ours td3, SB3 td3,
    ours sac, SB3 sac, then the accelerator's), so the i-th runs of two variants saw the same machine load; ratios
    are medians of those per-repeat ratios. `runs` holds each repeat's updates/s.
    """
    repeats, per_repeat, warmup = (5, 40, 20) if quick else (11, 300, 60)
    data = random_transitions(FILL)
    results: dict[str, Any] = {'repeats': repeats, 'updates_per_repeat': per_repeat, 'warmup_updates': warmup}
    runners: dict[str, Callable[[int], None]] = {}
    reason = available('stable_baselines3')
    devices = ['cpu'] + ([device] if device else [])
    for where in devices:
        prefix = '' if where == 'cpu' else f'{where}/'
        for algorithm in ALGORITHMS:
            runners[f'{prefix}dcdrl_{algorithm}'] = ours(algorithm, data, where)
            if reason is None:
                runners[f'{prefix}sb3_{algorithm}'] = sb3(algorithm, data, where)
            elif where == 'cpu':
                results[f'sb3_{algorithm}'] = reason
    for run in runners.values():  # warm-up: allocator, lazy init, optimizer state, CUDA kernels
        run(warmup)
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run(per_repeat)
            rates[name].append(per_repeat / (time.perf_counter() - start))
    entries: dict[str, dict[str, Any]] = {}
    for name, values in rates.items():
        entries[name] = {'updates_per_s': round(statistics.median(values), 1), 'min': round(min(values), 1),
                         'max': round(max(values), 1), 'runs': [round(v, 1) for v in values]}
        print(f'{name:17s} {statistics.median(values):8.1f} updates/s  (min {min(values):.1f}, '
              f'max {max(values):.1f})')
    results.update({name: entry for name, entry in entries.items() if '/' not in name})
    for algorithm in ALGORITHMS:
        mine, theirs = f'dcdrl_{algorithm}', f'sb3_{algorithm}'
        if theirs in rates:
            ratio = paired_ratio(rates[mine], rates[theirs])
            results[f'{algorithm}_speedup_vs_sb3'] = round(ratio, 2)
            goal = f'; goal >= {GOAL_VS_SB3}x' if algorithm != 'ddpg' else ''
            print(f'{algorithm}: {ratio:.2f}x stable-baselines3 (median of per-repeat ratios{goal})')
        else:
            print(f'{algorithm}: {results[theirs]}')
    if device:
        block: dict[str, Any] = {'device': device, 'device_name': torch.cuda.get_device_name(0)
                                 if device.startswith('cuda') else device}
        for algorithm in ALGORITHMS:
            for side in ('dcdrl', 'sb3'):
                name = f'{device}/{side}_{algorithm}'
                if name in entries:
                    block[f'{side}_{algorithm}'] = entries[name]
            ratio = paired_ratio(rates[f'{device}/dcdrl_{algorithm}'], rates[f'dcdrl_{algorithm}'])
            block[f'{algorithm}_speedup_vs_cpu'] = round(ratio, 2)
            print(f'{algorithm}: ours on {block["device_name"]} = {ratio:.2f}x ours on cpu')
        results['accelerator'] = block
    return results


def paired_ratio(mine: list[float], theirs: list[float]) -> float:
    """Median over repeats of mine[i] / theirs[i]."""
    if len(mine) != len(theirs) or not mine:
        raise ValueError(f'paired_ratio needs two equally long non-empty lists, got {len(mine)} and {len(theirs)}')
    return statistics.median(a / b for a, b in zip(mine, theirs))


class _Batch:
    """A fixed batch (the fields Agent.update reads), so two agents see exactly the same data."""

    def __init__(self, data: dict[str, np.ndarray], index: np.ndarray) -> None:
        self.obs, self.actions = data['obs'][index], data['actions'][index]
        self.rewards, self.next_obs = data['rewards'][index], data['next_obs'][index]
        self.discounts = (0.99 * (1.0 - data['dones'][index])).astype(np.float32)
        self.weights = np.ones(len(index), np.float32)


def compare_devices(algorithm: str, device_a: str, device_b: str, updates: int = 20, seed: int = 0,
                    tolerance: float = 1e-3) -> dict[str, Any]:
    """Trains two agents with the same seed on the same `updates` batches, one on each device,
    and compares their actor parameters: {'max_abs_diff', 'matches', 'updates', 'tolerance'}.

    TD3's target-policy smoothing draws from a per-device torch.Generator (CPU and CUDA streams
    differ for the same seed), so the comparison turns that noise off; twin critics and the
    delayed actor update are still exercised. cpu vs cpu must match exactly (max_abs_diff 0).
    """
    if algorithm not in ('ddpg', 'td3'):
        raise ValueError(f"algorithm must be 'ddpg' or 'td3', got {algorithm!r}")
    if isinstance(updates, bool) or not isinstance(updates, int) or updates < 1:
        raise ValueError(f'updates must be an integer >= 1, got {updates!r}')
    if not tolerance >= 0:
        raise ValueError(f'tolerance must be >= 0, got {tolerance!r}')
    batches = fixed_batches(updates, seed)
    diff = max_abs_difference(train_actor(algorithm, device_a, batches, seed),
                              train_actor(algorithm, device_b, batches, seed))
    return {'max_abs_diff': diff, 'matches': diff <= tolerance, 'updates': updates, 'tolerance': tolerance}


def fixed_batches(count: int, seed: int = 0) -> list[_Batch]:
    """`count` batches of BATCH random transitions, the same for the same seed."""
    data = random_transitions(4 * BATCH, seed=seed)
    rng = np.random.default_rng(seed)
    return [_Batch(data, rng.integers(0, 4 * BATCH, BATCH)) for _ in range(count)]


def train_actor(algorithm: str, device: str, batches: list[_Batch], seed: int = 0) -> dict[str, torch.Tensor]:
    """A fresh agent (cloud-edge nets, no target smoothing noise) after one update per batch: its actor
    parameters as cpu tensors."""
    agent = Agent(AgentConfig(algorithm=algorithm, network=PRESETS['cloud_edge'], critic_start=0, actor_start=0,
                              batch_size=BATCH, device=device, seed=seed, target_noise=0.0,
                              cuda_graph=device != 'cpu'), OBS_DIM, ACT_DIM)
    for batch in batches:
        agent.update(batch)
    return agent.actor_state()


def max_abs_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """Largest |a - b| over all parameters (in float64); the two must have the same names and shapes."""
    if a.keys() != b.keys():
        raise ValueError(f'parameter names differ: {sorted(a)} vs {sorted(b)}')
    for name in a:
        if a[name].shape != b[name].shape:
            raise ValueError(f'{name}: shape {tuple(a[name].shape)} vs {tuple(b[name].shape)}')
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def correctness(device: str, updates: int = 20, tolerance: float = 1e-3) -> dict[str, Any]:
    """compare_devices('cpu', device) for DDPG and TD3; the block's matches_cpu / max_abs_diff."""
    per_algorithm = {algorithm: compare_devices(algorithm, 'cpu', device, updates, tolerance=tolerance)
                     for algorithm in ('ddpg', 'td3')}
    return {'matches_cpu': all(r['matches'] for r in per_algorithm.values()),
            'max_abs_diff': max(r['max_abs_diff'] for r in per_algorithm.values()),
            'correctness': {'updates': updates, 'tolerance': tolerance, **per_algorithm}}


def replay_bench(quick: bool) -> dict[str, Any] | str:
    path = os.path.join(_ROOT, 'bench', 'replay.py')
    if not os.path.exists(path):
        return 'missing: bench/replay.py not found'
    spec = importlib.util.spec_from_file_location('bench_replay', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not hasattr(module, 'run_replay_bench'):
        return 'missing: bench/replay.py has no run_replay_bench'
    return module.run_replay_bench(quick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--quick', action='store_true', help='fewer, shorter repeats; finishes in about a minute')
    parser.add_argument('--threads', type=int, default=1, help='torch intra-op threads (default 1)')
    parser.add_argument('--skip-replay', action='store_true', help='only the learner half')
    parser.add_argument('--device', default='auto', choices=DEVICES,
                        help="accelerator block: 'auto' (default) = cuda when torch.cuda.is_available(), "
                             "'cuda' = required, 'cpu' = none; the comparison with SB3 always runs on cpu")
    parser.add_argument('--check-updates', type=int, default=20,
                        help='updates of the cpu-vs-accelerator correctness check (default 20)')
    parser.add_argument('--tolerance', type=float, default=1e-3,
                        help='largest |accelerator - cpu| actor parameter difference that still matches')
    args = parser.parse_args()
    try:
        device = accelerator(args.device)
    except ValueError as exc:
        parser.error(str(exc))
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    print(f'learner bench: obs {OBS_DIM}, action {ACT_DIM}, nets 256-128-64, batch {BATCH}, '
          f'torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} cores, '
          f'accelerator {device or "none"}')
    results: dict[str, Any] = {'bench': 'learner', 'quick': args.quick, 'threads': args.threads,
                               'machine': machine_info(), 'batch': BATCH, 'nets': [256, 128, 64],
                               'device': args.device}
    results['learner'] = learner_bench(args.quick, device)
    if device:
        block = results['learner'].pop('accelerator')
        block.update(correctness(device, args.check_updates, args.tolerance))
        results['cuda'] = block   # the key bench/summary.py reads
        print(f'correctness: max |{device} - cpu| of the actor after {args.check_updates} updates = '
              f'{block["max_abs_diff"]:.3g} ({"matches" if block["matches_cpu"] else "DIFFERS"}, '
              f'tolerance {args.tolerance:g})')
    if not args.skip_replay:
        replay = replay_bench(args.quick)
        results['replay'] = replay
        if isinstance(replay, str):
            print(f'replay: {replay}')
        else:
            for mode in ('uniform', 'prioritized'):
                entry = replay.get(mode, {}) if isinstance(replay, dict) else {}
                ours_entry, theirs = entry.get('dcdrl'), entry.get('cpprb')
                if isinstance(ours_entry, dict) and isinstance(theirs, dict):
                    print(f"replay {mode}: add+sample {ours_entry['iter_us']} us vs cpprb {theirs['iter_us']} us "
                          f"= {entry.get('speedup_vs_cpprb')}x cpprb (goal >= 1.0x)")
                elif entry:
                    print(f'replay {mode}: cpprb {theirs}')
    results['seconds'] = round(time.perf_counter() - started, 1)
    print(json.dumps(results))


if __name__ == '__main__':
    main()
