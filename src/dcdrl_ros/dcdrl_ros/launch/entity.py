"""Entities of a YAML launch file: attributes read and type-checked the way Jazzy's launch_yaml reads
them (an attribute no action reads is an error, as there)."""
from __future__ import annotations

from typing import Any

from .substitutions import LaunchError, Template, parse_template

__all__ = ['Entity']


class Entity:
    """One YAML entity (``node: {...}``) with attribute access that checks types like launch_yaml."""

    def __init__(self, type_name: str, element: Any, source: str, line: int) -> None:
        self.type_name, self.element, self.source = type_name, element, source
        self.line = getattr(element, 'line', 0) or line
        self._read: set[str] = set()

    @property
    def where(self) -> str:
        return f'{self.source}, line {self.line}' if self.line else self.source

    def error(self, message: str) -> LaunchError:
        return LaunchError(f"{self.where}: '{self.type_name}': {message}")

    def _raw(self, name: str, optional: bool) -> Any:
        if not isinstance(self.element, dict) or name not in self.element:
            if optional:
                return None
            raise self.error(f"missing attribute '{name}'")
        self._read.add(name)
        return self.element[name]

    def text(self, name: str, optional: bool = False) -> str | None:
        value = self._raw(name, optional)
        if value is not None and not isinstance(value, str):
            raise self.error(
                f"attribute '{name}' must be text, got {type(value).__name__} {value!r} "
                f"(ros2 launch rejects it too; quote it: \"{value}\")")
        return value

    def template(self, name: str, optional: bool = False) -> Template | None:
        value = self.text(name, optional)
        return None if value is None else parse_template(value, f"{self.where}: '{self.type_name}.{name}'")

    def boolean(self, name: str) -> bool | None:
        value = self._raw(name, True)
        if value is None or isinstance(value, bool):
            return value
        # Jazzy's launch_yaml passes text on as it is, and any non-empty text counts as true there.
        raise self.error(f"attribute '{name}' must be a YAML boolean, true or false without quotes, got {value!r} "
                         '(ros2 launch would take any text, even "false", as true)')

    def number(self, name: str, kind: type) -> Any:
        """The attribute as ``kind`` (int or float), or None where it is not given."""
        value = self._raw(name, True)
        if value is None:
            return None
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            raise self.error(f"attribute '{name}' must be a float: write {value}.0 (ros2 launch refuses "
                             f'the integer {value})')
        if isinstance(value, bool) or not isinstance(value, kind):
            raise self.error(f"attribute '{name}' must be a{'n integer' if kind is int else ' number'}, got {value!r}")
        if kind is float and isinstance(value, float) and value < 0:
            raise self.error(f"attribute '{name}' must not be negative, got {value!r}")
        return kind(value)

    def raw(self, name: str) -> Any:
        return self._raw(name, True)

    def sub_entities(self, name: str) -> list[Entity]:
        value = self._raw(name, True)
        if value is None:
            return []
        if not isinstance(value, list) or not value or not all(isinstance(item, dict) for item in value):
            raise self.error(f"attribute '{name}' must be a list of maps, e.g. {name}: [{{name: a, value: b}}]")
        return [Entity(name, item, self.source, self.line) for item in value]

    def children(self) -> list[Entity]:
        if isinstance(self.element, list):
            items = self.element
        elif isinstance(self.element, dict):
            if 'children' not in self.element:
                raise self.error("expected a list of entities (or a map with a 'children' list)")
            self._read.add('children')
            items = self.element['children']
        else:
            raise self.error(f'expected a list of entities, got {self.element!r}')
        if not isinstance(items, list):
            raise self.error("'children' must be a list of entities")
        entities = []
        for item in items:
            if not isinstance(item, dict) or len(item) != 1:
                line = getattr(item, 'line', self.line)
                raise LaunchError(
                    f'{self.source}, line {line}: each entity must be a map with exactly one key, '
                    f'the action name (e.g. "- node: {{...}}"), got {item!r}')
            type_name, element = next(iter(item.items()))
            entities.append(Entity(type_name, element, self.source, getattr(item, 'line', self.line)))
        return entities

    def finish(self) -> None:
        if isinstance(self.element, dict):
            unknown = sorted(set(self.element) - self._read)
            if unknown:
                raise self.error(f"unknown attribute(s) {unknown}")
