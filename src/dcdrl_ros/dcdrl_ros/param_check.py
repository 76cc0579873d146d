"""Parameters a node was given but never declared: typos caught at start (no ROS import).

rclpy (and our runtime, which follows it) silently ignores a value from ``--params-file`` or
``-p`` for a parameter the node never declares, so ``-p capacty:=1000`` starts a replay buffer
with the default capacity and nobody notices. A node calls, once all its parameters are
declared and before it starts threads or opens endpoints::

    check_no_unknown_parameters(self)

The rule (docs/decisions.md, "Area: robustness"):

* a value **aimed at this node** that it does not declare is an error: a ``-p`` (with or
  without a ``node:`` prefix; one process runs one node), or a parameter-file block whose key
  names this node (``learner``, ``/dcdrl/learner``, ``/**/learner``). ``UnknownParameterError``
  (a ValueError) names the parameter, where it came from and the closest declared name;
  ``ros.run_node`` prints it as one ``[FATAL]`` line and exits with code 2;
* a value from a **shared block** (a key whose node part is a wildcard: ``/**``, ``/dcdrl/*``)
  that the node does not declare is ignored, named in one info line and returned (counted): such
  blocks set parameters for nodes of several kinds (config/train.yaml's client values), and each
  takes what it declares, as in rclpy;
* ``use_sim_time`` and ``start_type_description_service`` are always known (rclpy declares them
  in every node, and so does our runtime).

The check reads the same command line the node was built from: our runtime keeps it on the
context (``node.context.ros_args``); under rclpy ``sys.argv`` is parsed with our parser (the
same rules as rcl).
"""
from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from dcdrl_ros.param_files import fully_qualified_name, node_key_matches, parse_parameter_file
from dcdrl_ros.ros_args import RosArgs, split_ros_args

# Declared in every node by rclpy and by our runtime (runtime/node_parameters.py); a file may set them for all.
ALWAYS_KNOWN = frozenset({'use_sim_time', 'start_type_description_service'})


class UnknownParameterError(ValueError):
    """Values aimed at a node for parameters it does not declare (the message lists them)."""


@dataclass(frozen=True)
class UnknownParameter:
    """One value the node was given for a parameter it does not declare."""

    name: str
    source: str        # "-p capacty:=10" or "file config/x.yaml, line 4 (block /**/replay_buffer)"
    targeted: bool     # True: a -p or a block naming this node (an error); False: a shared block (a warning)
    suggestion: str    # the closest declared name, '' when none is close

    def describe(self) -> str:
        hint = f"; did you mean '{self.suggestion}'?" if self.suggestion else ''
        return f"unknown parameter '{self.name}' (from {self.source}){hint}"


def is_shared_node_key(key: str) -> bool:
    """True for parameter-file node keys that do not name one node: ``/**``, ``/ns/*``, ``/**/*``."""
    last = key.strip('/').split('/')[-1] if key.strip('/') else '**'
    return last in ('*', '**')


@dataclass(frozen=True)
class _Origin:
    source: str
    targeted: bool


def override_origins(ros_args: RosArgs, node_name: str, namespace: str = '/') -> dict[str, _Origin]:
    """Every parameter name the command line sets for this node, with its source and whether it was
    aimed at the node. Files are merged as rcl merges them (ros_args.RosArgs.parameter_overrides_for)."""
    fqn = fully_qualified_name(node_name, namespace)
    table: dict[str, dict[str, Any]] = {}   # node key -> name -> ParameterOverride, rcl's merge order
    for path in ros_args.params_files:
        for node_key, params in parse_parameter_file(path):
            table.setdefault(node_key, {}).update(params)
    origins: dict[str, _Origin] = {}
    for node_key, params in table.items():
        if not node_key_matches(node_key, fqn):
            continue
        targeted = not is_shared_node_key(node_key)
        for name, override in params.items():
            before = origins.get(name)
            origins[name] = _Origin(f'{override.source} (block {node_key})',
                                    targeted or (before is not None and before.targeted))
    for name in ros_args.param_overrides:
        origins[name] = _Origin(ros_args.param_sources.get(name) or f'-p {name}', True)
    for node_key, values in ros_args.node_param_overrides.items():
        if node_key_matches(node_key, fqn):
            for name in values:
                origins[name] = _Origin(ros_args.param_sources.get(f'{node_key}:{name}') or f'-p {node_key}:{name}',
                                        True)
    return origins


def find_unknown_parameters(declared: Collection[str] | Callable[[str], bool], ros_args: RosArgs,
                            node_name: str, namespace: str = '/',
                            known: Collection[str] = ALWAYS_KNOWN) -> list[UnknownParameter]:
    """The values in ``ros_args`` for this node whose names are not declared (in command-line order).

    ``declared``: the declared names, or a predicate such as ``node.has_parameter``.
    """
    names: list[str] | None = None   # for suggestions, when the names are known
    if callable(declared):
        is_declared = declared
    else:
        names = list(declared)
        is_declared = names.__contains__
    unknown = []
    for name, origin in override_origins(ros_args, node_name, namespace).items():
        if name in known or is_declared(name):
            continue
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.75) if names is not None else []
        unknown.append(UnknownParameter(name, origin.source, origin.targeted, close[0] if close else ''))
    return unknown


def _declared_names(node: Any) -> list[str] | None:
    parameters = getattr(node, '_parameters', None)   # both rclpy's Node and ours keep this dict
    return list(parameters) if isinstance(parameters, dict) else None


def _ros_args_of(node: Any, argv: Sequence[str] | None) -> RosArgs:
    if argv is not None:
        return split_ros_args(list(argv))[1]
    context_args = getattr(getattr(node, 'context', None), 'ros_args', None)
    if isinstance(context_args, RosArgs):   # our runtime: exactly what the node was built from
        return context_args
    return split_ros_args(list(sys.argv))[1]   # rclpy: the same command line, parsed by our rules


def check_no_unknown_parameters(node: Any, argv: Sequence[str] | None = None,
                                known: Collection[str] = ALWAYS_KNOWN) -> list[UnknownParameter]:
    """Raise UnknownParameterError for values aimed at ``node`` that it does not declare; name the
    undeclared values from shared blocks in one info line and return them (the count).

    Call after the node has declared all its parameters. ``argv``: the command line to check
    (default: the one the node was built from).
    """
    if getattr(node, 'declaring_only', False):  # node_usage's probe (--help): the declarations end here
        from dcdrl_ros.node_usage import DeclarationsComplete
        raise DeclarationsComplete()
    unknown = find_unknown_parameters(_declared_names(node) or node.has_parameter, _ros_args_of(node, argv),
                                      node.get_name(), node.get_namespace(), known)
    errors = [item for item in unknown if item.targeted]
    if errors:
        raise UnknownParameterError(
            f'{node.get_name()} does not declare: ' + '; '.join(item.describe() for item in errors))
    ignored = [item for item in unknown if not item.targeted]
    if ignored:  # one line: a '/**' block for the clients reaches every node of the graph
        node.get_logger().info(f'{node.get_name()} ignores values of shared blocks for parameters it does not '
                               f"declare (they are for other nodes): {', '.join(item.name for item in ignored)} "
                               f'(from {ignored[0].source})')
    return ignored


__all__ = ['ALWAYS_KNOWN', 'UnknownParameter', 'UnknownParameterError', 'check_no_unknown_parameters',
           'find_unknown_parameters', 'is_shared_node_key', 'override_origins']
