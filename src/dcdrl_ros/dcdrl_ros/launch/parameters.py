"""Node parameters in a launch file (``param:`` of a ``node``): parsed, typed and evaluated the way
launch_ros does it in Jazzy (YAML rules for text unless a ``type`` is given; a value written as YAML is
checked against its ``type`` when the file is read)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from .context import LaunchContext
from .entity import Entity
from .substitutions import LaunchError, Template, evaluate, launch_bool, parse_template

__all__ = ['ParameterFile', 'ParameterValue', 'parse_parameters', 'evaluate_parameter']

_TYPE_IDS: dict[str, Any] = {'str': str, 'bool': bool, 'float': float, 'int': int, 'yaml': None,
                             'list_of_str': (list, str), 'list_of_bool': (list, bool),
                             'list_of_float': (list, float), 'list_of_int': (list, int)}


@dataclass
class ParameterFile:
    path: Template


@dataclass
class ParameterValue:
    name: tuple  # tuple of name Templates, joined with '.'
    value: Any  # Template, list of (Template | scalar), or a YAML scalar
    type_id: str | None


def _coerce(text: str, type_id: str | None, name: str, where: str) -> Any:
    """Type a parameter's text the way launch_ros does: YAML rules unless a type is given."""
    wanted = _TYPE_IDS.get(type_id) if type_id else None
    if wanted is str:
        return text
    if wanted in (int, float):
        try:
            return wanted(text)
        except ValueError:
            raise LaunchError(f"{where}: parameter '{name}': cannot read {text!r} as {type_id}") from None
    if wanted is bool:
        flag = launch_bool(text)
        if flag is None:
            raise LaunchError(f"{where}: parameter '{name}': cannot read {text!r} as bool")
        return flag
    if text == '':
        return ''
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise LaunchError(f"{where}: parameter '{name}': {text!r} is not valid YAML; "
                          'add type: str to keep it as text') from None
    if isinstance(wanted, tuple):
        if not isinstance(value, list) or not all(isinstance(v, wanted[1]) for v in value):
            raise LaunchError(f"{where}: parameter '{name}': cannot read {text!r} as {type_id}")
    return value


def _check_parameter_value(value: Any, name: str, where: str) -> Any:
    if isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        if value and type(value[0]) in (bool, int, float, str) and all(type(v) is type(value[0]) for v in value):
            return value
        raise LaunchError(
            f"{where}: parameter '{name}' = {value!r}: a list must be non-empty with items of one "
            'type (bool, int, float or str); write 1.0 rather than 1 in a list of floats')
    raise LaunchError(
        f"{where}: parameter '{name}' = {value!r}: allowed types are bool, int, float, str and "
        'lists of one of them; add type: str to keep text as it is')


def evaluate_parameter(param: ParameterValue, context: LaunchContext, where: str) -> tuple[str, Any]:
    name = '.'.join(evaluate(part, context, where) for part in param.name)
    value = param.value
    if isinstance(value, tuple):  # a template
        result = _coerce(evaluate(value, context, where), param.type_id, name, where)
    elif isinstance(value, list):
        item_type = _TYPE_IDS.get(param.type_id) if param.type_id else None
        item_id = ({str: 'str', int: 'int', float: 'float', bool: 'bool'}.get(item_type[1])
                   if isinstance(item_type, tuple) else None)
        result = [_coerce(evaluate(item, context, where), item_id, name, where) if isinstance(item, tuple)
                  else item for item in value]
    else:
        result = value
    return name, _check_parameter_value(result, name, where)


def _value_of(raw: Any, where: str) -> Any:
    if isinstance(raw, str):
        return parse_template(raw, where)
    if isinstance(raw, list):
        return [parse_template(item, where) if isinstance(item, str) else item for item in raw]
    if isinstance(raw, dict):
        raise LaunchError(f'{where}: a parameter value cannot be a map; nest it with param: [...]')
    return raw


def _check_raw_type(raw: Any, type_id: str | None, item: Entity) -> None:
    """launch_yaml checks a value written as YAML (not text) against 'type' when it parses the file."""
    wanted = _TYPE_IDS.get(type_id) if type_id else None
    if wanted is None or isinstance(raw, str):
        return
    item_type = wanted[1] if isinstance(wanted, tuple) else wanted
    items = raw if isinstance(wanted, tuple) and isinstance(raw, list) else None
    fits = (all(isinstance(v, (str, item_type)) and not _bool_for_number(v, item_type) for v in items)
            if items is not None else isinstance(raw, item_type) and not _bool_for_number(raw, item_type))
    if not fits:
        hint = ' (write 1.0, not 1; ros2 launch refuses it too)' if item_type is float else ''
        raise item.error(f'value {raw!r} is not of type {type_id}{hint}')


def _bool_for_number(value: Any, item_type: type) -> bool:
    return isinstance(value, bool) and item_type is not bool


def parse_parameters(entity: Entity, prefix: tuple = ()) -> list:
    parameters: list = []
    for item in entity.sub_entities('param'):
        source = item.text('from', True)
        name = item.template('name', True)
        if source is not None:
            if name is not None or prefix:
                raise item.error("'from' cannot be combined with 'name' or nested in another param")
            if item.boolean('allow_substs'):
                raise item.error("allow_substs: true is not supported (dcdrl launch passes parameter files "
                                 'as they are); set those values with inline params instead')
            parameters.append(ParameterFile(parse_template(source, f"{item.where}: 'param.from'")))
        elif name is not None:
            type_id = item.text('type', True)
            if type_id is not None and type_id not in _TYPE_IDS:
                raise item.error(f'unknown type {type_id!r}; one of {sorted(_TYPE_IDS)}')
            has_value = isinstance(item.element, dict) and 'value' in item.element
            nested = item.element.get('param') if isinstance(item.element, dict) else None
            if has_value and nested is not None:
                raise item.error("a param has either a 'value' or nested 'param' entries, not both")
            if type_id is not None and nested is not None:
                raise item.error("a param with nested 'param' entries cannot have a 'type' (as in ros2 launch)")
            if has_value:
                raw = item.raw('value')
                _check_raw_type(raw, type_id, item)
                parameters.append(ParameterValue(prefix + (name,), _value_of(raw, f"{item.where}: 'param.value'"),
                                                 type_id))
            elif nested is not None:
                parameters.extend(parse_parameters(item, prefix + (name,)))
            else:
                raise item.error("a param needs 'value', nested 'param' entries, or 'from'")
        else:
            raise item.error("a param needs 'name' (with 'value') or 'from' (a parameter file)")
        item.finish()
    return parameters
