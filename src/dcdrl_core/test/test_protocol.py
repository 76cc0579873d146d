"""dcdrl_core.protocol is the one Python definition of the message constants: every constant of
src/dcdrl_msgs/msg/*.msg has its member there with the same value, and every member has its constant."""
import re
from pathlib import Path

import numpy as np
import pytest

from dcdrl_core.protocol import KNOWN_SEGMENT_FLAGS, EdgeCommandKind, LoopMode, SegmentFlag, parse_edge_command

MSG_DIR = Path(__file__).resolve().parents[2] / 'dcdrl_msgs' / 'msg'
CONSTANT = re.compile(r'^\s*u?int\d+\s+([A-Z][A-Z0-9_]*)\s*=\s*(-?\d+)')
# message -> (enum, the prefix its constants carry in the .msg file)
ENUMS = {'EdgeCommand': (EdgeCommandKind, ''), 'TrajectorySegment': (SegmentFlag, 'FLAG_'),
         'LoopStats': (LoopMode, 'MODE_')}
# Constants defined with their model: the face env's actions (dcdrl_sim.face.model), checked below.
ELSEWHERE = {'OffloadRecord'}


def msg_constants(name: str) -> dict[str, int]:
    constants = {}
    for line in (MSG_DIR / f'{name}.msg').read_text().splitlines():
        match = CONSTANT.match(line)
        if match:
            constants[match.group(1)] = int(match.group(2))
    return constants


def test_every_message_constant_has_its_member():
    with_constants = {path.stem for path in MSG_DIR.glob('*.msg') if msg_constants(path.stem)}
    assert with_constants == set(ENUMS) | ELSEWHERE, 'a .msg file with constants that protocol.py does not name'


@pytest.mark.parametrize('message', sorted(ENUMS))
def test_members_equal_the_message_constants(message):
    enum, prefix = ENUMS[message]
    assert {prefix + member.name: member.value for member in enum} == msg_constants(message)


def test_known_flags_are_every_bit_as_a_plain_int():
    assert KNOWN_SEGMENT_FLAGS == 0b1111 and type(KNOWN_SEGMENT_FLAGS) is int
    assert 0x30 & ~KNOWN_SEGMENT_FLAGS == 0x30   # an IntFlag's complement would drop the unknown bits


def test_parse_edge_command_takes_integers_and_refuses_the_rest():
    assert parse_edge_command(np.uint8(4)) is EdgeCommandKind.HOLD and parse_edge_command(1) is EdgeCommandKind.RESET
    for bad in (True, 0, 6, 2.0, '2', None):
        with pytest.raises(ValueError, match=r'unknown command .*; expected one of 1 \(reset\), 2 \(evaluate\)'):
            parse_edge_command(bad)


def test_labels_are_the_lower_case_names():
    assert [mode.label for mode in LoopMode] == ['train', 'eval', 'fallback', 'resetting', 'hold']
    assert EdgeCommandKind.RESUME.label == 'resume'


def test_offload_record_constants_are_the_face_env_actions():
    model = pytest.importorskip('dcdrl_sim.face.model')
    assert {'LOCAL': model.LOCAL, 'OFFLOAD': model.OFFLOAD} == msg_constants('OffloadRecord')
