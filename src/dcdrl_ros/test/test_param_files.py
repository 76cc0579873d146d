"""ROS 2 parameter files and parameter types, as rcl_yaml_param_parser and rclpy handle them."""
import enum
import math

import pytest

from dcdrl_ros.param_files import (
    InvalidParameterTypeError,
    ParameterFileError,
    ParameterTable,
    check_parameter_type,
    format_parameter_value,
    fully_qualified_name,
    load_parameter_files,
    node_key_matches,
    parameter_value_type,
    parse_parameter_text,
    parse_parameter_value,
)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_load_flattens_nested_maps_and_types_values(tmp_path):
    path = write(tmp_path, 'p.yaml', """
talker:
  ros__parameters:
    rate: 10
    gain: 0.5
    on: true
    name: fast
    quoted: "42"
    tagged: !!str 7
    sizes: [1, 2, 3]
    names: [a, b]
    net:
      hidden: [64.0, 64.0]
      act: {kind: relu}
""")
    params = load_parameter_files([path], 'talker', '/')
    assert params == {'rate': 10, 'gain': 0.5, 'on': True, 'name': 'fast', 'quoted': '42', 'tagged': '7',
                      'sizes': [1, 2, 3], 'names': ['a', 'b'], 'net.hidden': [64.0, 64.0], 'net.act.kind': 'relu'}
    assert type(params['rate']) is int and type(params['gain']) is float


@pytest.mark.parametrize('text, expected', [
    ('1', 1), ('-7', -7), ('0x1f', 31), ('010', 8), ('08', 8.0), ('1.5', 1.5), ('1e3', 1000.0),
    ('.inf', math.inf), ('-.Inf', -math.inf), ('inf', math.inf), ('yes', True), ('Off', False),
    ('y', True), ('N', False), ('1_000', '1_000'), ('~', '~'), ('null', 'null'), ('1e999', '1e999'),
    ("'true'", 'true'), ('"1.0"', '1.0'), ('hello world', 'hello world'), ('99999999999999999999', 1e20),
])
def test_scalars_are_typed_like_rcl_not_like_pyyaml(text, expected):
    value = parse_parameter_value(text)
    assert value == expected and type(value) is type(expected)


def test_nan_is_a_double():
    assert math.isnan(parse_parameter_value('.nan')) and math.isnan(parse_parameter_value('nan'))


def test_node_keys_nest_into_namespaces():
    entries = parse_parameter_text("""
/robot:
  arm:
    ros__parameters: {a: 1}
ns:
  node:
    ros__parameters: {b: 2}
/**:
  client_0:
    ros__parameters: {c: 3}
""", 'x.yaml')
    assert [key for key, _ in entries] == ['/robot/arm', 'ns/node', '/**/client_0']


@pytest.mark.parametrize('key, fqn, matches', [
    ('/**', '/talker', True), ('/**', '/a/b/talker', True),
    ('talker', '/talker', True), ('/talker', '/talker', True), ('talker', '/ns/talker', False),
    ('/ns/talker', '/ns/talker', True), ('ns/talker', '/ns/talker', True), ('/ns/talker', '/talker', False),
    ('/**/talker', '/talker', True), ('/**/talker', '/a/b/talker', True), ('/**/talker', '/a/listener', False),
    ('/*/talker', '/a/talker', True), ('/*/talker', '/talker', False), ('/*/talker', '/a/b/talker', False),
    ('/*', '/talker', True), ('/*', '/a/talker', False), ('/ns/*', '/ns/x', True), ('/ns/**', '/ns/a/b', True),
])
def test_wildcards_match_like_rclpy(key, fqn, matches):
    assert node_key_matches(key, fqn) is matches


def test_fully_qualified_name():
    assert fully_qualified_name('n', '/') == '/n'
    assert fully_qualified_name('n', '') == '/n'
    assert fully_qualified_name('n', '/a/b/') == '/a/b/n'
    assert fully_qualified_name('n', 'a') == '/a/n'


def test_entries_apply_in_order_of_first_appearance_across_files(tmp_path):
    # rcl merges all files into one table keyed by node key; rclpy applies matching keys in
    # table order. So a node-specific block after '/**' wins, and one before it loses.
    one = write(tmp_path, 'one.yaml', '/**:\n  ros__parameters: {a: 1, b: 1}\n/n:\n  ros__parameters: {a: 2}\n')
    two = write(tmp_path, 'two.yaml', '/**:\n  ros__parameters: {a: 3, b: 3}\n')
    assert load_parameter_files([one], 'n') == {'a': 2, 'b': 1}
    # two.yaml updates the '/**' entry in place; '/n' still comes after it in the table.
    assert load_parameter_files([one, two], 'n') == {'a': 2, 'b': 3}
    assert load_parameter_files([two, one], 'n') == {'a': 2, 'b': 1}
    specific_first = write(tmp_path, 'three.yaml', '/n:\n  ros__parameters: {a: 2}\n/**:\n  ros__parameters: {a: 4}\n')
    assert load_parameter_files([specific_first], 'n') == {'a': 4}
    assert load_parameter_files([one], 'other', '/ns') == {'a': 1, 'b': 1}


def test_later_file_overrides_same_key(tmp_path):
    one = write(tmp_path, 'one.yaml', 'n:\n  ros__parameters: {a: 1, b: 1}\n')
    two = write(tmp_path, 'two.yaml', 'n:\n  ros__parameters: {a: 2}\n')
    assert load_parameter_files([one, two], 'n') == {'a': 2, 'b': 1}
    table = ParameterTable()
    table.add_file(one)
    table.add_file(two)
    assert table.keys == ['n']
    assert table.for_node('n')['a'].source == f'file {two}, line 2'


@pytest.mark.parametrize('text, message', [
    ('talker:\n  rate: 1\n', "line 2: 'rate' has a value before ros__parameters"),
    ('ros__parameters:\n  a: 1\n', 'line 1: there is no node name before ros__parameters'),
    ('/**/client_*:\n  ros__parameters: {a: 1}\n', "partial wildcards like 'client_\\*' are not supported"),
    ('9node:\n  ros__parameters: {a: 1}\n', "invalid node name '9node'"),
    ('/a//b:\n  ros__parameters: {a: 1}\n', 'repeated'),
    ('n:\n  ros__parameters:\n    a: [1, 2.0]\n', "line 3: parameter 'a': all list items must have one type"),
    ('n:\n  ros__parameters:\n    a: []\n', "line 3: parameter 'a' is an empty list"),
    ('n:\n  ros__parameters:\n    a: [[1], [2]]\n', 'lists may hold only scalars'),
    ('n:\n  ros__parameters:\n    a:\n', "line 3: parameter 'a' has no value"),
    ('n:\n  ros__parameters:\n    a: &x 1\n    b: *x\n', 'line 3: YAML anchors and aliases are not supported'),
    ('n:\n  ros__parameters:\n    a: [1, 2\n', 'not valid YAML'),
    ('- n\n- m\n', 'the top level must be a map of node names'),
    ('n:\n  ros__parameters: 5\n', 'must be a map of parameter names'),
])
def test_malformed_files_name_file_line_and_problem(tmp_path, text, message):
    path = write(tmp_path, 'bad.yaml', text)
    with pytest.raises(ParameterFileError, match=message) as info:
        load_parameter_files([path], 'n')
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ParameterFileError, match='missing.yaml: cannot read it'):
        load_parameter_files([tmp_path / 'missing.yaml'], 'n')


def test_empty_file_and_empty_parameter_block_give_nothing(tmp_path):
    assert load_parameter_files([write(tmp_path, 'e.yaml', '')], 'n') == {}
    assert load_parameter_files([write(tmp_path, 'f.yaml', 'n:\n  ros__parameters:\n')], 'n') == {}


@pytest.mark.parametrize('value, kind', [
    (True, 'bool'), (3, 'integer'), (3.0, 'double'), ('x', 'string'), (b'ab', 'byte_array'),
    ([b'a', b'b'], 'byte_array'), ([True], 'bool_array'), ([1, 2], 'integer_array'),
    ([1.0], 'double_array'), (('a', 'b'), 'string_array'), (None, 'not_set'),
])
def test_parameter_value_type(value, kind):
    assert parameter_value_type(value) == kind


@pytest.mark.parametrize('value, message', [
    ([], 'empty list has no ROS 2 parameter type'),
    ([1, 'a'], 'holds one type'),
    ({'a': 1}, 'dict .* is not a ROS 2 parameter type'),
])
def test_parameter_value_type_rejects_non_ros_values(value, message):
    with pytest.raises(TypeError, match=message):
        parameter_value_type(value)


def test_check_type_gives_the_promised_message():
    with pytest.raises(InvalidParameterTypeError) as info:
        check_parameter_type('x', 1.0, 'abc', '-p x:=abc')
    assert str(info.value) == "parameter 'x' expects double, got string 'abc' (from -p x:=abc)"
    with pytest.raises(InvalidParameterTypeError,
                       match=r"'rate' expects integer, got double 2.5 \(from file f.yaml, line 3\)"):
        check_parameter_type('rate', 'integer', 2.5, 'file f.yaml, line 3')
    with pytest.raises(InvalidParameterTypeError, match="'on' expects bool, got integer 1$"):
        check_parameter_type('on', bool, 1)
    assert isinstance(InvalidParameterTypeError('x'), TypeError)


def test_int_is_accepted_for_double_by_default_and_converted():
    value = check_parameter_type('rate', 10.0, 10)
    assert value == 10.0 and type(value) is float
    assert check_parameter_type('gains', [1.0], [1, 2]) == [1.0, 2.0]
    with pytest.raises(InvalidParameterTypeError, match='expects double, got integer 10'):
        check_parameter_type('rate', 10.0, 10, int_as_double=False)
    with pytest.raises(InvalidParameterTypeError, match='expects integer, got double'):
        check_parameter_type('count', 3, 3.0)  # never the other way round


def test_check_type_accepts_enum_members_and_type_names():
    class Type(enum.IntEnum):  # like rclpy's Parameter.Type
        NOT_SET = 0
        DOUBLE = 3
        STRING_ARRAY = 9

    assert check_parameter_type('a', Type.DOUBLE, 2) == 2.0
    assert check_parameter_type('b', Type.STRING_ARRAY, ['x']) == ['x']
    assert check_parameter_type('c', Type.NOT_SET, 'anything') == 'anything'
    with pytest.raises(InvalidParameterTypeError, match='expects string array, got integer array'):
        check_parameter_type('b', Type.STRING_ARRAY, [1])
    assert check_parameter_type('d', 'float', 1) == 1.0
    assert check_parameter_type('e', str, 'ok') == 'ok'


@pytest.mark.parametrize('value', [
    0, -5, 1.0, 0.1, 1e-05, 1e300, -2.5, math.inf, -math.inf, True, False, '', 'x', '1', '1.0', 'true',
    "it's", 'a: b', '[1, 2]', 'line\nbreak', 'tab\there', 'ünïcode', [1, 2], [0.5, 1.0], [True, False],
    ['a', "b'c", '3'], '#comment', '  padded  ', '~', 'null',
])
def test_format_then_parse_round_trips_value_and_type(value):
    parsed = parse_parameter_value(format_parameter_value(value))
    assert parsed == value and type(parsed) is type(value)
    if isinstance(value, list):
        assert [type(v) for v in parsed] == [type(v) for v in value]


def test_format_rejects_what_ros_cannot_hold():
    with pytest.raises(ValueError, match='empty list'):
        format_parameter_value([])
    with pytest.raises(TypeError, match='cannot render dict'):
        format_parameter_value({'a': 1})
