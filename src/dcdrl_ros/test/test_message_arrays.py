"""What our message classes accept for numeric array fields: what rclpy accepts, refused with a clear error
otherwise (an empty Python list is an empty sequence of any element type)."""
import numpy as np
import pytest

from dcdrl_ros.messages import SerializationError, default_registry


def _priority_update():
    return default_registry().message('dcdrl_msgs', 'PriorityUpdate')


def test_an_empty_list_is_an_empty_integer_sequence_as_in_rclpy():
    cls = _priority_update()
    empty = cls(indices=[], priorities=[])
    typed = cls(indices=np.array([], np.uint64), priorities=np.array([], np.float32))
    assert empty.serialize() == typed.serialize()
    assert cls.deserialize(empty.serialize()).indices.dtype == np.uint64


def test_floats_for_an_integer_sequence_are_refused_and_integers_for_floats_taken():
    cls = _priority_update()
    with pytest.raises(SerializationError, match=r'expected integers \(uint64\), got floats'):
        cls(indices=[1.5], priorities=[0.5]).serialize()
    message = cls.deserialize(cls(indices=[3], priorities=[2]).serialize())
    assert message.indices.tolist() == [3] and message.priorities.tolist() == [2.0]
