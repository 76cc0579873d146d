"""Transport benchmark: our runtime, raw cyclonedds-python and real rclpy, same payloads, same run.

Payloads: one MEC experience transition (dcdrl_msgs/ExperienceBatch: 73-float obs and next_obs,
20 actions, reward, extras) and a cloud-edge actor's weights (dcdrl_msgs/PolicyWeights: 44,545
float32 = 178 KB in 8 tensors). QoS: reliable, keep-all, volatile, for every side.

Sides, sender -> receiver ("pairs"):
- ours -> ours: our runtime (dcdrl_ros.runtime over PyPI cyclonedds, Cyclone DDS 11);
- raw -> raw: plain cyclonedds-python IdlStructs of the same layout (what our runtime is built on);
- rclpy -> rclpy: rclpy with rmw_cyclonedds_cpp (Cyclone DDS 0.10) of a real ROS 2, the rosidl
  classes of this workspace built by colcon (dcdrl_ros.ros2_install finds the ROS 2 and builds);
- ours -> rclpy and rclpy -> ours (not with --quick): the two on one graph.
Every sender and every receiver is a process of its own, started once and kept for the run (rclpy
ones run in the ROS 2 environment with its Python); this process only coordinates, through their
stdin/stdout, on a private loopback DDS domain (raw on the next one); each pair has its own topics.

- throughput: N messages sent back to back (reliable, keep-all: the writer is flow controlled, so
  the rate is what the receiver sustains, deserialisation and its executor's callback included),
  from the sender's first write to the receiver's last callback;
- latency: messages at a low rate, one-way time from the sender's CLOCK_MONOTONIC stamp (in the
  header) to the receiver's callback (all processes read the same clock).

Per payload: a warm-up of each pair, then rounds of every pair's throughput, then every pair's
latency; a number is the median over rounds and a ratio is the median of the per-round ratios
(`runs` in the JSON holds every round's values). Without a ROS 2 the rclpy sides are skipped (said
in the JSON under 'rclpy').

Usage: .venv/bin/python bench/transport.py [--quick] [--repeats N]   (last line: one JSON object)
"""

import argparse
import functools
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from machine import machine_info  # noqa: E402

ACTOR_SHAPES = [(256, 12), (256,), (128, 256), (128,), (64, 128), (64,), (1, 64), (1,)]  # 44,545 floats
OBS_DIM, ACTION_DIM = 73, 20
IMPLS = ('ours', 'raw', 'rclpy')
PAYLOADS = ('experience', 'weights')
SAME = (('ours', 'ours'), ('raw', 'raw'), ('rclpy', 'rclpy'))
MIXED = (('ours', 'rclpy'), ('rclpy', 'ours'))
DEADLINE_S = 120.0   # a receiver gives up collecting, a sender waiting for its readers, after this long


def pair_name(sender: str, receiver: str) -> str:
    """Result key of a pair: 'ours' for ours -> ours (as before mixed pairs existed), else 'ours->rclpy'."""
    return sender if sender == receiver else f'{sender}->{receiver}'


def topic(sender: str, receiver: str, payload: str) -> str:
    """Each pair on its own topics. ROS names for ours and rclpy (both add 'rt/'), a DDS name for raw."""
    name = f'bench_{payload}_{sender}_{receiver}'
    return f'rt/{name}' if sender == 'raw' else name


# ---------------------------------------------------------------------------
# Messages: the workspace's dcdrl_msgs (our classes or rosidl's) and raw IdlStructs of the same layout
# ---------------------------------------------------------------------------
def product_message(payload: str) -> tuple[type, Any]:
    """(class, message) of dcdrl_msgs as the importing process has them: ours (after our runtime's
    import hook) or the rosidl-generated ones (in the ROS 2 environment)."""
    from dcdrl_learning.experience import fill_experience
    from dcdrl_ros.msg_arrays import set_array

    from dcdrl_msgs.msg import ExperienceBatch, PolicyWeights, Tensor
    rng = np.random.default_rng(0)
    if payload == 'experience':
        return ExperienceBatch, fill_experience(
            ExperienceBatch(), client_id='client_0', sequence=0, policy_version=1,
            obs=rng.random((1, OBS_DIM)), actions=rng.random((1, ACTION_DIM)), rewards=rng.random(1),
            next_obs=rng.random((1, OBS_DIM)), terminated=[False], truncated=[False],
            extra_names=['latency_s', 'energy_j'], extras=rng.random((1, 2)))
    tensors = []
    for index, shape in enumerate(ACTOR_SHAPES):
        tensor = Tensor(name=f't{index}')
        set_array(tensor, 'shape', shape, np.uint32)
        set_array(tensor, 'data', rng.random(shape, dtype=np.float32), np.float32)
        tensors.append(tensor)
    return PolicyWeights, PolicyWeights(architecture_id='mlp-256x128x64', version=1, producer='bench',
                                        tensors=tensors)


@functools.cache
def raw_types() -> dict[str, type]:
    """The layouts as plain cyclonedds IdlStructs (lists for sequences, as its users write). Defined on
    first use: an rclpy process must not load PyPI cyclonedds next to rmw's Cyclone DDS."""
    from dataclasses import dataclass

    from cyclonedds.idl import IdlStruct
    from cyclonedds.idl import types as t

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

    return {'Time': RawTime, 'Header': RawHeader, 'experience': RawExperience, 'Tensor': RawTensor,
            'weights': RawWeights}


def raw_message(payload: str) -> tuple[type, Any]:
    types = raw_types()
    rng = np.random.default_rng(0)
    header = types['Header'](stamp=types['Time'](0, 0), frame_id='')
    if payload == 'experience':
        return types['experience'], types['experience'](
            header=header, client_id='client_0', sequence=0, policy_version=1, batch_size=1, obs_dim=OBS_DIM,
            action_dim=ACTION_DIM, obs=rng.random(OBS_DIM).astype(np.float32).tolist(),
            actions=rng.random(ACTION_DIM).astype(np.float32).tolist(), rewards=[0.5],
            next_obs=rng.random(OBS_DIM).astype(np.float32).tolist(), terminated=[False], truncated=[False],
            extra_names=['latency_s', 'energy_j'], extras=[0.1, 0.2])
    tensors = [types['Tensor'](name=f't{i}', shape=list(shape),
                               data=rng.random(shape, dtype=np.float32).reshape(-1).tolist())
               for i, shape in enumerate(ACTOR_SHAPES)]
    return types['weights'], types['weights'](
        header=header, architecture_id='mlp-256x128x64', version=1, producer='bench', generation=0,
        has_fitness=False, fitness=0.0, tensors=tensors)


def _stamp(message, now_ns: int) -> None:
    message.header.stamp.sec, message.header.stamp.nanosec = divmod(now_ns, 1_000_000_000)


def _stamp_ns(message) -> int:
    return message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec


# ---------------------------------------------------------------------------
# The DDS side of one process, per implementation: writers, readers, spin, matched counts, close
# ---------------------------------------------------------------------------
class Endpoints:
    """One participant (ours: a runtime node; raw: a DomainParticipant; rclpy: an rclpy node)."""

    def __init__(self, impl: str, role: str) -> None:
        self.impl = impl
        if impl == 'ours':
            from dcdrl_ros import runtime
            from dcdrl_ros.runtime.qos import HistoryPolicy, QoSProfile
            runtime.init(args=[])
            self._runtime = runtime
            self.node = runtime.Node(f'bench_{role}')
            self.qos = QoSProfile(history=HistoryPolicy.KEEP_ALL)
            self.executor = runtime.SingleThreadedExecutor()
            self.executor.add_node(self.node)
        elif impl == 'rclpy':
            import rclpy
            from rclpy.executors import SingleThreadedExecutor
            from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
            if 'cyclonedds' in sys.modules:
                raise RuntimeError('PyPI cyclonedds is loaded in the rclpy process (a second Cyclone DDS)')
            rclpy.init(args=[])
            self._rclpy = rclpy
            self.node = rclpy.create_node(f'bench_{role}')
            self.qos = QoSProfile(history=HistoryPolicy.KEEP_ALL, reliability=ReliabilityPolicy.RELIABLE)
            self.executor = SingleThreadedExecutor()
            self.executor.add_node(self.node)
        else:
            from cyclonedds.core import Policy, Qos, WaitSet
            from cyclonedds.domain import DomainParticipant
            from cyclonedds.util import duration
            self.participant = DomainParticipant(int(os.environ['ROS_DOMAIN_ID']))
            self.qos = Qos(Policy.Reliability.Reliable(duration(seconds=10)), Policy.History.KeepAll,
                           Policy.DataRepresentation(use_cdrv0_representation=True))
            self.waitset = WaitSet(self.participant)
            self.readers: list[tuple[Any, Any]] = []

    def message(self, payload: str) -> tuple[type, Any]:
        return raw_message(payload) if self.impl == 'raw' else product_message(payload)

    def writer(self, topic_name: str, payload: str):
        """(write(message), matched() -> int, the message to send, its serialised size in bytes)."""
        message_type, message = self.message(payload)
        if self.impl == 'raw':
            from cyclonedds.pub import DataWriter
            from cyclonedds.topic import Topic
            writer = DataWriter(self.participant, Topic(self.participant, topic_name, message_type), self.qos)
            return (writer.write, lambda: writer.get_publication_matched_status().current_count, message,
                    len(message.serialize()))
        publisher = self.node.create_publisher(message_type, topic_name, self.qos)
        if self.impl == 'ours':
            size = len(message.serialize())
        else:   # CDR with its 4-byte encapsulation header, as ours and raw count it
            from rclpy.serialization import serialize_message
            size = len(serialize_message(message))
        return publisher.publish, publisher.get_subscription_count, message, size

    def reader(self, topic_name: str, payload: str, on_message) -> None:
        message_type = self.message(payload)[0]
        if self.impl == 'raw':
            from cyclonedds.core import InstanceState, ReadCondition, SampleState, ViewState
            from cyclonedds.sub import DataReader
            from cyclonedds.topic import Topic
            reader = DataReader(self.participant, Topic(self.participant, topic_name, message_type), self.qos)
            self.waitset.attach(ReadCondition(reader, SampleState.Any | ViewState.Any | InstanceState.Any))
            self.readers.append((reader, on_message))
        else:
            self.node.create_subscription(message_type, topic_name, on_message, self.qos)

    def spin(self) -> None:
        """Handles what has arrived (waits up to 0.5 s for something)."""
        if self.impl == 'raw':
            self.waitset.wait(500_000_000)
            for reader, on_message in self.readers:
                for sample in reader.take(N=256):
                    on_message(sample)
        else:
            self.executor.spin_once(timeout_sec=0.5)

    def close(self) -> None:
        if self.impl == 'ours':
            self.node.destroy_node()
            self._runtime.shutdown()
        elif self.impl == 'rclpy':
            self.node.destroy_node()
            self._rclpy.shutdown()
        else:
            from dcdrl_ros.runtime.context import delete_entity
            delete_entity(self.participant)


def _pairs_arg(text: str) -> list[tuple[str, str]]:
    return [tuple(item.split('>')) for item in text.split(',') if item]   # type: ignore[misc]


def _commands():
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == 'quit':
            return
        yield words


def run_receiver(impl: str, pairs: list[tuple[str, str]]) -> None:
    """Subscribes to the topics of its pairs, then serves 'collect SENDER PAYLOAD COUNT' lines: answers
    'go', takes COUNT messages of that pair and payload, prints one 'RESULT {json}' line."""
    endpoints = Endpoints(impl, 'receiver')
    case = {'key': None, 'latencies': []}

    def callback(key):
        def on_message(message) -> None:
            now = time.monotonic_ns()
            if key == case['key']:   # anything else would be a late message of an earlier case
                case['latencies'].append(now - _stamp_ns(message))
        return on_message

    for sender, receiver in pairs:
        for payload in PAYLOADS:
            endpoints.reader(topic(sender, receiver, payload), payload, callback((sender, payload)))
    print('ready', flush=True)
    for _, sender, payload, count in _commands():
        case['key'], case['latencies'] = (sender, payload), []
        print('go', flush=True)
        deadline = time.monotonic() + DEADLINE_S
        while len(case['latencies']) < int(count) and time.monotonic() < deadline:
            endpoints.spin()
        last = time.monotonic_ns()
        case['key'] = None
        print('RESULT ' + json.dumps({'received': len(case['latencies']), 'last_ns': last,
                                      'latencies_ns': case['latencies']}), flush=True)
    endpoints.close()


def run_sender(impl: str, pairs: list[tuple[str, str]]) -> None:
    """Writers for the topics of its pairs; 'ready' once each has its reader; then serves
    'send RECEIVER PAYLOAD COUNT RATE' lines: writes COUNT messages (RATE 0: back to back) and prints
    'SENT {json}' with the time of the first write."""
    endpoints = Endpoints(impl, 'sender')
    writers = {(receiver, payload): endpoints.writer(topic(sender, receiver, payload), payload)
               for sender, receiver in pairs for payload in PAYLOADS}
    deadline = time.monotonic() + DEADLINE_S
    for key, (_, matched, _, _) in writers.items():
        while matched() == 0:
            if time.monotonic() > deadline:
                raise SystemExit(f'{impl} sender {key}: no reader within {DEADLINE_S:.0f} s')
            time.sleep(0.01)   # polling interval of a bounded wait for discovery
    print('ready', flush=True)
    for _, receiver, payload, count, rate in _commands():
        write, _, message, size = writers[receiver, payload]
        period = 1.0 / float(rate) if float(rate) > 0 else 0.0
        start_ns = time.monotonic_ns()
        next_time = start_ns / 1e9
        for _ in range(int(count)):
            _stamp(message, time.monotonic_ns())
            write(message)
            if period:
                next_time += period
                delay = next_time - time.monotonic()
                if delay > 0:
                    time.sleep(delay)   # pacing of the latency case
        print('SENT ' + json.dumps({'start_ns': start_ns, 'bytes': size}), flush=True)
    endpoints.close()


# ---------------------------------------------------------------------------
# Coordinator (this process)
# ---------------------------------------------------------------------------
class Child:
    """A sender or receiver process, driven line by line through its stdin/stdout."""

    def __init__(self, role: str, impl: str, pairs: list[tuple[str, str]], python: str, env: dict) -> None:
        self.name = f'{impl} {role}'
        self.process = subprocess.Popen(
            [python, os.path.abspath(__file__), '--role', role, '--impl', impl,
             '--pairs', ','.join(f'{s}>{r}' for s, r in pairs)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)

    def expect(self, text: str) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()   # every child answers within its own DEADLINE_S
        if not line.startswith(text):
            raise RuntimeError(f'{self.name}: expected {text!r}, got {line!r} (exit code {self.process.poll()})')
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


def run_case(senders: dict[str, Child], receivers: dict[str, Child], pair: tuple[str, str], payload: str,
             mode: str, count: int, rate_hz: float) -> dict:
    """One measurement: `count` messages back to back (throughput) or at `rate_hz` (latency)."""
    sender, receiver = pair
    receivers[receiver].send(f'collect {sender} {payload} {count}')
    receivers[receiver].expect('go')
    senders[sender].send(f'send {receiver} {payload} {count} {rate_hz}')
    sent = json.loads(senders[sender].expect('SENT ')[5:])
    result = json.loads(receivers[receiver].expect('RESULT ')[7:])
    if result['received'] < count:
        raise RuntimeError(f'{pair_name(*pair)}/{payload}/{mode}: receiver got {result["received"]} of {count}')
    latencies_ms = np.array(result['latencies_ns']) / 1e6
    out = {'bytes': sent['bytes'], 'latency_p50_ms': float(np.percentile(latencies_ms, 50)),
           'latency_p99_ms': float(np.percentile(latencies_ms, 99))}
    if mode == 'throughput':
        elapsed_s = (result['last_ns'] - sent['start_ns']) / 1e9
        out['msgs_per_s'] = count / elapsed_s
        out['mb_per_s'] = count * sent['bytes'] / elapsed_s / 1e6
    return out


def child_environments(domain: int) -> tuple[dict[str, tuple[str, dict]], str | None]:
    """{impl: (python, env)} and why rclpy is missing (None when it is there)."""
    from dcdrl_ros import ros2_install
    from dcdrl_ros.runtime.context import discovery_config
    base = {k: v for k, v in os.environ.items() if k not in ('CYCLONEDDS_URI', 'ROS_AUTOMATIC_DISCOVERY_RANGE')}
    base.update(ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED='1')
    # ours and raw discover the same way: the loopback-only XML our runtime builds, handed to Cyclone.
    cyclone = dict(base, CYCLONEDDS_URI=discovery_config({'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}),
                   ROS_AUTOMATIC_DISCOVERY_RANGE='SYSTEM_DEFAULT')
    # raw on a domain of its own: rmw would warn about its topics (no ROS type hash) and discover them.
    found = {'ours': (sys.executable, cyclone), 'raw': (sys.executable, dict(cyclone, ROS_DOMAIN_ID=str(domain + 1)))}
    ros2, why = ros2_install.find()
    if ros2 is None:
        return found, why
    try:
        started = time.monotonic()
        workspace = ros2_install.Workspace(ros2, ros2_install.build_workspace(ros2))
        print(f'rclpy: ROS 2 from {ros2.origin}, workspace {workspace.install} '
              f'({time.monotonic() - started:.0f} s to build or find)', flush=True)
        env = workspace.environment(base, ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST')
        found['rclpy'] = (workspace.python(), env)
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        return found, f'the workspace did not build on ROS 2 from {ros2.origin}: {str(error)[-300:]}'
    return found, None


METRICS = ('msgs_per_s', 'mb_per_s', 'latency_p50_ms', 'latency_p99_ms')


def measure(plan: dict[str, tuple[int, int, float, int]], repeats: int, pairs: list[tuple[str, str]],
            environments: dict[str, tuple[str, dict]]) -> dict[str, dict]:
    """Per payload: a warm-up of each pair, then `repeats` rounds of every pair's throughput, then every
    pair's latency; returns {payload/pair: medians + 'runs' (every round's values)}."""
    children: list[Child] = []
    try:
        receivers, senders = {}, {}
        for impl in IMPLS:   # all start at once
            mine = [pair for pair in pairs if pair[1] == impl]
            if mine:
                receivers[impl] = Child('receiver', impl, mine, *environments[impl])
                children.append(receivers[impl])
        for impl in IMPLS:
            mine = [pair for pair in pairs if pair[0] == impl]
            if mine:
                senders[impl] = Child('sender', impl, mine, *environments[impl])
                children.append(senders[impl])
        for child in children:
            child.expect('ready')
        results: dict[str, dict] = {}
        for payload, (n_throughput, n_latency, rate, n_warmup) in plan.items():
            for pair in pairs:
                run_case(senders, receivers, pair, payload, 'throughput', n_warmup, 0)
            runs: dict[tuple[str, str], list[dict]] = {pair: [] for pair in pairs}
            for _ in range(repeats):
                throughput = {pair: run_case(senders, receivers, pair, payload, 'throughput', n_throughput, 0)
                              for pair in pairs}
                latency = {pair: run_case(senders, receivers, pair, payload, 'latency', n_latency, rate)
                           for pair in pairs}
                for pair in pairs:
                    runs[pair].append({'bytes': throughput[pair]['bytes'],
                                       'msgs_per_s': throughput[pair]['msgs_per_s'],
                                       'mb_per_s': throughput[pair]['mb_per_s'],
                                       'latency_p50_ms': latency[pair]['latency_p50_ms'],
                                       'latency_p99_ms': latency[pair]['latency_p99_ms']})
            for pair in pairs:
                key = f'{payload}/{pair_name(*pair)}'
                per_run = {name: [run[name] for run in runs[pair]] for name in METRICS}
                results[key] = {'bytes': runs[pair][0]['bytes'],
                                **{name: statistics.median(values) for name, values in per_run.items()},
                                'runs': per_run}
                r = results[key]
                print(f"{key:26s} {r['bytes']:7d} B  {r['msgs_per_s']:9.0f} msg/s  {r['mb_per_s']:8.2f} MB/s  "
                      f"p50 {r['latency_p50_ms']:.3f} ms  p99 {r['latency_p99_ms']:.3f} ms", flush=True)
        return results
    finally:
        for child in children:
            child.close()


def paired_ratio(ours: list[float], theirs: list[float]) -> float:
    """Median over rounds of ours[i] / theirs[i] (the sides of a round ran one after the other)."""
    return statistics.median(a / b for a, b in zip(ours, theirs))


def ratios_against(results: dict[str, dict], reference: str, metric: str) -> dict[str, float]:
    """{payload: paired ratio of ours over `reference`} for the payloads both sides ran."""
    out = {}
    for payload in PAYLOADS:
        ours, theirs = results.get(f'{payload}/ours'), results.get(f'{payload}/{reference}')
        if ours and theirs:
            out[payload] = paired_ratio(ours['runs'][metric], theirs['runs'][metric])
    return out


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true',
                        help='fewer messages and rounds, no mixed pairs (about a minute)')
    parser.add_argument('--repeats', type=int, default=5, help='rounds (default 5; --quick 3)')
    parser.add_argument('--no-mixed', action='store_true', help='leave out ours -> rclpy and rclpy -> ours')
    parser.add_argument('--role', default='coordinator', choices=['coordinator', 'sender', 'receiver'])
    parser.add_argument('--impl', default='ours', choices=IMPLS)
    parser.add_argument('--pairs', default='', help='(sender and receiver roles) SENDER>RECEIVER,...')
    args = parser.parse_args()
    if args.role == 'receiver':
        run_receiver(args.impl, _pairs_arg(args.pairs))
        return
    if args.role == 'sender':
        run_sender(args.impl, _pairs_arg(args.pairs))
        return
    if args.repeats < 1:
        parser.error(f'--repeats must be >= 1, got {args.repeats}')
    repeats = 3 if args.quick else args.repeats
    plan = {  # payload: (throughput count, latency count, latency rate Hz, warm-up count)
        'experience': (2000 if args.quick else 20000, 100 if args.quick else 1000, 200.0, 200),
        'weights': (60 if args.quick else 500, 20 if args.quick else 100, 20.0, 10),
    }
    started = time.monotonic()
    environments, rclpy_missing = child_environments(domain=150 + os.getpid() % 50)
    wanted = SAME if args.quick or args.no_mixed else SAME + MIXED
    pairs = [pair for pair in wanted if all(impl in environments for impl in pair)]
    if rclpy_missing:
        print(f'rclpy: skipped: {rclpy_missing}', flush=True)
    results = measure(plan, repeats, pairs, environments)
    vs_raw = ratios_against(results, 'raw', 'msgs_per_s')
    vs_rclpy = ratios_against(results, 'rclpy', 'msgs_per_s')
    p50_vs_rclpy = ratios_against(results, 'rclpy', 'latency_p50_ms')
    for payload, ratio in vs_raw.items():
        print(f'{payload}: ours / raw throughput = {ratio:.2f}x (median of {repeats} paired rounds; goal >= 0.8x)')
    for payload, ratio in vs_rclpy.items():
        print(f'{payload}: ours / rclpy throughput = {ratio:.2f}x (goal >= 1.0x), p50 latency ours / rclpy = '
              f'{p50_vs_rclpy[payload]:.2f}x (goal <= 1.0x)')
    print(f"weights p50 latency {results['weights/ours']['latency_p50_ms']:.2f} ms (goal <= 5 ms)")
    goals_met = {'throughput': all(r >= 0.8 for r in vs_raw.values()),
                 'weights_latency': results['weights/ours']['latency_p50_ms'] <= 5.0}
    if vs_rclpy:
        goals_met['rclpy_throughput'] = all(r >= 1.0 for r in vs_rclpy.values())
        goals_met['rclpy_latency_p50'] = all(r <= 1.0 for r in p50_vs_rclpy.values())
    rclpy_info: dict[str, Any] = {'skipped': rclpy_missing} if rclpy_missing else {
        'python': environments['rclpy'][0], 'rmw': environments['rclpy'][1].get('RMW_IMPLEMENTATION'),
        'ros_distro': environments['rclpy'][1].get('ROS_DISTRO')}
    print(json.dumps({
        'benchmark': 'transport', 'quick': args.quick, 'repeats': repeats, 'plan': plan,
        'pairs': [pair_name(*pair) for pair in pairs],
        'machine': {**machine_info(), 'cyclonedds': _version('cyclonedds')}, 'rclpy': rclpy_info,
        'results': results, 'throughput_ratio_ours_over_raw': vs_raw,
        'throughput_ratio_ours_over_rclpy': vs_rclpy, 'latency_p50_ratio_ours_over_rclpy': p50_vs_rclpy,
        'goals': {'throughput_ratio_min': 0.8, 'weights_latency_p50_ms_max': 5.0,
                  'rclpy_throughput_ratio_min': 1.0, 'rclpy_latency_p50_ratio_max': 1.0},
        'goals_met': goals_met,
        'wall_s': round(time.monotonic() - started, 1),
    }))


if __name__ == '__main__':
    main()
