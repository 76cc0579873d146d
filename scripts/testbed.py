#!/usr/bin/env python3
"""The cloud-edge workflow on three emulated hosts (device, edge, cloud) on one Linux machine.

    sudo .venv/bin/python scripts/testbed.py --bandwidth-mbps 1 [--duration-s 120]
        [--device-launch launch/edge.launch.yaml] [--cloud-launch launch/cloud_edge.launch.yaml]
        [--edge-launch launch/face_edge_server.launch.yaml]  ('' = none; default: if the file exists)
        [--device-arg rate_hz:=30.0 ...] [--cloud-arg duration_s:=600.0 ...]
        [--link-bandwidth 'cloud->device=0.06' ...] [--cut device-cloud@30+10 ...]

Each host is a network namespace with one private address on a switch whose links are shaped
with tc (dcdrl_ros.netns.Testbed; docs/multihost.md). The device runs edge.launch.yaml, the
cloud cloud_edge.launch.yaml, the edge host the face server's launch file if there is one. Every
process gets what a user sets on a real machine: ROS_DOMAIN_ID, ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
(SUBNET with --allow-multicast) and ROS_STATIC_PEERS=<the other hosts>. Logs go to --log-dir (printed
at start). Ctrl-C, SIGTERM, SIGHUP or the end of --duration-s stop every process and delete every namespace.

Probes (small nodes to run inside a namespace or on a real machine; used by the tests and
bench/bandwidth.py; each prints one JSON line per event):

    testbed.py probe echo TOPIC TYPE           PROBE {"t": wall clock, scalar fields...} per message
    testbed.py probe send-weights [--topic T]  READY once a reader matched; then per stdin line
                                               "VERSION": publishes weights, prints SENT {...}
    testbed.py probe receive-weights [--topic T]  RECEIVED {"t", "version", "bytes"} per message
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# run from the source tree
for _package in ('dcdrl_core', 'dcdrl_ros', 'dcdrl_learning', 'dcdrl_sim', 'dcdrl_edge', 'dcdrl_cloud'):
    _path = str(ROOT / 'src' / _package)
    if _path not in sys.path:
        sys.path.insert(0, _path)

DCDRL = [sys.executable, '-m', 'dcdrl_ros.cli']


# ---------------------------------------------------------------------------------------- probes
def _field_names(message_class: Any) -> list[str]:
    spec = getattr(message_class, '_spec', None)
    if spec is not None:
        return [field.name for field in spec.fields]
    return list(message_class.get_fields_and_field_types())  # rosidl-generated (rclpy)


def _print(tag: str, values: dict) -> None:
    print(f'{tag} ' + json.dumps(values, allow_nan=True), flush=True)


def probe_echo(topic: str, type_name: str, best_effort: bool) -> int:
    from dcdrl_ros import ros
    message_class = ros.get_interface(type_name)
    names = _field_names(message_class)
    reliability = ros.ReliabilityPolicy.BEST_EFFORT if best_effort else ros.ReliabilityPolicy.RELIABLE

    class Echo(ros.Node):
        def __init__(self) -> None:
            super().__init__('testbed_echo')
            self.create_subscription(message_class, topic, self.on_message,
                                     ros.QoSProfile(depth=100, reliability=reliability))
            print(f'probe echo: listening on {topic} ({type_name})', flush=True)

        def on_message(self, message: Any) -> None:
            values: dict[str, Any] = {'t': time.time()}
            for name in names:
                value = getattr(message, name)
                if isinstance(value, (bool, int, float, str)):
                    values[name] = value
            _print('PROBE', values)

    return ros.run_node(Echo, [])


def _actor_message(version: int, preset: str, obs_dim: int, action_dim: int) -> Any:
    import numpy as np

    from dcdrl_learning.codec import make_payload
    from dcdrl_learning.inference import actor_shapes
    from dcdrl_learning.networks import architecture_id, network_config
    from dcdrl_learning.weights_msg import fill_weights

    from dcdrl_msgs.msg import PolicyWeights, Tensor
    config = network_config(preset)
    shapes = actor_shapes(config, obs_dim, action_dim)
    rng = np.random.default_rng(version)
    arrays = [rng.normal(0, 0.1, shape).astype(np.float32) for shape in shapes.values()]
    payload = make_payload(architecture_id(config, obs_dim, action_dim), version, shapes.keys(), shapes.values(),
                           arrays)
    return fill_weights(PolicyWeights(), payload, Tensor, producer='testbed_probe'), payload


def _message_bytes(message: Any, payload: Any) -> int:
    codec = getattr(type(message), '_codec', None)
    if codec is not None:
        return len(codec.encode(message))
    return int(sum(array.nbytes for array in payload.arrays))


def probe_send_weights(topic: str, preset: str, obs_dim: int, action_dim: int, readers: int) -> int:
    from dcdrl_ros import ros

    from dcdrl_msgs.msg import PolicyWeights
    latched = ros.QoSProfile(depth=1, reliability=ros.ReliabilityPolicy.RELIABLE,
                             durability=ros.DurabilityPolicy.TRANSIENT_LOCAL)

    class Sender(ros.Node):
        def __init__(self) -> None:
            super().__init__('testbed_weights_sender')
            self.publisher = self.create_publisher(PolicyWeights, topic, latched)
            self.ready = False
            self.create_timer(0.05, self.check_readers)
            print(f'probe send-weights: {preset} actor on {topic}, waiting for {readers} reader(s)', flush=True)

        def check_readers(self) -> None:
            if not self.ready and self.publisher.get_subscription_count() >= readers:
                self.ready = True
                _print('READY', {'t': time.time(), 'readers': self.publisher.get_subscription_count()})
                threading.Thread(target=self.read_commands, daemon=True).start()

        def read_commands(self) -> None:
            for line in sys.stdin:  # one version per line, sent when the line arrives
                line = line.strip()
                if not line:
                    continue
                message, payload = _actor_message(int(line), preset, obs_dim, action_dim)
                size = _message_bytes(message, payload)
                sent = time.time()
                self.publisher.publish(message)
                _print('SENT', {'t': sent, 'version': int(line), 'bytes': size})

    return ros.run_node(Sender, [])


def probe_receive_weights(topic: str) -> int:
    from dcdrl_learning.weights_msg import read_weights
    from dcdrl_ros import ros

    from dcdrl_msgs.msg import PolicyWeights
    latched = ros.QoSProfile(depth=1, reliability=ros.ReliabilityPolicy.RELIABLE,
                             durability=ros.DurabilityPolicy.TRANSIENT_LOCAL)

    class Receiver(ros.Node):
        def __init__(self) -> None:
            super().__init__('testbed_weights_receiver')
            self.create_subscription(PolicyWeights, topic, self.on_weights, latched)
            print(f'probe receive-weights: listening on {topic}', flush=True)

        def on_weights(self, message: Any) -> None:
            received = time.time()
            payload = read_weights(message)
            _print('RECEIVED', {'t': received, 'version': int(message.version),
                                'bytes': _message_bytes(message, payload)})

    return ros.run_node(Receiver, [])


def probe_main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog='testbed.py probe', description='small measuring nodes')
    verbs = parser.add_subparsers(dest='verb', required=True)
    echo = verbs.add_parser('echo', help='print the scalar fields of every message as JSON')
    echo.add_argument('topic')
    echo.add_argument('type', help='e.g. dcdrl_msgs/msg/LoopStats')
    echo.add_argument('--reliable', action='store_true', help='reliable subscription (default best effort)')
    send = verbs.add_parser('send-weights', help='publish actor weights, one version per stdin line')
    send.add_argument('--topic', default='/dcdrl/policy')
    send.add_argument('--preset', default='cloud_edge')
    send.add_argument('--obs-dim', type=int, default=10)
    send.add_argument('--action-dim', type=int, default=1)
    send.add_argument('--readers', type=int, default=1, help='readers to wait for before READY')
    receive = verbs.add_parser('receive-weights', help='print the arrival time of every weights message')
    receive.add_argument('--topic', default='/dcdrl/policy')
    args = parser.parse_args(list(argv))
    if args.verb == 'echo':
        return probe_echo(args.topic, args.type, not args.reliable)
    if args.verb == 'send-weights':
        return probe_send_weights(args.topic, args.preset, args.obs_dim, args.action_dim, args.readers)
    return probe_receive_weights(args.topic)


# ------------------------------------------------------------------------------------ the testbed
class Stop(Exception):
    """Raised in the main thread by SIGTERM / SIGHUP so that the testbed's teardown runs."""


def _link_bandwidths(items: Sequence[str]) -> dict[str, float | None]:
    values: dict[str, float | None] = {}
    for item in items:
        link, _, text = item.partition('=')
        if not text:
            raise SystemExit(f"--link-bandwidth expects LINK=MBPS (e.g. 'cloud->device=0.06', quoted: "
                             f"unquoted, the shell reads > as a redirection), got {item!r}")
        values[link] = None if text.lower() in ('none', 'inf', '0') else float(text)
    return values


def _cuts(items: Sequence[str]) -> list[tuple[str, float, float]]:
    cuts = []
    for item in items:
        try:
            link, _, timing = item.partition('@')
            start, _, duration = timing.partition('+')
            cuts.append((link, float(start), float(duration)))
        except ValueError:
            raise SystemExit(f'--cut expects LINK@START_S+DURATION_S (e.g. device-cloud@30+10), got {item!r}') from None
    return cuts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='testbed.py', description=__doc__.split('\n\n')[0],
        epilog="'testbed.py probe --help': the measuring probes. Needs root (ip netns, tc).")
    parser.add_argument('--bandwidth-mbps', type=float, default=1.0,
                        help='bandwidth of every link, each direction (Mbit/s; 0 = unshaped). Default 1')
    parser.add_argument('--link-bandwidth', action='append', default=[], metavar='LINK=MBPS',
                        help="override one link ('device-cloud=10') or direction ('cloud->device=0.06')")
    parser.add_argument('--device-launch', default=str(ROOT / 'launch' / 'edge.launch.yaml'))
    parser.add_argument('--cloud-launch', default=str(ROOT / 'launch' / 'cloud_edge.launch.yaml'))
    parser.add_argument('--edge-launch', default=None,
                        help="launch file for the edge host ('' = none; default: "
                             "launch/face_edge_server.launch.yaml if it exists)")
    parser.add_argument('--device-arg', action='append', default=[], metavar='NAME:=VALUE',
                        help='launch argument for the device side (repeatable)')
    parser.add_argument('--cloud-arg', action='append', default=[], metavar='NAME:=VALUE')
    parser.add_argument('--edge-arg', action='append', default=[], metavar='NAME:=VALUE')
    parser.add_argument('--duration-s', type=float, default=0.0, help='stop after this long; 0 = until Ctrl-C')
    parser.add_argument('--cut', action='append', default=[], metavar='LINK@START+SECONDS',
                        help='cut a link for a while, e.g. device-cloud@30+10 (repeatable)')
    parser.add_argument('--domain-id', type=int, default=int(os.environ.get('ROS_DOMAIN_ID') or 0))
    parser.add_argument('--subnet', default='10.77.0.0/24', help='private network of the hosts')
    parser.add_argument('--allow-multicast', action='store_true',
                        help='let multicast through the switch (default: dropped, as between sites)')
    parser.add_argument('--log-dir', default=None, help='default: runs/testbed/<date-time>')
    parser.add_argument('--status-period-s', type=float, default=10.0, help='link counters every N s; 0 = never')
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ['probe']:
        return probe_main(argv[1:])
    args = _parser().parse_args(argv)
    from dcdrl_ros.netns import Testbed, netns_available
    available, reason = netns_available()
    if not available:
        sys.stderr.write(f'testbed.py: {reason}\n')
        return 1
    if args.bandwidth_mbps < 0:
        sys.stderr.write(f'testbed.py: --bandwidth-mbps must be >= 0, got {args.bandwidth_mbps}\n')
        return 2
    bandwidth: Any = args.bandwidth_mbps or None
    overrides = _link_bandwidths(args.link_bandwidth)
    cuts = _cuts(args.cut)
    edge_launch = args.edge_launch
    if edge_launch is None:
        default = ROOT / 'launch' / 'face_edge_server.launch.yaml'
        edge_launch = str(default) if default.exists() else ''
    log_dir = Path(args.log_dir or ROOT / 'runs' / 'testbed' / time.strftime('%Y%m%d-%H%M%S')).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)

    stopping: list[Any] = []

    def on_signal(signum: int, frame: Any) -> None:
        # The first signal unwinds to the teardown; later ones must not interrupt the teardown.
        if stopping:
            print(f'{signal.Signals(signum).name}: already stopping (tearing down)', flush=True)
            return
        stopping.append(signum)
        raise Stop(signal.Signals(signum).name)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)

    sides = [('device', args.device_launch, args.device_arg), ('cloud', args.cloud_launch,
             [f'output_dir:={log_dir / "cloud"}', *args.cloud_arg]), ('edge', edge_launch, args.edge_arg)]
    links = {link: bandwidth for link in ('device-edge', 'device-cloud', 'edge-cloud')}
    links.update(overrides)
    try:
        with Testbed(bandwidth_mbps=links, subnet=args.subnet, block_multicast=not args.allow_multicast) as bed:
            print(f'testbed {bed.run_id}: hosts ' + ', '.join(f'{h} {bed.address(h)} (netns {bed.namespace(h)})'
                                                         for h in bed.hosts), flush=True)
            for link in bed.links:
                for direction in (link.replace('-', '->'), '->'.join(reversed(link.split('-')))):
                    mbps = bed.bandwidth(direction)
                    print(f'  {direction}: ' + (f'{mbps:g} Mbit/s' if mbps else 'unshaped'), flush=True)
            discovery = bed.dds_env(bed.hosts[0], args.domain_id)['ROS_AUTOMATIC_DISCOVERY_RANGE']
            print(f'  domain {args.domain_id}, discovery: {discovery} + ROS_STATIC_PEERS, multicast '
                  + ('allowed' if args.allow_multicast else 'dropped at the switch'), flush=True)
            processes = {}
            for host, launch_file, launch_args in sides:
                if not launch_file:
                    continue
                if not Path(launch_file).exists():
                    print(f'  {host}: {launch_file} not found, nothing started there', flush=True)
                    continue
                log = log_dir / f'{host}.log'
                processes[host] = bed.run_logged(host, [*DCDRL, 'launch', launch_file, *launch_args], str(log),
                                                 env=bed.dds_env(host, args.domain_id), cwd=str(ROOT))
                print(f'  {host}: {Path(launch_file).name} {" ".join(launch_args)} -> log {log}', flush=True)
            print(f'logs in {log_dir}; Ctrl-C stops everything', flush=True)
            _supervise(bed, processes, args.duration_s, cuts, args.status_period_s)
            counters = {link: bed.link_counters(link) for link in bed.links}
        print('stopped; namespaces deleted. Bytes carried: ' + json.dumps(counters), flush=True)
        return 0
    except (KeyboardInterrupt, Stop) as stop:
        print(f'stopped ({stop or "Ctrl-C"}); every process stopped and every namespace deleted', flush=True)
        return 0
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)


def _supervise(bed: Any, processes: dict, duration_s: float, cuts: list[tuple[str, float, float]],
               status_period_s: float) -> None:
    """Runs until the duration ends (or forever), applying the scheduled cuts, reporting now and then."""
    start = time.monotonic()
    events = sorted([(at, 'cut', link) for link, at, _ in cuts] + [(at + d, 'restore', link) for link, at, d in cuts])
    next_status = start + status_period_s if status_period_s > 0 else float('inf')
    exited: set[str] = set()
    while duration_s <= 0 or time.monotonic() - start < duration_s:
        now = time.monotonic() - start
        while events and events[0][0] <= now:
            _, action, link = events.pop(0)
            getattr(bed, action)(link)
            print(f'[{now:7.1f} s] link {link} {"cut" if action == "cut" else "restored"}', flush=True)
        for host, process in processes.items():
            code = process.poll()
            if code is not None and host not in exited:
                exited.add(host)
                print(f'[{now:7.1f} s] {host} launch exited with {code} (log {process.log_path})', flush=True)
        if processes and len(exited) == len(processes):
            print('every launch exited', flush=True)
            return
        if time.monotonic() >= next_status:
            next_status += status_period_s
            parts = []
            for link in bed.links:
                for direction, values in bed.link_counters(link).items():
                    parts.append(f'{direction} {values["bytes"] / 1e3:.0f} kB ({values["dropped"]} dropped)')
            print(f'[{now:7.1f} s] ' + ', '.join(parts), flush=True)
        time.sleep(0.2)  # the supervisor's tick: cuts start within 0.2 s of their time


if __name__ == '__main__':
    sys.exit(main())
