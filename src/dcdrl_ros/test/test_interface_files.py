"""The .msg/.srv files are valid ROS 2 interfaces: an independent parser (rosbags) reads them
with the same fields as ours, and ours refuses what ROS 2 refuses, naming the line."""
import os

import pytest
from rosbags.typesys import get_types_from_msg

from dcdrl_ros import idl

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', '..'))
MSGS = os.path.join(ROOT, 'src', 'dcdrl_msgs')


def _files(kind):
    folder = os.path.join(MSGS, kind)
    return sorted(f for f in os.listdir(folder) if f.endswith('.' + kind))


def _rosbags_fields(text, name):
    definitions = get_types_from_msg(text, f'dcdrl_msgs/msg/{name}')
    constants, fields = definitions[f'dcdrl_msgs/msg/{name}']
    return [c[0] for c in constants], [f[0] for f in fields]


@pytest.mark.parametrize('filename', _files('msg'))
def test_messages_parse_alike_in_rosbags_and_ours(filename):
    name = filename[:-4]
    text = open(os.path.join(MSGS, 'msg', filename)).read()
    ours = idl.parse_message(text, 'dcdrl_msgs', name)
    constants, fields = _rosbags_fields(text, name)
    assert [f.name for f in ours.fields] == fields
    assert [c.name for c in ours.constants] == constants


@pytest.mark.parametrize('filename', _files('srv'))
def test_services_parse_alike_in_rosbags_and_ours(filename):
    name = filename[:-4]
    text = open(os.path.join(MSGS, 'srv', filename)).read()
    ours = idl.parse_service(text, 'dcdrl_msgs', name)
    request, response = text.split('\n---\n')
    assert [f.name for f in ours.request.fields] == _rosbags_fields(request, name + '_Request')[1]
    assert [f.name for f in ours.response.fields] == _rosbags_fields(response, name + '_Response')[1]


def test_every_file_documents_itself():
    for kind in ('msg', 'srv'):
        for filename in _files(kind):
            first = open(os.path.join(MSGS, kind, filename)).readline()
            assert first.startswith('#'), f'{filename} should start with a comment saying what it is'


@pytest.mark.parametrize('text, problem', [
    ('int32 Bad_Name', 'invalid field name'),
    ('int32 double__underscore', 'invalid field name'),
    ('int32 trailing_', 'invalid field name'),
    ('int32 x\nint32 x', 'duplicate field'),
    ('uint8 lower = 3', 'must be UPPER_CASE'),
    ('uint8 X = 300', 'out of range'),
    ('float32[0] empty', 'length 0'),
    ('int32[<=] x', 'needs a bound'),
    ('time stamp', 'ROS 1'),
    ('int32 x 1.5', 'invalid literal'),
])
def test_invalid_definitions_are_refused_with_the_line(text, problem):
    with pytest.raises(idl.InterfaceSyntaxError, match=problem) as error:
        idl.parse_message(text, 'p', 'M')
    assert 'p/msg/M line' in str(error.value)


def test_types_arrays_bounds_defaults_and_constants():
    spec = idl.parse_message(
        '# comment\nuint8 A = 7  # a constant\nstring S = "x#y"\n'
        'float32[3] fixed [1.0, 2.0, 3.0]\nint8[<=4] bounded\nstring<=5 short "hi"\n'
        'Header header\nstd_msgs/Header other\nNested[] many\n', 'pkg', 'M')
    assert [(c.name, c.value) for c in spec.constants] == [('A', 7), ('S', 'x#y')]
    fixed, bounded, short, header, other, many = spec.fields
    assert (fixed.type.array_size, fixed.default) == (3, [1.0, 2.0, 3.0])
    assert bounded.type.upper_bound == 4 and bounded.type.is_sequence
    assert (short.type.string_bound, short.default) == (5, 'hi')
    assert (header.type.package, header.type.base) == ('std_msgs', 'Header') == (other.type.package, other.type.base)
    assert (many.type.package, many.type.is_array) == ('pkg', True)
    assert str(many.type) == 'pkg/Nested[]' and str(bounded.type) == 'int8[<=4]'
