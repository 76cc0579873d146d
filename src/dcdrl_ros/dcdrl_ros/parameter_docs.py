"""Writes the docs' parameter tables from the nodes' parameter dataclasses (dcdrl_ros.parameter_dataclass).

A docs page marks where a node's table goes, naming the dataclass::

    <!-- parameters: dcdrl_cloud.replay_parameters.ReplayBufferParameters -->
    (the generated table)
    <!-- end parameters -->

``python -m dcdrl_ros.parameter_docs docs/*.md`` rewrites what lies between the markers;
``--check`` only says which pages are stale (exit 1), as test/test_parameter_docs.py does.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from dcdrl_ros.parameter_dataclass import markdown_table

_BLOCK = re.compile(r'(<!-- parameters: ([\w.]+) -->\n)(.*?)(<!-- end parameters -->)', re.S)


def dataclass_named(path: str) -> type:
    """The class ``package.module.Class``."""
    module, _, name = path.rpartition('.')
    return getattr(importlib.import_module(module), name)


def render(text: str) -> str:
    """``text`` with every marked table regenerated."""
    return _BLOCK.sub(lambda match: match.group(1) + '\n' + markdown_table(dataclass_named(match.group(2))) + '\n'
                      + match.group(4), text)


def marked_dataclasses(text: str) -> list[str]:
    return [match.group(2) for match in _BLOCK.finditer(text)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m dcdrl_ros.parameter_docs', description=__doc__.split('\n')[0])
    parser.add_argument('pages', nargs='+', type=Path, help='markdown pages with parameter markers')
    parser.add_argument('--check', action='store_true', help='write nothing; exit 1 when a page is stale')
    args = parser.parse_args(argv)
    stale = []
    for page in args.pages:
        text = page.read_text()
        current = render(text)
        if current != text:
            stale.append(str(page))
            if not args.check:
                page.write_text(current)
    verb = 'stale' if args.check else 'rewritten'
    print(f'{verb}: {", ".join(stale)}' if stale else 'parameter tables are current')
    return 1 if stale and args.check else 0


if __name__ == '__main__':
    sys.exit(main())
