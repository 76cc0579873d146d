"""The shipped launch and parameter files on the real ROS 2 (Jazzy; fixture `ros2_ws`), beside `dcdrl launch`.

- Agreement: every launch file, run by the real `ros2 launch` with each process replaced by a recorder
  (``--launch-prefix``; fixtures/ros2_param_probe.py), starts the same nodes with the same parameters as
  `dcdrl launch --print` says ours starts: rclpy, given each recorded command line, says which name,
  namespace, arguments and typed parameters rcl and rclpy give that node. Same for the declared
  arguments (what `ros2 launch --show-args` prints).
- The subset rule: what `dcdrl launch` refuses as "Jazzy refuses it too" is refused by Jazzy's parser.
- System: each launch file starts its real nodes on rclpy (each node's startup line; a parameter of
  the wrong type stops a node before it), and one Ctrl-C (SIGINT to the launch's process group: every
  node gets it from the terminal and again from launch) stops every process cleanly: "process has
  finished cleanly", no traceback. train.launch.py reaches TRAINING DONE and ends by itself (the
  learner exits, on_exit: shutdown), every process as cleanly.
- Launch arguments: a value outside an argument's choices is refused by ros2 launch as by dcdrl
  launch; an undeclared argument is ignored by ros2 launch and refused by dcdrl launch.
- Every block of every config/*.yaml is loaded by one of those nodes (so each was checked on rclpy).
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from dcdrl_ros.launch import (
    LaunchError,
    declared_arguments,
    execute_description,
    load_launch_file,
    locate_launch_file,
    main,
)
from dcdrl_ros.param_files import node_key_matches, parameter_value_type, parse_parameter_file
from dcdrl_ros.ros_args import split_ros_args
from dcdrl_ros.testing import ChildProcess, fresh_domain_id

pytestmark = [pytest.mark.dds]
ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / 'test' / 'fixtures' / 'ros2_param_probe.py'
TIMEOUT = 120.0        # generous: torch imports of several nodes at once on a loaded 2-core machine
STOP_TIMEOUT = 60.0    # launch's own escalation (SIGTERM after 5 s, SIGKILL after 10 s) ends well before

# Every shipped launch file as its header says to start it, with arguments that take the other branches.
CASES = [
    ('dcdrl_cloud', 'train.launch.py', ()),
    ('dcdrl_cloud', 'train.launch.yaml', ('num_clients:=1', 'mode:=collective', 'seed:=7', 'gamma:=0.95',
                                          'seed_bags:=[runs/a, runs/b]')),
    ('dcdrl_cloud', 'train.launch.py', ('num_clients:=3', 'duration_s:=60')),
    ('dcdrl_cloud', 'train.launch.py', ('num_clients:=4', 'network_preset:=cloud_edge')),
    ('dcdrl_cloud', 'stream_demo.launch.py', ()),
    ('dcdrl_cloud', 'stream_demo.launch.yaml', ('num_envs:=8',)),
    ('dcdrl_ros', 'talker_listener.launch.yaml', ('topic:=news', 'period_s:=1')),
    ('dcdrl_edge', 'edge.launch.yaml', ()),
    ('dcdrl_edge', 'edge.launch.yaml', ('mode:=eval', 'plant:=topic', 'weights_file:=w.safetensors')),
    ('dcdrl_cloud', 'cloud_edge.launch.yaml', ('seed_bags:=runs/edge_bag',)),
    ('dcdrl_cloud', 'cartpole_pretrain.launch.yaml', ()),
    ('dcdrl_cloud', 'cartpole_finetune.launch.yaml', ('scope:=false',)),
    ('dcdrl_cloud', 'face_all.launch.yaml', ()),
    ('dcdrl_cloud', 'face_cloud.launch.yaml', ()),
    ('dcdrl_edge', 'face_device.launch.yaml', ('policy:=random', 'training:=false')),
    ('dcdrl_edge', 'face_edge_server.launch.yaml', ('max_concurrent:=3',)),
    ('dcdrl_cloud', 'record.launch.yaml', ('output_dir:=runs/x', 'record_weights:=false')),
    ('dcdrl_cloud', 'cloud_edge.launch.yaml', ('record:=true',)),
    ('dcdrl_cloud', 'face_all.launch.yaml', ('record:=true', 'record_weights:=false')),
]


def case_id(case) -> str:
    package, name, arguments = case
    return ' '.join((package, name) + arguments)


def ros2_env(ros2_ws, tmp: Path, domain: int) -> dict[str, str]:
    env = ros2_ws.environment(ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
                              ROS_LOG_DIR=str(tmp / 'ros_log'))
    env.pop('DISPLAY', None)  # the scope draws to a file
    return env


def ros2_launch(env: dict[str, str], *args: str) -> list[str]:
    return [shutil.which('ros2', path=env['PATH']) or 'ros2', 'launch', *args]


# -- agreement between ros2 launch and dcdrl launch ----------------------------------------------

def all_cases_launch_file(install: Path) -> str:
    """One launch file that includes every case's installed file with its arguments, each in its own
    scoped group (as `ros2 launch PKG FILE ARGS` would run it alone) with PROBE_CASE set to its index."""
    lines = ['launch:']
    for index, (package, name, arguments) in enumerate(CASES):
        lines += ['- group:', '    scoped: true', '    children:',
                  f'    - set_env: {{name: PROBE_CASE, value: "{index}"}}',
                  '    - include:', f"        file: {install / package / 'share' / package / 'launch' / name}"]
        if arguments:  # launch_yaml fails on an empty 'arg' list
            lines.append('        arg:')
            lines += [f'        - {{name: {a.split(":=")[0]}, value: "{a.split(":=", 1)[1]}"}}' for a in arguments]
    return '\n'.join(lines) + '\n'


@pytest.fixture(scope='module')
def probed(ros2_ws, tmp_path_factory):
    """{case: {fqn: record}}: every case run by the real `ros2 launch` (one run holding them all, each
    process replaced by the probe's recorder), then what rcl and rclpy make of each command line."""
    tmp = tmp_path_factory.mktemp('probe')
    records = tmp / 'records'
    records.mkdir()
    all_cases = tmp / 'all_cases.launch.yaml'
    all_cases.write_text(all_cases_launch_file(ros2_ws.install))
    env = ros2_env(ros2_ws, tmp, fresh_domain_id())
    env['PROBE_EXPECTED'] = str(sum(len(dcdrl_print(case)) for case in CASES))  # the recorders' barrier
    prefix = f'{ros2_ws.python()} {PROBE} record {records}'
    launch = ChildProcess(ros2_launch(env, '--launch-prefix', prefix, str(all_cases)), env=env, cwd=str(tmp))
    with launch:
        with contextlib.suppress(subprocess.TimeoutExpired):  # then stopped, and the output says why
            launch.process.wait(TIMEOUT)  # launch exits by itself once every recorder has
    output = '\n'.join(launch.lines)
    assert launch.process.returncode == 0 and 'Traceback' not in output and 'has died' not in output, output
    resolver = ChildProcess([ros2_ws.python(), str(PROBE), 'resolve', str(records)], env=env)
    with resolver:
        resolver.process.wait(TIMEOUT)
    assert resolver.process.returncode == 0, '\n'.join(resolver.lines)
    by_case: dict = {case: {} for case in CASES}
    for record in json.loads(resolver.lines[-1]):
        executable = Path(record['executable'])
        fqn = f"{record['namespace'].rstrip('/')}/{record['name']}"
        case = CASES[int(record['case'])]
        assert fqn not in by_case[case], f'{case}: two processes named {fqn}'
        by_case[case][fqn] = {
            'package': executable.parent.name, 'executable': executable.name,
            'arguments': record['arguments'], 'parameters': record['parameters']}
    return by_case


def dcdrl_print(case) -> dict[str, dict]:
    """What `dcdrl launch --print` says ours starts, read back the way our runtime reads it; {fqn: record}."""
    package, name, arguments = case
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert main(['--print', package, name, *arguments]) == 0
    records = {}
    for line in stdout.getvalue().splitlines():
        _label, _, command = line.partition(': ')
        argv = shlex.split(command)
        assert argv[1:4] == ['-m', 'dcdrl_ros.cli', 'run'], line
        arguments_, ros_args = split_ros_args(argv[6:])
        resolved = ros_args.resolve('unnamed')
        fqn = resolved.fully_qualified_name
        assert fqn not in records, f'{case}: two processes named {fqn}'
        parameters = {key: [parameter_value_type(o.value), o.value] for key, o in resolved.param_overrides.items()}
        records[fqn] = {
            'package': argv[4], 'executable': argv[5], 'arguments': arguments_, 'parameters': parameters}
    return records


def test_every_launch_file_has_a_case():
    shipped = {path.name for path in (ROOT / 'launch').glob('*.launch.*')}
    assert shipped == {name for _, name, _ in CASES}


@pytest.mark.parametrize('case', CASES, ids=case_id)
def test_ros2_launch_and_dcdrl_launch_start_the_same_nodes_with_the_same_parameters(probed, case):
    ros2, ours = probed[case], dcdrl_print(case)
    assert sorted(ros2) == sorted(ours)
    for fqn in ours:  # one node at a time: a readable diff
        assert (fqn, ros2[fqn]) == (fqn, ours[fqn])


SHOW_ARGS = textwrap.dedent('''
    import json, os, sys
    from ament_index_python.packages import get_package_share_directory
    from launch.launch_description_sources import get_launch_description_from_any_launch_file
    out = {}
    for package, name in json.loads(sys.argv[1]):
        # what `ros2 launch --show-args` prints (ros2launch.api.print_arguments_of_launch_file)
        path = os.path.join(get_package_share_directory(package), 'launch', name)
        out[name] = [[a.name, a.description, None if a.default_value is None else
                      ' + '.join(t.describe() for t in a.default_value)]
                     for a in get_launch_description_from_any_launch_file(path).get_launch_arguments()]
    print(json.dumps(out))
''')


def test_declared_arguments_agree_with_ros2_launch_show_args(ros2_ws):
    files = sorted({(package, name) for package, name, _ in CASES})
    result = ChildProcess([ros2_ws.python(), '-c', SHOW_ARGS, json.dumps(files)], env=ros2_ws.environment())
    with result:
        result.process.wait(TIMEOUT)
    assert result.process.returncode == 0, '\n'.join(result.lines)
    shown = json.loads(result.lines[-1])
    for package, name in files:
        ours = declared_arguments(load_launch_file(locate_launch_file([package, name])[0]), {})
        ros2 = shown[name]
        # ros2 launch lists the file's own arguments (include paths made with $(dirname) are not
        # followed); ours lists those first, then the included files' arguments.
        assert [a[0] for a in ros2] == [a.name for a in ours[:len(ros2)]], name
        for (arg, description, default), mine in zip(ros2, ours):
            assert description == mine.description, (name, arg)
            if default is not None and '$(' not in (mine.default or '$('):
                assert default == f"'{mine.default}'", (name, arg)


# -- the subset rule: what we refuse, Jazzy's parser refuses too ---------------------------------

REFUSED_BY_BOTH = [
    'args: "$(any true false)"',      # AnySubstitution.__init__() got an unexpected keyword argument 'args'
    'args: "$(all true true)"',
    'args: "$(not a b)"',             # argument counts are checked when the file is parsed
    'args: "$(or true)"',
    'args: "$(equals a)"',
    'args: "$(dirname x)"',
    'args: "$(find-pkg-share a b)"',
    'sigterm_timeout: 5',             # a float attribute does not take an integer
    'respawn_delay: 1',
    'param: [{name: x, value: 0, type: float}]',
    'param: [{name: x, value: [1, 2.5], type: list_of_float}]',
    'param: [{name: x, type: int, param: [{name: y, value: 1}]}]',
]
JAZZY_PARSE = textwrap.dedent('''
    import json, sys
    from launch.launch_description_sources import get_launch_description_from_frontend_launch_file
    refused = []
    for path in json.loads(sys.argv[1]):
        try:
            get_launch_description_from_frontend_launch_file(path)
            refused.append(False)
        except Exception:
            refused.append(True)
    print(json.dumps(refused))
''')


def test_what_dcdrl_launch_refuses_as_jazzy_does_jazzy_refuses(ros2_ws, tmp_path):
    paths = []
    for index, attributes in enumerate(REFUSED_BY_BOTH):
        path = tmp_path / f'case{index}.launch.yaml'
        path.write_text(f'launch:\n- node: {{pkg: p, exec: e, {attributes}}}\n')
        with pytest.raises(LaunchError) as refused:
            load_launch_file(path)
        assert '\n' not in str(refused.value)
        paths.append(str(path))
    jazzy = ChildProcess([ros2_ws.python(), '-c', JAZZY_PARSE, json.dumps(paths)], env=ros2_ws.environment())
    with jazzy:
        jazzy.process.wait(TIMEOUT)
    assert jazzy.process.returncode == 0, '\n'.join(jazzy.lines)
    accepted = [case for case, refused in zip(REFUSED_BY_BOTH, json.loads(jazzy.lines[-1])) if not refused]
    assert accepted == []


# -- launch arguments: choices on both, undeclared names refused by dcdrl launch only ----------------

def test_ros2_launch_refuses_values_outside_the_choices_and_ignores_undeclared_arguments(ros2_ws, tmp_path):
    env = ros2_env(ros2_ws, tmp_path, fresh_domain_id())
    bad = ['num_clients:=5', 'num_clients:=0', 'num_clients:=two', 'mode:=centrl']
    # launch-prefix:=true (what --launch-prefix sets) runs `true` instead of each node: nothing trains
    cases = [(argument,) for argument in bad] + [('num_clent:=3', 'launch-prefix:=true')]
    children = [ChildProcess(ros2_launch(env, 'dcdrl_cloud', 'train.launch.py', *case), env=env, cwd=str(tmp_path))
                for case in cases]
    try:
        for child in children:
            child.process.wait(TIMEOUT)
    finally:
        codes = [child.stop() for child in children]
    for argument, child, code in zip(bad, children, codes):
        name, value = argument.split(':=')
        assert code == 1 and any(f'Argument "{name}" provided value "{value}" is not valid' in line
                                 for line in child.lines), child.lines
        assert not any('process started' in line for line in child.lines)
        with pytest.raises(LaunchError, match=f'provided value "{value}" is not valid'):  # dcdrl launch: the same
            execute_description(load_launch_file(locate_launch_file(['dcdrl_cloud', 'train.launch.yaml'])[0]),
                                {name: value})
    # ros2 launch ignores num_clent: the default graph (3 nodes, 2 clients, each run as `true`); dcdrl launch refuses it
    typo = children[-1]
    assert codes[-1] == 0 and sum('process started' in line for line in typo.lines) == 5, typo.lines
    assert main(['--print', 'dcdrl_cloud', 'train.launch.py', 'num_clent:=3']) == 1


# -- system: the real nodes under ros2 launch, and one Ctrl-C --------------------------------------

def started(line_by_node: dict[str, str]) -> dict[str, str]:
    """{fqn: text of its startup line} -> {fqn: what the line holds, with the node's logger name}."""
    return {fqn: f"[{fqn.strip('/').replace('/', '.')}]: {text}" for fqn, text in line_by_node.items()}


def launched_nodes(package: str, name: str, arguments=()) -> set[str]:
    path, _ = locate_launch_file([package, name])
    context = execute_description(load_launch_file(path), dict(a.split(':=', 1) for a in arguments))
    return {spec.node_name for spec in context.processes}


def assert_clean_stop(launch: ChildProcess, rc: int) -> None:
    """Every process launch started finished cleanly after the Ctrl-C; else which one and what it printed."""
    labels = [m.group(1) for line in launch.lines
              for m in [re.match(r'\[INFO\] \[([\w-]+)\]: process started with pid', line)] if m]
    unclean = [label for label in labels
               if not any(line.startswith(f'[INFO] [{label}]: process has finished cleanly') for line in launch.lines)
               or any(line.startswith(f'[{label}] Traceback') for line in launch.lines)]
    report = []
    for label in unclean:
        own = [line for line in launch.lines if f'[{label}]' in line]
        report.append(f'--- {label}:\n' + '\n'.join(own[-25:]))
    # A traceback under no process label (e.g. from ros2 launch itself): show it and what came before it.
    for i, line in enumerate(launch.lines):
        if 'Traceback' in line and not any(line.startswith(f'[{label}]') for label in unclean):
            report.append('--- traceback:\n' + '\n'.join(launch.lines[max(0, i - 5):i + 25]))
    assert labels and not unclean and rc == 0 and not any('Traceback' in line for line in launch.lines), \
        f'ros2 launch exit {rc}; not stopped cleanly: {unclean}\n' + '\n'.join(report)


def run_and_interrupt(ros2_ws, tmp_path, launches, until=None):
    """Start each `ros2 launch` (one DDS domain), wait for every node's startup line (and ``until``),
    then one Ctrl-C to each launch's process group; asserts that every process stopped cleanly."""
    for case, lines in launches:
        assert set(lines) == launched_nodes(*case), f'{case}: the startup lines expected must name every node'
    env = ros2_env(ros2_ws, tmp_path, fresh_domain_id())
    children = []
    try:
        for (package, name, arguments), _ in launches:
            children.append(ChildProcess(ros2_launch(env, package, name, *arguments), env=env, cwd=str(tmp_path)))
        for child, (_, lines) in zip(children, launches):
            for text in started(lines).values():
                child.wait_for_line(text, TIMEOUT)
        if until is not None:
            until(children)
    finally:
        codes = [child.stop(STOP_TIMEOUT) for child in children]
    for child, rc in zip(children, codes):
        assert_clean_stop(child, rc)


TRAIN_NODES = {'/dcdrl/replay_buffer': 'replay_buffer started', '/dcdrl/learner': 'learner started',
               '/dcdrl/parameter_server': 'parameter_server started',
               **{f'/dcdrl/client_{k}': f'client client_{k} started' for k in range(4)}}
EDGE_NODES = {'/dcdrl/controller': 'controller edge_0 started'}
CLOUD_EDGE_NODES = {'/dcdrl/segment_learner': 'segment learner started', '/dcdrl/scope': 'scope started'}
FACE_SERVER = {'/dcdrl/face_server': 'face_server started'}
FACE_CLOUD = {'/dcdrl/replay_buffer': 'replay_buffer started', '/dcdrl/learner': 'learner started'}
FACE_DEVICE = {'/dcdrl/camera': 'camera started', '/dcdrl/offload_controller': 'offload controller device_0 started'}
RECORDER = {'/dcdrl/bag_recorder': 'Recording... into'}
STREAM_NODES = {'/dcdrl/replay_buffer': 'replay_buffer started',
                '/dcdrl/client_0': 'client client_0 started', '/dcdrl/client_1': 'client client_1 started'}
# What the system tests below start: every block of every config file must reach one of these nodes.
SYSTEM_CASES = [
    (('dcdrl_cloud', 'train.launch.py', ('num_clients:=4', 'duration_s:=20.0', 'record:=true')),
     {**TRAIN_NODES, **RECORDER}),
    (('dcdrl_edge', 'edge.launch.yaml', ()), EDGE_NODES),
    (('dcdrl_cloud', 'cloud_edge.launch.yaml', ()), CLOUD_EDGE_NODES),
    (('dcdrl_cloud', 'cartpole_pretrain.launch.yaml', ()), {'/dcdrl/segment_learner': 'segment learner started',
                                                          **EDGE_NODES}),
    (('dcdrl_cloud', 'cartpole_finetune.launch.yaml', ('scope:=false', 'init_checkpoint:=pretrained.ckpt')),
     {'/dcdrl/segment_learner': 'segment learner started', **EDGE_NODES}),
    (('dcdrl_cloud', 'face_all.launch.yaml', ()), {**FACE_SERVER, **FACE_CLOUD, **FACE_DEVICE}),
    (('dcdrl_edge', 'face_edge_server.launch.yaml', ()), FACE_SERVER),
    (('dcdrl_cloud', 'face_cloud.launch.yaml', ()), FACE_CLOUD),
    (('dcdrl_edge', 'face_device.launch.yaml', ()), FACE_DEVICE),
    (('dcdrl_cloud', 'stream_demo.launch.py', ()), STREAM_NODES),
]


@pytest.mark.parametrize('config', sorted((ROOT / 'config').glob('*.yaml')), ids=lambda path: path.name)
def test_every_block_of_the_config_file_reaches_a_node_the_system_tests_start(config):
    applied = set()  # node keys of this file that some started node takes
    for (package, name, arguments), _ in SYSTEM_CASES:
        path, _ = locate_launch_file([package, name])
        context = execute_description(load_launch_file(path), dict(a.split(':=', 1) for a in arguments))
        for spec in context.processes:
            for params_file in split_ros_args(spec.cmd)[1].params_files:
                if Path(params_file).name == config.name:  # the source tree's or an installed copy
                    applied |= {key for key, _ in parse_parameter_file(params_file)
                                if node_key_matches(key, spec.node_name)}
    assert {key for key, _ in parse_parameter_file(config)} - applied == set()


def case_lines(package: str, name: str) -> tuple:
    return next((case, lines) for case, lines in SYSTEM_CASES if case[:2] == (package, name))


def test_train_launch_py_reaches_training_done_and_ends_by_itself(ros2_ws, tmp_path):
    # All four clients: the $(or ...) condition of client_2 and every client block of config/train.yaml.
    def until(children):
        children[0].wait_for_line('TRAINING DONE', TIMEOUT + 60)
        children[0].process.wait(STOP_TIMEOUT)  # the learner exits; its on_exit: shutdown stops the others

    run_and_interrupt(ros2_ws, tmp_path, [case_lines('dcdrl_cloud', 'train.launch.py')], until=until)
    # record:=true: the recorder (our runtime under the real ros2 launch) closed its bag in the run folder.
    from dcdrl_ros.bag.reader import BagReader
    bags = list((tmp_path / 'runs' / 'train').glob('rosbag2_*'))
    assert len(bags) == 1 and (bags[0] / 'metadata.yaml').is_file()
    reader = BagReader(bags[0])
    counts = dict((topic.name, count) for topic, count in reader.metadata.topics_with_message_count)
    assert reader.damage is None and counts.get('/dcdrl/experience', 0) > 0 and counts.get('/dcdrl/policy', 0) > 0
    assert '/dcdrl/replay/batches' not in counts and '/rosout' not in counts


def test_edge_and_cloud_edge_launch_files_start_together_and_stop_on_one_ctrl_c(ros2_ws, tmp_path):
    # The two hosts of the cloud-edge workflow, here on one machine.
    run_and_interrupt(ros2_ws, tmp_path, [case_lines('dcdrl_edge', 'edge.launch.yaml'),
                                          case_lines('dcdrl_cloud', 'cloud_edge.launch.yaml')])


def test_cartpole_pretrain_launch_starts_and_stops_on_one_ctrl_c(ros2_ws, tmp_path):
    run_and_interrupt(ros2_ws, tmp_path, [case_lines('dcdrl_cloud', 'cartpole_pretrain.launch.yaml')])


def test_cartpole_finetune_launch_starts_from_a_checkpoint_and_stops_on_one_ctrl_c(ros2_ws, tmp_path):
    from dcdrl_learning.agents import Agent, AgentConfig
    from dcdrl_learning.checkpoint import save_checkpoint
    from dcdrl_sim.cartpole.env import CartPoleSwingUpEnv
    env = CartPoleSwingUpEnv()
    agent = Agent(AgentConfig.preset('cloud_edge', seed=0, device='cpu'),
                  env.observation_space.shape[0], env.action_space.shape[0])
    save_checkpoint(tmp_path / 'pretrained.ckpt', agent, version=4)
    run_and_interrupt(ros2_ws, tmp_path, [case_lines('dcdrl_cloud', 'cartpole_finetune.launch.yaml')])


def test_face_all_launch_starts_the_testbed_and_stops_on_one_ctrl_c(ros2_ws, tmp_path):
    run_and_interrupt(ros2_ws, tmp_path, [case_lines('dcdrl_cloud', 'face_all.launch.yaml')])


def test_face_launch_files_of_each_host_start_together_and_stop_on_one_ctrl_c(ros2_ws, tmp_path):
    # Edge host, cloud and device: three launches in one domain, as on three machines.
    run_and_interrupt(ros2_ws, tmp_path, [case_lines('dcdrl_edge', 'face_edge_server.launch.yaml'),
                                          case_lines('dcdrl_cloud', 'face_cloud.launch.yaml'),
                                          case_lines('dcdrl_edge', 'face_device.launch.yaml')])


def test_stream_demo_launch_py_starts_and_stops_on_one_ctrl_c(ros2_ws, tmp_path):
    run_and_interrupt(ros2_ws, tmp_path, [case_lines('dcdrl_cloud', 'stream_demo.launch.py')])
