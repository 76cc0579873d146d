"""`dcdrl interface show|list`: ros2interface's output, from the same .msg/.srv files.

`show` prints the file and, under each field of a message type, that type's definition indented by
one tab per level, without its comments and blank lines (unless --all-comments), as ros2 does.
"""
from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from dcdrl_ros import idl

_ARRAY_OR_BOUND = re.compile(r'(\[.*\]|<=\d+)$')


def _split_line(text: str) -> tuple[str, int | None]:
    """(text, where its comment starts or None); a '#' inside a quoted default is not a comment."""
    quote = None
    for index, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in '\'"':
            quote = char
        elif char == '#':
            return text, index
    return text, None


def nested_type(text: str, package: str) -> str | None:
    """'pkg/msg/Name' when the line is a field of a message type, else None."""
    body, comment_at = _split_line(text)
    words = (body if comment_at is None else body[:comment_at]).split()
    if len(words) < 2 or '=' in words[1] or words[0] == '---':
        return None
    base = _ARRAY_OR_BOUND.sub('', words[0])
    base = _ARRAY_OR_BOUND.sub('', base)  # 'string<=5[3]': array, then bound
    if base in idl.PRIMITIVES or base in idl.STRING_TYPES:
        return None
    if '/' in base:
        owner, _, name = base.rpartition('/')
        return f'{owner.split("/")[0]}/msg/{name}'
    return 'std_msgs/msg/Header' if base == 'Header' else f'{package}/msg/{base}'


def _without_comment(text: str) -> str | None:
    """The line as ros2 prints it without comments: None for comment and blank lines; a trailing
    comment cut where ros2 cuts it (after the '#' when a space follows it)."""
    stripped = text.strip()
    if not stripped or stripped.startswith('#'):
        return None
    _, comment_at = _split_line(text)
    if comment_at is None or not text[comment_at + 1:].strip():
        return text
    comment_text_at = comment_at + 1 + (len(text[comment_at + 1:]) - len(text[comment_at + 1:].lstrip()))
    return text[:comment_text_at - 1].strip()


def interface_lines(registry: Any, type_name: str, comments: bool = True, nested_comments: bool = False,
                    level: int = 0) -> list[str]:
    package, kind, name = type_name.split('/')
    with open(registry.find_file(package, kind, name), encoding='utf-8') as handle:
        raw_lines = handle.read().splitlines()
    lines = []
    for raw in raw_lines:
        text = raw.rstrip()
        shown = text if comments else _without_comment(text)
        if shown is not None:
            lines.append('\t' * level + shown if shown else '')
        nested = nested_type(text, package) if text.strip() and not text.strip().startswith('#') else None
        if nested:
            lines += interface_lines(registry, nested, nested_comments, nested_comments, level + 1)
    return lines


def cmd_interface(args: argparse.Namespace) -> int:
    from dcdrl_ros.messages import InterfaceNotFoundError, default_registry
    registry = default_registry()
    if args.verb == 'list':
        for name in registry.list_types():
            print(name)
        return 0
    parts = args.type.strip('/').split('/')
    if len(parts) == 2:  # 'pkg/Name' as older dcdrl accepted it
        parts = [parts[0], 'msg', parts[1]]
    if len(parts) != 3:
        sys.stderr.write(f"Invalid name '{args.type}'. Expected three parts separated by '/'\n")
        return 1
    try:
        lines = interface_lines(registry, '/'.join(parts), comments=not args.no_comments,
                                nested_comments=args.all_comments)
    except InterfaceNotFoundError:
        sys.stderr.write(f"Unknown interface '{args.type}'\n")
        return 1
    print(*lines, sep='\n')
    return 0


def add_arguments(verbs: Any) -> None:
    interface = verbs.add_parser('interface', help='show interface definitions').add_subparsers(
        dest='verb', required=True)
    interface.add_parser('list').set_defaults(handler=cmd_interface)
    sub = interface.add_parser('show')
    comments = sub.add_mutually_exclusive_group()
    comments.add_argument('--all-comments', action='store_true', help='comments of nested definitions too')
    comments.add_argument('--no-comments', action='store_true', help='no comments or blank lines')
    sub.add_argument('type')
    sub.set_defaults(handler=cmd_interface)
