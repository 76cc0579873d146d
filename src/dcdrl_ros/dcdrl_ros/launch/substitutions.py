"""``$(...)`` substitutions of the ROS 2 launch frontend: parsing and evaluation.

The syntax follows launch's frontend grammar (launch/share/launch/frontend/grammar.lark):
``$(name arg1 arg2)`` with arguments separated by single spaces; an argument may itself hold
substitutions or be quoted ('...' or "..."), and a backslash escapes the next character.

Supported: ``$(var NAME [DEFAULT])``, ``$(env NAME [DEFAULT])``, ``$(find-pkg-share PKG)``,
``$(find-pkg-prefix PKG)``, ``$(dirname)``, ``$(filename)``, ``$(anon NAME)``, and launch's
logic substitutions ``$(equals A B)``, ``$(not-equals A B)``, ``$(not X)``, ``$(and X Y)``,
``$(or X Y)`` (results 'true'/'false', as in launch >= 1.0). The number of arguments is checked
when the file is parsed, as launch does.

What ``dcdrl launch`` accepts is a subset of what ``ros2 launch`` (Jazzy) accepts, so a file that
works here works there: ``$(any ...)`` and ``$(all ...)`` are refused because Jazzy's launch_yaml
cannot build them (``AnySubstitution.__init__() got an unexpected keyword argument 'args'``);
``$(eval ...)`` and ``$(command ...)`` are refused on purpose: DC-DRL never evaluates strings
as Python or runs shell commands from a launch file.
"""
from __future__ import annotations

import math
import os
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..workspace import PackageNotFoundError, find_package_share

if TYPE_CHECKING:
    from .context import LaunchContext

__all__ = ['Substitution', 'Template', 'LaunchError', 'parse_template', 'evaluate', 'template_text',
           'launch_bool', 'SUPPORTED_SUBSTITUTIONS']

# Number of arguments (least, most) of each supported substitution, as launch's parse() checks them.
_ARITY = {'var': (1, 2), 'env': (1, 2), 'find-pkg-share': (1, 1), 'find-pkg-prefix': (1, 1), 'dirname': (0, 0),
          'filename': (0, 0), 'anon': (1, 1), 'equals': (2, 2), 'not-equals': (2, 2), 'not': (1, 1),
          'and': (2, 2), 'or': (2, 2)}
SUPPORTED_SUBSTITUTIONS = tuple(_ARITY)
_JAZZY_BROKEN = ("ROS 2 Jazzy's launch_yaml cannot build it (AnySubstitution.__init__() got an unexpected "
                 "keyword argument 'args'), so the file would not run with ros2 launch")
_REFUSED = {
    'any': _JAZZY_BROKEN + '; use $(or X Y) (nest it for more terms)',
    'all': _JAZZY_BROKEN.replace('AnySubstitution', 'AllSubstitution') + '; use $(and X Y) (nest it for more terms)',

    'eval': 'it evaluates Python expressions, which DC-DRL never does; use $(var ...) with '
            "'if'/'unless' attributes holding true/false instead",
    'command': 'it runs a shell command, which DC-DRL launch files never do',
}


class LaunchError(ValueError):
    """A launch file that cannot be parsed or evaluated; the message says where and why."""


@dataclass(frozen=True)
class Substitution:
    name: str
    args: tuple  # tuple of Template

    def describe(self) -> str:
        parts = [self.name] + [template_text(arg) for arg in self.args]
        return '$(' + ' '.join(parts) + ')'


Part = str | Substitution
Template = tuple  # tuple[Part, ...]


def template_text(template: Template) -> str:
    """The template written back as text (for messages)."""
    return ''.join(part if isinstance(part, str) else part.describe() for part in template)


class _Reader:
    def __init__(self, text: str, where: str) -> None:
        self.text, self.pos, self.where = text, 0, where

    def error(self, message: str) -> LaunchError:
        return LaunchError(f'{self.where}: {message} in {self.text!r} (at character {self.pos + 1})')

    def peek(self, count: int = 1) -> str:
        return self.text[self.pos:self.pos + count]

    def done(self) -> bool:
        return self.pos >= len(self.text)


def _merge(parts: list) -> Template:
    merged: list = []
    for part in parts:
        if isinstance(part, str) and merged and isinstance(merged[-1], str):
            merged[-1] += part
        elif part != '':
            merged.append(part)
    return tuple(merged)


def _parse_substitution(reader: _Reader) -> Substitution:
    start = reader.pos
    reader.pos += 2  # '$('
    name_start = reader.pos
    while not reader.done() and (reader.peek().isalnum() or reader.peek() in '_-'):
        reader.pos += 1
    name = reader.text[name_start:reader.pos]
    if not name or not name[0].isalpha():
        reader.pos = start
        raise reader.error("expected a substitution name after '$('")
    args: list = []
    while True:
        if reader.done():
            reader.pos = start
            raise reader.error(f"unterminated '$({name}' (missing ')')")
        char = reader.peek()
        if char == ')':
            reader.pos += 1
            break
        if char != ' ':
            raise reader.error(f"expected ' ' or ')' in $({name} ...)")
        reader.pos += 1
        args.append(_parse_argument(reader, name))
    return Substitution(name, tuple(args))


def _parse_quoted(reader: _Reader, quote: str) -> Template:
    start = reader.pos
    reader.pos += 1
    parts: list = []
    while True:
        if reader.done():
            reader.pos = start
            raise reader.error(f'unterminated {quote} quote')
        char = reader.peek()
        if char == '\\' and reader.pos + 1 < len(reader.text):
            parts.append(reader.text[reader.pos + 1])
            reader.pos += 2
        elif char == quote:
            reader.pos += 1
            return _merge(parts)
        elif reader.peek(2) == '$(':
            parts.append(_parse_substitution(reader))
        else:
            parts.append(char)
            reader.pos += 1


def _parse_argument(reader: _Reader, name: str) -> Template:
    if reader.peek() in ("'", '"'):
        return _parse_quoted(reader, reader.peek())
    parts: list = []
    while not reader.done():
        char = reader.peek()
        if char == '\\' and reader.pos + 1 < len(reader.text):
            parts.append(reader.text[reader.pos + 1])
            reader.pos += 2
        elif reader.peek(2) == '$(':
            parts.append(_parse_substitution(reader))
        elif char in ' )':
            break
        elif char in '(\'"':
            raise reader.error(f"unescaped {char!r} in an argument of $({name} ...); quote the argument")
        else:
            parts.append(char)
            reader.pos += 1
    if not parts:
        raise reader.error(f'empty argument in $({name} ...)')
    return _merge(parts)


def parse_template(text: str, where: str = 'launch file') -> Template:
    """Parse text with ``$(...)`` substitutions into a template (strings and Substitutions)."""
    if not isinstance(text, str):
        raise LaunchError(f'{where}: expected text, got {type(text).__name__} {text!r}')
    reader = _Reader(text, where)
    parts: list = []
    while not reader.done():
        if reader.peek(2) == '$(':
            parts.append(_parse_substitution(reader))
        elif reader.peek() == '\\' and reader.pos + 1 < len(text):
            parts.append(text[reader.pos + 1])
            reader.pos += 2
        else:
            parts.append(reader.peek())
            reader.pos += 1
    _check_names(parts, where)
    return _merge(parts)


def _check_names(parts: list, where: str) -> None:
    for part in parts:
        if isinstance(part, Substitution):
            if part.name in _REFUSED:
                raise LaunchError(f'{where}: $({part.name} ...) is not supported: {_REFUSED[part.name]}')
            if part.name not in SUPPORTED_SUBSTITUTIONS:
                raise LaunchError(
                    f"{where}: unknown substitution '$({part.name} ...)'; supported: "
                    + ', '.join(f'$({name})' for name in SUPPORTED_SUBSTITUTIONS))
            _expect_args(part, *_ARITY[part.name], where)
            for arg in part.args:
                _check_names(list(arg), where)


def _expect_args(sub: Substitution, low: int, high: int, where: str) -> None:
    if not low <= len(sub.args) <= high:
        wanted = str(low) if low == high else f'{low} to {high}'
        raise LaunchError(f'{where}: {sub.describe()} expects {wanted} argument(s), got {len(sub.args)}')


def evaluate(template: Template, context: LaunchContext, where: str = 'launch file') -> str:
    """Expand a template to text in ``context``; raises LaunchError naming what is missing."""
    out: list[str] = []
    for part in template:
        if isinstance(part, str):
            out.append(part)
            continue
        name = part.name
        if name not in _ARITY:  # parse_template refuses these already; kept for templates built by hand
            raise LaunchError(f'{where}: unsupported substitution {part.describe()}')
        _expect_args(part, *_ARITY[name], where)
        args = [evaluate(arg, context, where) for arg in part.args]
        if name == 'var':
            if args[0] in context.configurations:
                out.append(context.configurations[args[0]])
            elif len(args) == 2:
                out.append(args[1])
            else:
                raise LaunchError(
                    f"{where}: launch argument '{args[0]}' is not set; pass {args[0]}:=VALUE "
                    f'or declare it with a default (arg: {{name: {args[0]}, default: ...}})')
        elif name == 'env':
            value = context.environment.get(args[0], args[1] if len(args) == 2 else None)
            if value is None:
                raise LaunchError(f"{where}: environment variable '{args[0]}' does not exist "
                                  f'(give a default: $(env {args[0]} DEFAULT))')
            out.append(value)
        elif name in ('find-pkg-share', 'find-pkg-prefix'):
            try:
                share = find_package_share(args[0])
            except PackageNotFoundError as err:
                raise LaunchError(f'{where}: {err}') from None
            if name == 'find-pkg-prefix' and share.parent.name == 'share':
                share = share.parent.parent
            out.append(str(share))
        elif name in ('dirname', 'filename'):
            if context.launch_file is None:
                raise LaunchError(f'{where}: $({name}) needs a launch file, and there is none')
            out.append(str(context.launch_file.parent if name == 'dirname' else context.launch_file))
        elif name == 'anon':
            if args[0] not in context.anonymous_names:
                context.anonymous_names[args[0]] = f'{args[0]}_{os.getpid()}_{secrets.token_hex(4)}'
            out.append(context.anonymous_names[args[0]])
        else:
            out.append(_logic(part, args, where))
    return ''.join(out)


# YAML 1.1 booleans as PyYAML reads them (launch coerces text to bool with yaml.safe_load).
_YAML_TRUE = ('true', 'True', 'TRUE', 'yes', 'Yes', 'YES', 'on', 'On', 'ON')
_YAML_FALSE = ('false', 'False', 'FALSE', 'no', 'No', 'NO', 'off', 'Off', 'OFF')


def launch_bool(text: str) -> bool | None:
    """Text as launch's coerce_to_type(text, bool) reads it: '1', '0' or a YAML boolean; None otherwise."""
    if text in ('1', '0'):
        return text == '1'
    stripped = text.strip()
    if stripped in _YAML_TRUE:
        return True
    if stripped in _YAML_FALSE:
        return False
    return None


def _as_bool(text: str, sub: Substitution, where: str) -> bool:
    """launch's perform_typed_substitution(bool)."""
    value = launch_bool(text)
    if value is None:
        raise LaunchError(f"{where}: {sub.describe()} needs a boolean (true/false/1/0), got {text!r}")
    return value


def _equal(left: str, right: str) -> bool:
    """launch's EqualsSubstitution: booleans by meaning, numbers by value (isclose), else text."""
    bools = ('true', 'false', '1', '0')
    if left.lower() in bools and right.lower() in bools:
        return (left.lower() in ('true', '1')) == (right.lower() in ('true', '1'))
    try:
        return math.isclose(float(left), float(right))
    except ValueError:
        return left == right


def _logic(sub: Substitution, args: list[str], where: str) -> str:
    name = sub.name
    if name in ('equals', 'not-equals'):
        result = _equal(args[0], args[1]) == (name == 'equals')
    elif name == 'not':
        result = not _as_bool(args[0], sub, where)
    else:  # and, or
        values = [_as_bool(a, sub, where) for a in args]
        result = all(values) if name == 'and' else any(values)
    return 'true' if result else 'false'


def is_plain(template: Template) -> bool:
    """True if the template holds no substitution."""
    return all(isinstance(part, str) for part in template)
