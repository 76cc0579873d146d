"""Bandwidth study of the cloud-edge workflow on the emulated multi-host testbed (needs root).

device, edge and cloud are network namespaces on a shaped switch (dcdrl_ros.netns.Testbed);
nodes discover each other as on real machines (ROS_STATIC_PEERS; docs/multihost.md).

1. Weight delivery (cloud -> device) of the 'cloud_edge' actor (176 KB on the wire) at 0.06, 1,
   10 and 100 Mbit/s (--quick: 1 and 10): a sender probe in the cloud publishes a new version
   once the previous one arrived at a receiver probe in the device; delivery = receive time -
   publish time (one clock: the namespaces share the machine). Median of --repeats after one
   warm-up (none at 0.06 Mbit/s: 25 s each); compared with size*8/bandwidth and with the
   paper's ~23 s for a ~179 KB actor at 0.06 Mbit/s.
2. Workflow (not with --quick): the controller (30 Hz, real time, as in the paper) in the device
   and the segment_learner (training after 300/600 transitions) in the cloud, the
   device-cloud link shaped both ways, --workflow-s of steady running per bandwidth: env steps
   per second reaching the learner, segments lost, weights swapped at the edge, version lag
   (learner's version_lag_mean: learner version minus the version that acted; and the learner's
   newest version minus the edge's active one), bytes and queue drops per direction.
3. Link cut (not with --quick): the same workflow at 10 Mbit/s, device-cloud cut for 10 s; with
   Cyclone's defaults (participant lease 10 s, SPDP every 30 s) and with a 30 s lease: steps and
   misses of the loop during the cut, segments lost, time until segments flow again.
4. --converge: time to convergence of the whole workflow at --bandwidths (long: the learner
   runs until TRAINING DONE or --max-s; not part of the default run).

    sudo .venv/bin/python bench/bandwidth.py [--quick] [--bandwidths 0.06,1,10,100] [--repeats 3]
    sudo .venv/bin/python bench/bandwidth.py --converge --bandwidths 0.06,100 --max-s 3600 \\
        [--rate-hz 150 --sim-rate-hz 30] [--seeds 0,1] [--init-checkpoint runs/pretrain/learner.ckpt]
   Faster than real time the link and the publish period are scaled with it (see converge()).

Last line: one JSON object with every number.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
for _package in ('dcdrl_core', 'dcdrl_ros', 'dcdrl_learning', 'dcdrl_sim', 'dcdrl_edge', 'dcdrl_cloud'):
    sys.path.insert(0, str(ROOT / 'src' / _package))
os.environ['PYTHONPATH'] = os.pathsep.join(
    [str(ROOT / 'src' / p) for p in
     ('dcdrl_core', 'dcdrl_ros', 'dcdrl_learning', 'dcdrl_sim', 'dcdrl_edge', 'dcdrl_cloud')]
    + ([os.environ['PYTHONPATH']] if os.environ.get('PYTHONPATH') else []))

from dcdrl_ros.netns import Testbed, netns_available  # noqa: E402
from dcdrl_ros.testing import ChildProcess  # noqa: E402
from machine import machine_info  # noqa: E402

CONFIG = ROOT / 'config' / 'cloud_edge.yaml'
DCDRL = [sys.executable, '-m', 'dcdrl_ros.cli']
PROBE = [sys.executable, str(ROOT / 'scripts' / 'testbed.py'), 'probe']
PAPER = {'bandwidth_mbps': 0.06, 'actor_kb': 179, 'delivery_s': 23.0,
         'convergence_steps_0.06_to_15_mbps': [24_000, 55_000], 'convergence_steps_above_50_mbps': [18_000, 25_000]}
LONG_LEASE_XML = '<CycloneDDS><Domain><Discovery><LeaseDuration>30 s</LeaseDuration></Discovery></Domain></CycloneDDS>'


class Records:
    """JSON lines ``TAG {...}`` of a probe child, waited for with time-outs."""

    def __init__(self, child: ChildProcess, tag: str) -> None:
        self.child, self.tag = child, tag
        self.values: list[dict] = []

    def pull(self, timeout: float) -> dict | None:
        try:
            line = self.child.wait_for_line(self.tag + ' ', timeout)
        except TimeoutError:
            return None
        self.child.lines.remove(line)
        record = json.loads(line.split(' ', 1)[1])
        self.values.append(record)
        return record

    def wait(self, predicate: Callable[[dict], bool], timeout: float, what: str) -> dict:
        for record in self.values:
            if predicate(record):
                return record
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = self.pull(max(0.01, deadline - time.monotonic()))
            if record is not None and predicate(record):
                return record
        raise TimeoutError(f'{what}: not within {timeout} s (last: {self.values[-2:]})')

    def drain(self) -> None:
        """Reads every line already printed (a short wait per line: they are queued already)."""
        while self.pull(0.05) is not None:
            pass


def _node(bed: Testbed, host: str, env: dict, package: str, executable: str, *params: str) -> ChildProcess:
    argv = [*DCDRL, 'run', package, executable, '--ros-args', '-r', f'__node:={executable}', '-r', '__ns:=/dcdrl',
            '--params-file', str(CONFIG)]
    for param in params:
        argv += ['-p', param]
    return bed.run(host, argv, env=env)


# ------------------------------------------------------------------------------- weight delivery
def _is_version(version: int) -> Callable[[dict], bool]:
    return lambda record: record['version'] == version


def weight_delivery(bandwidths: list[float], repeats: int, domain: int) -> list[dict]:
    results = []
    with Testbed(bandwidth_mbps=bandwidths[0]) as bed:
        receiver = Records(bed.run('device', [*PROBE, 'receive-weights'], env=bed.dds_env('device', domain)),
                           'RECEIVED')
        sender_child = bed.run('cloud', [*PROBE, 'send-weights'], env=bed.dds_env('cloud', domain))
        sender = Records(sender_child, 'SENT')
        sender_child.wait_for_line('READY', 120)
        version = 0
        for mbps in bandwidths:
            bed.set_bandwidth('device-cloud', mbps)
            warmup = 0 if mbps < 0.5 else 1
            times, size = [], 0
            before = bed.link_counters('device-cloud')['cloud->device']
            for k in range(warmup + repeats):
                version += 1
                sender_child.send_line(str(version))
                sent = sender.wait(_is_version(version), 60, f'version {version} sent')
                timeout = 30 + 10 * sent['bytes'] * 8 / (mbps * 1e6)
                got = receiver.wait(_is_version(version), timeout, f'version {version} at {mbps} Mbit/s')
                size = sent['bytes']
                if k >= warmup:
                    times.append(got['t'] - sent['t'])
            after = bed.link_counters('device-cloud')['cloud->device']
            ideal = size * 8 / (mbps * 1e6)
            median = statistics.median(times)
            result = {'bandwidth_mbps': mbps, 'bytes': size, 'delivery_s': [round(t, 3) for t in times],
                      'delivery_median_s': round(median, 3), 'size_over_bandwidth_s': round(ideal, 3),
                      'ratio_to_ideal': round(median / ideal, 3),
                      'wire_bytes_per_delivery': int((after['bytes'] - before['bytes']) / (warmup + repeats)),
                      'queue_drops': after['dropped'] - before['dropped']}
            results.append(result)
            print(f'weights {size} B at {mbps:g} Mbit/s: median {median:.3f} s over {repeats} '
                  f'(size*8/bandwidth {ideal:.3f} s, x{median / ideal:.3f}); on the wire '
                  f"{result['wire_bytes_per_delivery']} B per delivery", flush=True)
    return results


# ------------------------------------------------------------------------------------ workflow
def _finite(values: list[float]) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _publish_params(mbps: float, size: int = 176_476, default_s: float = 0.5) -> float | None:
    """A publish period that lets each actor cross the link before the next (twice size*8/bandwidth),
    or None when the default period already does."""
    needed = 2 * size * 8 / (mbps * 1e6)
    return round(needed, 1) if needed > default_s else None


def run_workflow(mbps: float | None, steady_s: float, domain: int, workdir: Path, rate_hz: float = 30.0,
                 sim_rate_hz: float = 0.0, cut_s: float = 0.0, extra_env: dict | None = None,
                 learner_params: tuple = ()) -> dict:
    """One run of controller (device) + learner (cloud) with the device-cloud link at ``mbps``."""
    output = workdir / f'learner_{mbps}_{cut_s}_{time.monotonic_ns()}'
    with Testbed(bandwidth_mbps={'device-cloud': mbps}) as bed:
        env = {host: bed.dds_env(host, domain, DCDRL_BACKEND='cyclone', **(extra_env or {})) for host in bed.hosts}
        started = time.time()
        learner = _node(bed, 'cloud', env['cloud'], 'dcdrl_cloud', 'segment_learner',
                        f'output_dir:={output}', 'critic_start:=300', 'actor_start:=600', 'stats_period_s:=0.5',
                        'tensorboard:=false', 'device:=cpu', 'checkpoint_period_s:=1000.0', *learner_params)
        controller = _node(bed, 'device', env['device'], 'dcdrl_edge', 'controller', f'rate_hz:={rate_hz}',
                           f'sim_rate_hz:={sim_rate_hz}', 'stats_period_s:=0.25', 'device_id:=pi')
        edge = Records(bed.run('device', [*PROBE, 'echo', '/dcdrl/edge/stats', 'dcdrl_msgs/msg/LoopStats'],
                               env=env['device']), 'PROBE')
        cloud = Records(bed.run('cloud', [*PROBE, 'echo', '/dcdrl/learner/stats', 'dcdrl_msgs/msg/TrainingStats'],
                                env=env['cloud']), 'PROBE')
        # At 0.06 Mbit/s the first weights reach a late-joining reader by NACK repair: minutes.
        first_weights = edge.wait(lambda s: s['policy_version'] >= 1, 600, 'first weights at the edge')
        streaming = cloud.wait(lambda s: s['env_steps'] >= 1, 120, 'first segments at the learner')
        result: dict[str, Any] = {'bandwidth_mbps': mbps, 'rate_hz': rate_hz,
                                  'first_weights_at_edge_s': round(first_weights['t'] - started, 1),
                                  'first_segments_at_learner_s': round(streaming['t'] - started, 1)}
        if cut_s > 0:
            before = cloud.wait(lambda s: s['env_steps'] >= 300, 300, 'steady stream')
            at_cut = edge.wait(lambda s: s['t'] >= before['t'], 60, 'edge stats')
            bed.cut('device-cloud')
            cut_at = time.time()
            during = edge.wait(lambda s: s['t'] >= cut_at + cut_s, cut_s + 60, 'edge stats after the cut')
            at_restore = cloud.wait(lambda s: s['t'] >= cut_at + cut_s, 60, 'learner stats after the cut')
            bed.restore('device-cloud')
            restored_at = time.time()
            recovered = cloud.wait(lambda s: s['t'] > restored_at and s['env_steps'] > at_restore['env_steps'],
                                   180, 'segments after the restore')
            result.update(cut_s=cut_s, steps_during_cut=during['steps'] - at_cut['steps'],
                          expected_steps=int(cut_s * rate_hz), misses_during_cut=during['misses'] - at_cut['misses'],
                          mode_during_cut=sorted({s['mode'] for s in edge.values
                                                  if cut_at <= s['t'] <= cut_at + cut_s}),
                          recovery_s=round(recovered['t'] - restored_at, 2))
            cloud.wait(lambda s: s['t'] >= recovered['t'] + 5, 60, 'five more seconds')  # let the backlog land
        else:
            # Steady state: from the first segment on, --workflow-s seconds.
            start = cloud.wait(lambda s: s['t'] >= streaming['t'] + 5, 120, 'warm-up')
            end = cloud.wait(lambda s: s['t'] >= start['t'] + steady_s, steady_s + 120, 'steady window')
            edge.drain()
            window = [s for s in cloud.values if start['t'] <= s['t'] <= end['t']]
            edge_window = [s for s in edge.values if start['t'] <= s['t'] <= end['t']]
            lags = _finite([s['version_lag_mean'] for s in window])
            gap = []  # the learner's newest version minus the edge's active one, at the same moments
            for e in edge_window:
                latest = [s for s in window if s['t'] <= e['t']]
                if latest:
                    gap.append(latest[-1]['policy_version'] - e['policy_version'])
            result.update(
                window_s=round(end['t'] - start['t'], 1),
                env_steps_per_s=round((end['env_steps'] - start['env_steps']) / (end['t'] - start['t']), 2),
                learner_versions=end['policy_version'] - start['policy_version'],
                edge_swaps=((edge_window[-1]['weights_swapped'] - edge_window[0]['weights_swapped'])
                            if edge_window else 0),
                version_lag_mean=round(statistics.mean(lags), 1) if lags else None,
                version_lag_max=max(_finite([s['version_lag_max'] for s in window]), default=None),
                edge_behind_learner_mean=round(statistics.mean(gap), 1) if gap else None,
                edge_behind_learner_max=max(gap) if gap else None,
                misses=edge_window[-1]['misses'] if edge_window else None,
                steps=edge_window[-1]['steps'] if edge_window else None)
        result['link'] = bed.link_counters('device-cloud')
        learner_code = learner.stop(60)
        controller.stop(30)
    summary = json.loads((output / 'learner.json').read_text()) if (output / 'learner.json').exists() else {}
    if not summary:
        result['learner_exit'] = learner_code
        result['learner_output'] = learner.lines[-5:]
    pairer = summary.get('pairer', {})
    result.update(transitions=summary.get('env_steps'), updates=summary.get('updates'),
                  gaps=pairer.get('gaps'), lost_segments=pairer.get('lost_segments'))
    return result


def converge(mbps: float | None, max_s: float, domain: int, workdir: Path, rate_hz: float, sim_rate_hz: float,
             init_checkpoint: str, seed: int = 0, direction: str = 'both') -> dict:
    """Runs the workflow until TRAINING DONE (or max_s) and returns the learner's convergence numbers.

    Faster than real time (rate_hz > sim_rate_hz, x = rate_hz / sim_rate_hz) the run is a
    time-compressed copy of the real-time one: the link is shaped at mbps * x and the learner
    publishes every 0.5 s / x, so a weight delivery and the publish period cost the same number of
    env steps as at mbps in real time (the quantity the paper's study varies).
    direction 'both' shapes the link both ways (a real slow link: experience up, weights down);
    'down' only cloud -> device, as the paper emulated bandwidth (by delaying the weight send).
    Where the default publish period (0.5 s) sends weights faster than the link carries them, the
    learner publishes at the paced period instead (_publish_params: twice the delivery time), as a
    user on a slow link would configure it."""
    scale = rate_hz / sim_rate_hz if sim_rate_hz > 0 else 1.0
    shaped = mbps * scale if mbps else mbps
    output = workdir / f'converge_{mbps}_{seed}_{direction}'
    links = {'device-cloud': shaped} if direction == 'both' else {'cloud->device': shaped}
    with Testbed(bandwidth_mbps=links) as bed:
        env = {host: bed.dds_env(host, domain, DCDRL_BACKEND='cyclone') for host in bed.hosts}
        period = (_publish_params(mbps) or 0.5) if mbps else 0.5
        params = [f'output_dir:={output}', 'tensorboard:=false', 'device:=cpu', 'exit_when_done:=true',
                  f'publish_period_s:={period / scale:g}', f'seed:={seed}']
        if init_checkpoint:
            params.append(f'init_checkpoint:={init_checkpoint}')
        learner = _node(bed, 'cloud', env['cloud'], 'dcdrl_cloud', 'segment_learner', *params)
        controller = _node(bed, 'device', env['device'], 'dcdrl_edge', 'controller', f'rate_hz:={rate_hz}',
                           f'sim_rate_hz:={sim_rate_hz}', f'seed:={seed}')
        try:
            learner.wait_for_line('TRAINING DONE', max_s)
            done = True
        except (TimeoutError, RuntimeError):
            done = False
        link = bed.link_counters('device-cloud')
        learner.stop(60)
        controller.stop(30)
    summary = json.loads((output / 'learner.json').read_text()) if (output / 'learner.json').exists() else {}
    return {'bandwidth_mbps': mbps, 'seed': seed, 'time_scale': scale, 'shaped_mbps': shaped, 'direction': direction,
            'publish_period_s': period,
            'converged': bool(summary.get('converged')) and done,
            'steps_to_converge': summary.get('steps_to_converge'),
            'wall_s_to_converge': summary.get('wall_s_to_converge'),
            'env_steps': summary.get('env_steps'), 'updates': summary.get('updates'),
            'version_lag_mean': summary.get('version_lag_mean'),
            'lost_segments': summary.get('pairer', {}).get('lost_segments'), 'link': link}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='weight delivery at 1 and 10 Mbit/s only (< 60 s)')
    parser.add_argument('--bandwidths', default=None, help='comma-separated Mbit/s (default 0.06,1,10,100)')
    parser.add_argument('--repeats', type=int, default=None, help='deliveries per bandwidth (default 3; quick 2)')
    parser.add_argument('--workflow-s', type=float, default=60.0, help='steady window of each workflow run')
    parser.add_argument('--skip-workflow', action='store_true')
    parser.add_argument('--skip-cut', action='store_true')
    parser.add_argument('--converge', action='store_true', help='only the (long) convergence study')
    parser.add_argument('--max-s', type=float, default=3600.0, help='--converge: give up after this long')
    parser.add_argument('--rate-hz', type=float, default=30.0, help='--converge: control loop rate')
    parser.add_argument('--sim-rate-hz', type=float, default=0.0, help='--converge: plant rate (0 = real time)')
    parser.add_argument('--init-checkpoint', default='', help='--converge: fine-tune from this learner.ckpt')
    parser.add_argument('--seeds', default='0', help='--converge: comma-separated seeds per bandwidth')
    parser.add_argument('--direction', default='both', choices=('both', 'down'),
                        help="--converge: shape both ways, or only cloud->device (the paper's emulation)")
    parser.add_argument('--domain-id', type=int, default=42)
    args = parser.parse_args()
    available, reason = netns_available()
    if not available:
        print(f'bench/bandwidth.py needs network namespaces: {reason}', file=sys.stderr)
        print(json.dumps({'benchmark': 'bandwidth', 'skipped': reason}))
        return 1
    bandwidths = ([float(b) for b in args.bandwidths.split(',')] if args.bandwidths
                  else [1.0, 10.0] if args.quick else [0.06, 1.0, 10.0, 100.0])
    repeats = args.repeats or (2 if args.quick else 3)
    started = time.monotonic()
    out: dict[str, Any] = {'benchmark': 'bandwidth', 'quick': args.quick, 'machine': machine_info(), 'paper': PAPER}
    with tempfile.TemporaryDirectory(prefix='dcdrl-bandwidth-') as tmp:
        workdir = Path(tmp)
        if args.converge:
            out['convergence'] = []
            for seed in [int(s) for s in args.seeds.split(',')]:
                for mbps in bandwidths:
                    result = converge(mbps, args.max_s, args.domain_id, workdir, args.rate_hz, args.sim_rate_hz,
                                      args.init_checkpoint, seed, args.direction)
                    out['convergence'].append(result)
                    print(f"convergence at {mbps:g} Mbit/s {args.direction} (seed {seed}, "
                          f"x{result['time_scale']:g} real time, "
                          f"link {result['shaped_mbps']:g} Mbit/s): {result['steps_to_converge']} steps, "
                          f"{result['wall_s_to_converge']} s (converged: {result['converged']}), version lag "
                          f"{result['version_lag_mean']}, {result['lost_segments']} segments lost", flush=True)
        else:
            out['weight_delivery'] = weight_delivery(bandwidths, repeats, args.domain_id)
            if not args.quick and not args.skip_workflow:
                out['workflow'] = []
                runs: list[tuple[float, float | None]] = [(mbps, None) for mbps in bandwidths]
                # Where the default publish period (0.5 s) sends weights faster than the link carries
                # them, also the period that paces them (twice the delivery time).
                runs += [(mbps, _publish_params(mbps)) for mbps in bandwidths if _publish_params(mbps)]
                for mbps, period in runs:
                    params = (f'publish_period_s:={period}',) if period else ()
                    window = max(args.workflow_s, 3 * period) if period else args.workflow_s
                    try:
                        result = run_workflow(mbps, window, args.domain_id, workdir, learner_params=params)
                    except TimeoutError as error:  # recorded, the study goes on
                        result = {'bandwidth_mbps': mbps, 'error': str(error)[:300]}
                        out['workflow'].append({**result, 'publish_period_s': period or 0.5})
                        print(f'workflow at {mbps:g} Mbit/s, weights every {period or 0.5} s: {error}', flush=True)
                        continue
                    result['publish_period_s'] = period or 0.5
                    out['workflow'].append(result)
                    print(f"workflow at {mbps:g} Mbit/s, weights every {result['publish_period_s']} s: "
                          f"{result['env_steps_per_s']} env steps/s at the learner, "
                          f"{result['lost_segments']} segments lost, {result['learner_versions']} versions published "
                          f"/ {result['edge_swaps']} swapped at the edge in {result['window_s']} s, version lag mean "
                          f"{result['version_lag_mean']}, edge behind the learner by "
                          f"{result['edge_behind_learner_mean']} versions (max {result['edge_behind_learner_max']}); "
                          f"first weights at the edge after {result['first_weights_at_edge_s']} s", flush=True)
            if not args.quick and not args.skip_cut:
                out['link_cut'] = []
                for label, extra in (('cyclone defaults (lease 10 s)', None),
                                     ('lease 30 s', {'CYCLONEDDS_URI': LONG_LEASE_XML})):
                    try:
                        result = run_workflow(10.0, 0.0, args.domain_id, workdir, cut_s=10.0, extra_env=extra)
                    except TimeoutError as error:
                        out['link_cut'].append({'dds': label, 'error': str(error)[:300]})
                        print(f'link cut, {label}: {error}', flush=True)
                        continue
                    result['dds'] = label
                    out['link_cut'].append(result)
                    print(f"link cut 10 s at 10 Mbit/s, {label}: {result['steps_during_cut']} loop steps of "
                          f"{result['expected_steps']} during the cut, {result['misses_during_cut']} misses, "
                          f"{result['lost_segments']} segments lost in {result['gaps']} gap(s), segments again "
                          f"{result['recovery_s']} s after the restore", flush=True)
    out['wall_s'] = round(time.monotonic() - started, 1)
    print(json.dumps(out, allow_nan=False, default=str))
    return 0


if __name__ == '__main__':
    sys.exit(main())
