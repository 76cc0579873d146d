"""A node executable's own command line (node_usage.py): --help lists what the node declares without
starting it; arguments the node does not take are one-line errors.

The node below documents its parameters here, as the node files do in their module docstrings:

Parameters (default: meaning):
    rate_hz 5.0, depth 10: loop rate and queue depth
        (the second line of the meaning)
"""
import sys
import types

import pytest

from dcdrl_ros import node_usage, ros
from dcdrl_ros.live_parameters import Live, LiveParameters, read_only
from dcdrl_ros.node_usage import answer_command_line, docstring_description, probe_declarations
from dcdrl_ros.param_check import check_no_unknown_parameters


class Started(Exception):
    """The probe went past the declarations (it must not)."""


class Modal(ros.Node):
    """A node whose mode chooses its other parameters."""

    def __init__(self) -> None:
        super().__init__('modal', namespace='/demo')
        live = LiveParameters({'rate_hz': Live(apply=lambda _value: None)})
        self.declare_parameter('mode', 'a', read_only("'a' or 'b'"))
        if self.get_parameter('mode').value == 'b':
            self.declare_parameter('depth', 10, live.descriptor('depth'))
        self.declare_parameter('rate_hz', 5.0, live.descriptor('rate_hz'))
        check_no_unknown_parameters(self)
        raise Started()


def test_help_lists_the_declared_parameters_without_starting_the_node(capsys):
    assert answer_command_line(Modal, ['modal', '--help']) == 0
    out = capsys.readouterr().out
    assert out.startswith('usage: modal [-h] [--ros-args')
    assert 'Node /demo/modal' in out and "depends on mode 'a'" in out
    assert "  mode (string, default 'a')\n      'a' or 'b'\n" in out
    assert '  rate_hz (double, default 5.0, live)\n      loop rate and queue depth (the second line' in out
    assert '  depth (' not in out
    assert not ros.ok()  # no init, so no DDS participant


def test_the_command_line_chooses_the_branch_name_and_values():
    found = probe_declarations(Modal, ['modal', '--ros-args', '-p', 'mode:=b', '-r', '__ns:=/x', '-p', 'depth:=3'])
    assert found.fully_qualified_name == '/x/modal' and found.branches == {'mode': 'b'}
    depth = next(p for p in found.parameters if p.name == 'depth')
    assert (depth.type_name, depth.default, depth.value, depth.source) == ('integer', 10, 3, '-p depth:=3')
    assert depth.read_only and not next(p for p in found.parameters if p.name == 'rate_hz').read_only


@pytest.mark.parametrize('argv, hint', [
    (['--ros-arg', '-p', 'rate_hz:=1.0'], "unknown argument '--ros-arg'; did you mean '--ros-args'?"),
    (['rate_hz:=1.0'], 'a parameter goes after --ros-args: modal --ros-args -p rate_hz:=1.0'),
    (['--hlep'], "did you mean '--help'?"),
    (['--ros-args', '-p'], "'-p' at the end of --ros-args needs a rule"),
    (['--ros-args', '--help'], "unknown ROS argument '--help' inside --ros-args"),
])
def test_arguments_the_node_does_not_take_are_one_line_errors(capsys, argv, hint):
    assert answer_command_line(Modal, ['/install/lib/demo/modal', *argv]) == node_usage.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith('[FATAL] modal: ') and hint in err and err.count('\n') == 1, err


def test_a_plain_command_line_starts_the_node():
    assert answer_command_line(Modal, ['modal', '--ros-args', '-p', 'mode:=b', '--', '--ros-args']) is None


def test_descriptions_in_the_docstring_layouts_of_the_node_files(monkeypatch):
    module = types.ModuleType('fake_node')
    module.__doc__ = '''Fake.

Topics:
    sub  rate_hz  not a parameter line (before the section)

Parameters (name, default: meaning):
    env_id 'x/Y-v0': env whose spaces size the networks
    a 1, b 'two': shared meaning
    noise_sigma 0.1, noise_theta 0.15:
        on the next line
  source ('synthetic')       'synthetic[:SEED]' or 'device:INDEX'
  width (640), height (480)  published size
  capacity             200000     transitions kept
'''
    monkeypatch.setitem(sys.modules, 'fake_node', module)
    expected = {'env_id': 'env whose spaces size the networks', 'a': 'shared meaning', 'b': 'shared meaning',
                'noise_theta': 'on the next line', 'source': "'synthetic[:SEED]' or 'device:INDEX'",
                'height': 'published size', 'capacity': 'transitions kept', 'missing': ''}
    assert {name: docstring_description('fake_node', name) for name in expected} == expected
