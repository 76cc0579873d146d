"""Transport benchmark: our runtime versus raw cyclonedds-python, same payloads, same run.

Payloads: one MEC experience transition (ExperienceBatch: 73-float obs and next_obs,
20 actions, reward, extras) and a cloud-edge actor's weights (PolicyWeights: 44,545
float32 = 178 KB in 8 tensors). One receiver process per implementation (started once, kept
for the whole run) and this process as the sender, on a private loopback DDS domain; each
implementation has its own topics, so both stay alive side by side.

- throughput: N messages sent back to back (reliable, keep-all: the writer is flow
  controlled, so the rate is what the receiver sustains, deserialisation included);
- latency: messages at a low rate, one-way time from the sender's CLOCK_MONOTONIC stamp
  to the receiver's callback (both processes read the same clock).

Pair by pair: per payload, a warm-up of each side, then rounds of ours, raw (throughput),
ours, raw (latency); a number is the median over rounds and the throughput ratio is the
median of the per-round ratios (`runs` in the JSON holds every round's values).

Usage: .venv/bin/python bench/transport.py [--quick]   (last line: one JSON object)
"""

import argparse
from dataclasses import dataclass
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Optional

import numpy as np
from cyclonedds.idl import IdlStruct
from cyclonedds.idl import types as t

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import machine_info  # noqa: E402

ACTOR_SHAPES = [(256, 12), (256,), (128, 256), (128,), (64, 128), (64,), (1, 64), (1,)]  # 44,545 floats
OBS_DIM, ACTION_DIM = 73, 20


# ---------------------------------------------------------------------------
# Payload builders for both implementations
# ---------------------------------------------------------------------------
def ours_message(payload: str):
    from dcdrl_core import runtime  # noqa: F401  (installs the interface import hook)
    from dcdrl_core.experience import fill_experience
    from dcdrl_msgs.msg import ExperienceBatch, PolicyWeights, Tensor
    rng = np.random.default_rng(0)
    if payload == 'experience':
        return ExperienceBatch, fill_experience(
            ExperienceBatch(), client_id='client_0', sequence=0, policy_version=1,
            obs=rng.random((1, OBS_DIM)), actions=rng.random((1, ACTION_DIM)), rewards=rng.random(1),
            next_obs=rng.random((1, OBS_DIM)), terminated=[False], truncated=[False],
            extra_names=['latency_s', 'energy_j'], extras=rng.random((1, 2)))
    tensors = [Tensor(name=f't{i}', shape=list(shape), data=rng.random(shape, dtype=np.float32).reshape(-1))
               for i, shape in enumerate(ACTOR_SHAPES)]
    return PolicyWeights, PolicyWeights(architecture_id='mlp-256x128x64', version=1, producer='bench',
                                        tensors=tensors)


# The same layouts as plain cyclonedds IdlStructs (lists for sequences, as its users write).
@dataclass
class RawTime(IdlStruct, typename='bench::RawTime'):
    sec: t.int32
    nanosec: t.uint32


@dataclass
class RawHeader(IdlStruct, typename='bench::RawHeader'):
    stamp: RawTime
    frame_id: str


@dataclass
class RawExperience(IdlStruct, typename='bench::RawExperience'):
    header: RawHeader
    client_id: str
    sequence: t.uint64
    policy_version: t.uint64
    batch_size: t.uint32
    obs_dim: t.uint32
    action_dim: t.uint32
    obs: t.sequence[t.float32]
    actions: t.sequence[t.float32]
    rewards: t.sequence[t.float32]
    next_obs: t.sequence[t.float32]
    terminated: t.sequence[bool]
    truncated: t.sequence[bool]
    extra_names: t.sequence[str]
    extras: t.sequence[t.float32]


@dataclass
class RawTensor(IdlStruct, typename='bench::RawTensor'):
    name: str
    shape: t.sequence[t.uint32]
    data: t.sequence[t.float32]


@dataclass
class RawWeights(IdlStruct, typename='bench::RawWeights'):
    header: RawHeader
    architecture_id: str
    version: t.uint64
    producer: str
    generation: t.uint32
    has_fitness: bool
    fitness: t.float64
    tensors: t.sequence[RawTensor]


def raw_message(payload: str):
    rng = np.random.default_rng(0)
    header = RawHeader(stamp=RawTime(0, 0), frame_id='')
    if payload == 'experience':
        return RawExperience, RawExperience(
            header=header, client_id='client_0', sequence=0, policy_version=1, batch_size=1, obs_dim=OBS_DIM,
            action_dim=ACTION_DIM, obs=rng.random(OBS_DIM).astype(np.float32).tolist(),
            actions=rng.random(ACTION_DIM).astype(np.float32).tolist(), rewards=[0.5],
            next_obs=rng.random(OBS_DIM).astype(np.float32).tolist(), terminated=[False], truncated=[False],
            extra_names=['latency_s', 'energy_j'], extras=[0.1, 0.2])
    tensors = [RawTensor(name=f't{i}', shape=list(shape),
                         data=rng.random(shape, dtype=np.float32).reshape(-1).tolist())
               for i, shape in enumerate(ACTOR_SHAPES)]
    return RawWeights, RawWeights(header=header, architecture_id='mlp-256x128x64', version=1, producer='bench',
                                  generation=0, has_fitness=False, fitness=0.0, tensors=tensors)


def _stamp(message, now_ns: int) -> None:
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(now_ns, 1_000_000_000)


def _stamp_ns(message) -> int:
    return message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec


def _qos_ours():
    from dcdrl_core.runtime.qos import HistoryPolicy, QoSProfile
    return QoSProfile(history=HistoryPolicy.KEEP_ALL)


def _qos_raw():
    from cyclonedds.core import Policy, Qos
    from cyclonedds.util import duration
    return Qos(Policy.Reliability.Reliable(duration(seconds=10)), Policy.History.KeepAll,
               Policy.DataRepresentation(use_cdrv0_representation=True))


TOPIC = {'experience': 'bench_experience', 'weights': 'bench_weights'}


def topic(impl: str, payload: str) -> str:
    """Each implementation on its own topic: the two stay alive side by side in one domain."""
    return TOPIC[payload] if impl == 'ours' else f'rt/{TOPIC[payload]}_raw'


# ---------------------------------------------------------------------------
# Receiver process: one per implementation, alive for the whole run
# ---------------------------------------------------------------------------
class _Collector:
    """Latencies (and first/last arrival) of the messages of the case being measured."""

    def __init__(self) -> None:
        self.payload: Optional[str] = None
        self.latencies: list[int] = []
        self.first = 0

    def start(self, payload: str) -> None:
        self.payload, self.latencies, self.first = payload, [], 0

    def callback(self, payload: str):
        def on_message(message) -> None:
            now = time.monotonic_ns()
            if payload != self.payload:
                return   # not the case being measured (cannot happen: the sender waits for each result)
            if not self.first:
                self.first = now
            self.latencies.append(now - _stamp_ns(message))
        return on_message


def run_receiver(impl: str) -> None:
    """Subscribes to both payloads, then serves 'collect PAYLOAD COUNT' lines from stdin: answers
    'go', receives COUNT messages and prints one 'RESULT {json}' line; 'quit' ends it."""
    collector = _Collector()
    if impl == 'ours':
        from dcdrl_core import runtime
        runtime.init(args=[])
        node = runtime.Node('bench_receiver')
        for payload in TOPIC:
            node.create_subscription(ours_message(payload)[0], topic(impl, payload), collector.callback(payload),
                                     _qos_ours())
        executor = runtime.SingleThreadedExecutor()
        executor.add_node(node)

        def spin() -> None:
            executor.spin_once(timeout_sec=0.5)

        def close() -> None:
            runtime.shutdown()
    else:
        from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState, WaitSet
        from cyclonedds.domain import DomainParticipant
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic
        from dcdrl_core.runtime.context import delete_entity
        participant = DomainParticipant(int(os.environ['ROS_DOMAIN_ID']))
        waitset = WaitSet(participant)
        readers = {}
        for payload in TOPIC:
            message_type = raw_message(payload)[0]
            reader = DataReader(participant, Topic(participant, topic(impl, payload), message_type), _qos_raw())
            waitset.attach(ReadCondition(reader, SampleState.Any | ViewState.Any | InstanceState.Any))
            readers[payload] = (reader, collector.callback(payload))

        def spin() -> None:
            waitset.wait(500_000_000)
            for reader, on_message in readers.values():
                for sample in reader.take(N=256):
                    on_message(sample)

        def close() -> None:
            delete_entity(participant)
    print('ready', flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == 'quit':
            break
        payload, count = words[1], int(words[2])
        collector.start(payload)
        print('go', flush=True)
        deadline = time.monotonic() + 120
        while len(collector.latencies) < count and time.monotonic() < deadline:
            spin()
        last = time.monotonic_ns()
        print('RESULT ' + json.dumps({'received': len(collector.latencies), 'first_ns': collector.first,
                                      'last_ns': last, 'latencies_ns': collector.latencies}), flush=True)
    close()


# ---------------------------------------------------------------------------
# Sender (this process)
# ---------------------------------------------------------------------------
class _Sender:
    """One writer of one payload for one implementation, kept for the run. Each has its own
    participant (ours: a node of `context`, the one runtime context of this process, since
    the DDS domain is configured once per process; raw: a DomainParticipant)."""

    def __init__(self, impl: str, payload: str, context=None) -> None:
        self.impl = impl
        if impl == 'ours':
            from dcdrl_core import runtime
            message_type, self.message = ours_message(payload)
            self.node = runtime.Node(f'bench_sender_{payload}', context=context)
            self.publisher = self.node.create_publisher(message_type, topic(impl, payload), _qos_ours())
            self.write = self.publisher.publish
            self.matched = self.publisher.get_subscription_count
        else:
            from cyclonedds.domain import DomainParticipant
            from cyclonedds.pub import DataWriter
            from cyclonedds.topic import Topic
            message_type, self.message = raw_message(payload)
            participant = DomainParticipant(int(os.environ['ROS_DOMAIN_ID']))
            writer = DataWriter(participant, Topic(participant, topic(impl, payload), message_type), _qos_raw())
            self._keep = (participant, writer)
            self.write = writer.write
            self.matched = lambda: writer.get_publication_matched_status().current_count
        self.bytes = len(self.message.serialize())

    def close(self) -> None:
        from dcdrl_core.runtime.context import delete_entity
        if self.impl == 'ours':
            self.node.destroy_node()
        else:
            delete_entity(self._keep[0])
            self._keep = None


class _Receiver:
    """The receiver process of one implementation, driven line by line."""

    def __init__(self, impl: str) -> None:
        self.impl = impl
        self.process = subprocess.Popen([sys.executable, __file__, '--role', 'receiver', '--impl', impl],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        env=dict(os.environ, PYTHONUNBUFFERED='1'), start_new_session=True)

    def expect(self, text: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()   # the receiver answers within its own 120 s deadline
        if not line.startswith(text):
            raise RuntimeError(f'{self.impl} receiver: expected {text!r}, got {line!r} '
                               f'(exit code {self.process.poll()})')
        return line

    def send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + '\n')
        self.process.stdin.flush()

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.send('quit')
                self.process.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


def run_case(receiver: _Receiver, sender: _Sender, payload: str, mode: str, count: int, rate_hz: float) -> dict:
    """One measurement: `count` messages back to back (throughput) or at `rate_hz` (latency)."""
    receiver.send(f'collect {payload} {count}')
    receiver.expect('go')
    period = 1.0 / rate_hz if rate_hz > 0 else 0.0
    start = time.monotonic()
    next_time = start
    for _ in range(count):
        _stamp(sender.message, time.monotonic_ns())
        sender.write(sender.message)
        if period:
            next_time += period
            delay = next_time - time.monotonic()
            if delay > 0:
                time.sleep(delay)   # pacing of the latency case
    result = json.loads(receiver.expect('RESULT ')[7:])
    if result['received'] < count:
        raise RuntimeError(f'{sender.impl}/{payload}/{mode}: receiver got {result["received"]} of {count}')
    latencies_ms = np.array(result['latencies_ns']) / 1e6
    out = {'latency_p50_ms': float(np.percentile(latencies_ms, 50)),
           'latency_p99_ms': float(np.percentile(latencies_ms, 99))}
    if mode == 'throughput':
        elapsed_s = (result['last_ns'] - start * 1e9) / 1e9
        out['msgs_per_s'] = count / elapsed_s
        out['mb_per_s'] = count * sender.bytes / elapsed_s / 1e6
    return out


def wait_matched(senders: dict[tuple[str, str], _Sender], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    for key, sender in senders.items():
        while sender.matched() == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f'{key}: the receiver was not discovered within {timeout_s:.0f} s')
            time.sleep(0.01)   # polling interval of a bounded wait


def _version(package: str) -> str:
    from importlib.metadata import version
    return version(package)


IMPLS = ('ours', 'raw')   # the order of every pair


def measure(plan: dict[str, tuple[int, int, float, int]], repeats: int) -> dict[str, dict]:
    """Per payload: a warm-up of each side, then `repeats` rounds of ours, raw (throughput), ours, raw
    (latency); returns {payload/impl: medians + 'runs' (every round's values)}."""
    from dcdrl_core import runtime
    receivers = {impl: _Receiver(impl) for impl in IMPLS}   # both start at once
    senders: dict[tuple[str, str], _Sender] = {}
    context = runtime.Context()   # first: it configures the domain (raw participants then join it)
    try:
        context.init([])
        for receiver in receivers.values():
            receiver.expect('ready')
        senders = {(impl, payload): _Sender(impl, payload, context) for impl in IMPLS for payload in plan}
        wait_matched(senders)
        results: dict[str, dict] = {}
        for payload, (n_throughput, n_latency, rate, n_warmup) in plan.items():
            for impl in IMPLS:
                run_case(receivers[impl], senders[impl, payload], payload, 'throughput', n_warmup, 0)
            runs: dict[str, list[dict]] = {impl: [] for impl in IMPLS}
            for _ in range(repeats):
                throughput = {impl: run_case(receivers[impl], senders[impl, payload], payload, 'throughput',
                                             n_throughput, 0) for impl in IMPLS}
                latency = {impl: run_case(receivers[impl], senders[impl, payload], payload, 'latency', n_latency,
                                          rate) for impl in IMPLS}
                for impl in IMPLS:
                    runs[impl].append({'msgs_per_s': throughput[impl]['msgs_per_s'],
                                       'mb_per_s': throughput[impl]['mb_per_s'],
                                       'latency_p50_ms': latency[impl]['latency_p50_ms'],
                                       'latency_p99_ms': latency[impl]['latency_p99_ms']})
            for impl in IMPLS:
                key = f'{payload}/{impl}'
                per_run = {name: [run[name] for run in runs[impl]] for name in runs[impl][0]}
                results[key] = {'bytes': senders[impl, payload].bytes,
                                **{name: statistics.median(values) for name, values in per_run.items()},
                                'runs': per_run}
                r = results[key]
                print(f"{key:20s} {r['bytes']:7d} B  {r['msgs_per_s']:9.0f} msg/s  {r['mb_per_s']:8.2f} MB/s  "
                      f"p50 {r['latency_p50_ms']:.3f} ms  p99 {r['latency_p99_ms']:.3f} ms", flush=True)
        return results
    finally:
        for receiver in receivers.values():
            receiver.close()
        for sender in senders.values():
            sender.close()
        context.shutdown()


def paired_ratio(ours: list[float], theirs: list[float]) -> float:
    """Median over rounds of ours[i] / theirs[i] (the two sides of a round ran back to back)."""
    return statistics.median(a / b for a, b in zip(ours, theirs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='fewer messages and rounds (< 45 s)')
    parser.add_argument('--repeats', type=int, default=5, help='rounds of ours/raw pairs (default 5; --quick 3)')
    parser.add_argument('--role', default='sender', choices=['sender', 'receiver'])
    parser.add_argument('--impl', default='ours', choices=IMPLS)
    args = parser.parse_args()
    if args.role == 'receiver':
        run_receiver(args.impl)
        return
    if args.repeats < 1:
        parser.error(f'--repeats must be >= 1, got {args.repeats}')
    # Both implementations must discover the same way: hand the loopback-only XML our
    # runtime would build to Cyclone itself (CYCLONEDDS_URI), which raw participants read too.
    from dcdrl_core.runtime.context import discovery_config
    os.environ['CYCLONEDDS_URI'] = discovery_config({'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'})
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'SYSTEM_DEFAULT'
    os.environ.setdefault('ROS_DOMAIN_ID', str(150 + os.getpid() % 50))
    repeats = 3 if args.quick else args.repeats
    plan = {  # payload: (throughput count, latency count, latency rate Hz, warm-up count)
        'experience': (2000 if args.quick else 20000, 100 if args.quick else 1000, 200.0, 200),
        'weights': (60 if args.quick else 500, 20 if args.quick else 100, 20.0, 10),
    }
    started = time.monotonic()
    results = measure(plan, repeats)
    ratios = {payload: paired_ratio(results[f'{payload}/ours']['runs']['msgs_per_s'],
                                    results[f'{payload}/raw']['runs']['msgs_per_s']) for payload in plan}
    for payload, ratio in ratios.items():
        print(f'{payload}: ours / raw throughput = {ratio:.2f}x (median of {repeats} paired rounds; goal >= 0.8x)')
    print(f"weights p50 latency {results['weights/ours']['latency_p50_ms']:.2f} ms (goal <= 5 ms)")
    print(json.dumps({
        'benchmark': 'transport', 'quick': args.quick, 'repeats': repeats, 'plan': plan,
        'machine': {**machine_info(), 'cyclonedds': _version('cyclonedds')},
        'results': results, 'throughput_ratio_ours_over_raw': ratios,
        'goals': {'throughput_ratio_min': 0.8, 'weights_latency_p50_ms_max': 5.0},
        'goals_met': {'throughput': all(r >= 0.8 for r in ratios.values()),
                      'weights_latency': results['weights/ours']['latency_p50_ms'] <= 5.0},
        'wall_s': round(time.monotonic() - started, 1),
    }))


if __name__ == '__main__':
    main()
