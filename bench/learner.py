"""Learner throughput: DDPG/TD3 gradient updates per second, dcdrl_core vs stable-baselines3.

Workload (the cloud-edge seed): actor and critic 256-128-64, obs 12, action 1, batch 128,
uniform replay of 20 000 random transitions. One "update" = sample a batch from the replay
buffer + one critic step (+ the actor step and target updates when due), for both libraries
(SB3's `train(gradient_steps=N)` samples inside; ours calls ReplayBuffer.sample + Agent.update).
The variants take turns inside every repeat, so a load spike from other processes hits all of
them alike; the result is the median over repeats after a warm-up. One process; torch threads
set by --threads (default 1: the learner shares a 2-core machine with the environments).

Second half: replay add+sample throughput vs cpprb, from bench/replay.py's run_replay_bench
(owned by the replay part); reported as missing when that file is absent.

Goals (issue "Learning core"): >= 1.5x SB3 TD3 updates/s; replay >= 1.0x cpprb.
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
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(_ROOT, 'src', 'dcdrl_core'))

from dcdrl_core.learning.agents import Agent, AgentConfig  # noqa: E402
from dcdrl_core.learning.networks import PRESETS  # noqa: E402

OBS_DIM, ACT_DIM, BATCH = 12, 1, 128
FILL = 20_000
GOAL_VS_SB3 = 1.5


def random_transitions(count: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        'obs': rng.standard_normal((count, OBS_DIM), dtype=np.float32),
        'actions': rng.uniform(-1, 1, (count, ACT_DIM)).astype(np.float32),
        'rewards': rng.standard_normal(count, dtype=np.float32),
        'next_obs': rng.standard_normal((count, OBS_DIM), dtype=np.float32),
        'dones': (rng.random(count) < 0.01).astype(np.float32),
    }


def ours(algorithm: str, data: dict[str, np.ndarray]) -> Callable[[int], None]:
    """N updates of our agent, each sampling from our replay buffer."""
    from dcdrl_core.learning.replay import ReplayBuffer
    buffer = ReplayBuffer(FILL, OBS_DIM, ACT_DIM, seed=0)
    buffer.add(data['obs'], data['actions'], data['rewards'], data['next_obs'], 0.99 * (1.0 - data['dones']))
    agent = Agent(AgentConfig(algorithm=algorithm, network=PRESETS['cloud_edge'], critic_start=0, actor_start=0,
                              batch_size=BATCH, device='cpu', seed=0), OBS_DIM, ACT_DIM)

    def run(n: int) -> None:
        for _ in range(n):
            agent.update(buffer.sample(BATCH))
    return run


def sb3(algorithm: str, data: dict[str, np.ndarray]) -> Callable[[int], None]:
    """N updates of stable-baselines3's TD3/DDPG (same nets, batch, buffer contents)."""
    import gymnasium as gym
    from stable_baselines3 import DDPG, TD3
    from stable_baselines3.common.logger import Logger

    class Box12(gym.Env):  # only the spaces matter: SB3 needs an env to build the model
        observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (ACT_DIM,), np.float32)

        def reset(self, *, seed=None, options=None):
            return np.zeros(OBS_DIM, np.float32), {}

        def step(self, action):
            return np.zeros(OBS_DIM, np.float32), 0.0, False, False, {}

    cls = {'td3': TD3, 'ddpg': DDPG}[algorithm]
    model = cls('MlpPolicy', Box12(), batch_size=BATCH, buffer_size=FILL, learning_starts=0, gamma=0.99,
                policy_kwargs={'net_arch': [256, 128, 64]}, device='cpu', seed=0, verbose=0)
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


def learner_bench(quick: bool) -> dict[str, Any]:
    repeats, per_repeat = (7, 80) if quick else (11, 300)
    data = random_transitions(FILL)
    results: dict[str, Any] = {'repeats': repeats, 'updates_per_repeat': per_repeat}
    runners: dict[str, Callable[[int], None]] = {}
    for algorithm in ('ddpg', 'td3'):
        runners[f'dcdrl_{algorithm}'] = ours(algorithm, data)
        reason = available('stable_baselines3')
        if reason is None:
            runners[f'sb3_{algorithm}'] = sb3(algorithm, data)
        else:
            results[f'sb3_{algorithm}'] = reason
    for run in runners.values():  # warm-up: allocator, lazy init, optimizer state
        run(max(20, per_repeat // 5))
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run(per_repeat)
            rates[name].append(per_repeat / (time.perf_counter() - start))
    for name, values in rates.items():
        results[name] = {'updates_per_s': round(statistics.median(values), 1),
                         'min': round(min(values), 1), 'max': round(max(values), 1)}
        print(f'{name:12s} {statistics.median(values):8.1f} updates/s  (min {min(values):.1f}, max {max(values):.1f})')
    for algorithm in ('ddpg', 'td3'):
        mine, theirs = results[f'dcdrl_{algorithm}'], results.get(f'sb3_{algorithm}')
        if isinstance(theirs, dict):
            ratio = mine['updates_per_s'] / theirs['updates_per_s']
            results[f'{algorithm}_speedup_vs_sb3'] = round(ratio, 2)
            print(f'{algorithm}: {ratio:.2f}x stable-baselines3 (goal >= {GOAL_VS_SB3}x)')
        else:
            print(f'{algorithm}: {theirs}')
    return results


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
    parser.add_argument('--quick', action='store_true', help='fewer repeats; finishes in < 60 s')
    parser.add_argument('--threads', type=int, default=1, help='torch intra-op threads (default 1)')
    parser.add_argument('--skip-replay', action='store_true', help='only the learner half')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    print(f'learner bench: obs {OBS_DIM}, action {ACT_DIM}, nets 256-128-64, batch {BATCH}, '
          f'torch {torch.__version__}, {args.threads} thread(s), {os.cpu_count()} cores')
    results: dict[str, Any] = {'bench': 'learner', 'quick': args.quick, 'threads': args.threads,
                               'torch': torch.__version__, 'python': platform.python_version(),
                               'cpu_count': os.cpu_count(), 'batch': BATCH, 'nets': [256, 128, 64]}
    results['learner'] = learner_bench(args.quick)
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
