"""dcdrl_ros.param_check: values for undeclared parameters are errors when aimed at the node, warnings when shared."""
import logging

import pytest

from dcdrl_ros.param_check import (
    UnknownParameterError,
    check_no_unknown_parameters,
    find_unknown_parameters,
    is_shared_node_key,
)
from dcdrl_ros.ros_args import split_ros_args

DECLARED = ('capacity', 'gamma', 'output_dir', 'seed')


def _ros_args(*argv):
    return split_ros_args(['prog', '--ros-args', *argv])[1]


def _file(tmp_path, text, name='params.yaml'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize('key, shared', [
    ('/**', True), ('/dcdrl/*', True), ('/**/*', True), ('**', True),
    ('/**/replay_buffer', False), ('/dcdrl/replay_buffer', False), ('replay_buffer', False),
    ('/*/replay_buffer', False)])
def test_shared_node_keys_are_the_wildcard_ones(key, shared):
    assert is_shared_node_key(key) is shared


def test_declared_and_always_known_names_pass():
    args = _ros_args('-p', 'capacity:=10', '-p', 'use_sim_time:=false')
    assert find_unknown_parameters(DECLARED, args, 'replay_buffer', '/dcdrl') == []


def test_a_p_value_for_an_undeclared_name_is_targeted_with_a_suggestion():
    [item] = find_unknown_parameters(DECLARED, _ros_args('-p', 'capacty:=10'), 'replay_buffer', '/dcdrl')
    assert (item.name, item.targeted, item.suggestion) == ('capacty', True, 'capacity')
    assert item.describe() == "unknown parameter 'capacty' (from -p capacty:=10); did you mean 'capacity'?"


def test_node_prefixed_p_counts_only_for_that_node():
    args = _ros_args('-p', 'learner:lr:=0.1')
    assert find_unknown_parameters(DECLARED, args, 'replay_buffer') == []
    [item] = find_unknown_parameters(DECLARED, args, 'learner')   # 'learner:' selects /learner, as in rcl
    assert item.targeted and item.suggestion == ''


def test_file_blocks_naming_the_node_are_targeted_shared_blocks_are_not(tmp_path):
    path = _file(tmp_path, '/**:\n  ros__parameters:\n    env_id: x\n    capacity: 5\n'
                           '/**/replay_buffer:\n  ros__parameters:\n    gama: 0.9\n'
                           '/**/learner:\n  ros__parameters:\n    lr: 0.1\n')
    unknown = find_unknown_parameters(DECLARED, _ros_args('--params-file', path), 'replay_buffer', '/dcdrl')
    by_name = {item.name: item for item in unknown}
    assert set(by_name) == {'env_id', 'gama'}   # lr is for another node; capacity is declared
    assert not by_name['env_id'].targeted and by_name['gama'].targeted
    assert by_name['gama'].suggestion == 'gamma'
    assert f'file {path}, line 7 (block /**/replay_buffer)' in by_name['gama'].source


def test_a_name_set_in_a_shared_and_in_a_targeted_block_is_targeted(tmp_path):
    path = _file(tmp_path, '/**:\n  ros__parameters:\n    extra: 1\n/dcdrl/replay_buffer:\n  ros__parameters:\n'
                           '    extra: 2\n')
    [item] = find_unknown_parameters(DECLARED, _ros_args('--params-file', path), 'replay_buffer', '/dcdrl')
    assert item.targeted


def test_a_predicate_can_stand_for_the_declared_names():
    args = _ros_args('-p', 'a:=1', '-p', 'b:=2')
    [item] = find_unknown_parameters(lambda name: name == 'a', args, 'n')
    assert item.name == 'b' and item.suggestion == ''


@pytest.fixture
def runtime_context():
    from dcdrl_ros.runtime.context import Context
    from dcdrl_ros.testing import fresh_domain_id
    contexts = []

    def make(*ros_argv):
        context = Context()
        context.init(['prog', '--ros-args', *ros_argv], domain_id=fresh_domain_id())
        contexts.append(context)
        return context
    yield make
    for context in contexts:
        context.shutdown()


def test_a_runtime_node_raises_for_targeted_values_and_warns_for_shared_ones(runtime_context, tmp_path, caplog):
    from dcdrl_ros import runtime
    path = _file(tmp_path, '/**:\n  ros__parameters:\n    env_id: x\n')
    context = runtime_context('--params-file', path, '-p', 'capacity:=3')
    node = runtime.Node('replay_buffer', context=context)
    for name in DECLARED:
        node.declare_parameter(name, 0)
    with caplog.at_level(logging.WARNING):
        ignored = check_no_unknown_parameters(node)
    assert [item.name for item in ignored] == ['env_id']
    assert node.get_parameter('capacity').value == 3

    bad = runtime_context('-p', 'capacty:=3')
    node = runtime.Node('replay_buffer', context=bad)
    for name in DECLARED:
        node.declare_parameter(name, 0)
    with pytest.raises(UnknownParameterError, match=r"replay_buffer does not declare: unknown parameter 'capacty' "
                                                    r"\(from -p capacty:=3\); did you mean 'capacity'\?"):
        check_no_unknown_parameters(node)
    assert isinstance(UnknownParameterError('x'), ValueError)   # ros.run_node: one [FATAL] line, exit code 2


def test_an_explicit_argv_is_checked_instead_of_the_context(runtime_context):
    from dcdrl_ros import runtime
    node = runtime.Node('talker', context=runtime_context())
    node.declare_parameter('period_s', 0.5)
    assert check_no_unknown_parameters(node, argv=['prog', '--ros-args', '-p', 'period_s:=1.0']) == []
    with pytest.raises(UnknownParameterError, match="'perod_s'"):
        check_no_unknown_parameters(node, argv=['prog', '--ros-args', '-p', 'perod_s:=1.0'])
