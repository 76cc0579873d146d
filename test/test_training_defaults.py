"""One source of truth per default of the training graph.

dcdrl_core/training_defaults.py defines them; main_job and every node read them. What cannot import
Python states them as text: the launch files, their config files, the docs' parameter tables and
README.md. These tests fail when that text and the module (or the code) disagree.
"""
import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from dcdrl_core import training_defaults as defaults

ROOT = Path(__file__).resolve().parent.parent


def _launch_defaults(name: str) -> dict:
    entries = yaml.safe_load((ROOT / 'launch' / name).read_text())['launch']
    return {entry['arg']['name']: entry['arg']['default'] for entry in entries if 'arg' in entry}


def test_the_launch_files_and_their_config_state_the_defaults():
    train = _launch_defaults('train.launch.yaml')
    assert {name: train[name] for name in ('env_id', 'mode', 'output_dir', 'network_preset')} == {
        'env_id': defaults.ENV_ID, 'mode': defaults.MODE, 'output_dir': defaults.OUTPUT_DIR,
        'network_preset': defaults.NETWORK_PRESET}
    assert int(train['num_clients']) == defaults.NUM_CLIENTS and int(train['seed']) == defaults.SEED
    assert float(train['duration_s']) == defaults.DURATION_S and float(train['gamma']) == defaults.GAMMA
    assert int(train['expected_models']) == defaults.EXPECTED_MODELS
    assert f'[duration_s:={defaults.DURATION_S}]' in (ROOT / 'launch' / 'train.launch.py').read_text()

    stream = _launch_defaults('stream_demo.launch.yaml')
    assert stream['env_id'] == defaults.ENV_ID and int(stream['num_envs']) == defaults.STREAM_NUM_ENVS
    for values in yaml.safe_load((ROOT / 'config' / 'stream_demo.yaml').read_text()).values():
        parameters = values['ros__parameters']
        if 'env_id' in parameters:  # the clients' blocks
            assert (parameters['env_id'], parameters['num_envs']) == (defaults.ENV_ID, defaults.STREAM_NUM_ENVS)


def test_make_run_and_every_node_of_the_graph_default_to_them():
    from dcdrl_cloud.learner import LearnerConfig
    from dcdrl_cloud.main_job import build_parser
    from dcdrl_cloud.parameter_server import ParameterServerConfig
    from dcdrl_cloud.replay_parameters import ReplayBufferParameters
    from dcdrl_sim.client_logic import ClientConfig
    job = build_parser().parse_args([])
    assert (job.env_id, job.mode, job.num_clients, job.duration, job.seed, job.num_envs) == (
        defaults.ENV_ID, defaults.MODE, defaults.NUM_CLIENTS, defaults.DURATION_S, defaults.SEED,
        defaults.STREAM_NUM_ENVS)
    learner, client, server = LearnerConfig(), ClientConfig(), ParameterServerConfig()
    replay = dataclasses.asdict(ReplayBufferParameters())
    assert {learner.env_id, client.env_id, server.env_id, replay['env_id']} == {defaults.ENV_ID}
    assert {learner.mode, client.mode} == {defaults.MODE}
    assert {learner.network_preset, client.network_preset, server.network_preset} == {defaults.NETWORK_PRESET}
    assert {learner.output_dir, server.output_dir, replay['output_dir']} == {defaults.OUTPUT_DIR}
    assert (learner.duration_s, learner.eval_period_s, server.expected_models) == (
        defaults.DURATION_S, defaults.EVAL_PERIOD_S, defaults.EXPECTED_MODELS)
    assert client.gamma == replay['gamma'] == defaults.GAMMA


def _documented_defaults(page: str, heading: str) -> dict[str, str]:
    """name -> default column of the rows `| `name` | default | meaning |` under a heading of a docs page."""
    text = (ROOT / 'docs' / page).read_text()
    section = text[text.index(heading + '\n') + len(heading):]
    level = heading.split(' ', 1)[0]
    following = re.search(rf'^#{{1,{len(level)}}} ', section, re.M)
    section = section[:following.start()] if following else section
    return {m.group(1): m.group(2).strip().strip('`') for m in re.finditer(r'^\| `(\w+)` \| ([^|]+) \|', section, re.M)}


def _node_defaults(node: str) -> dict:
    from dcdrl_cloud.learner import LearnerConfig
    from dcdrl_cloud.parameter_server import ParameterServerConfig
    from dcdrl_cloud.replay_parameters import ReplayBufferParameters
    from dcdrl_sim.client_logic import ClientConfig
    config = {'learner': LearnerConfig, 'client': ClientConfig, 'parameter_server': ParameterServerConfig,
              'replay_buffer': ReplayBufferParameters}[node]
    return {f.name: f.default for f in dataclasses.fields(config)}


def _differs(shown: str, default) -> bool:
    if isinstance(default, bool):
        return shown != str(default).lower()
    if isinstance(default, str):
        return shown.strip("'") != default
    if isinstance(default, (tuple, list)):  # string-list parameters: the table shows YAML flow style
        return yaml.safe_load(shown) != list(default)
    try:
        return float(shown) != float(default)
    except ValueError:
        return True


@pytest.mark.parametrize('page, heading, node', [
    ('learner.md', '## Parameters', 'learner'),
    ('replay-node.md', '## Parameters', 'replay_buffer'),
    ('client-and-parameter-server.md', '### Client parameters', 'client'),
    ('client-and-parameter-server.md', '### Parameter server parameters', 'parameter_server'),
], ids=['learner', 'replay_buffer', 'client', 'parameter_server'])
def test_the_docs_parameter_tables_state_every_default_as_the_code(page, heading, node):
    documented = _documented_defaults(page, heading)
    wrong = {}
    for name, default in _node_defaults(node).items():
        if default is None:  # "the preset's": said in words
            continue
        if name not in documented:
            wrong[name] = 'not in the table'
        elif _differs(documented[name], default):
            wrong[name] = f'docs {documented[name]}, code {default!r}'
    assert not wrong, f'docs/{page} {heading}: {wrong}'


def test_the_readme_states_the_defaults_of_make_run():
    readme = (ROOT / 'README.md').read_text()
    stated = {
        'training time': re.search(r'after (\d+) s of training', readme),
        'environment': re.search(r'environment\s+\(`(dcdrl_sim/\w+-v\d)`', readme),
        'evaluation period': re.search(r'evaluates itself every (\d+) s', readme),
        'clients': re.search(r'and (\w+) simulated clients', readme),
    }
    assert all(stated.values()), {what: bool(match) for what, match in stated.items()}
    numbers = {'one': 1, 'two': 2, 'three': 3, 'four': 4}
    assert float(stated['training time'].group(1)) == defaults.DURATION_S
    assert stated['environment'].group(1) == defaults.ENV_ID
    assert float(stated['evaluation period'].group(1)) == defaults.EVAL_PERIOD_S
    assert numbers[stated['clients'].group(1)] == defaults.NUM_CLIENTS
    assert f'env_id:={defaults.PAPER_ENV_ID}' in readme or f'--env-id {defaults.PAPER_ENV_ID}' in readme
    assert f'duration_s:={defaults.DURATION_S}' in readme  # the ros2 launch line
