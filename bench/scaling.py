"""Scaling benchmark of the distributed training graph (loopback DDS, separate processes).

1. collection: environment steps/s into the replay node with 1 and 2 clients publishing as fast
   as they can (random actions, no learner), and the per-core efficiency against linear scaling
   (this machine has 2 cores: goal >= 0.85x);
2. learner: updates/s of the learner sampling from the replay node over DDS, side by side with
   the same agent sampling from an in-process ReplayBuffer holding the same data (goal: the node
   costs < 10 %), and updates/s with 1 and 2 clients running beside it;
3. time to target: seconds of the default training run (`make run`) until its evaluation cost
   first drops below --target-cost (skipped with --quick).

Usage: .venv/bin/python bench/scaling.py [--quick]   (last line: one JSON object)
"""
import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dcdrl_core import runtime
from dcdrl_core.testing import ChildProcess, TopicRecorder, fresh_domain_id, loopback_env

DCDRL = [sys.executable, '-m', 'dcdrl_core.cli']
START_TIMEOUT = 120.0


class Probe(TopicRecorder):
    """Receives replay/stats and learner/stats in this process, with arrival times."""

    def __init__(self, domain: int) -> None:
        from dcdrl_msgs.msg import ReplayStats, TrainingStats
        os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
        super().__init__(domain, namespace='/dcdrl')
        qos = runtime.qos_profile_sensor_data
        self.replay = self.record(ReplayStats, 'replay/stats', qos,
                                  lambda m: (time.monotonic(), int(m.transitions_received)))
        self.learner = self.record(TrainingStats, 'learner/stats', qos, lambda m: (time.monotonic(), int(m.updates)))

    def rate(self, series: list, start: float, end: float) -> float:
        """Increase per second between the first sample after start and the last before end."""
        with self.changed:
            window = [(t, v) for t, v in series if start <= t <= end]
        if len(window) < 2 or window[-1][0] <= window[0][0]:
            return float('nan')
        return (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])


def _node(package: str, executable: str, name: str, domain: int, output_dir: str, *params: str) -> ChildProcess:
    argv = [*DCDRL, 'run', package, executable, '--ros-args', '-r', f'__node:={name}', '-r', '__ns:=/dcdrl',
            '-p', f'output_dir:={output_dir}', '-p', 'restore:=false']
    for param in params:
        argv += ['-p', param]
    return ChildProcess(argv, env=loopback_env(domain))


def collection_rate(clients: int, window_s: float) -> float:
    """Transitions/s into the replay node from `clients` clients at full speed (random actions)."""
    domain = fresh_domain_id()
    probe = Probe(domain)
    with tempfile.TemporaryDirectory() as out:
        processes = [_node('dcdrl_cloud', 'replay_buffer', 'replay_buffer', domain, out, 'report_period_s:=0.5',
                           'capacity:=2000000')]
        processes += [_node('dcdrl_sim', 'client', f'client_{k}', domain, out, f'client_id:=client_{k}',
                            f'seed:={k}', 'num_envs:=8', 'batch_steps:=32', 'publish_rate_hz:=1000.0')
                      for k in range(clients)]
        try:
            probe.wait_for(lambda: probe.replay and probe.replay[-1][1] > 5000, START_TIMEOUT, 'experience')
            start = time.monotonic()
            time.sleep(window_s)  # the measurement window itself
            return probe.rate(probe.replay, start, time.monotonic())
        finally:
            for process in processes:
                process.stop()
            probe.close()


def learner_rate_over_dds(clients: int, window_s: float) -> float:
    """Learner updates/s sampling from the replay node (filled by clients first)."""
    domain = fresh_domain_id()
    probe = Probe(domain)
    with tempfile.TemporaryDirectory() as out:
        processes = [_node('dcdrl_cloud', 'replay_buffer', 'replay_buffer', domain, out, 'report_period_s:=0.5')]
        fill = [_node('dcdrl_sim', 'client', f'client_{k}', domain, out, f'client_id:=client_{k}', f'seed:={k}',
                      'num_envs:=8', 'batch_steps:=32', 'publish_rate_hz:=1000.0') for k in range(max(clients, 1))]
        try:
            probe.wait_for(lambda: probe.replay and probe.replay[-1][1] > 20000, START_TIMEOUT, 'filling')
            if clients == 0:
                for process in fill:
                    process.stop()
            else:  # clients go on at the default training rate
                for process in fill:
                    process.stop()
                fill = [_node('dcdrl_sim', 'client', f'client_{k}', domain, out, f'client_id:=client_{k}',
                              f'seed:={k}', 'num_envs:=2', 'batch_steps:=8', 'publish_rate_hz:=10.0')
                        for k in range(clients)]
            processes += fill
            processes.append(_node('dcdrl_cloud', 'learner', 'learner', domain, out, 'duration_s:=0.0',
                                   'eval_period_s:=0.0', 'stats_period_s:=0.5', 'tensorboard:=false',
                                   'checkpoint_period_s:=0.0', 'evaluate_on_stop:=false', 'actor_start:=0'))
            probe.wait_for(lambda: probe.learner and probe.learner[-1][1] > 200, START_TIMEOUT, 'training')
            start = time.monotonic()
            time.sleep(window_s)  # the measurement window itself
            return probe.rate(probe.learner, start, time.monotonic())
        finally:
            for process in processes:
                process.stop()
            probe.close()


def learner_rate_in_process(updates: int) -> float:
    """The same agent and batch size sampling from an in-process ReplayBuffer (no DDS)."""
    import gymnasium
    import torch
    import dcdrl_sim  # noqa: F401
    from dcdrl_core.learning.agents import Agent, AgentConfig
    from dcdrl_core.learning.replay import ReplayBuffer
    torch.set_num_threads(1)
    env = gymnasium.make('dcdrl_sim/MecOffload-v0')
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    config = AgentConfig.preset('dcdrl', seed=0)
    agent = Agent(config, obs_dim, action_dim)
    buffer = ReplayBuffer(200_000, obs_dim, action_dim, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = 1024
        buffer.add(rng.random((n, obs_dim), np.float32), rng.uniform(-1, 1, (n, action_dim)).astype(np.float32),
                   -rng.random(n, np.float32), rng.random((n, obs_dim), np.float32), np.full(n, 0.9, np.float32))
    for _ in range(20):  # warm-up
        agent.update(buffer.sample(config.batch_size), stored_transitions=len(buffer))
    start = time.perf_counter()
    for _ in range(updates):
        agent.update(buffer.sample(config.batch_size), stored_transitions=len(buffer))
    return updates / (time.perf_counter() - start)


def time_to_target(target_cost: float) -> dict:
    """Runs the default `make run` training and reads when its evaluation cost first beat the target."""
    import subprocess
    with tempfile.TemporaryDirectory() as runs:
        env = loopback_env(fresh_domain_id())
        result = subprocess.run([sys.executable, '-m', 'dcdrl_cloud.main_job', '--runs-dir', runs, '--quiet'],
                                env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            return {'error': result.stderr[-500:]}
        from dcdrl_cloud.report import read_scalars
        run_dir = next(Path(runs).iterdir())
        points = read_scalars(run_dir).get('eval/cost', [])
        if not points:
            return {'error': 'no evaluation in the run'}
        start = points[0][0]
        hit = next(((t - start, step) for t, step, value in points if value <= target_cost), None)
        return {'target_cost': target_cost, 'seconds': hit[0] if hit else None,
                'updates': hit[1] if hit else None, 'final_cost': points[-1][2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='short windows, no time-to-target run (< 60 s)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--target-cost', type=float, default=5.0,
                        help='MEC mean cost per step for the time-to-target run (local-only is about 9.3)')
    args = parser.parse_args()
    repeats = 1 if args.quick else args.repeats
    window = 4.0 if args.quick else 10.0

    one = statistics.median(collection_rate(1, window) for _ in range(repeats))
    two = statistics.median(collection_rate(2, window) for _ in range(repeats))
    efficiency = two / (2 * one)
    print(f'collection: 1 client {one:,.0f} steps/s, 2 clients {two:,.0f} steps/s, '
          f'efficiency vs linear {efficiency:.2f} (goal >= 0.85)', flush=True)

    in_process = statistics.median(learner_rate_in_process(200 if args.quick else 1000) for _ in range(repeats))
    over_dds = statistics.median(learner_rate_over_dds(0, window) for _ in range(repeats))
    loss = 1.0 - over_dds / in_process
    print(f'learner: in-process buffer {in_process:.0f} updates/s, replay node over DDS {over_dds:.0f} updates/s, '
          f'loss {100 * loss:.1f} % (goal < 10 %)', flush=True)
    with_clients = {}
    if not args.quick:
        for clients in (1, 2):
            with_clients[clients] = statistics.median(learner_rate_over_dds(clients, window) for _ in range(repeats))
            print(f'learner with {clients} client(s) at the default rate: {with_clients[clients]:.0f} updates/s',
                  flush=True)
    target = None if args.quick else time_to_target(args.target_cost)
    if target is not None:
        print(f'time to mean cost <= {args.target_cost}: {target}', flush=True)
    print(json.dumps({
        'benchmark': 'scaling', 'quick': args.quick, 'repeats': repeats, 'window_s': window,
        'machine': {'cpus': os.cpu_count(), 'python': platform.python_version(), 'load_average': os.getloadavg()},
        'collection_steps_per_s': {'1': one, '2': two}, 'collection_efficiency_vs_linear': efficiency,
        'learner_updates_per_s': {'in_process': in_process, 'replay_node': over_dds,
                                  **{f'{k}_clients': v for k, v in with_clients.items()}},
        'replay_node_loss': loss, 'time_to_target': target,
        'goals': {'collection_efficiency_min': 0.85, 'replay_node_loss_max': 0.10},
        'goals_met': {'collection': efficiency >= 0.85, 'replay_node': loss < 0.10},
    }))


if __name__ == '__main__':
    main()
