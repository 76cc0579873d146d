"""Recording bench: `dcdrl bag record` beside the real `ros2 bag record -s mcap`, same topics, same run;
then `dcdrl bag play` beside `ros2 bag play`, same bag, same subscriber.

Load: a stand-in for the `make run` graph (launch/train.launch.yaml with config/train.yaml: 2 clients
x 10 Hz of 16-transition ExperienceBatch, the learner's ~50 updates/s of 64-transition SampledBatch and
their credits, a 400-300 LayerNorm policy (154,820 float32, 619 KB) per 50 updates, the stats topics),
published by our runtime in this process at those rates, plus a cloud-edge actor's weights
(PolicyWeights, 44,545 float32 = 178 KB) at 50 Hz: about 9.6 MB/s in all. QoS as the graph's.

Recording: both recorders run at once (so both see the same load, on a shared machine too); the load
starts once every topic has matched both, and stops after --duration s; every reliable writer then
waits until each recorder acknowledged every sample, and both recorders get SIGINT. Per recorder:
- messages/s and MB/s written: messages in its MCAP file(s) (the file's own statistics) and their bytes
  on disk, over the load's duration;
- dropped: published minus recorded, per topic (goal 0);
- CPU s per MB: user + system time of the recorder's processes (/proc/<pid>/stat, the tree) from the
  load's start to its exit (start-up and imports excluded, the closing of the bag included), per MB written.
Goal: ours records at least 1.0x the messages/s of ros2 bag record, at no more CPU per MB.

Playback: the bag `dcdrl bag record` wrote is played by each player in turn (experience, batches and
edge weights) into a subscriber of this process on a fresh domain; each received message is matched
to the bag by its sequence/version; its offset = receive time - recorded time, and its timing error =
that offset - the median offset (the constant start-up and delivery delay taken out); p50/p99/max of
|error|, and the share of the bag's messages received.

Without a ROS 2 (dcdrl_ros.ros2_install) the ros2 sides are skipped (said in the JSON).

Usage: .venv/bin/python bench/recording.py [--quick] [--duration S]   (last line: one JSON object)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
from machine import machine_info  # noqa: E402

EDGE_ACTOR_SHAPES = [(256, 12), (256,), (128, 256), (128,), (64, 128), (64,), (1, 64), (1,)]  # 44,545 floats
OBS_DIM, ACTION_DIM = 73, 10           # MecOffloadScores-v0 (10 users)
POLICY_HIDDEN = (400, 300)             # DC-DRL's 400-300 LayerNorm actor
PLAYED = ('experience', 'replay/batches', 'edge/weights')   # topics whose playback timing is measured
NAMESPACE = '/dcdrl'
DEADLINE_S = 120.0


@dataclass
class Load:
    """One topic of the stand-in graph."""
    name: str          # relative to NAMESPACE
    type_name: str     # 'pkg/msg/Name'
    hz: float
    reliable: bool = True
    latched: bool = False
    depth: int = 100


LOADS = (
    Load('experience', 'dcdrl_msgs/msg/ExperienceBatch', 20.0),           # 2 clients x 10 Hz
    Load('replay/sample_requests', 'dcdrl_msgs/msg/SampleRequest', 50.0),
    Load('replay/batches', 'dcdrl_msgs/msg/SampledBatch', 50.0, depth=64),
    Load('policy', 'dcdrl_msgs/msg/PolicyWeights', 1.0, latched=True, depth=1),  # every 50 updates
    Load('learner/stats', 'dcdrl_msgs/msg/TrainingStats', 1.0, reliable=False, depth=5),
    Load('replay/stats', 'dcdrl_msgs/msg/ReplayStats', 0.5, reliable=False, depth=5),
    Load('episode_stats', 'dcdrl_msgs/msg/EpisodeStats', 4.0, reliable=False, depth=5),
    Load('edge/weights', 'dcdrl_msgs/msg/PolicyWeights', 50.0, depth=10),  # the cloud-edge actor, 178 KB
)


def topic_of(load: Load) -> str:
    return f'{NAMESPACE}/{load.name}'


# ---------------------------------------------------------------------------------- the stand-in
def _tensors(shapes: list[tuple[int, ...]], rng: np.random.Generator) -> list:
    from dcdrl_ros.msg_arrays import set_array

    from dcdrl_msgs.msg import Tensor
    tensors = []
    for index, shape in enumerate(shapes):
        tensor = Tensor(name=f't{index}')
        set_array(tensor, 'shape', shape, np.uint32)
        set_array(tensor, 'data', rng.random(shape, dtype=np.float32), np.float32)
        tensors.append(tensor)
    return tensors


def policy_shapes() -> list[tuple[int, ...]]:
    shapes: list[tuple[int, ...]] = []
    inputs = OBS_DIM
    for width in POLICY_HIDDEN:
        shapes += [(width, inputs), (width,), (width,), (width,)]   # linear, bias, LayerNorm scale and shift
        inputs = width
    return shapes + [(ACTION_DIM, inputs), (ACTION_DIM,)]


def make_message(load: Load, rng: np.random.Generator) -> Any:
    """The topic's message at its size in the `make run` graph; its counter field is set per publish."""
    from dcdrl_learning.experience import fill_experience
    from dcdrl_ros.messages import get_interface
    from dcdrl_ros.msg_arrays import set_array
    cls = get_interface(load.type_name)
    if load.name == 'experience':
        steps = 16  # 2 envs x 8 steps
        return fill_experience(cls(), client_id='client_0', sequence=0, policy_version=1,
                               obs=rng.random((steps, OBS_DIM)), actions=rng.random((steps, ACTION_DIM)),
                               rewards=rng.random(steps), next_obs=rng.random((steps, OBS_DIM)),
                               terminated=np.zeros(steps, bool), truncated=np.zeros(steps, bool),
                               extra_names=['latency_s', 'energy_j', 'cost'], extras=rng.random((steps, 3)))
    if load.name == 'replay/batches':
        batch = 64
        message = cls(requester='learner', batch_size=batch, obs_dim=OBS_DIM, action_dim=ACTION_DIM, replay_size=50000)
        for field, count in (('obs', batch * OBS_DIM), ('actions', batch * ACTION_DIM), ('rewards', batch),
                             ('next_obs', batch * OBS_DIM), ('discounts', batch), ('weights', batch)):
            set_array(message, field, rng.random(count, dtype=np.float32), np.float32)
        for field in ('indices', 'policy_versions'):
            set_array(message, field, rng.integers(0, 50000, batch, dtype=np.uint64), np.uint64)
        return message
    if load.name == 'replay/sample_requests':
        return cls(requester='learner', batches=1, batch_size=64)
    if load.type_name.endswith('PolicyWeights'):
        shapes = policy_shapes() if load.name == 'policy' else EDGE_ACTOR_SHAPES
        return cls(architecture_id='bench', version=0, producer='bench', tensors=_tensors(shapes, rng))
    return cls()  # the stats: plain numbers, their size does not depend on the values


def set_counter(message: Any, count: int) -> None:
    for field in ('sequence', 'version', 'episode', 'updates', 'size'):
        if hasattr(message, field):
            setattr(message, field, count)
            return


def counter_of(message: Any) -> int:
    return int(message.sequence if hasattr(message, 'sequence') else message.version)


def qos_of(load: Load) -> Any:
    from dcdrl_ros import runtime
    return runtime.QoSProfile(
        depth=load.depth,
        reliability=runtime.ReliabilityPolicy.RELIABLE if load.reliable else runtime.ReliabilityPolicy.BEST_EFFORT,
        durability=runtime.DurabilityPolicy.TRANSIENT_LOCAL if load.latched else runtime.DurabilityPolicy.VOLATILE)


class Graph:
    """Our runtime in this process: the stand-in's publishers, or a subscriber of played topics."""

    def __init__(self, domain: int) -> None:
        from dcdrl_ros import runtime
        from dcdrl_ros.runtime.context import Context
        self.runtime = runtime
        self.context = Context()
        self.context.init([], domain_id=domain)
        self.node = runtime.Node('recording_bench', context=self.context)
        self.executor = runtime.SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        while self.context.ok():
            self.executor.spin_once(timeout_sec=0.2)

    def close(self) -> None:
        self.context.request_shutdown()
        self._spinner.join(10)
        self.context.shutdown()


class Publishing:
    """The stand-in's publishers (our runtime, in this process) and their schedule."""

    def __init__(self, graph: Graph) -> None:
        rng = np.random.default_rng(0)
        self.loads = LOADS
        self.messages = {load.name: make_message(load, rng) for load in LOADS}
        self.publishers = {load.name: graph.node.create_publisher(type(self.messages[load.name]), topic_of(load),
                                                                  qos_of(load)) for load in LOADS}
        self.published = {load.name: 0 for load in LOADS}
        self.payload_bytes = {load.name: len(self.messages[load.name].serialize()) for load in LOADS}

    def run(self, duration_s: float) -> float:
        """Publishes every topic at its rate for ``duration_s``; returns the seconds it took."""
        start = time.monotonic()
        due = {load.name: start for load in self.loads}
        period = {load.name: 1.0 / load.hz for load in self.loads}
        while True:
            name = min(due, key=lambda key: due[key])
            if due[name] >= start + duration_s:
                break
            delay = due[name] - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing the load, not waiting for an event
            message = self.messages[name]
            set_counter(message, self.published[name] + 1)
            self.publishers[name].publish(message)
            self.published[name] += 1
            due[name] += period[name]
        return time.monotonic() - start


def topic_of_name(name: str) -> str:
    return f'{NAMESPACE}/{name}'


# ------------------------------------------------------------------------------- the recorders
def process_tree_cpu_s(pid: int) -> float:
    """User + system seconds of ``pid`` and its live descendants (also of a zombie: its final times)."""
    ticks = os.sysconf('SC_CLK_TCK')
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f'/proc/{current}/stat') as handle:
                fields = handle.read().rsplit(')', 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / ticks   # utime, stime
            for task in os.listdir(f'/proc/{current}/task'):
                with open(f'/proc/{current}/task/{task}/children') as handle:
                    pending += [int(child) for child in handle.read().split()]
        except (OSError, ValueError):
            continue
    return total


class Recorder:
    def __init__(self, label: str, argv: list[str], env: dict[str, str], out: Path, log: Path) -> None:
        self.label, self.out = label, out
        self.log = open(log, 'w')
        self.process = subprocess.Popen(argv, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        self.cpu_at_start = 0.0

    def mark_start(self) -> None:
        self.cpu_at_start = process_tree_cpu_s(self.process.pid)

    def stop(self, timeout: float = DEADLINE_S) -> tuple[int | None, float]:
        """SIGINT; returns (exit code, CPU seconds since mark_start), read before the child is reaped."""
        pid = self.process.pid
        try:
            os.killpg(pid, signal.SIGINT)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        cpu = process_tree_cpu_s(pid)
        while time.monotonic() < deadline:
            # WNOWAIT: the exited child stays a zombie, whose /proc/<pid>/stat holds its final CPU times.
            state = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            cpu = max(cpu, process_tree_cpu_s(pid))
            if state is not None:
                break
            time.sleep(0.05)
        else:
            os.killpg(pid, signal.SIGKILL)
        code = self.process.wait(30)
        self.log.close()
        return code, cpu - self.cpu_at_start


def bag_counts(bag: Path) -> tuple[dict[str, int], int]:
    """({topic: messages}, bytes of its MCAP files) from the files' own summary statistics."""
    from mcap.reader import make_reader
    counts: dict[str, int] = {}
    size = 0
    for path in sorted(bag.glob('*.mcap')):
        size += path.stat().st_size
        with open(path, 'rb') as stream:
            summary = make_reader(stream).get_summary()
        if summary is None or summary.statistics is None:
            raise RuntimeError(f'{path}: no summary statistics (was the bag closed?)')
        for channel_id, count in summary.statistics.channel_message_counts.items():
            topic = summary.channels[channel_id].topic
            counts[topic] = counts.get(topic, 0) + count
    return counts, size


def recorder_result(published: dict[str, int], bag: Path, load_s: float, cpu_s: float, code: int | None) -> dict:
    counts, size = bag_counts(bag)
    recorded = sum(counts.values())
    dropped = {name: published[name] - counts.get(topic_of_name(name), 0) for name in published}
    megabytes = size / 1e6
    return {'exit_code': code, 'messages': recorded, 'bytes': size, 'msgs_per_s': recorded / load_s,
            'mb_per_s': megabytes / load_s, 'dropped': sum(dropped.values()), 'dropped_per_topic': dropped,
            'cpu_s': cpu_s, 'cpu_s_per_mb': cpu_s / megabytes if megabytes else None}


# --------------------------------------------------------------------------------- playback timing
def recorded_stamps(bag: Path) -> dict[tuple[str, int], int]:
    """{(topic, counter): log time ns} of the played topics, from the bag's MCAP files."""
    from mcap.reader import make_reader

    from dcdrl_ros.messages import get_interface
    wanted = {topic_of_name(name) for name in PLAYED}
    stamps: dict[tuple[str, int], int] = {}
    for path in sorted(bag.glob('*.mcap')):
        with open(path, 'rb') as stream:
            for schema, channel, message in make_reader(stream).iter_messages(topics=sorted(wanted)):
                assert schema is not None
                decoded = get_interface(schema.name).deserialize(message.data)
                stamps[(channel.topic, counter_of(decoded))] = message.log_time
    return stamps


def play_timing(label: str, argv: list[str], env: dict[str, str], domain: int, stamps: dict[tuple[str, int], int],
                log: Path, timeout_s: float) -> dict:
    received: list[tuple[str, int, int]] = []
    done = threading.Event()
    expected = len(stamps)
    graph = Graph(domain)
    try:
        def on_message(message: Any, topic: str) -> None:
            received.append((topic, counter_of(message), time.monotonic_ns()))
            if len(received) >= expected:
                done.set()
        from dcdrl_ros.messages import get_interface
        for load in LOADS:
            if load.name in PLAYED:
                topic = topic_of(load)
                graph.node.create_subscription(get_interface(load.type_name), topic,
                                               lambda m, t=topic: on_message(m, t), qos_of(load))
        with open(log, 'w') as handle:
            player = subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                deadline = time.monotonic() + timeout_s
                while not done.is_set() and player.poll() is None and time.monotonic() < deadline:
                    done.wait(0.2)
                done.wait(2.0)  # after the player's exit: its last messages may still be on their way
            finally:
                if player.poll() is None:
                    os.killpg(player.pid, signal.SIGINT)
                try:
                    player.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(player.pid, signal.SIGKILL)
                    player.wait(10)
    finally:
        graph.close()
    known = [(stamps[(topic, count)], at) for topic, count, at in received if (topic, count) in stamps]
    if not known:
        return {'received': len(received), 'expected': expected, 'error': f'{label}: nothing received'}
    # Each message's offset (receive time - recorded time) against the median offset: the player's timing
    # error, free of the constant start-up and delivery delay.
    offsets = np.array([at - stamp for stamp, at in known], dtype=np.float64)
    errors_ms = np.abs(offsets - np.median(offsets)) / 1e6
    return {'received': len(received), 'expected': expected, 'error_p50_ms': float(np.percentile(errors_ms, 50)),
            'error_p99_ms': float(np.percentile(errors_ms, 99)), 'error_max_ms': float(errors_ms.max())}


# --------------------------------------------------------------------------------------------- main
def ros2_environment(domain: int) -> tuple[Any, str | None]:
    """(the environment of a ROS 2 child with this workspace's messages, None) or (None, why not)."""
    from dcdrl_ros import ros2_install
    ros2, why = ros2_install.find()
    if ros2 is None:
        return None, why
    try:
        workspace = ros2_install.Workspace(ros2, ros2_install.build_workspace(ros2))
    except (RuntimeError, OSError, subprocess.SubprocessError) as error:
        return None, f'the workspace did not build on ROS 2 from {ros2.origin}: {str(error)[-300:]}'
    return workspace.environment(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST'), None


def with_domain(env: dict[str, str], domain: int) -> dict[str, str]:
    return dict(env, ROS_DOMAIN_ID=str(domain))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='a 8 s load instead of 30 s')
    parser.add_argument('--duration', type=float, default=None, help='seconds of load (default 30, quick 8)')
    parser.add_argument('--sides', default='ours,ros2', help='recorders and players to run (default ours,ros2)')
    parser.add_argument('--keep', default=None, help='keep the bags in this folder (default: a temporary one)')
    args = parser.parse_args(argv)
    duration = args.duration or (8.0 if args.quick else 30.0)
    sides = set(args.sides.split(','))
    if not sides or not sides <= {'ours', 'ros2'}:
        parser.error(f'--sides takes ours and/or ros2, got {args.sides!r}')
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
    os.environ['DCDRL_BACKEND'] = 'cyclone'
    from dcdrl_ros.testing import fresh_domain_id, loopback_env, wait_acked, wait_matched
    work = Path(args.keep or tempfile.mkdtemp(prefix='recording-bench-'))
    work.mkdir(parents=True, exist_ok=True)
    domain = fresh_domain_id()
    result: dict[str, Any] = {'machine': machine_info(), 'duration_s': duration, 'work': str(work)}
    ros2_env, why = ros2_environment(domain)
    result['ros2'] = 'ok' if ros2_env else f'skipped: {why}'
    ros2_cmd = shutil.which('ros2', path=ros2_env['PATH']) if ros2_env else None

    graph = Graph(domain)
    recorders: dict[str, Recorder] = {}
    try:
        publishing = Publishing(graph)
        topics = [topic_of(load) for load in LOADS]
        result['load'] = {load.name: {'type': load.type_name, 'hz': load.hz, 'reliable': load.reliable,
                                      'latched': load.latched, 'bytes': publishing.payload_bytes[load.name]}
                          for load in LOADS}
        offered = sum(load.hz * publishing.payload_bytes[load.name] for load in LOADS) / 1e6
        print(f'load: {len(LOADS)} topics, {sum(load.hz for load in LOADS):.1f} msg/s, {offered:.2f} MB/s', flush=True)
        if 'ours' in sides:
            recorders['ours'] = Recorder('ours', [sys.executable, '-m', 'dcdrl_ros.cli', 'bag', 'record', *topics,
                                                  '-o', str(work / 'ours')], loopback_env(domain), work / 'ours',
                                         work / 'ours.log')
        if ros2_env and ros2_cmd and 'ros2' in sides:
            recorders['ros2'] = Recorder('ros2', [ros2_cmd, 'bag', 'record', '-s', 'mcap', '-o', str(work / 'ros2'),
                                                  *topics], ros2_env, work / 'ros2', work / 'ros2.log')
        wait_matched(list(publishing.publishers.values()), len(recorders), DEADLINE_S)
        for recorder in recorders.values():
            recorder.mark_start()
        load_s = publishing.run(duration)
        wait_acked([publishing.publishers[load.name] for load in LOADS if load.reliable], DEADLINE_S)
        stopped = {label: recorder.stop() for label, recorder in recorders.items()}
    finally:
        graph.close()
        for recorder in recorders.values():
            if recorder.process.poll() is None:
                os.killpg(recorder.process.pid, signal.SIGKILL)
    result['published'] = dict(publishing.published)
    result['load_s'] = load_s
    record = {label: recorder_result(publishing.published, recorders[label].out, load_s, cpu, code)
              for label, (code, cpu) in stopped.items()}
    if 'ros2' in record and 'ours' in record:
        ours, theirs = record['ours'], record['ros2']
        record['ratio'] = {'msgs_per_s': ours['msgs_per_s'] / theirs['msgs_per_s'],
                           'mb_per_s': ours['mb_per_s'] / theirs['mb_per_s'],
                           'cpu_s_per_mb': (ours['cpu_s_per_mb'] / theirs['cpu_s_per_mb']
                                            if ours['cpu_s_per_mb'] and theirs['cpu_s_per_mb'] else None)}
    result['record'] = record
    for label, values in record.items():
        if label != 'ratio':
            print(f"record {label:5s}: {values['msgs_per_s']:.1f} msg/s, {values['mb_per_s']:.2f} MB/s, dropped "
                  f"{values['dropped']}, {values['cpu_s']:.2f} CPU s = {values['cpu_s_per_mb'] or 0:.3f} s/MB",
                  flush=True)

    # Both players play the same bag: ours where it was recorded, else ros2 bag record's.
    bag = work / ('ours' if 'ours' in record else 'ros2')
    stamps = recorded_stamps(bag)
    played = [topic_of_name(name) for name in PLAYED]
    players = {}
    if 'ours' in sides:
        players['ours'] = [sys.executable, '-m', 'dcdrl_ros.cli', 'bag', 'play', str(bag), '--topics', *played]
    if ros2_env and ros2_cmd and 'ros2' in sides:
        players['ros2'] = [ros2_cmd, 'bag', 'play', str(bag), '--topics', *played]
    play = {}
    for label, player_argv in players.items():
        play_domain = fresh_domain_id()
        env = loopback_env(play_domain) if label == 'ours' else with_domain(ros2_env or {}, play_domain)
        play[label] = play_timing(label, player_argv, env, play_domain, stamps, work / f'play-{label}.log',
                                  load_s + 60.0)
        print(f'play {label:5s}: {play[label]}', flush=True)
    result['play'] = play
    result['played_bag'] = bag.name
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result, default=str))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
