"""Transport benchmark: our runtime versus raw cyclonedds-python, same payloads, same run.

Payloads: one MEC experience transition (ExperienceBatch: 73-float obs and next_obs,
20 actions, reward, extras) and a cloud-edge actor's weights (PolicyWeights: 44,545
float32 = 178 KB in 8 tensors). Each case runs a receiver process and this process as
the sender on a private loopback DDS domain.

- throughput: N messages sent back to back (reliable, keep-all: the writer is flow
  controlled, so the rate is what the receiver sustains, deserialisation included);
- latency: messages at a low rate, one-way time from the sender's CLOCK_MONOTONIC stamp
  to the receiver's callback (both processes read the same clock).

Usage: .venv/bin/python bench/transport.py [--quick]   (last line: one JSON object)
"""

import argparse
from dataclasses import dataclass
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np
from cyclonedds.idl import IdlStruct
from cyclonedds.idl import types as t

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


# ---------------------------------------------------------------------------
# Receiver process
# ---------------------------------------------------------------------------
def run_receiver(impl: str, payload: str, count: int) -> None:
    latencies: list[int] = []
    first = [0]

    def on_message(message) -> None:
        now = time.monotonic_ns()
        if not first[0]:
            first[0] = now
        latencies.append(now - _stamp_ns(message))

    if impl == 'ours':
        from dcdrl_core import runtime
        message_type, _ = ours_message(payload)
        runtime.init(args=[])
        node = runtime.Node('bench_receiver')
        node.create_subscription(message_type, TOPIC[payload], on_message, _qos_ours())
        executor = runtime.SingleThreadedExecutor()
        executor.add_node(node)
        print('ready', flush=True)
        deadline = time.monotonic() + 120
        while len(latencies) < count and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.5)
        last = time.monotonic_ns()
        runtime.shutdown()  # leave the graph at once, so the next case's writer does not wait for us
    else:
        from cyclonedds.core import Listener, ReadCondition, SampleState, ViewState, InstanceState, WaitSet
        from cyclonedds.domain import DomainParticipant
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic
        message_type, _ = raw_message(payload)
        participant = DomainParticipant(int(os.environ['ROS_DOMAIN_ID']))
        reader = DataReader(participant, Topic(participant, 'rt/' + TOPIC[payload], message_type), _qos_raw())
        waitset = WaitSet(participant)
        waitset.attach(ReadCondition(reader, SampleState.Any | ViewState.Any | InstanceState.Any))
        print('ready', flush=True)
        deadline = time.monotonic() + 120
        while len(latencies) < count and time.monotonic() < deadline:
            waitset.wait(500_000_000)
            for sample in reader.take(N=256):
                on_message(sample)
        last = time.monotonic_ns()
        from dcdrl_core.runtime.context import delete_entity
        delete_entity(participant)
    print('RESULT ' + json.dumps({'received': len(latencies), 'first_ns': first[0], 'last_ns': last,
                                  'latencies_ns': latencies}), flush=True)


# ---------------------------------------------------------------------------
# Sender (this process)
# ---------------------------------------------------------------------------
class _Sender:
    def __init__(self, impl: str, payload: str) -> None:
        self.impl = impl
        if impl == 'ours':
            from dcdrl_core import runtime
            message_type, self.message = ours_message(payload)
            self.context = runtime.Context()  # a fresh participant per case, as the raw side has
            self.context.init([])
            self.node = runtime.Node(f'bench_sender_{payload}', context=self.context)
            self.publisher = self.node.create_publisher(message_type, TOPIC[payload], _qos_ours())
            self.write = self.publisher.publish
            self.matched = self.publisher.get_subscription_count
        else:
            from cyclonedds.domain import DomainParticipant
            from cyclonedds.pub import DataWriter
            from cyclonedds.topic import Topic
            message_type, self.message = raw_message(payload)
            participant = DomainParticipant(int(os.environ['ROS_DOMAIN_ID']))
            writer = DataWriter(participant, Topic(participant, 'rt/' + TOPIC[payload], message_type), _qos_raw())
            self._keep = (participant, writer)
            self.context = None
            self.write = writer.write
            self.matched = lambda: writer.get_publication_matched_status().current_count

    def close(self) -> None:
        from dcdrl_core.runtime.context import delete_entity
        if self.impl == 'ours':
            self.node.destroy_node()
            self.context.shutdown()
        else:
            delete_entity(self._keep[0])
            self._keep = None


def run_case(impl: str, payload: str, mode: str, count: int, rate_hz: float) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    receiver = subprocess.Popen([sys.executable, __file__, '--role', 'receiver', '--impl', impl,
                                 '--payload', payload, '--count', str(count)],
                                stdout=subprocess.PIPE, text=True, env=env, start_new_session=True)
    sender = None
    try:
        assert receiver.stdout is not None
        line = receiver.stdout.readline()
        if line.strip() != 'ready':
            raise RuntimeError(f'receiver failed to start: {line!r}')
        sender = _Sender(impl, payload)
        deadline = time.monotonic() + 20
        while sender.matched() == 0:
            if time.monotonic() > deadline:
                raise TimeoutError('receiver was not discovered within 20 s')
            time.sleep(0.01)
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
                    time.sleep(delay)
        result = None
        for line in receiver.stdout:
            if line.startswith('RESULT '):
                result = json.loads(line[7:])
                break
        receiver.wait(60)
    finally:
        if receiver.poll() is None:
            receiver.kill()
            receiver.wait()
        if sender is not None:
            sender.close()
    if result is None or result['received'] < count:
        raise RuntimeError(f'{impl}/{payload}/{mode}: receiver got {result and result["received"]} of {count}')
    latencies_ms = np.array(result['latencies_ns']) / 1e6
    elapsed_s = (result['last_ns'] - start * 1e9) / 1e9 if mode == 'throughput' else None
    size = len(_serialized(impl, sender.message))
    out = {'impl': impl, 'payload': payload, 'mode': mode, 'count': count, 'bytes': size,
           'latency_p50_ms': float(np.percentile(latencies_ms, 50)),
           'latency_p99_ms': float(np.percentile(latencies_ms, 99))}
    if elapsed_s:
        out['msgs_per_s'] = count / elapsed_s
        out['mb_per_s'] = count * size / elapsed_s / 1e6
    return out


def _serialized(impl: str, message) -> bytes:
    return message.serialize()


def _cpu_model() -> str:
    try:
        with open('/proc/cpuinfo') as handle:
            for line in handle:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    from importlib.metadata import version
    return version(package)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--quick', action='store_true', help='fewer messages and one repeat (< 60 s)')
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--role', default='sender', choices=['sender', 'receiver'])
    parser.add_argument('--impl', default='ours')
    parser.add_argument('--payload', default='experience')
    parser.add_argument('--count', type=int, default=0)
    args = parser.parse_args()
    if args.role == 'sender':
        # Both implementations must discover the same way: hand the loopback-only XML our
        # runtime would build to Cyclone itself (CYCLONEDDS_URI), which raw participants read too.
        from dcdrl_core.runtime.context import discovery_config
        os.environ['CYCLONEDDS_URI'] = discovery_config({'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'})
        os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'SYSTEM_DEFAULT'
        os.environ.setdefault('ROS_DOMAIN_ID', str(150 + os.getpid() % 50))
    if args.role == 'receiver':
        run_receiver(args.impl, args.payload, args.count)
        return
    repeats = 1 if args.quick else args.repeats
    plan = {  # payload: (throughput count, latency count, latency rate Hz)
        'experience': (3000 if args.quick else 20000, 200 if args.quick else 1000, 200.0),
        'weights': (100 if args.quick else 500, 30 if args.quick else 100, 20.0),
    }
    results: dict[str, dict] = {}
    for payload, (n_throughput, n_latency, rate) in plan.items():
        for impl in ('raw', 'ours'):
            runs = []
            for _ in range(repeats):
                run_case(impl, payload, 'throughput', min(50, n_throughput), 0)  # warm-up
                throughput = run_case(impl, payload, 'throughput', n_throughput, 0)
                latency = run_case(impl, payload, 'latency', n_latency, rate)
                runs.append((throughput, latency))
            key = f'{payload}/{impl}'
            results[key] = {
                'bytes': runs[0][0]['bytes'],
                'msgs_per_s': statistics.median(r[0]['msgs_per_s'] for r in runs),
                'mb_per_s': statistics.median(r[0]['mb_per_s'] for r in runs),
                'latency_p50_ms': statistics.median(r[1]['latency_p50_ms'] for r in runs),
                'latency_p99_ms': statistics.median(r[1]['latency_p99_ms'] for r in runs),
            }
            r = results[key]
            print(f"{key:20s} {r['bytes']:7d} B  {r['msgs_per_s']:9.0f} msg/s  {r['mb_per_s']:8.2f} MB/s  "
                  f"p50 {r['latency_p50_ms']:.3f} ms  p99 {r['latency_p99_ms']:.3f} ms", flush=True)
    ratios = {payload: results[f'{payload}/ours']['msgs_per_s'] / results[f'{payload}/raw']['msgs_per_s']
              for payload in plan}
    for payload, ratio in ratios.items():
        print(f'{payload}: ours / raw throughput = {ratio:.2f}x (goal >= 0.8x)')
    print(f"weights p50 latency {results['weights/ours']['latency_p50_ms']:.2f} ms (goal <= 5 ms)")
    print(json.dumps({
        'benchmark': 'transport', 'quick': args.quick, 'repeats': repeats,
        'machine': {'cpus': os.cpu_count(), 'cpu': _cpu_model(), 'python': platform.python_version(),
                    'cyclonedds': _version('cyclonedds'), 'load_average': os.getloadavg()},
        'results': results, 'throughput_ratio_ours_over_raw': ratios,
        'goals': {'throughput_ratio_min': 0.8, 'weights_latency_p50_ms_max': 5.0},
        'goals_met': {'throughput': all(r >= 0.8 for r in ratios.values()),
                      'weights_latency': results['weights/ours']['latency_p50_ms'] <= 5.0},
    }))


if __name__ == '__main__':
    main()
