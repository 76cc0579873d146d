"""dcdrl_ros.parameter_dataclass: a node's parameters declared once, as dataclass fields."""
import math
from dataclasses import dataclass

import pytest

from dcdrl_ros.live_parameters import Live, LiveParameters
from dcdrl_ros.param_check import UnknownParameterError
from dcdrl_ros.parameter_dataclass import (
    INT64_MAX,
    build,
    check_limits,
    declare_parameters,
    descriptor,
    live_names,
    markdown_table,
    parameter,
    parameter_specs,
)


@dataclass(frozen=True)
class Example:
    name: str = parameter('x', 'a name')
    count: int = parameter(3, 'how many', low=1)
    ratio: float = parameter(0.5, 'a fraction', low=0.0, high=1.0)
    period_s: float = parameter(1.0, 'a period', above=0.0, live=True)
    kind: str = parameter('a', 'which kind', choices=('a', 'b'))
    enabled: bool = parameter(True, 'on | off')


def test_specs_follow_the_fields_in_order_with_their_limits():
    specs = parameter_specs(Example)
    assert [spec.name for spec in specs] == ['name', 'count', 'ratio', 'period_s', 'kind', 'enabled']
    assert [spec.limits() for spec in specs] == ['', '>= 1', '[0, 1]', '> 0', 'one of: a, b', '']
    assert [spec.type_name for spec in specs] == ['string', 'integer', 'double', 'double', 'string', 'boolean']
    assert live_names(Example) == {'period_s'}


@pytest.mark.parametrize('values, message', [
    ({'count': 0}, 'count must be >= 1, got 0'),
    ({'ratio': 1.5}, r'ratio must be \[0, 1\], got 1.5'),
    ({'period_s': 0.0}, 'period_s must be > 0, got 0.0'),
    ({'period_s': math.nan}, 'period_s must be a finite number'),
    ({'kind': 'c'}, "kind must be one of: a, b, got 'c'"),
    ({'count': 2.0}, 'count must be an integer'),
    ({'enabled': 1}, 'enabled must be a boolean'),
    ({'cuont': 2}, "unknown parameter 'cuont'"),
])
def test_build_refuses_values_outside_the_limits(values, message):
    with pytest.raises(ValueError, match=message):
        build(Example, values)


def test_build_lists_every_refusal_and_takes_ints_for_doubles():
    with pytest.raises(ValueError, match=r'count must be >= 1, got 0; kind must be one of'):
        build(Example, {'count': 0, 'kind': 'z'})
    built = build(Example, {'ratio': 1, 'count': 5})
    assert built == Example(ratio=1.0, count=5) and isinstance(built.ratio, float)
    check_limits(built)
    with pytest.raises(ValueError, match='count must be >= 1'):
        check_limits(Example(count=0))


def test_a_parameter_needs_a_one_line_doc_and_a_default_within_its_limits():
    with pytest.raises(ValueError, match='one-line doc'):
        parameter(1, 'two\nlines')

    @dataclass
    class Broken:
        count: int = parameter(0, 'how many', low=1)

    with pytest.raises(ValueError, match='the default breaks its own limits: count must be >= 1'):
        parameter_specs(Broken)

    @dataclass
    class Plain:
        count: int = 0

    with pytest.raises(TypeError, match=r'Plain.count is not declared with parameter\(\)'):
        parameter_specs(Plain)


def test_the_markdown_table_has_one_row_per_field_with_escaped_bars():
    lines = markdown_table(Example).splitlines()
    assert lines[0] == '| name | default | limits | live | meaning |'
    assert lines[2] == "| `name` | `x` |  |  | a name |"
    assert lines[5] == '| `period_s` | `1.0` | > 0 | yes | a period |'
    assert lines[7] == '| `enabled` | `true` |  |  | on \\| off |'
    assert len(lines) == 2 + 6


def test_descriptors_carry_the_doc_the_range_and_read_only():
    specs = {spec.name: spec for spec in parameter_specs(Example)}
    count = descriptor(specs['count'])
    assert (count.description, count.read_only) == ('how many', True)
    assert (count.integer_range[0].from_value, count.integer_range[0].to_value) == (1, INT64_MAX)
    ratio = descriptor(specs['ratio'])
    assert (ratio.floating_point_range[0].from_value, ratio.floating_point_range[0].to_value) == (0.0, 1.0)
    period = descriptor(specs['period_s'])
    assert not period.read_only and not period.floating_point_range and period.additional_constraints.startswith('> 0')
    assert descriptor(specs['kind']).additional_constraints.startswith('one of: a, b')


@pytest.fixture
def runtime_node():
    from dcdrl_ros import runtime
    from dcdrl_ros.runtime.context import Context
    from dcdrl_ros.testing import fresh_domain_id
    made = []

    def make(*ros_argv):
        context = Context()
        context.init(['prog', '--ros-args', *ros_argv], domain_id=fresh_domain_id())
        node = runtime.Node('example', context=context)
        made.append((context, node))
        return node
    yield make
    for context, node in made:
        node.destroy_node()
        context.shutdown()


def test_a_runtime_node_declares_builds_and_refuses(runtime_node):
    applied = []
    node = runtime_node('-p', 'count:=7', '-p', 'period_s:=2.0')
    live = LiveParameters({'period_s': Live(apply=applied.append)})
    built = declare_parameters(node, Example, live)
    assert built == Example(count=7, period_s=2.0)
    assert node.describe_parameter('count').read_only and not node.describe_parameter('period_s').read_only
    # the on-set check applies the field's limits, then the node's own check
    assert not node.set_parameters([_parameter('period_s', 0.0)])[0].successful
    assert node.set_parameters([_parameter('period_s', 3.0)])[0].successful and applied == [3.0]
    assert not node.set_parameters([_parameter('count', 9)])[0].successful   # read-only

    from dcdrl_ros.runtime import ParameterException
    with pytest.raises(ParameterException, match='out of range'):   # rcl's own range check, as rclpy's
        declare_parameters(runtime_node('-p', 'count:=0'), Example, LiveParameters({'period_s': Live(apply=print)}))
    with pytest.raises(UnknownParameterError, match="unknown parameter 'cuont'"):
        declare_parameters(runtime_node('-p', 'cuont:=2'), Example, LiveParameters({'period_s': Live(apply=print)}))
    with pytest.raises(ValueError, match='kind must be one of: a, b'):
        declare_parameters(runtime_node('-p', 'kind:=c'), Example, LiveParameters({'period_s': Live(apply=print)}))
    with pytest.raises(RuntimeError, match=r"marked live \['period_s'\] but the node applies \[\]"):
        declare_parameters(runtime_node(), Example)


def _parameter(name, value):
    from dcdrl_ros.runtime import Parameter
    return Parameter(name, value=value)


@dataclass(frozen=True)
class WithSizes:
    sizes: tuple[float, ...] = parameter((0.3, 0.9), 'frame sizes', above=0.0)


def test_a_tuple_of_floats_is_a_double_array_checked_item_by_item(runtime_node):
    assert parameter_specs(WithSizes)[0].type_name == 'double_array'
    assert build(WithSizes, {'sizes': [1, 2.5]}) == WithSizes(sizes=(1.0, 2.5))   # ints taken, a tuple kept
    for bad, message in (([], 'non-empty list'), ([0.5, 0.0], 'each of sizes must be > 0'), ('x', 'non-empty list'),
                         ([math.nan], 'finite'), ([True], 'double')):
        with pytest.raises(ValueError, match=message):
            build(WithSizes, {'sizes': bad})
    assert '| `sizes` | `[0.3, 0.9]` | > 0 |' in markdown_table(WithSizes)
    node = runtime_node('-p', 'sizes:=[0.5, 2.0]')
    assert declare_parameters(node, WithSizes) == WithSizes(sizes=(0.5, 2.0))
    assert node.get_parameter('sizes').value == [0.5, 2.0]
    with pytest.raises(ValueError, match='each of sizes must be > 0'):
        declare_parameters(runtime_node('-p', 'sizes:=[-1.0]'), WithSizes)


@dataclass(frozen=True)
class WithPaths:
    paths: tuple[str, ...] = parameter((), 'folders to read')


def test_a_tuple_of_strings_takes_a_string_array_or_one_string_split_at_commas(runtime_node):
    assert parameter_specs(WithPaths)[0].type_name == 'string_list'
    assert build(WithPaths, {'paths': ['a', 'b c']}) == WithPaths(paths=('a', 'b c'))
    assert build(WithPaths, {'paths': ' a, b ,'}) == WithPaths(paths=('a', 'b'))   # a launch argument's string
    assert build(WithPaths, {'paths': ''}) == WithPaths()
    with pytest.raises(ValueError, match='paths must be a list of strings or one string'):
        build(WithPaths, {'paths': [1, 2]})
    assert '| `paths` | `[]` | list of strings, or one string split at commas |' in markdown_table(WithPaths)
    assert declare_parameters(runtime_node(), WithPaths) == WithPaths()   # declared as '' (launch refuses [])
    assert declare_parameters(runtime_node('-p', 'paths:=[bag1, bag2]'), WithPaths) == WithPaths(paths=('bag1', 'bag2'))
    assert declare_parameters(runtime_node('-p', 'paths:=x,y'), WithPaths) == WithPaths(paths=('x', 'y'))
