"""Bad parameter files and -p values stop a node at start with one clear line and exit code 2.

For the learner, segment_learner, replay_buffer, client, controller, face_server and
parameter_server: a value of the wrong type, an out-of-range value and a value for a parameter the
node does not declare (docs/robustness.md). The nodes' ``main`` runs in this process (our runtime,
a fresh loopback domain): start-up fails before any thread or endpoint exists, so each case takes
milliseconds; a watchdog shuts the runtime down if a node starts anyway, and the case then fails.
One case runs a real process to show the exit status end to end.
"""
from __future__ import annotations

import importlib
import inspect
import signal
import sys
import threading

import pytest

from dcdrl_ros.testing import ChildProcess, fresh_domain_id, loopback_env

WATCHDOG_S = 30.0   # a node that starts despite a bad value is stopped after this long (and the case fails)

# (module, executable label, parameter-file block, wrong type, out of range, unknown name)
#   wrong type / out of range: (yaml line in the node's block, fragment of the FATAL line)
NODES = {
    'replay_buffer': ('dcdrl_cloud.replay_buffer_node', '/**/replay_buffer',
                      ('capacity: lots',
                       "Trying to set parameter 'capacity' to 'lots' of type 'STRING', expecting type 'INTEGER'"),
                      ('gamma: 1.5', 'Parameter gamma out of range'),
                      'capacty'),
    'learner': ('dcdrl_cloud.learner_node', '/**/learner',
                ('batch_size: 64.0',
                 "Trying to set parameter 'batch_size' to '64.0' of type 'DOUBLE', expecting type 'INTEGER'"),
                ('prefetch_batches: 0', 'prefetch_batches'),
                'lr'),
    'segment_learner': ('dcdrl_cloud.segment_learner_node', '/**/segment_learner',
                         ('max_devices: [1, 2]',
                          "Trying to set parameter 'max_devices' to '[1, 2]' of type 'INTEGER_ARRAY',"
                          " expecting type 'INTEGER'"),
                         ('max_devices: 0', 'max_devices'),
                         'max_device'),
    'client': ('dcdrl_sim.client_node', '/**/client',
               ('num_envs: 2.5',
                "Trying to set parameter 'num_envs' to '2.5' of type 'DOUBLE', expecting type 'INTEGER'"),
               ('publish_rate_hz: 0.0', 'publish_rate_hz must be > 0'),
               'num_env'),
    'controller': ('dcdrl_edge.controller_node', '/**/controller',
                   ('rate_hz: fast',
                    "Trying to set parameter 'rate_hz' to 'fast' of type 'STRING', expecting type 'DOUBLE'"),
                   ('rate_hz: 0.0', 'rate_hz'),
                   'rate'),
    'face_server': ('dcdrl_edge.face_server_node', '/**/face_server',
                    ('max_image_bytes: "2MB"',
                     "Trying to set parameter 'max_image_bytes' to '2MB' of type 'STRING', expecting type 'INTEGER'"),
                    ('tolerance: 2.0', 'Parameter tolerance out of range'),
                    'max_bytes'),
    'parameter_server': ('dcdrl_cloud.parameter_server_node', '/**/parameter_server',
                         ('expected_models: three',
                          "Trying to set parameter 'expected_models' to 'three' of type 'STRING',"
                          " expecting type 'INTEGER'"),
                         ('min_models: 0', 'Parameter min_models out of range'),
                         'expected_model'),
}
# Node names given with -r __node:= (the file blocks above name them) and extra settings per case.
NODE_NAME = {'client': 'client'}
EXTRA: dict[str, list[str]] = {}
# The nodes with an output_dir (kept out of the working tree).
WRITES_FILES = ('replay_buffer', 'learner', 'segment_learner', 'parameter_server')
# The module whose source must call check_no_unknown_parameters for the unknown-key case to apply.
CHECKED_IN: dict[str, str] = {}


@pytest.fixture
def run_main(monkeypatch, tmp_path, capsys):
    """Runs a node module's main in this process; returns (exit code, the [FATAL] lines)."""
    from dcdrl_ros.runtime.context import default_context
    monkeypatch.setenv('ROS_DOMAIN_ID', str(fresh_domain_id()))
    monkeypatch.setenv('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    monkeypatch.setenv('DCDRL_BACKEND', 'cyclone')
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    switch_interval = sys.getswitchinterval()

    def run(module_name: str, args: list[str]) -> tuple[object, list[str]]:
        module = importlib.import_module(module_name)
        watchdog = threading.Timer(WATCHDOG_S, default_context.request_shutdown)
        watchdog.start()
        try:
            try:
                module.main(['prog', '--ros-args', '-r', '__ns:=/dcdrl', *args])
                code: object = 0
            except SystemExit as error:
                code = error.code
        finally:
            watchdog.cancel()
            for signum, handler in previous.items():   # ros.run_node installed its own
                signal.signal(signum, handler)
            sys.setswitchinterval(switch_interval)
        err = capsys.readouterr().err
        return code, [line for line in err.splitlines() if line.startswith('[FATAL]')]
    return run


def _case_args(label: str, tmp_path, line: str = '', extra_p: tuple[str, ...] = ()) -> tuple[str, list[str]]:
    module, block = NODES[label][0], NODES[label][1]
    args = ['-r', f'__node:={NODE_NAME.get(label, block.rsplit("/", 1)[1])}', *EXTRA.get(label, [])]
    if label in WRITES_FILES:   # only nodes that declare output_dir get it (an undeclared -p stops a node)
        args += ['-p', f'output_dir:={tmp_path / "out"}']
    if line:
        path = tmp_path / 'params.yaml'
        path.write_text(f'{block}:\n  ros__parameters:\n    {line}\n')
        args += ['--params-file', str(path)]
    for setting in extra_p:
        args += ['-p', setting]
    return module, args


@pytest.mark.parametrize('label', sorted(NODES))
def test_a_value_of_the_wrong_type_in_a_parameter_file(label, run_main, tmp_path):
    line, fragment = NODES[label][2]
    module, args = _case_args(label, tmp_path, line)
    code, fatal = run_main(module, args)
    assert code == 2, f'{label} did not stop with exit code 2 ({code}) for {line!r}'
    assert len(fatal) == 1 and fragment in fatal[0], fatal
    assert 'params.yaml, line 3' in fatal[0]   # names where the value came from


@pytest.mark.parametrize('label', sorted(NODES))
def test_an_out_of_range_value_in_a_parameter_file(label, run_main, tmp_path):
    line, fragment = NODES[label][3]
    module, args = _case_args(label, tmp_path, line)
    code, fatal = run_main(module, args)
    assert code == 2, f'{label} did not stop with exit code 2 ({code}) for {line!r}'
    assert len(fatal) == 1 and fragment in fatal[0], fatal


def _checks_unknown_parameters(label: str) -> bool:
    module = importlib.import_module(CHECKED_IN.get(label, NODES[label][0]))
    source = inspect.getsource(module)   # declare_parameters (a parameter dataclass) makes the check itself
    return 'check_no_unknown_parameters(' in source or 'declare_parameters(' in source


@pytest.mark.parametrize('how', ['file', '-p'])
@pytest.mark.parametrize('label', sorted(NODES))
def test_a_value_for_a_parameter_the_node_does_not_declare(label, how, run_main, tmp_path):
    if not _checks_unknown_parameters(label):
        pytest.skip(f'{NODES[label][0]} does not call dcdrl_ros.param_check.check_no_unknown_parameters yet '
                    f'(docs/robustness.md lists the one-line call per node); without it rclpy semantics apply: '
                    f'the value is silently ignored')
    name = NODES[label][4]
    if how == 'file':
        module, args = _case_args(label, tmp_path, f'{name}: 1')
        source = 'params.yaml, line 3'
    else:
        module, args = _case_args(label, tmp_path, extra_p=(f'{name}:=1',))
        source = f'-p {name}:=1'
    code, fatal = run_main(module, args)
    assert code == 2, f'{label} did not stop with exit code 2 ({code}) for the unknown parameter {name!r}'
    assert len(fatal) == 1 and f"unknown parameter '{name}'" in fatal[0] and source in fatal[0], fatal


def test_an_undeclared_value_in_a_shared_block_is_not_an_error(tmp_path, run_main):
    """A '/**' block sets values for every node kind: each takes what it declares (rclpy semantics)."""
    path = tmp_path / 'shared.yaml'
    path.write_text('/**:\n  ros__parameters:\n    some_other_nodes_setting: 3\n'
                    '/**/replay_buffer:\n  ros__parameters:\n    capacity: 0\n')
    code, fatal = run_main('dcdrl_cloud.replay_buffer_node',
                           ['--params-file', str(path), '-p', f'output_dir:={tmp_path}'])
    assert code == 2 and len(fatal) == 1 and 'Parameter capacity out of range' in fatal[0], fatal


@pytest.mark.parametrize('module, mode, executable', [
    ('dcdrl_cloud.learner_node', 'segments', 'ros2 run dcdrl_cloud segment_learner'),
    ('dcdrl_edge.controller_node', 'offload', 'ros2 run dcdrl_edge offload_controller')])
def test_a_mode_that_became_its_own_executable_names_it(module, mode, executable, run_main, tmp_path):
    code, fatal = run_main(module, ['-p', f'mode:={mode}', '-p', f'output_dir:={tmp_path}']
                           if module.startswith('dcdrl_cloud') else ['-p', f'mode:={mode}'])
    assert code == 2 and len(fatal) == 1 and f"mode '{mode}' is its own executable now: {executable}" in fatal[0], fatal


def test_a_real_process_exits_with_code_2_and_one_line(tmp_path):
    path = tmp_path / 'client.yaml'
    path.write_text('/**/client_3:\n  ros__parameters:\n    batch_steps: many\n')
    argv = [sys.executable, '-m', 'dcdrl_ros.cli', 'run', 'dcdrl_sim', 'client', '--ros-args',
            '-r', '__node:=client_3', '--params-file', str(path)]
    child = ChildProcess(argv, env=loopback_env(fresh_domain_id()))
    try:
        assert child.process.wait(60.0) == 2
    finally:
        child.stop()
    fatal = [line for line in child.lines if line.startswith('[FATAL]')]
    assert fatal == [f"[FATAL] SimulatedClient: Trying to set parameter 'batch_steps' to 'many' of type 'STRING', "
                     f"expecting type 'INTEGER': batch_steps (from file {path}, line 3)"], child.lines
    assert not any('Traceback' in line for line in child.lines)


# ---------------------------------------------------------------------------------------------
# The shipped parameter files only set parameters their nodes declare (so that the unknown-key
# check cannot stop a shipped launch). Each node is built in this process with the file and one
# parameter it does not declare: its unknown-key check stops it right after the declarations
# (a value out of a declared range would stop it at that declaration); the declared names are recorded.
# ---------------------------------------------------------------------------------------------
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
NOT_DECLARED = 'not_declared_by_any_node'
NODE_MODULES = {
    'replay_buffer': 'dcdrl_cloud.replay_buffer_node',
    'learner': 'dcdrl_cloud.learner_node',
    'segment_learner': 'dcdrl_cloud.segment_learner_node',
    'parameter_server': 'dcdrl_cloud.parameter_server_node',
    'client': 'dcdrl_sim.client_node',
    'controller': 'dcdrl_edge.controller_node',
    'offload_controller': 'dcdrl_edge.offload_node',
    'face_server': 'dcdrl_edge.face_server_node',
    'camera': 'dcdrl_edge.camera_node',
    'scope': 'dcdrl_cloud.scope_node',
}


def _shipped_blocks() -> list[tuple[str, str, str, str]]:
    """(file, node key, node name, node kind) of every block in config/*.yaml."""
    from dcdrl_ros.param_files import parse_parameter_file
    blocks = []
    for path in sorted((ROOT / 'config').glob('*.yaml')):
        for node_key, _ in parse_parameter_file(path):
            name = node_key.rstrip('/').rsplit('/', 1)[-1]
            if name == '**':
                continue   # a block for every node: test_parameter_docs checks that its nodes declare it
            kind = 'client' if name.startswith('client_') else name
            blocks.append((path.name, node_key, name, kind))
    return blocks


@pytest.mark.parametrize('file, node_key, name, kind', _shipped_blocks())
def test_shipped_parameter_files_set_only_declared_parameters(file, node_key, name, kind, run_main, monkeypatch):
    from dcdrl_ros import runtime
    from dcdrl_ros.param_check import find_unknown_parameters
    from dcdrl_ros.ros_args import split_ros_args
    assert kind in NODE_MODULES, f'{file}: block {node_key} is for a node kind this test does not know'
    module = NODE_MODULES[kind]
    declared: list[str] = []
    original = runtime.Node.declare_parameter

    def recording(self, parameter_name, *args, **kwargs):
        declared.append(parameter_name)
        return original(self, parameter_name, *args, **kwargs)
    monkeypatch.setattr(runtime.Node, 'declare_parameter', recording)
    args = ['-r', f'__node:={name}', '--params-file', str(ROOT / 'config' / file), '-p', f'{NOT_DECLARED}:=1']
    code, fatal = run_main(module, args)
    assert code == 2 and len(fatal) == 1 and NOT_DECLARED in fatal[0], (code, fatal)
    ros_args = split_ros_args(['prog', '--ros-args', '--params-file', str(ROOT / 'config' / file)])[1]
    unknown = find_unknown_parameters(declared, ros_args, name, '/dcdrl')
    assert unknown == [], f'{file} sets parameters {name} does not declare: ' + '; '.join(u.describe() for u in unknown)
