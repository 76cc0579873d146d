"""Scaling benchmark of the distributed training graph (loopback DDS, separate processes).

One graph for the whole run: a replay node, two clients publishing as fast as they can (random
actions: they never see a policy) and a learner; the side not being measured is paused with
SIGSTOP (the children get a long DDS lease, so a paused node is not dropped), and the two sides
of every comparison take turns, round after round:

1. collection: environment steps/s into the replay node with 1 client (the other paused), then
   2 clients; efficiency = 2-client rate / (2 x the 1-client rate of the same round), median
   over rounds (this machine has 2 cores: goal >= 0.85x);
2. learner: updates/s of the same agent sampling from an in-process ReplayBuffer (learner node
   paused), then of the learner node sampling from the replay node over DDS (clients paused);
   loss = 1 - median of the per-round ratios (goal: the node costs < 10 %); full runs also take
   turns with 1 and 2 clients at the default training rate beside the learner;
3. time to target: seconds of the default training run (`make run`) until its evaluation cost
   first drops below --target-cost (skipped with --quick).

`runs` in the JSON holds every round's values.
Usage: .venv/bin/python bench/scaling.py [--quick]   (last line: one JSON object)
"""
import argparse
import json
import math
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dcdrl_ros import runtime
from dcdrl_ros.testing import ChildProcess, TopicRecorder, fresh_domain_id, loopback_env

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import machine_info  # noqa: E402

DCDRL = [sys.executable, '-m', 'dcdrl_ros.cli']
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


# A long participant lease: a paused (SIGSTOP) node is not declared gone while it waits its turn.
LONG_LEASE_XML = ('<CycloneDDS><Domain><Discovery><LeaseDuration>300 s</LeaseDuration></Discovery></Domain>'
                  '</CycloneDDS>')


def _child_env(domain: int) -> dict[str, str]:
    user = os.environ.get('CYCLONEDDS_URI', '')
    return loopback_env(domain, CYCLONEDDS_URI=f'{user},{LONG_LEASE_XML}' if user else LONG_LEASE_XML)


def _node(package: str, executable: str, name: str, domain: int, *params: str,
          remaps: tuple[str, ...] = ()) -> ChildProcess:
    """A node in its own session; `params` are NAME:=VALUE (only parameters it declares: others stop it)."""
    argv = [*DCDRL, 'run', package, executable, '--ros-args', '-r', f'__node:={name}', '-r', '__ns:=/dcdrl']
    for remap in remaps:
        argv += ['-r', remap]
    for param in params:
        argv += ['-p', param]
    return ChildProcess(argv, env=_child_env(domain))


def pause(process: ChildProcess) -> None:
    """SIGSTOP to the node's process group (its own session): it uses no CPU until resumed."""
    os.killpg(process.pid, signal.SIGSTOP)


def resume(process: ChildProcess) -> None:
    try:
        os.killpg(process.pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


class InProcessLearner:
    """The learner node's agent and batch size, sampling from an in-process ReplayBuffer (no DDS)."""

    def __init__(self) -> None:
        import gymnasium
        import torch

        import dcdrl_sim  # noqa: F401
        from dcdrl_learning.agents import Agent, AgentConfig
        from dcdrl_learning.replay import ReplayBuffer
        torch.set_num_threads(1)
        env = gymnasium.make('dcdrl_sim/MecOffload-v0')
        obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
        self.config = AgentConfig.preset('dcdrl', seed=0, device='cpu')
        self.agent = Agent(self.config, obs_dim, action_dim)
        self.buffer = ReplayBuffer(200_000, obs_dim, action_dim, seed=0)
        rng = np.random.default_rng(0)
        for _ in range(20):
            n = 1024
            self.buffer.add(rng.random((n, obs_dim), np.float32),
                            rng.uniform(-1, 1, (n, action_dim)).astype(np.float32), -rng.random(n, np.float32),
                            rng.random((n, obs_dim), np.float32), np.full(n, 0.9, np.float32))
        self.run(20)  # warm-up

    def run(self, updates: int) -> None:
        for _ in range(updates):
            self.agent.update(self.buffer.sample(self.config.batch_size), stored_transitions=len(self.buffer))

    def rate(self, window_s: float) -> float:
        """Updates/s over about `window_s` seconds."""
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < window_s:
            self.run(1)
            count += 1
        return count / (time.perf_counter() - start)


class Graph:
    """One training graph for the whole bench: replay node, two clients at full speed (random
    actions: they never see a policy) and a learner, with a probe for their stats."""

    def __init__(self, output_dir: str, report_s: float) -> None:
        self.domain = fresh_domain_id()
        self.output_dir = output_dir
        self.probe = Probe(self.domain)
        self.replay = _node('dcdrl_cloud', 'replay_buffer', 'replay_buffer', self.domain, f'output_dir:={output_dir}',
                            'restore:=false', f'report_period_s:={report_s}', 'capacity:=2000000')
        self.clients = [self._client(k, 'num_envs:=8', 'batch_steps:=32', 'publish_rate_hz:=1000.0',
                                     remaps=('policy:=scaling_bench_no_policy',)) for k in range(2)]
        # The learner publishes no policy while measured (the in-process reference publishes none).
        self.learner = _node('dcdrl_cloud', 'learner', 'learner', self.domain, f'output_dir:={output_dir}',
                             'resume:=false', 'duration_s:=0.0',
                             'eval_period_s:=0.0', f'stats_period_s:={report_s}', 'tensorboard:=false',
                             'checkpoint_period_s:=0.0', 'evaluate_on_stop:=false', 'actor_start:=0',
                             'publish_every_updates:=1000000000', 'progress_period_s:=0.0', 'device:=cpu')
        self.paused: set[int] = set()

    def _client(self, k: int, *params: str, remaps: tuple[str, ...] = ()) -> ChildProcess:
        return _node('dcdrl_sim', 'client', f'client_{k}', self.domain, f'client_id:=client_{k}', f'seed:={k}',
                     *params, remaps=remaps)

    def wait_for(self, predicate: Callable[[], Any], what: str, timeout_s: float = START_TIMEOUT) -> None:
        """The probe's wait, failing at once (with the node's last output) when a node has exited."""
        deadline = time.monotonic() + timeout_s
        while True:
            for process in (self.replay, self.learner, *self.clients):
                if process.process.poll() is not None:
                    code = process.stop()   # collects its output
                    raise RuntimeError(f'{" ".join(process.argv[5:8])} exited with code {code} while waiting for '
                                       f'{what}:\n' + '\n'.join(process.lines[-15:]))
            try:
                self.probe.wait_for(predicate, max(0.0, min(2.0, deadline - time.monotonic())), what)
                return
            except TimeoutError:
                if time.monotonic() >= deadline:
                    raise

    def pause(self, process: ChildProcess) -> None:
        pause(process)
        self.paused.add(process.pid)

    def resume(self, process: ChildProcess) -> None:
        resume(process)
        self.paused.discard(process.pid)

    def replay_rate(self, settle_s: float, window_s: float) -> float:
        time.sleep(settle_s)   # let the change (a paused or resumed node) take effect
        start = time.monotonic()
        time.sleep(window_s)   # the measurement window itself
        return self.probe.rate(self.probe.replay, start, time.monotonic())

    def learner_rate(self, settle_s: float, window_s: float) -> float:
        # After a pause the batches requested before it may wait for a retransmission (the replay's
        # heartbeats back off while the reader is stopped): measure once updates flow again.
        with self.probe.changed:
            before = self.probe.learner[-1][1] if self.probe.learner else 0
        self.wait_for(lambda: self.probe.learner[-1][1] >= before + 5, 'updates after a pause')
        time.sleep(settle_s)
        start = time.monotonic()
        time.sleep(window_s)
        return self.probe.rate(self.probe.learner, start, time.monotonic())

    def restart_clients(self, *params: str) -> None:
        """Replaces the clients by new ones with these parameters (they receive the learner's policy)."""
        for client in self.clients:
            self.resume(client)
            client.stop()
        self.clients = [self._client(k, *params) for k in range(2)]

    def close(self) -> None:
        """Kills every node at once (SIGKILL to each process group): what they would write on a clean
        shutdown (replay snapshot, learner checkpoint) would only go to a temporary folder."""
        processes = [self.learner, *self.clients, self.replay]
        for process in processes:
            if process.process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for process in processes:
            process.stop()   # reaps it and collects its output
        self.probe.close()


def measure(quick: bool, repeats: int, window_s: float, settle_s: float) -> dict:
    """Every comparison taking turns in one graph, `repeats` rounds each: learner in-process
    (learner node paused), then the node over DDS (clients paused); collection with 1 client
    (client_1 and the learner paused), then 2 clients; full runs also: learner with 1 then 2
    default-rate clients. The learner goes first: a long pause delays its next batches by seconds."""
    report_s = 0.25 if quick else 0.5
    began = time.monotonic()

    def log(text: str) -> None:
        print(f'[{time.monotonic() - began:5.1f} s] {text}', flush=True)

    runs: dict[str, list[float]] = {'collection_1': [], 'collection_2': [], 'in_process': [], 'replay_node': [],
                                    '1_clients': [], '2_clients': []}
    with tempfile.TemporaryDirectory() as out:
        graph = Graph(out, report_s)
        built: list[InProcessLearner] = []
        builder = threading.Thread(target=lambda: built.append(InProcessLearner()), daemon=True)
        builder.start()   # while the graph starts (an exception there leaves `built` empty)
        try:
            probe = graph.probe
            fill = 10_000 if quick else 20_000
            graph.wait_for(lambda: probe.replay and probe.replay[-1][1] > fill, 'experience')
            for client in graph.clients:   # enough data: the learner alone with the replay node
                graph.pause(client)
            log(f'{fill:,} transitions stored (clients paused)')
            builder.join(START_TIMEOUT)
            if not built:
                raise RuntimeError('the in-process learner could not be built (see the traceback above)')
            reference = built[0]
            log('in-process learner built')
            graph.wait_for(lambda: probe.learner and probe.learner[-1][1] > 0, 'training')
            log('learner node training; in-process (learner node paused), then the node over DDS, taking turns')
            for _ in range(repeats):
                graph.pause(graph.learner)
                runs['in_process'].append(reference.rate(window_s))
                graph.resume(graph.learner)
                runs['replay_node'].append(graph.learner_rate(0.0, window_s))   # it waits for updates to flow
            graph.pause(graph.learner)
            log('collection: 1 client (the other paused), then 2 clients, taking turns')
            graph.resume(graph.clients[0])
            graph.replay_rate(0.0, settle_s)   # a warm-up after the long pause
            for _ in range(repeats):
                runs['collection_1'].append(graph.replay_rate(settle_s, window_s))
                graph.resume(graph.clients[1])
                runs['collection_2'].append(graph.replay_rate(settle_s, window_s))
                graph.pause(graph.clients[1])
            if not quick:   # clients at the default training rate beside the learner
                log('learner with 1 then 2 default-rate clients, taking turns')
                graph.restart_clients('num_envs:=2', 'batch_steps:=8', 'publish_rate_hz:=10.0')
                start = probe.replay[-1][1]
                graph.wait_for(lambda: probe.replay[-1][1] > start + 1000, 'default-rate clients')
                graph.resume(graph.learner)
                for _ in range(repeats):
                    graph.pause(graph.clients[1])
                    runs['1_clients'].append(graph.learner_rate(settle_s, window_s))
                    graph.resume(graph.clients[1])
                    runs['2_clients'].append(graph.learner_rate(settle_s, window_s))
        finally:
            log('stopping the graph')
            graph.close()
            log('stopped')
    return {name: values for name, values in runs.items() if values}


def median(values: list[float]) -> float:
    """Median of the finite values (a window with too few stats messages gives NaN); NaN if none."""
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def paired_ratio(ours: list[float], reference: list[float]) -> float:
    """Median over rounds of ours[i] / reference[i] (the two sides of a round ran back to back);
    rounds where either side is not a finite number are left out."""
    return median([a / b if math.isfinite(a) and math.isfinite(b) and b else math.nan
                   for a, b in zip(ours, reference)])


def time_to_target(target_cost: float) -> dict:
    """Runs the default `make run` training and reads when its evaluation cost first beat the target."""
    import subprocess
    with tempfile.TemporaryDirectory() as runs:
        env = loopback_env(fresh_domain_id())
        result = subprocess.run([sys.executable, '-m', 'dcdrl_cloud.main_job', '--runs-dir', runs, '--quiet'],
                                env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            return {'error': result.stderr[-500:]}
        from dcdrl_cloud.report import first_at_or_below, read_scalars
        run_dir = next(Path(runs).iterdir())
        points = read_scalars(run_dir).get('eval/cost', [])
        if not points:
            return {'error': 'no evaluation in the run'}
        hit = first_at_or_below(points, target_cost)
        return {'target_cost': target_cost, 'seconds': hit[0] if hit else None,
                'updates': hit[1] if hit else None, 'final_cost': points[-1][2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='short windows, no time-to-target run (< 45 s)')
    parser.add_argument('--repeats', type=int, default=5, help='rounds of each comparison (default 5; --quick 3)')
    parser.add_argument('--target-cost', type=float, default=5.0,
                        help='MEC mean cost per step for the time-to-target run (local-only is about 9.3)')
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f'--repeats must be >= 1, got {args.repeats}')
    started = time.monotonic()
    repeats = 3 if args.quick else args.repeats
    window, settle = (1.5, 0.5) if args.quick else (6.0, 1.5)

    runs = measure(args.quick, repeats, window, settle)
    one, two = median(runs['collection_1']), median(runs['collection_2'])
    efficiency = paired_ratio(runs['collection_2'], [2 * x for x in runs['collection_1']])
    print(f'collection: 1 client {one:,.0f} steps/s, 2 clients {two:,.0f} steps/s, '
          f'efficiency vs linear {efficiency:.2f} (median of {repeats} paired rounds; goal >= 0.85)', flush=True)
    in_process, over_dds = median(runs['in_process']), median(runs['replay_node'])
    loss = 1.0 - paired_ratio(runs['replay_node'], runs['in_process'])
    print(f'learner: in-process buffer {in_process:.0f} updates/s, replay node over DDS {over_dds:.0f} updates/s, '
          f'loss {100 * loss:.1f} % (median of {repeats} paired rounds; goal < 10 %)', flush=True)
    with_clients = {k: median(runs[f'{k}_clients']) for k in (1, 2) if f'{k}_clients' in runs}
    for clients, rate in with_clients.items():
        print(f'learner with {clients} client(s) at the default rate: {rate:.0f} updates/s', flush=True)
    target = None if args.quick else time_to_target(args.target_cost)
    if target is not None:
        print(f'time to mean cost <= {args.target_cost}: {target}', flush=True)
    print(json.dumps({
        'benchmark': 'scaling', 'quick': args.quick, 'repeats': repeats, 'window_s': window, 'settle_s': settle,
        'machine': machine_info(),
        'collection_steps_per_s': {'1': one, '2': two}, 'collection_efficiency_vs_linear': efficiency,
        'learner_updates_per_s': {'in_process': in_process, 'replay_node': over_dds,
                                  **{f'{k}_clients': v for k, v in with_clients.items()}},
        'runs': runs, 'replay_node_loss': loss, 'time_to_target': target,
        'goals': {'collection_efficiency_min': 0.85, 'replay_node_loss_max': 0.10},
        'goals_met': {'collection': efficiency >= 0.85, 'replay_node': loss < 0.10},
        'wall_s': round(time.monotonic() - started, 1),
    }))


if __name__ == '__main__':
    main()
