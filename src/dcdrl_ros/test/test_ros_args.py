"""split_ros_args: the --ros-args blocks of ROS 2, parsed as rcl parses them."""
import pytest

from dcdrl_ros.ros_args import RemapRule, RosArgs, RosArgsError, remove_ros_args, split_ros_args


def test_user_args_are_kept_in_order_around_several_blocks():
    user, rules = split_ros_args(['prog', 'a', '--ros-args', '-p', 'x:=1', '--', 'b',
                                  '--ros-args', '-r', '__node:=n', '-r', 'c:=d'])
    assert user == ['prog', 'a', 'b']
    assert rules.param_overrides == {'x': 1}
    assert rules.node_name == 'n'
    assert rules.remaps == {'c': 'd'}


def test_bare_rule_inside_block_is_an_error_with_a_hint():
    with pytest.raises(RosArgsError, match=r"unknown ROS argument 'c:=d'.*did you mean '-r c:=d'"):
        split_ros_args(['--ros-args', 'c:=d'])


def test_nested_ros_args_flag_is_ignored_and_double_dash_ends_block():
    user, rules = split_ros_args(['--ros-args', '--ros-args', '-p', 'a:=2', '--', '-p', 'b:=3'])
    assert user == ['-p', 'b:=3']
    assert rules.param_overrides == {'a': 2}


def test_parameter_values_are_typed_like_rcl():
    _, rules = split_ros_args([
        '--ros-args', '-p', 'i:=1', '-p', 'f:=1.0', '-p', 'b:=true', '-p', 'l:=[1, 2]',
        '--param', "s:='1'", '-p', 'w:=hello world', '-p', 'e:=1e3', '-p', 'y:=yes',
        '-p', 'ls:=[a, b]', '-p', 'lf:=[0.5, 1.5]', '-p', 'h:=0x10'])
    values = rules.param_overrides
    assert values == {'i': 1, 'f': 1.0, 'b': True, 'l': [1, 2], 's': '1', 'w': 'hello world',
                      'e': 1000.0, 'y': True, 'ls': ['a', 'b'], 'lf': [0.5, 1.5], 'h': 16}
    assert type(values['i']) is int and type(values['f']) is float and type(values['e']) is float


def test_later_param_wins_and_params_files_keep_order():
    _, rules = split_ros_args(['--ros-args', '-p', 'a:=1', '--params-file', 'one.yaml',
                               '-p', 'a:=2', '--params-file', 'two.yaml'])
    assert rules.param_overrides == {'a': 2}
    assert rules.params_files == ['one.yaml', 'two.yaml']


def test_first_remap_rule_wins_like_rcl():
    _, rules = split_ros_args(['--ros-args', '-r', '__node:=first', '-r', '__node:=second',
                               '-r', 'chatter:=a', '--remap', 'chatter:=b', '-r', '__ns:=/robot1'])
    assert rules.node_name == 'first'
    assert rules.namespace == '/robot1'
    assert rules.remaps == {'chatter': 'a'}
    resolved = rules.resolve('talker')
    assert (resolved.node_name, resolved.namespace, resolved.remaps) == ('first', '/robot1', {'chatter': 'a'})
    assert resolved.fully_qualified_name == '/robot1/first'


def test_node_specific_rules_apply_only_to_that_node():
    _, rules = split_ros_args(['--ros-args', '-r', 'talker:__node:=speaker', '-r', 'listener:chatter:=in',
                               '-r', 'speaker:chatter:=out', '-p', 'listener:rate:=5'])
    assert rules.node_name is None and rules.remaps == {}
    assert rules.remap_rules[0] == RemapRule('talker', '__node', 'speaker')
    talker = rules.resolve('talker')
    # __node matches the name given in code; topic remaps match the final name.
    assert talker.node_name == 'speaker' and talker.remaps == {'chatter': 'out'}
    listener = rules.resolve('listener')
    assert listener.node_name == 'listener' and listener.remaps == {'chatter': 'in'}
    assert {k: v.value for k, v in listener.param_overrides.items()} == {'rate': 5}
    assert talker.param_overrides == {}


def test_url_style_remap_is_not_mistaken_for_a_node_prefix():
    _, rules = split_ros_args(['--ros-args', '-r', 'rostopic://chatter:=/other'])
    assert rules.remap_rules == [RemapRule(None, 'rostopic://chatter', '/other')]


@pytest.mark.parametrize('rule, message', [
    ('__ns:=robot1', "not a fully qualified namespace.*must start with '/'"),
    ('__node:=9lives', 'not a valid node name'),
    ('__node:=a/b', 'not a valid node name'),
    ('chatter', "must look like 'from:=to'"),
    ('chatter:=', "'' is not a valid to name"),
    ('a b:=c', "'a b' is not a valid from name"),
])
def test_bad_remap_rules_are_named(rule, message):
    with pytest.raises(RosArgsError, match=message):
        split_ros_args(['--ros-args', '-r', rule])


@pytest.mark.parametrize('argv, message', [
    (['--ros-args', '--bogus'], "unknown ROS argument '--bogus'"),
    (['--ros-args', '-p'], "'-p' at the end of --ros-args needs a rule"),
    (['--ros-args', '--params-file'], "needs a file path"),
    (['--ros-args', '-p', 'rate'], "must look like 'name:=value'"),
    (['--ros-args', '-p', 'rate:='], 'no value'),
    (['--ros-args', '-p', 'mixed:=[1, 2.5]'], 'all list items must have one type'),
    (['--ros-args', '-p', 'empty:=[]'], 'empty list'),
    (['--ros-args', '-p', 'm:={a: 1}'], 'maps are not allowed'),
    (['--ros-args', '--log-level', 'LOUD'], "'LOUD' is not a log level"),
])
def test_bad_arguments_raise_a_clear_value_error(argv, message):
    with pytest.raises(RosArgsError, match=message) as info:
        split_ros_args(argv)
    assert isinstance(info.value, ValueError)


def test_log_levels_and_accepted_flags():
    _, rules = split_ros_args(['--ros-args', '--log-level', 'debug', '--log-level', 'talker:=WARNING',
                               '-e', '/enclave', '--disable-rosout-logs', '--log-file-name', 'x'])
    assert rules.log_level == 'DEBUG'
    assert rules.logger_levels == {'talker': 'WARN'}
    assert rules.enclave == '/enclave'
    assert '--disable-rosout-logs' in rules.ignored


def test_to_argv_parses_back_to_the_same_rules():
    argv = ['--ros-args', '-r', '__node:=n', '-r', 'talker:a:=b', '--params-file', 'f.yaml',
            '-p', 'i:=3', '-p', 's:=text', '-p', "q:='3'", '-p', 'l:=[1.5, 2.0]', '-p', 'node:x:=true',
            '--log-level', 'INFO', '--log-level', 'node:=ERROR']
    _, rules = split_ros_args(argv)
    _, again = split_ros_args(rules.to_argv())
    for field in ('node_name', 'namespace', 'remaps', 'params_files', 'param_overrides', 'log_level',
                  'logger_levels', 'remap_rules', 'node_param_overrides'):
        assert getattr(again, field) == getattr(rules, field), field
    assert RosArgs().to_argv() == []


def test_parameter_overrides_merge_files_then_command_line(tmp_path):
    first = tmp_path / 'first.yaml'
    first.write_text('/**:\n  ros__parameters:\n    rate: 1.0\n    name: a\n    depth: 3\n')
    second = tmp_path / 'second.yaml'
    second.write_text('/ns/talker:\n  ros__parameters:\n    name: b\n')
    _, rules = split_ros_args(['--ros-args', '-p', 'rate:=2.5', '--params-file', str(first),
                               '--params-file', str(second)])
    overrides = rules.parameter_overrides_for('talker', '/ns')
    assert {k: v.value for k, v in overrides.items()} == {'rate': 2.5, 'name': 'b', 'depth': 3}
    assert overrides['rate'].source == '-p rate:=2.5'  # -p wins even when written before the file
    assert overrides['depth'].source == f'file {first}, line 5'
    assert {k: v.value for k, v in rules.parameter_overrides_for('other').items()} == {
        'rate': 2.5, 'name': 'a', 'depth': 3}


def test_remove_ros_args():
    assert remove_ros_args(['prog', '--ros-args', '-p', 'a:=1', '--', 'x']) == ['prog', 'x']
