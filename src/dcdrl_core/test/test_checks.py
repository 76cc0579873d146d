"""dcdrl_core.checks: the one wording of argument checks, and the one rule for what counts as a number."""
import math

import numpy as np
import pytest

from dcdrl_core.checks import NotANumber, check_int, check_number


def test_check_number_returns_a_float_within_the_bounds():
    assert check_number('x', np.float32(0.5), 0.0, 1.0) == 0.5 and type(check_number('x', 3)) is float
    assert check_number('x', 0.0, 0.0) == 0.0 and check_number('x', -1e300) == -1e300


@pytest.mark.parametrize('value, minimum, maximum, above, message', [
    (0.0, 0.0, math.inf, True, 'rate_hz must be a finite number > 0, got 0.0'),
    (-1.0, 0.0, math.inf, False, 'rate_hz must be a finite number >= 0, got -1.0'),
    (2.0, 0.0, 1.0, False, 'rate_hz must be a finite number >= 0 and <= 1, got 2.0'),
    (math.nan, -math.inf, math.inf, False, 'rate_hz must be a finite number, got nan'),
    (math.inf, 0.0, math.inf, False, 'rate_hz must be a finite number >= 0, got inf'),
])
def test_check_number_refusals_name_the_argument_the_range_and_the_value(value, minimum, maximum, above, message):
    with pytest.raises(ValueError) as raised:
        check_number('rate_hz', value, minimum, maximum, above=above)
    assert str(raised.value) == message and type(raised.value) is ValueError


@pytest.mark.parametrize('value', ['1', None, True, [1.0]])
def test_a_value_that_is_not_a_number_is_both_a_type_and_a_value_error(value):
    with pytest.raises(NotANumber, match=r'x must be a finite number >= 0, got ') as raised:
        check_number('x', value, 0.0)
    assert isinstance(raised.value, TypeError) and isinstance(raised.value, ValueError)


def test_check_int_takes_integers_only():
    assert check_int('n', np.int64(3), 1) == 3 and type(check_int('n', np.int64(3), 1)) is int
    with pytest.raises(ValueError, match=r'^capacity must be an integer >= 1, got 0$'):
        check_int('capacity', 0, 1)
    with pytest.raises(ValueError, match=r'^n must be an integer >= 0 and <= 8, got 9$'):
        check_int('n', 9, 0, 8)
    for value in (2.0, True, '2'):
        with pytest.raises(NotANumber, match='n must be an integer'):
            check_int('n', value, 1)
