"""ROS 2 nodes (rclpy on the real ROS 2) and ROS-free nodes (our runtime) in one graph, in every start
order and discovery setting (the README's promise: a pip-only Pi and a ROS 2
PC share one graph with default settings).

- discovery: talker and listener, one on each backend, both start orders, ROS_AUTOMATIC_DISCOVERY_RANGE
  default (SUBNET) or LOCALHOST on each side (16 cases at once, one domain each), and a ROS 2
  listener that joins 36 s after our talker (Cyclone 11 stopped pinging its peers after 30 s);
- every message type crosses in both directions: a driver on one backend, an echo on the other, the
  message compared field by field as sent, as decoded by the other side, and as echoed back;
- training graphs across backends: our cloud with an rclpy client, an rclpy cloud with our client,
  cloud first (the client joins later and gets the latched policy) and client first (the learner
  trains from the other backend's experience and its new versions reach that client); GetPolicy and
  RecognizeFaces called across backends in both directions;
- the same across emulated hosts (network namespaces): LOCALHOST + ROS_STATIC_PEERS as the testbed
  sets them, and the default SUBNET on a switch that floods multicast;
- names: every DC-DRL node starts in /dcdrl on both backends, and `-r __ns:=` still wins
  (`ros2 topic list` and `dcdrl topic list` agree).

Children on our runtime run from the source tree (.venv); children on ROS 2 run from this workspace
built by colcon (the `ros2_ws` fixture). Every case has its own DDS domain. SUBNET children use the
machine's interfaces: what keeps them apart from anything else on the LAN is the fresh domain id.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dcdrl_ros.testing import (
    ChildProcess,
    TopicRecorder,
    all_message_types,
    first_difference,
    fresh_domain_id,
    loopback_env,
)

# 600 s: the first test here may also build the ros2_ws fixture (colcon, ~35 s alone, minutes when
# several test runs build at once); each test itself takes under a minute.
pytestmark = [pytest.mark.dds, pytest.mark.slow, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[1]
PEER = Path(__file__).parent / 'fixtures' / 'backend_peer.py'
FAST = Path(__file__).parent / 'fixtures' / 'train_fast.yaml'
TIMEOUT = 120.0     # generous: many processes start at once on a shared 2-core machine
LATE_JOIN_S = 36.0  # beyond Cyclone 11's 30 s of pinging peers that do not answer
OURS, RCLPY = 'ours', 'rclpy'
SUBNET, LOCALHOST = 'SUBNET', 'LOCALHOST'


# ------------------------------------------------------------------------------------------- helpers
@dataclass
class Backends:
    """How to start a child on either backend, in a domain, with a discovery range."""
    ws: object  # dcdrl_ros.ros2_install.Workspace

    def env(self, backend: str, domain: int, discovery: str = LOCALHOST) -> dict:
        if backend == RCLPY:
            env = self.ws.environment(ROS_DOMAIN_ID=str(domain), DCDRL_BACKEND='rclpy')
        else:
            env = loopback_env(domain)
        for name in ('ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_STATIC_PEERS', 'ROS_LOCALHOST_ONLY'):
            env.pop(name, None)
        if discovery == LOCALHOST:
            env['ROS_AUTOMATIC_DISCOVERY_RANGE'] = LOCALHOST
        return env  # SUBNET: nothing set, as on a machine nobody configured

    def run(self, backend: str, package: str, executable: str, *ros_args: str) -> list:
        """`ros2 run` (the colcon-installed executable) or `dcdrl run` (the source tree)."""
        if backend == RCLPY:
            argv = [shutil.which('ros2', path=self.ws.environment()['PATH']), 'run', package, executable]
        else:
            argv = [sys.executable, '-m', 'dcdrl_ros.cli', 'run', package, executable]
        return argv + (['--ros-args', *ros_args] if ros_args else [])

    def cli(self, backend: str, *args: str) -> list:
        if backend == RCLPY:
            return [shutil.which('ros2', path=self.ws.environment()['PATH']), *args]
        return [sys.executable, '-m', 'dcdrl_ros.cli', *args]

    def peer(self, backend: str, *args: str) -> list:
        python = self.ws.python() if backend == RCLPY else sys.executable
        return [python, str(PEER), *args]


@pytest.fixture
def backends(ros2_ws, monkeypatch):
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', LOCALHOST)  # this process's own recorders
    return Backends(ros2_ws)


class Children:
    """Children of one test, stopped together at the end (SIGINT to every group at once, then each is
    awaited; a child still running after the grace time gets ChildProcess.stop: SIGINT again, KILL)."""

    def __init__(self) -> None:
        self.started: dict[str, ChildProcess] = {}

    def start(self, label: str, argv: list, env: dict) -> ChildProcess:
        assert label not in self.started, label
        self.started[label] = child = ChildProcess(argv, env=env)
        return child

    def stop(self, labels: list | None = None, grace_s: float = 60.0) -> dict[str, int]:
        chosen = [self.started[label] for label in (labels or list(self.started))]
        for child in chosen:
            if child.process.poll() is None:
                try:
                    os.killpg(child.pid, signal.SIGINT)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + grace_s
        for child in chosen:
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        codes = {}
        for label in (labels or list(self.started)):
            codes[label] = self.started[label].stop()
        return codes

    def show(self) -> None:
        """The end of every child's output (pytest shows it when the test failed)."""
        for label, child in self.started.items():
            print(f'--- {label} (exit {child.process.returncode}): {" ".join(map(str, child.argv[:6]))}\n'
                  + '\n'.join(child.lines[-15:]))


@pytest.fixture
def children():
    group = Children()
    yield group
    group.stop()
    group.show()


def _json_after(child: ChildProcess, tag: str, timeout: float = TIMEOUT):
    return json.loads(child.wait_for_line(tag + ' ', timeout).split(tag + ' ', 1)[1])


def _report(child: ChildProcess, tag: str) -> dict:
    lines = [line for line in child.lines if tag + ' ' in line]
    assert lines, f'no {tag} line in:\n' + '\n'.join(child.lines[-30:])
    return json.loads(lines[-1].split(tag + ' ', 1)[1])


# ------------------------------------------------------------------------- 1. discovery in every order
MATRIX = [(first, ours_range, rclpy_range, talker)
          for first in (OURS, RCLPY) for ours_range in (SUBNET, LOCALHOST) for rclpy_range in (SUBNET, LOCALHOST)
          for talker in (OURS, RCLPY)]


def test_talker_and_listener_meet_in_every_start_order_and_discovery_range(backends, children):
    def start(label, backend, domain, discovery, role):
        executable, params = (('talker', ['-p', 'period_s:=0.1']) if role == 'talker' else ('listener', []))
        return children.start(label, backends.run(backend, 'dcdrl_ros', executable, *params),
                              backends.env(backend, domain, discovery))

    # The late case first, so that its 36 s pass while the matrix runs: our talker with LOCALHOST
    # (it reaches rmw's participants only by pinging their ports) and, later, a ROS 2 listener with
    # the default SUBNET (multicast only: it never reaches a LOCALHOST participant by itself).
    late_domain = fresh_domain_id()
    start('late ours talker', OURS, late_domain, LOCALHOST, 'talker').wait_for_line('talker started', TIMEOUT)
    late_since = time.monotonic()

    cases = []
    for first, ours_range, rclpy_range, talker in MATRIX:
        domain = fresh_domain_id()
        label = f'{first} first, ours {ours_range}, rclpy {rclpy_range}, {talker} talks'
        ranges = {OURS: ours_range, RCLPY: rclpy_range}
        second = RCLPY if first == OURS else OURS
        roles = {talker: 'talker', (RCLPY if talker == OURS else OURS): 'listener'}
        case = dict(label=label, domain=domain, ranges=ranges, first=first, second=second, roles=roles)
        case[first] = start(f'{label}: {first} {roles[first]}', first, domain, ranges[first], roles[first])
        cases.append(case)
    for case in cases:
        case[case['first']].wait_for_line(f"{case['roles'][case['first']]} started", TIMEOUT)
    started = time.monotonic()
    for case in cases:
        second = case['second']
        case[second] = start(f"{case['label']}: {second} {case['roles'][second]}", second, case['domain'],
                             case['ranges'][second], case['roles'][second])
    for case in cases:
        listener = case[OURS if case['roles'][OURS] == 'listener' else RCLPY]
        listener.wait_for_line('I heard: [Hello World:', TIMEOUT)
    print(f'{len(cases)} cases delivered {time.monotonic() - started:.1f} s after the second sides started')

    # Not synchronisation: the scenario is a ROS 2 node that starts LATE_JOIN_S after ours.
    time.sleep(max(0.0, LATE_JOIN_S - (time.monotonic() - late_since)))
    joined_after = time.monotonic() - late_since
    late = start('late rclpy listener', RCLPY, late_domain, SUBNET, 'listener')
    late.wait_for_line('I heard: [Hello World:', TIMEOUT)
    print(f'a ROS 2 listener (SUBNET) that joined {joined_after:.1f} s after our talker (LOCALHOST) heard it '
          f'{time.monotonic() - late_since - joined_after:.1f} s later')
    assert joined_after >= LATE_JOIN_S
    codes = children.stop()
    assert all(code == 0 for code in codes.values()), codes


# ------------------------------------------------------------------- 2. every message type, both ways
def _lines(child: ChildProcess, tag: str) -> dict:
    found = {}
    for line in child.lines:
        if line.startswith(tag + ' '):
            _, type_name, text = line.split(' ', 2)
            found[type_name] = json.loads(text)
    return found


def test_every_message_type_crosses_backends_both_ways_field_by_field(backends, children):
    types = [t for t in all_message_types() if '/msg/' in t]
    pairs = {}
    for driver, echo in ((OURS, RCLPY), (RCLPY, OURS)):
        domain = fresh_domain_id()
        pairs[driver] = (
            children.start(f'{echo} echo', backends.peer(echo, 'echo', *types), backends.env(echo, domain)),
            children.start(f'{driver} driver', backends.peer(driver, 'drive', '7', *types),
                           backends.env(driver, domain)))
    for echo_child, driver_child in pairs.values():
        assert driver_child.wait_for_line('DRIVE DONE', TIMEOUT) == f'DRIVE DONE {len(types)}'
        echo_child.wait_for_line('echoing', TIMEOUT)
    children.stop()
    for driver, (echo_child, driver_child) in pairs.items():
        assert echo_child.wait_for_line('echoing', 1).endswith('rclpy' if driver == OURS else 'cyclone')
        sent, back, got = _lines(driver_child, 'SENT'), _lines(driver_child, 'BACK'), _lines(echo_child, 'GOT')
        assert sorted(sent) == sorted(back) == sorted(got) == sorted(types)
        for type_name in types:
            # as the other backend decoded it, and as it came back encoded by the other backend
            assert first_difference(sent[type_name], got[type_name]) is None, (
                driver, type_name, first_difference(sent[type_name], got[type_name]))
            assert first_difference(sent[type_name], back[type_name]) is None, (
                driver, type_name, first_difference(sent[type_name], back[type_name]))


# --------------------------------------------------------------------- 3. training graphs, both ways
@dataclass
class Graph:
    cloud: str                     # backend of replay_buffer, learner (and parameter_server, face_server)
    client: str                    # backend of the client (and the service caller)
    first: str                     # 'cloud' or 'client'
    domain: int = 0
    recorder: TopicRecorder | None = None
    client_name: str = ''
    nodes: dict = field(default_factory=dict)
    faces: dict = field(default_factory=dict)      # the caller's RECOGNIZE_FACES reply
    policy: dict = field(default_factory=dict)     # the caller's GET_POLICY reply
    architecture: str = ''                         # the client's, from its log

    @property
    def label(self) -> str:
        return f'{self.cloud} cloud + {self.client} client, {self.first} first'


class GraphRecorder(TopicRecorder):
    def __init__(self, domain: int) -> None:
        from dcdrl_ros import runtime
        from dcdrl_ros.runtime.qos import qos_profile_transient_local

        from dcdrl_msgs.msg import ExperienceBatch, PolicyWeights
        super().__init__(domain, namespace='/dcdrl')
        self.versions = self.record(PolicyWeights, 'policy', qos_profile_transient_local, lambda m: m.version)
        self.experience = self.record(ExperienceBatch, 'experience', runtime.QoSProfile(depth=100),
                                      lambda m: (m.client_id, m.policy_version))

    def client_versions(self, client_id: str) -> list:
        return [v for c, v in self.experience if c == client_id]


@pytest.fixture(scope='module')
def face_image(tmp_path_factory):
    """A known-faces folder (eileen) and a JPEG of her, as test_face_nodes.py makes them."""
    import cv2
    import numpy as np
    from skimage import data

    from dcdrl_edge.images import encode_jpeg
    folder = tmp_path_factory.mktemp('faces')
    astronaut = np.ascontiguousarray(data.astronaut())
    (folder / 'known').mkdir()
    cv2.imwrite(str(folder / 'known' / 'eileen.png'), cv2.cvtColor(astronaut[20:240, 120:320], cv2.COLOR_RGB2BGR))
    (folder / 'astronaut.jpg').write_bytes(encode_jpeg(astronaut, 'rgb8', quality=90))
    return folder / 'known', folder / 'astronaut.jpg'


def test_training_graphs_across_backends_in_both_start_orders(backends, children, tmp_path, face_image):
    """Nodes start without a namespace: they meet in /dcdrl on both backends."""
    known, jpeg = face_image
    graphs = [Graph(cloud, client, first) for cloud, client in ((OURS, RCLPY), (RCLPY, OURS))
              for first in ('cloud', 'client')]

    def node(graph, role, backend, package, executable, *params, name=None):
        args = ['--params-file', str(FAST)] + (['-r', f'__node:={name}'] if name else [])
        for param in params:
            args += ['-p', param]
        child = children.start(f'{graph.label}: {role}', backends.run(backend, package, executable, *args),
                               backends.env(backend, graph.domain))
        graph.nodes[role] = child
        return child

    def start_cloud(graph):
        out = tmp_path / f'graph{graph.domain}'
        latched_only = graph.first == 'cloud'  # the learner publishes version 1 at start, then no other
        node(graph, 'replay_buffer', graph.cloud, 'dcdrl_cloud', 'replay_buffer', f'output_dir:={out}',
             'snapshot_period_s:=0.0')
        node(graph, 'learner', graph.cloud, 'dcdrl_cloud', 'learner', f'output_dir:={out}', 'device:=cpu',
             'tensorboard:=false', 'evaluate_on_stop:=false', 'eval_period_s:=0.0', 'checkpoint_period_s:=0.0',
             'duration_s:=0.0', 'batch_size:=32',
             f"publish_every_updates:={1000000 if latched_only else 10}",
             f"updates_per_sec_limit:={5.0 if latched_only else 20.0}")
        if latched_only:
            node(graph, 'parameter_server', graph.cloud, 'dcdrl_cloud', 'parameter_server', f'output_dir:={out}')
            node(graph, 'face_server', graph.cloud, 'dcdrl_edge', 'face_server', f'known_faces_dir:={known}')

    def start_client(graph):
        node(graph, 'client', graph.client, 'dcdrl_sim', 'client', f'client_id:={graph.client_name}', 'seed:=5',
             name=graph.client_name)
        if graph.first == 'cloud':
            graph.nodes['caller'] = children.start(f'{graph.label}: caller', backends.peer(graph.client, 'call',
                                                   str(jpeg)), backends.env(graph.client, graph.domain))

    for graph in graphs:
        graph.domain = fresh_domain_id()
        graph.recorder = GraphRecorder(graph.domain)
        graph.client_name = 'client_late' if graph.first == 'cloud' else 'client_1'
        (start_cloud if graph.first == 'cloud' else start_client)(graph)
    try:
        for graph in graphs:  # each first half ready, then the second half starts
            if graph.first == 'cloud':
                graph.recorder.wait_for(lambda graph=graph: 1 in graph.recorder.versions, TIMEOUT,
                                        f'{graph.label}: version 1')
                graph.nodes['parameter_server'].wait_for_line('parameter_server started', TIMEOUT)
                graph.nodes['face_server'].wait_for_line('face_server started: 1 known faces (eileen)', TIMEOUT)
                start_client(graph)
            else:
                graph.nodes['client'].wait_for_line('ready for weights', TIMEOUT)
                start_cloud(graph)
        for graph in graphs:
            versions = lambda graph=graph: graph.recorder.client_versions(graph.client_name)  # noqa: E731
            wanted = 1 if graph.first == 'cloud' else 2  # 2: trained on the other backend's experience
            graph.recorder.wait_for(lambda wanted=wanted, versions=versions: sum(v >= wanted for v in versions()) >= 3,
                                    TIMEOUT,
                                    f'{graph.label}: three batches acted with version {wanted} or newer')
            if graph.first == 'cloud':
                graph.faces = _json_after(graph.nodes['caller'], 'RECOGNIZE_FACES')
                graph.policy = _json_after(graph.nodes['caller'], 'GET_POLICY')
                graph.architecture = re.search(r'architecture (\S+)', graph.nodes['client'].wait_for_line(
                    'ready for weights', TIMEOUT)).group(1)
        codes = children.stop()
    finally:
        for graph in graphs:
            graph.recorder.close()
    assert all(code == 0 for code in codes.values()), codes

    for graph in graphs:
        name = graph.client_name
        replay = _report(graph.nodes['replay_buffer'], 'REPORT')
        client = _report(graph.nodes['client'], 'CLIENT REPORT')
        versions = graph.recorder.client_versions(name)
        assert replay['rejected'] == 0 and replay['clients'][name]['batches'] > 0, (graph.label, replay)
        assert client['errors'] == 0, (graph.label, client)
        if graph.first == 'cloud':
            # One version ever published, before this client existed: it came by transient-local durability.
            assert graph.recorder.versions == [1], (graph.label, graph.recorder.versions)
            assert client['policy_version'] == 1 and replay['clients'][name]['last_policy_version'] == 1
            assert set(versions) <= {0, 1}, versions  # random actions (version 0) until its actor was built
            faces = graph.faces
            assert faces['ok'] and faces['error'] == '' and 'eileen' in faces['names'], (graph.label, faces)
            assert len(faces['boxes']) == 4 * len(faces['names']) and faces['compute_time_s'] > 0
            policy = graph.policy
            assert policy['version'] == 1 and policy['equals_published'] and policy['finite'], (graph.label, policy)
            assert policy['architecture_id'] == graph.architecture and len(policy['tensors']) > 0
        else:
            # The learner trained from this client's experience; the new versions reached the client.
            learner = graph.nodes['learner'].wait_for_line('learner stopped', 1)
            updates = int(re.search(r'(\d+) updates', learner).group(1))
            assert updates > 0 and replay['requesters']['learner']['served'] > 0, (graph.label, learner, replay)
            assert client['policy_version'] >= 2 and replay['clients'][name]['last_policy_version'] >= 2
            assert versions == sorted(versions), versions
        print(f"{graph.label}: {replay['clients'][name]['batches']} batches of {name} in the replay buffer, "
              f"acting with version {client['policy_version']}")


# ------------------------------------------------------------------------ 4. across emulated hosts
def test_mixed_backends_across_emulated_hosts(backends, children):
    """device (rclpy) and cloud (ours) as network namespaces: once with LOCALHOST + ROS_STATIC_PEERS
    on a switch that drops multicast (what the testbed sets), once with the default SUBNET and no
    peers on a switch that floods multicast (a home LAN). Both directions in each."""
    from dcdrl_ros.netns import Testbed, netns_available
    available, reason = netns_available()
    if not available:
        if os.environ.get('CI') == 'true':
            pytest.fail(f'network namespaces are required in CI: {reason}')
        pytest.skip(f'multi-host testbed unavailable: {reason}')
    beds = {LOCALHOST: Testbed(hosts=('device', 'cloud')), SUBNET: Testbed(hosts=('device', 'cloud'),
                                                                           block_multicast=False)}
    try:
        for bed in beds.values():
            bed.start()
        pairs = {}
        for discovery, bed in beds.items():
            domain = fresh_domain_id()

            def start(host, backend, executable, topic, bed=bed, domain=domain, discovery=discovery):
                env = bed.dds_env(host, domain, base=backends.env(backend, domain, discovery),
                                  discovery_range=discovery)
                if discovery == SUBNET:  # the default: nothing configured
                    del env['ROS_STATIC_PEERS'], env['ROS_AUTOMATIC_DISCOVERY_RANGE']
                argv = backends.run(backend, 'dcdrl_ros', executable, '-p', f'topic:={topic}',
                                    *(['-p', 'period_s:=0.1'] if executable == 'talker' else []))
                return bed.run(host, argv, env=env)
            # LOCALHOST: ours first; SUBNET: ROS 2 first.
            order = [('cloud', OURS), ('device', RCLPY)] if discovery == LOCALHOST else \
                [('device', RCLPY), ('cloud', OURS)]
            started = {}
            for host, backend in order:
                started[backend] = (start(host, backend, 'talker', f'from_{backend}'),
                                    start(host, backend, 'listener', f'from_{RCLPY if backend == OURS else OURS}'))
                started[backend][0].wait_for_line('talker started', TIMEOUT)
            pairs[discovery] = started
        for discovery, started in pairs.items():
            for backend, (_, listener) in started.items():
                listener.wait_for_line('I heard: [Hello World:', TIMEOUT)
                print(f'{discovery}: the {backend} listener heard the other host')
    finally:
        problems = []
        for bed in beds.values():
            problems += bed.close()  # stops every process in the namespaces, deletes them
            for child in bed._processes:  # shown by pytest when the test failed
                if isinstance(child, ChildProcess):
                    print(f"--- {' '.join(map(str, child.argv[4:10]))}:\n" + '\n'.join(child.lines[-10:]))
        assert problems == [], problems


# ------------------------------------------------------------------------------ 5. one name convention
EXPECTED_TOPICS = {'/dcdrl/edge/stats', '/dcdrl/segments', '/dcdrl/policy', '/dcdrl/edge/command', '/diagnostics',
                   '/dcdrl/episode_stats', '/robot1/camera/image', '/robot1/camera/image/compressed'}
NOT_AT_ROOT = {'/edge/stats', '/segments', '/policy', '/edge/command', '/episode_stats', '/camera/image'}
EXPECTED_NODES = {'/dcdrl/controller', '/dcdrl/scope', '/robot1/camera'}
SCOPE_READS = {'/dcdrl/segments: dcdrl_msgs/msg/TrajectorySegment', '/dcdrl/episode_stats: dcdrl_msgs/msg/EpisodeStats'}


def _listings(children, commands: dict, timeout: float = TIMEOUT) -> dict:
    """Runs listing commands {key: (argv, env, wanted)} side by side, again for those whose lines do not
    include ``wanted`` yet (discovery takes a moment), until the time-out; returns {key: names seen}."""
    seen = {key: set() for key in commands}
    deadline = time.monotonic() + timeout
    for attempt in itertools.count(1):
        pending = [key for key, (_, _, wanted) in commands.items() if not wanted <= seen[key]]
        if not pending or time.monotonic() > deadline:
            return seen
        running = {key: children.start(f'{key} #{attempt}', *commands[key][:2]) for key in pending}
        for key, child in running.items():
            child.process.wait(60)
            child.stop()
            seen[key] = {line.strip() for line in child.lines if line.strip().startswith('/')}


def test_every_node_starts_in_dcdrl_on_both_backends_and_a_namespace_remap_wins(backends, children, tmp_path):
    domains = {}
    for backend in (RCLPY, OURS):
        domains[backend] = domain = fresh_domain_id()
        env = backends.env(backend, domain)
        children.start(f'{backend} controller',
                       backends.run(backend, 'dcdrl_edge', 'controller', '-p', 'rate_hz:=20.0'), env)
        children.start(f'{backend} scope', backends.run(backend, 'dcdrl_cloud', 'scope', '-p', 'window:=false',
                                                        '-p', f'output:={tmp_path / backend}.png'), env)
        children.start(f'{backend} camera', backends.run(backend, 'dcdrl_edge', 'camera', '-r', '__ns:=/robot1',
                                                         '-p', 'rate_hz:=1.0', '-p', 'width:=64', '-p', 'height:=48'),
                       env)
    for label in list(children.started):
        children.started[label].wait_for_line('started', TIMEOUT)
    commands = {}
    for backend, domain in domains.items():
        for tool in (RCLPY, OURS):
            for what, wanted in (('topic', EXPECTED_TOPICS), ('node', EXPECTED_NODES)):
                argv = backends.cli(tool, what, 'list', '--no-daemon', '--spin-time', '3')
                commands[f'{tool} {what} list, {backend} nodes'] = (argv, backends.env(tool, domain), wanted)
        # The scope (the README's `run dcdrl_cloud scope`) subscribes to the graph's topics in /dcdrl.
        argv = backends.cli(RCLPY, 'node', 'info', '/dcdrl/scope', '--no-daemon', '--spin-time', '3')
        commands[f'ros2 node info /dcdrl/scope, {backend} nodes'] = (argv, backends.env(RCLPY, domain), SCOPE_READS)
    seen = _listings(children, commands)
    for key, names in seen.items():
        print(f'{key}: {sorted(names)}')
    for key, names in seen.items():
        assert commands[key][2] <= names, (key, sorted(names))
        assert not names & NOT_AT_ROOT, (key, sorted(names & NOT_AT_ROOT))
    codes = children.stop()
    assert all(code == 0 for code in codes.values()), codes
