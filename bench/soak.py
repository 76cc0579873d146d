"""Soak benchmark: every node running together for a long time; memory must stay flat.

Starts, on a private loopback DDS domain, the training graph (replay_buffer, learner,
parameter_server, one simulated client; small buffers so they are full early) and the cloud-edge
pair (controller at 100 Hz over the simulated plant, segment_learner), samples the
resident memory (VmRSS) of every node process every --sample-s seconds, and reports per node the
RSS after warm-up, at the end, the growth and its slope. A node is "flat" when its RSS grew by less
than max(--max-growth-mb, --max-growth-pct of its post-warm-up RSS) between the end of the warm-up
and the end of the run. Replay buffers preallocate their arrays but the OS commits pages as they
fill, so the capacities here are small enough to be full before the warm-up ends.

    .venv/bin/python bench/soak.py                 # 30 minutes (not part of the test suite)
    .venv/bin/python bench/soak.py --duration-s 120 --warmup-s 60   # what test/test_soak.py runs

Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import machine_info  # noqa: E402

DCDRL = [sys.executable, '-m', 'dcdrl_ros.cli', 'run']
TRAIN_PARAMS = ['capacity:=4000', 'min_size_to_sample:=200', 'snapshot_period_s:=20.0', 'duration_s:=0.0',
                'eval_period_s:=30.0', 'eval_episodes:=1', 'checkpoint_period_s:=20.0', 'tensorboard:=false',
                'progress_period_s:=0.0', 'publish_every_updates:=20', 'actor_start:=300']


def rss_mb(pid: int) -> float | None:
    try:
        with open(f'/proc/{pid}/status') as handle:
            for line in handle:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def start_nodes(domain: int, output: Path) -> dict:
    from dcdrl_ros.testing import ChildProcess, loopback_env
    env = loopback_env(domain)
    train_config = ROOT / 'config' / 'train.yaml'
    edge_config = ROOT / 'config' / 'cloud_edge.yaml'

    def run(package: str, executable: str, name: str, config: Path, *params: str) -> ChildProcess:
        argv = [*DCDRL, package, executable, '--ros-args', '-r', f'__node:={name}', '-r', '__ns:=/dcdrl',
                '--params-file', str(config)]
        for param in params:
            argv += ['-p', param]
        return ChildProcess(argv, env=env)

    train_out, edge_out = output / 'train', output / 'edge'
    nodes = {
        'replay_buffer': run('dcdrl_cloud', 'replay_buffer', 'replay_buffer', train_config,
                             f'output_dir:={train_out}', *TRAIN_PARAMS[:3]),
        'learner': run('dcdrl_cloud', 'learner', 'learner', train_config, f'output_dir:={train_out}',
                       *TRAIN_PARAMS[3:]),
        'parameter_server': run('dcdrl_cloud', 'parameter_server', 'parameter_server', train_config,
                                f'output_dir:={train_out}'),
        'client_0': run('dcdrl_sim', 'client', 'client_0', train_config, 'client_id:=client_0'),
    }
    # The cloud-edge pair in its own namespace: its learner, policy and stats must not meet the graph's.
    edge_env = dict(env)
    nodes['edge_learner'] = ChildProcess(
        [*DCDRL, 'dcdrl_cloud', 'segment_learner', '--ros-args', '-r', '__node:=segment_learner', '-r', '__ns:=/edge',
         '--params-file', str(edge_config), '-p', f'output_dir:={edge_out}',
         '-p', 'buffer_size:=4000', '-p', 'critic_start:=500', '-p', 'actor_start:=1000',
         '-p', 'tensorboard:=false', '-p', 'checkpoint_period_s:=20.0', '-p', 'stop_when_converged:=false',
         '-p', 'updates_per_transition:=0.5', '-p', 'kept_versions:=16'], env=edge_env)
    nodes['controller'] = ChildProcess(
        [*DCDRL, 'dcdrl_edge', 'controller', '--ros-args', '-r', '__node:=controller', '-r', '__ns:=/edge',
         '--params-file', str(edge_config), '-p', 'rate_hz:=100.0', '-p', 'sim_rate_hz:=30.0'], env=edge_env)
    # A second controller with its loop in its own process (loop_process:=true): the node and its
    # loop process are sampled apart ('controller_lp' and 'controller_lp.loop').
    nodes['controller_lp'] = ChildProcess(
        [*DCDRL, 'dcdrl_edge', 'controller', '--ros-args', '-r', '__node:=controller_lp', '-r', '__ns:=/edge',
         '--params-file', str(edge_config), '-p', 'rate_hz:=100.0', '-p', 'sim_rate_hz:=30.0',
         '-p', 'loop_process:=true'], env=edge_env)
    return nodes


def loop_child_pid(pid: int) -> int | None:
    """The control-loop process a controller node spawned (its child running multiprocessing's spawn_main
    with the loop, not the resource tracker)."""
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as handle:
                parent = int(handle.read().rsplit(')', 1)[1].split()[1])
            if parent != pid:
                continue
            with open(f'/proc/{entry}/cmdline', 'rb') as handle:
                cmdline = handle.read().replace(b'\0', b' ')
        except (OSError, ValueError, IndexError):
            continue
        if b'spawn_main' in cmdline and b'resource_tracker' not in cmdline:
            return int(entry)
    return None


def soak(duration_s: float, warmup_s: float, sample_s: float, max_growth_mb: float, max_growth_pct: float,
         output: Path | None = None) -> dict:
    from dcdrl_ros.testing import fresh_domain_id
    output = Path(output or tempfile.mkdtemp(prefix='dcdrl-soak-'))
    nodes = start_nodes(fresh_domain_id(), output)
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in nodes}
    samples['controller_lp.loop'] = []
    started = time.monotonic()
    exited: dict[str, int] = {}
    try:
        next_sample = started
        while time.monotonic() - started < duration_s:
            now = time.monotonic()
            for name, child in nodes.items():
                code = child.process.poll()
                if code is not None:
                    exited.setdefault(name, code)
                    continue
                value = rss_mb(child.pid)
                if value is not None:
                    samples[name].append((now - started, value))
                if name == 'controller_lp':
                    loop_pid = loop_child_pid(child.pid)
                    value = rss_mb(loop_pid) if loop_pid else None
                    if value is not None:
                        samples['controller_lp.loop'].append((now - started, value))
            next_sample += sample_s
            time.sleep(max(0.0, next_sample - time.monotonic()))  # the sampling period itself
    finally:
        codes = {name: child.stop(timeout=30.0) for name, child in nodes.items()}
    result = {}
    for name, series in samples.items():
        after = [(t, v) for t, v in series if t >= warmup_s]
        if len(after) < 2:
            result[name] = {'flat': False, 'reason': 'too few samples after warm-up', 'samples': len(series)}
            continue
        start_mb = after[0][1]
        end_mb = after[-1][1]
        peak_mb = max(v for _, v in after)
        growth = end_mb - start_mb
        span_min = (after[-1][0] - after[0][0]) / 60.0
        limit = max(max_growth_mb, max_growth_pct / 100.0 * start_mb)
        result[name] = {'rss_after_warmup_mb': round(start_mb, 1), 'rss_end_mb': round(end_mb, 1),
                        'rss_peak_mb': round(peak_mb, 1), 'growth_mb': round(growth, 1),
                        'slope_mb_per_min': round(growth / span_min, 2) if span_min > 0 else None,
                        'limit_mb': round(limit, 1), 'flat': growth <= limit and name not in exited,
                        'exited_early': exited.get(name), 'exit_code': codes.get(name, codes.get(name.split('.')[0]))}
    return {'duration_s': duration_s, 'warmup_s': warmup_s, 'nodes': result,
            'all_flat': all(r.get('flat') for r in result.values()), 'output': str(output)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--duration-s', type=float, default=1800.0)
    parser.add_argument('--warmup-s', type=float, default=None, help='default: a fifth of the run, at least 60 s')
    parser.add_argument('--sample-s', type=float, default=5.0)
    parser.add_argument('--max-growth-mb', type=float, default=20.0)
    parser.add_argument('--max-growth-pct', type=float, default=5.0)
    parser.add_argument('--quick', action='store_true', help='2 minutes, 1 of warm-up')
    args = parser.parse_args(argv)
    duration = 120.0 if args.quick else args.duration_s
    warmup = args.warmup_s if args.warmup_s is not None else (60.0 if args.quick else max(60.0, duration / 5))
    result = soak(duration, warmup, args.sample_s, args.max_growth_mb, args.max_growth_pct)
    for name, row in result['nodes'].items():
        print(f"{name}: {row.get('rss_after_warmup_mb')} -> {row.get('rss_end_mb')} MB "
              f"(growth {row.get('growth_mb')} MB, limit {row.get('limit_mb')}): "
              f"{'flat' if row.get('flat') else 'NOT flat'}", flush=True)
    print(json.dumps({'benchmark': 'soak', 'machine': machine_info(), **result}))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
